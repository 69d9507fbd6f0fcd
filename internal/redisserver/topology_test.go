package redisserver

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A Sentinel started by StartSentinel monitors the master, knows its
// replica, and moves the master to it on SENTINEL FAILOVER.
func TestSentinel(t *testing.T) {
	master := start(t, Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	host, port, _ := net.SplitHostPort(master.Addr())
	replica := start(t, Options{Args: []string{"--replicaof", host, port}})
	if err := master.WaitReplicas(t.Context(), 1); err != nil {
		t.Fatalf("WaitReplicas: %v", err)
	}
	sentinel, err := StartSentinel(t.Context(), "bulwark", master.Addr(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartSentinel: %v", err)
	}
	t.Cleanup(func() { _ = sentinel.Stop() })
	if got, err := sentinel.SentinelMaster(t.Context(), "bulwark"); err != nil || got != master.Addr() {
		t.Fatalf("SentinelMaster = %s, %v, want %s", got, err, master.Addr())
	}
	start := time.Now()
	got, err := sentinel.SentinelFailover(t.Context(), "bulwark")
	if err != nil || got != replica.Addr() {
		t.Fatalf("SentinelFailover = %s, %v, want %s", got, err, replica.Addr())
	}
	t.Logf("failover in %v", time.Since(start))
	reply, err := replica.Do(t.Context(), "INFO", "replication")
	if err != nil || !strings.Contains(strings.Join(reply, ""), "role:master\r\n") {
		t.Errorf("INFO replication of the old replica = %q, %v, want role:master", reply, err)
	}
}

// StartCluster's nodes form one cluster: every node knows the others,
// every slot is served, and each node serves its share.
func TestCluster(t *testing.T) {
	nodes, err := StartCluster(t.Context(), 3, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			_ = n.Stop()
		}
	})
	if len(nodes) != 3 {
		t.Fatalf("StartCluster made %d nodes, want 3", len(nodes))
	}
	for _, n := range nodes {
		reply, err := n.Do(t.Context(), "CLUSTER", "INFO")
		info := strings.Join(reply, "")
		if err != nil || !strings.Contains(info, "cluster_state:ok") ||
			!strings.Contains(info, "cluster_slots_assigned:"+strconv.Itoa(ClusterSlots)) || !strings.Contains(info, "cluster_known_nodes:3") {
			t.Errorf("CLUSTER INFO on %s = %q, %v, want ok with every slot and 3 nodes", n.Addr(), info, err)
		}
	}
	// A key of the last slot range lives on the last node: the others
	// redirect.
	reply, err := nodes[0].Do(t.Context(), "GET", "foo") // slot 12182
	if err == nil || !strings.Contains(err.Error(), "MOVED 12182 "+nodes[2].Addr()) {
		t.Errorf("GET foo on the first node = %q, %v, want MOVED 12182 %s", reply, err, nodes[2].Addr())
	}
}

// A config file goes right after the binary: redis-server reads one only
// as its first argument.
func TestArgvConfigFile(t *testing.T) {
	got := argv("redis-server", 26379, "/tmp/s", Options{ConfigFile: "/tmp/s/sentinel.conf", Args: []string{"--sentinel"}})
	if len(got) < 3 || got[1] != "/tmp/s/sentinel.conf" || got[len(got)-1] != "--sentinel" {
		t.Errorf("argv() = %q, want the config file first and --sentinel last", got)
	}
}

// StartSentinel and StartCluster fail, with the install command, where
// there is no redis-server, like Start.
func TestTopologyNotInstalled(t *testing.T) {
	if _, err := StartSentinel(t.Context(), "m", "127.0.0.1:1", Options{Bin: "/nonexistent/redis-server"}); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("StartSentinel without redis-server = %v, want ErrNotInstalled", err)
	}
	if _, err := StartCluster(t.Context(), 3, Options{Bin: "/nonexistent/redis-server"}); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("StartCluster without redis-server = %v, want ErrNotInstalled", err)
	}
}
