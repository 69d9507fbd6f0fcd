package e2e

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/redisserver"
)

// startTopologyRedis starts one redis-server for a Sentinel or Cluster
// test (failing, with the install command, when there is none) and stops
// it by its PID when the test ends.
func startTopologyRedis(t *testing.T, opts redisserver.Options) *redisserver.Server {
	t.Helper()
	opts.Dir = t.TempDir()
	s, err := redisserver.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// topologySetup is the config of a gateway on the Redis store at redis
// (the flow-mapping of rate_limits.redis): every layer, so that both
// stages batch a lock with their buckets, and a route limit of 3 per
// hour counted by client IP.
func topologySetup(up *upstream, redis, key string) string {
	return authnSetup{
		upstream:       up.addr,
		server:         []string{trustLoopback},
		authenticators: []string{keysAuthenticator},
		top: fmt.Sprintf(`rate_limits:
  store: redis
  redis: %s
  failure_mode: closed
  global: { limit: 10000, per: 1s }
  per_ip: { limit: 10000, per: 1s }
  plans:
    gold: { limit: 10000, per: 1h, quota: { limit: 10000, per: day } }
  auth_failures: { limit: 10, per: 1m, lockout: 1m }
consumers:
%s`, redis, consumer("acme", "gold", "k1", key)),
		routes: []string{authRoute("orders", "/orders", "[keys]", "rate_limit: { key: ip, limit: 3, per: 1h }")},
	}.yaml()
}

// checkExactPerIP sends 4 requests from each of ips, alternating between
// the gateways: 3 pass, the 4th is refused, whatever gateway answers.
func checkExactPerIP(t *testing.T, gws []*gateway, key string, ips ...string) {
	t.Helper()
	for _, ip := range ips {
		var got []int
		for i := range 4 {
			got = append(got, send(t, nil, "GET", gws[i%len(gws)].URL("/orders"), from(ip, key)...).status)
		}
		if want := []int{200, 200, 200, 429}; !slices.Equal(got, want) {
			t.Errorf("4 requests from %s across %d gateways = %v, want %v", ip, len(gws), got, want)
		}
	}
}

// TestRateLimitRedisSentinel runs two gateways on a Sentinel-managed
// master (rate_limits.redis.addrs + master_name): limits hold exactly
// across them, survive a failover to the replica, and the gateways
// follow the new master.
func TestRateLimitRedisSentinel(t *testing.T) {
	master := startTopologyRedis(t, redisserver.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	host, port, _ := net.SplitHostPort(master.Addr())
	replica := startTopologyRedis(t, redisserver.Options{Args: []string{"--replicaof", host, port}})
	if err := master.WaitReplicas(t.Context(), 1); err != nil {
		t.Fatalf("WaitReplicas: %v", err)
	}
	sentinel, err := redisserver.StartSentinel(t.Context(), "bulwark", master.Addr(), redisserver.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartSentinel: %v", err)
	}
	t.Cleanup(func() { _ = sentinel.Stop() })

	up := startUpstream(t, nil)
	key := newAPIKey(t)
	cfg := topologySetup(up, fmt.Sprintf("{ addrs: [%q], master_name: bulwark, timeout: 500ms, breaker_cooldown: 100ms }", sentinel.Addr()), key)
	gws := []*gateway{startGateway(t, cfg, nil), startGateway(t, cfg, nil)}
	checkExactPerIP(t, gws, key, "198.51.100.1", "198.51.100.2")
	if keys, err := master.Do(t.Context(), "KEYS", "bulwark:rl:route:orders:*"); err != nil || len(keys) != 2 {
		t.Errorf("route buckets on the master = %q, %v, want the 2 IPs' buckets", keys, err)
	}

	if err := master.WaitReplicated(t.Context()); err != nil {
		t.Fatalf("WaitReplicated: %v", err)
	}
	if addr, err := sentinel.SentinelFailover(t.Context(), "bulwark"); err != nil || addr != replica.Addr() {
		t.Fatalf("SentinelFailover = %s, %v, want %s", addr, err, replica.Addr())
	}
	// Each gateway follows the new master: a request from a new IP
	// writes its bucket there (under failure_mode: closed, a request that
	// reached no master is a 503).
	for i, g := range gws {
		ip := "198.51.100." + strconv.Itoa(10+i)
		deadline := time.Now().Add(10 * time.Second)
		for {
			a := send(t, nil, "GET", g.URL("/orders"), from(ip, key)...)
			n, err := replica.Do(t.Context(), "EXISTS", "bulwark:rl:route:orders:orders:ip/"+ip)
			if a.status == http.StatusOK && err == nil && n[0] == "1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway %d: no bucket on the new master 10s after the failover (last answer %d)", i, a.status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The buckets drained before the failover are still drained.
	before := up.hits.Load()
	for i, g := range gws {
		if a := send(t, nil, "GET", g.URL("/orders"), from("198.51.100.1", key)...); a.status != http.StatusTooManyRequests {
			t.Errorf("gateway %d after the failover: %d for a drained IP, want 429", i, a.status)
		}
	}
	if hits := up.hits.Load() - before; hits != 0 {
		t.Errorf("upstream hits = %d for drained IPs, want 0", hits)
	}
	checkExactPerIP(t, gws, key, "198.51.100.3")
}

// TestRateLimitRedisCluster runs two gateways on a 3-node Redis Cluster
// (rate_limits.redis.addrs): the buckets of different client IPs live on
// different nodes, and each is exact across the gateways.
func TestRateLimitRedisCluster(t *testing.T) {
	nodes, err := redisserver.StartCluster(t.Context(), 3, redisserver.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			_ = n.Stop()
		}
	})
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = strconv.Quote(n.Addr())
	}
	up := startUpstream(t, nil)
	key := newAPIKey(t)
	cfg := topologySetup(up, "{ addrs: ["+strings.Join(addrs, ", ")+"], timeout: 500ms }", key)
	gws := []*gateway{startGateway(t, cfg, nil), startGateway(t, cfg, nil)}
	ips := []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5", "203.0.113.6"}
	checkExactPerIP(t, gws, key, ips...)

	total := 0
	for i, n := range nodes {
		keys, err := n.Do(t.Context(), "KEYS", "bulwark:rl:route:orders:*")
		if err != nil {
			t.Fatalf("KEYS on node %d: %v", i, err)
		}
		if len(keys) == 0 {
			t.Errorf("node %d holds no route bucket, want the IPs' buckets spread over the 3 nodes", i)
		}
		total += len(keys)
	}
	if total != len(ips) {
		t.Errorf("route buckets on the cluster = %d, want %d (one per IP)", total, len(ips))
	}
	// The quota counted every request that passed (3 per IP).
	var quota int
	for _, n := range nodes {
		keys, _ := n.Do(t.Context(), "KEYS", "bulwark:rl:quota:*")
		for _, k := range keys {
			v, err := n.Do(t.Context(), "GET", k)
			if err != nil {
				t.Fatalf("GET %s: %v", k, err)
			}
			quota, _ = strconv.Atoi(v[0])
		}
	}
	if want := 3 * len(ips); quota != want {
		t.Errorf("the quota counter = %d, want %d: refused requests must not count", quota, want)
	}
}
