package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// batchStep is one Batch of batchScenario and what it must answer.
type batchStep struct {
	name  string
	lock  string // "" for none
	guard bool
	// buckets are indices into batchScenario's buckets.
	buckets []int
	count   bool
	// want
	locked    bool
	allowed   []bool
	remaining []int // of the allowed buckets
	counted   bool
	n         int64
	// trips is how many round trips the step costs on a Cluster (see
	// redis_batch.go: a refused request is undone in a second one); one
	// everywhere else.
	clusterTrips int
}

// batchSteps is the scenario every Batcher must answer alike: the
// semantics of batchInSteps, one call per question.
var batchSteps = []batchStep{
	{name: "a read lock, two buckets", lock: "lock:ip:192.0.2.1", buckets: []int{0, 1},
		allowed: []bool{true, true}, remaining: []int{1, 0}, clusterTrips: 1},
	{name: "a bucket refuses: nothing counted", buckets: []int{0, 1}, count: true,
		allowed: []bool{true, false}, remaining: []int{0, 0}, clusterTrips: 2},
	{name: "every bucket allows: counted", buckets: []int{2}, count: true,
		allowed: []bool{true}, remaining: []int{4}, counted: true, n: 1, clusterTrips: 1},
	{name: "a held guarding lock: nothing taken, nothing counted", lock: "lock:cred:keys/key/k1", guard: true, buckets: []int{2}, count: true,
		locked: true, clusterTrips: 2},
	{name: "after the guarded batch", buckets: []int{2}, count: true,
		allowed: []bool{true}, remaining: []int{3}, counted: true, n: 2, clusterTrips: 1},
	{name: "a held lock that does not guard", lock: "lock:cred:keys/key/k1", buckets: []int{2},
		locked: true, allowed: []bool{true}, remaining: []int{2}, clusterTrips: 1},
	{name: "a counter alone", count: true, counted: true, n: 3, clusterTrips: 1},
	{name: "a lock alone, not held", lock: "lock:ip:192.0.2.2", guard: true, clusterTrips: 1},
}

// batchScenarioBuckets are the buckets of batchSteps. Their keys start
// with prefix (different on every run against one server).
func batchScenarioBuckets(prefix string) []Bucket {
	return []Bucket{
		{Layer: prefix + "per_ip", Key: "192.0.2.1", Rate: Rate{Limit: 2, Per: time.Minute, Burst: 2}},
		{Layer: prefix + "global", Rate: Rate{Limit: 1, Per: time.Minute, Burst: 1}},
		{Layer: prefix + "plan", Key: "acme", Rate: Rate{Limit: 5, Per: time.Minute, Burst: 5}},
	}
}

// runBatchScenario runs batchSteps against s, which has nothing under
// prefix yet, and checks every answer. trips, when not nil, returns the
// round trips the last Batch made; want is how many it must have made.
func runBatchScenario(t *testing.T, s interface {
	Store
	Batcher
}, prefix string, trips func() int64, want func(batchStep) int) {
	t.Helper()
	ctx := t.Context()
	buckets := batchScenarioBuckets(prefix)
	counter := prefix + "quota:gold-quota:acme:20261123"
	if err := s.Lock(ctx, prefix+"lock:cred:keys/key/k1", time.Minute); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	// Loads the batch script where there is one.
	if err := s.Batch(ctx, &Batch{Lock: prefix + "warmup"}); err != nil {
		t.Fatalf("Batch: %v", err)
	}
	for _, st := range batchSteps {
		b := &Batch{Guard: st.guard, Until: time.Now().Add(time.Hour)}
		if st.lock != "" {
			b.Lock = prefix + st.lock
		}
		if st.count {
			b.Count = counter
		}
		for _, i := range st.buckets {
			b.Buckets = append(b.Buckets, buckets[i])
		}
		b.Decisions = make([]Decision, len(b.Buckets))
		if trips != nil {
			trips() // reset
		}
		if err := s.Batch(ctx, b); err != nil {
			t.Fatalf("%s: Batch: %v", st.name, err)
		}
		if trips != nil {
			if got, want := trips(), want(st); got != int64(want) {
				t.Errorf("%s: %d round trips, want %d", st.name, got, want)
			}
		}
		if b.Locked != st.locked || (st.locked && (b.LockLeft <= 50*time.Second || b.LockLeft > time.Minute)) {
			t.Errorf("%s: Locked, LockLeft = %v, %v, want %v (about 1m when locked)", st.name, b.Locked, b.LockLeft, st.locked)
		}
		if b.Counted != st.counted || b.N != st.n {
			t.Errorf("%s: Counted, N = %v, %d, want %v, %d", st.name, b.Counted, b.N, st.counted, st.n)
		}
		for i, allowed := range st.allowed {
			d := b.Decisions[i]
			if d.Allowed != allowed || (allowed && d.Remaining != st.remaining[i]) {
				t.Errorf("%s: bucket %s = %+v, want allowed %v, Remaining %d", st.name, b.Buckets[i].Layer, d, allowed, st.remaining[i])
			}
			if !allowed && d.RetryAfter <= 0 {
				t.Errorf("%s: refused bucket %s has RetryAfter %v, want > 0", st.name, b.Buckets[i].Layer, d.RetryAfter)
			}
		}
	}
}

// The local store is the reference: Batch is batchInSteps there.
func TestLocalBatch(t *testing.T) {
	runBatchScenario(t, NewLocal(100, nil), "", nil, nil)
}

