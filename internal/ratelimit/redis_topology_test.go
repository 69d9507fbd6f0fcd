package ratelimit

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/redisserver"
)

// topologyRedisConfig is testRedisConfig for addrs (Sentinels with
// masterName, else Cluster nodes), with a short breaker cooldown.
func topologyRedisConfig(masterName string, addrs ...string) config.Redis {
	return config.Redis{
		Addrs:           addrs,
		MasterName:      masterName,
		Timeout:         config.Duration(500 * time.Millisecond),
		KeyPrefix:       redisTestPrefix,
		BreakerFailures: 3,
		BreakerCooldown: config.Duration(100 * time.Millisecond),
	}
}

// startTopologyServer starts one redis-server for a Sentinel or Cluster
// test and stops it by its PID when the test ends.
func startTopologyServer(t *testing.T, opts redisserver.Options) *redisserver.Server {
	t.Helper()
	opts.Dir = t.TempDir()
	s, err := redisserver.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// drain takes from bucket until it refuses and returns how many
// requests it allowed; it fails the test on an error or after max.
func drain(t *testing.T, r *Redis, bucket Bucket, max int) int {
	t.Helper()
	b := &Batch{Buckets: []Bucket{bucket}, Decisions: make([]Decision, 1)}
	for n := 0; n <= max; n++ {
		if err := r.Batch(t.Context(), b); err != nil {
			t.Fatalf("Batch %d on %s: %v", n+1, bucket.Layer, err)
		}
		if !b.Decisions[0].Allowed {
			return n
		}
	}
	t.Fatalf("bucket %s allowed more than %d requests", bucket.Layer, max)
	return 0
}

// Through Sentinel, the store finds the master by name, its batches are
// exact and one round trip each (the batch script, as on a standalone
// server), and the limits survive a failover: the replica that becomes
// master has the buckets, and the store follows it.
func TestRedisSentinel(t *testing.T) {
	redisLeakCheck(t)
	master := startTopologyServer(t, redisserver.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	host, port, _ := net.SplitHostPort(master.Addr())
	replica := startTopologyServer(t, redisserver.Options{Args: []string{"--replicaof", host, port}})
	if err := master.WaitReplicas(t.Context(), 1); err != nil {
		t.Fatalf("WaitReplicas: %v", err)
	}
	sentinel, err := redisserver.StartSentinel(t.Context(), "bulwark", master.Addr(), redisserver.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartSentinel: %v", err)
	}
	t.Cleanup(func() { _ = sentinel.Stop() })

	r := newTestRedis(t, topologyRedisConfig("bulwark", sentinel.Addr()))
	if r.cluster {
		t.Fatal("a Sentinel store batches as a Cluster")
	}
	trips := redisTrips(r.rdb)
	runBatchScenario(t, r, "sentinel:", trips, func(batchStep) int { return 1 })
	if n, err := master.Do(t.Context(), "DBSIZE"); err != nil || n[0] == "0" {
		t.Errorf("DBSIZE of the master = %q, %v, want the scenario's keys there", n, err)
	}

	const burst = 5
	bucket := Bucket{Layer: "plan", Key: "acme", Rate: Rate{Limit: burst, Per: time.Hour, Burst: burst}}
	if n := drain(t, r, bucket, 2*burst); n != burst {
		t.Fatalf("through Sentinel: %d requests allowed, want %d", n, burst)
	}
	// The replica has every write before the failover.
	if err := master.WaitReplicated(t.Context()); err != nil {
		t.Fatalf("WaitReplicated: %v", err)
	}
	if n, err := replica.Do(t.Context(), "EXISTS", redisTestPrefix+"plan:acme"); err != nil || n[0] != "1" {
		t.Fatalf("EXISTS on the replica = %q, %v, want the drained bucket there", n, err)
	}

	start := time.Now()
	newMaster, err := sentinel.SentinelFailover(t.Context(), "bulwark")
	if err != nil || newMaster != replica.Addr() {
		t.Fatalf("SentinelFailover = %s, %v, want %s", newMaster, err, replica.Addr())
	}
	// The store follows the new master once a write of its lands there.
	// (The old master stays a master until the Sentinel has seen it claim
	// so for a while, about 8s: the test does not wait for that.)
	for i := 0; ; i++ {
		key := "probe-" + strconv.Itoa(i)
		probe := &Batch{Buckets: []Bucket{{Layer: "probe", Key: key, Rate: Rate{Limit: 1 << 20, Per: time.Hour}}}, Decisions: make([]Decision, 1)}
		if r.Batch(t.Context(), probe) == nil {
			if n, err := replica.Do(t.Context(), "EXISTS", redisTestPrefix+"probe:"+key); err == nil && n[0] == "1" {
				break
			}
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the store does not write to the new master 10s after the failover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("failover, and the store on the new master, in %v", time.Since(start))

	b := &Batch{Buckets: []Bucket{bucket}, Decisions: make([]Decision, 1)}
	if err := r.Batch(t.Context(), b); err != nil || b.Decisions[0].Allowed {
		t.Errorf("after the failover: %+v, %v, want the drained bucket still refusing", b.Decisions[0], err)
	}
	fresh := Bucket{Layer: "plan", Key: "globex", Rate: Rate{Limit: burst, Per: time.Hour, Burst: burst}}
	if n := drain(t, r, fresh, 2*burst); n != burst {
		t.Errorf("after the failover: %d requests allowed on a new bucket, want %d", n, burst)
	}
	if n, err := replica.Do(t.Context(), "EXISTS", redisTestPrefix+"plan:globex"); err != nil || n[0] != "1" {
		t.Errorf("EXISTS on the new master = %q, %v, want the new bucket there", n, err)
	}
}

// clusterNode returns the index of the node that serves slot, with
// StartCluster's even split.
func clusterNode(slot int64, nodes int) int {
	return int(slot * int64(nodes) / redisserver.ClusterSlots)
}

// On a Cluster, a batch is one pipeline from the store's side, which
// go-redis splits into one pipeline per node, sent in parallel; the
// limits of buckets on different nodes are exact; and a batch answers as
// on any other store (the second round trip only for refused requests).
func TestRedisCluster(t *testing.T) {
	redisLeakCheck(t)
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
		addrs[i] = n.Addr()
	}
	r := newTestRedis(t, topologyRedisConfig("", addrs...))
	if !r.cluster {
		t.Fatal("a Cluster store does not batch as a Cluster")
	}
	ctx := t.Context()

	// A prefix under which the scenario's three buckets live on the
	// three nodes.
	var prefix string
	for i := 0; prefix == ""; i++ {
		p := "c" + strconv.Itoa(i) + ":"
		seen := map[int]bool{}
		for _, b := range batchScenarioBuckets(p) {
			slot, err := r.rdb.ClusterKeySlot(ctx, redisTestPrefix+b.Layer+":"+b.Key).Result()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT: %v", err)
			}
			seen[clusterNode(slot, len(nodes))] = true
		}
		if len(seen) == len(nodes) {
			prefix = p
		}
	}
	// Every node has redis_rate's script, as after the first requests.
	src, _, err := redisRateScript()
	if err != nil {
		t.Fatal(err)
	}
	err = r.rdb.(*redis.ClusterClient).ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.ScriptLoad(ctx, src).Err()
	})
	if err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}
	trips := redisTrips(r.rdb)
	runBatchScenario(t, r, prefix, trips, func(s batchStep) int { return s.clusterTrips })

	// Each node's own client sees one pipeline per batch.
	perNode := map[string]int{}
	var mu sync.Mutex
	err = r.rdb.(*redis.ClusterClient).ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		c.AddHook(nodePipelineHook(func() { mu.Lock(); perNode[addr]++; mu.Unlock() }))
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachShard: %v", err)
	}
	const burst = 3
	buckets := batchScenarioBuckets("exact:" + prefix)
	for i := range buckets {
		buckets[i].Rate = Rate{Limit: burst, Per: time.Hour, Burst: burst}
	}
	b := &Batch{Buckets: buckets, Decisions: make([]Decision, len(buckets))}
	for i := range burst + 1 {
		trips()
		if err := r.Batch(ctx, b); err != nil {
			t.Fatalf("Batch %d: %v", i+1, err)
		}
		if n := trips(); n != 1 {
			t.Errorf("Batch %d of buckets on 3 nodes: %d round trips from the store, want 1 pipeline", i+1, n)
		}
		for j, d := range b.Decisions {
			if want := i < burst; d.Allowed != want {
				t.Errorf("Batch %d, bucket %s: allowed %v, want %v (burst %d)", i+1, buckets[j].Layer, d.Allowed, want, burst)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, addr := range addrs {
		if perNode[addr] != burst+1 {
			t.Errorf("node %s saw %d pipelines for %d batches, want one each", addr, perNode[addr], burst+1)
		}
	}
}

// nodePipelineHook calls seen for every pipeline a node's client sends.
type nodePipelineHook func()

func (h nodePipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h nodePipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h nodePipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "client" {
			h()
		}
		return next(ctx, cmds)
	}
}