// On a standalone server, every Batch is one command (EVALSHA of the
// batch script) and answers exactly as one call per question would.
func TestRedisBatch(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	admin := srv.Admin()
	r := newTestRedis(t, testRedisConfig(srv.URL()))
	trips := redisTrips(r.rdb)
	// Connects.
	if err := r.Batch(t.Context(), &Batch{Lock: "warmup"}); err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if err := admin.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	if err := admin.ConfigResetStat(t.Context()).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
	// The first batch finds no script (EVALSHA, then EVAL).
	trips()
	b := &Batch{Count: "warmup:count", Until: time.Now().Add(time.Minute)}
	if err := r.Batch(t.Context(), b); err != nil || !b.Counted || b.N != 1 {
		t.Fatalf("first Batch = %+v, %v, want counted once", b, err)
	}
	if got := trips(); got != 2 {
		t.Errorf("first Batch: %d round trips, want 2 (EVALSHA's NOSCRIPT, then EVAL)", got)
	}
	runBatchScenario(t, r, "", trips, func(batchStep) int { return 1 })
	calls := srv.CommandCalls(admin)
	if want := len(batchSteps) + 2; calls["evalsha"] != want || calls["eval"] != 1 {
		t.Errorf("server saw evalsha=%d eval=%d, want %d and 1", calls["evalsha"], calls["eval"], want)
	}
	// The keys are the ones Take, Count and Locked use.
	got := take(t, r, batchScenarioBuckets("")[2])
	if got[0].Remaining != 1 {
		t.Errorf("Take after the batches: Remaining %d, want 1 (the batches took 4 of 5)", got[0].Remaining)
	}
	if n, err := r.Count(t.Context(), "quota:gold-quota:acme:20261123", time.Now().Add(time.Hour)); err != nil || n != 4 {
		t.Errorf("Count after the batches = %d, %v, want 4", n, err)
	}
}

// A Batch that cannot reach Redis fails with ErrUnavailable, counts
// against the breaker like any call, and is answered by the open
// breaker without waiting.
func TestRedisBatchUnavailable(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	r := newTestRedis(t, testRedisConfig(srv.URL()))
	b := &Batch{Buckets: batchScenarioBuckets("")[:1], Decisions: make([]Decision, 1)}
	if err := r.Batch(t.Context(), b); err != nil {
		t.Fatalf("Batch with Redis up: %v", err)
	}
	srv.Kill()
	for i := range 3 {
		if err := r.Batch(t.Context(), b); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Batch %d with Redis down = %v, want ErrUnavailable", i, err)
		}
	}
	start := time.Now()
	err := r.Batch(t.Context(), b)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "circuit breaker open") {
		t.Errorf("Batch with the breaker open = %v, want ErrUnavailable from the breaker", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Batch with the breaker open took %v, want no wait", d)
	}
	if n := r.Errors(); n != 4 {
		t.Errorf("Errors() = %d, want 4", n)
	}
}

// Failover answers a whole batch from the fallback while Redis is down,
// at the per-instance share of every bucket.
func TestFailoverBatch(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	local := NewLocal(100, nil)
	f := NewFailover(newTestRedis(t, testRedisConfig(srv.URL())), local, 2, false)
	bucket := Bucket{Layer: "plan", Key: "acme", Rate: Rate{Limit: 4, Per: time.Minute, Burst: 4}}
	b := &Batch{Buckets: []Bucket{bucket}, Decisions: make([]Decision, 1), Count: "q", Until: time.Now().Add(time.Hour)}
	if err := f.Batch(t.Context(), b); err != nil || b.Decisions[0].Remaining != 3 || b.N != 1 || f.Degraded() {
		t.Fatalf("Batch with Redis up = %+v, %v (degraded %v), want Redis's answer", b, err, f.Degraded())
	}
	srv.Kill()
	want := []bool{true, true, false} // a share of 4/2
	for i, allowed := range want {
		if err := f.Batch(t.Context(), b); err != nil {
			t.Fatalf("Batch %d with Redis down: %v", i, err)
		}
		if b.Decisions[0].Allowed != allowed {
			t.Errorf("Batch %d with Redis down: allowed %v, want %v", i, b.Decisions[0].Allowed, allowed)
		}
	}
	if b.Buckets[0] != bucket {
		t.Errorf("Batch left the buckets at %+v, want them as given", b.Buckets[0])
	}
	if !f.Degraded() || f.FallbackDecisions() != 3 {
		t.Errorf("Degraded() = %v, FallbackDecisions() = %d, want true, 3", f.Degraded(), f.FallbackDecisions())
	}
	closed := NewFailover(newTestRedis(t, testRedisConfig(srv.URL())), NewLocal(100, nil), 2, true)
	if err := closed.Batch(t.Context(), b); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Batch under failure_mode closed with Redis down = %v, want ErrUnavailable", err)
	}
}

// redisTrips counts the round trips of a go-redis client: single
// commands and pipelines, but not the handshake of a new connection
// (HELLO, then a pipeline of CLIENT SETINFO), which is the connection's
// cost, not a request's. The function it returns returns the count and
// starts again.
func redisTrips(c redis.UniversalClient) func() int64 {
	h := &redisTripHook{}
	c.AddHook(h)
	return func() int64 { return h.n.Swap(0) }
}

type redisTripHook struct{ n atomic.Int64 }

func (h *redisTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *redisTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "client" {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
