package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// failoverTestStore stands in for the local store behind a Failover: it
// records what it is asked and answers every bucket as allowed, with
// Remaining = Burst-1, so a test sees which store answered and with what
// rate.
type failoverTestStore struct {
	mu     sync.Mutex
	takes  [][]Bucket
	counts []string
	locks  []string
	closed bool
}

func (s *failoverTestStore) Take(_ context.Context, buckets []Bucket, out []Decision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.takes = append(s.takes, append([]Bucket(nil), buckets...))
	for i, b := range buckets {
		out[i] = Decision{Allowed: true, Remaining: b.Rate.Burst - 1}
	}
	return nil
}

func (s *failoverTestStore) Count(_ context.Context, key string, _ time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = append(s.counts, key)
	return int64(len(s.counts)), nil
}

func (s *failoverTestStore) Lock(_ context.Context, key string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.locks = append(s.locks, key)
	return nil
}

func (s *failoverTestStore) Locked(_ context.Context, key string) (time.Duration, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.locks {
		if k == key {
			return time.Minute, true, nil
		}
	}
	return 0, false, nil
}

func (s *failoverTestStore) Ready() string { return "" }

func (s *failoverTestStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *failoverTestStore) calls() (takes, counts, locks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.takes), len(s.counts), len(s.locks)
}

func (s *failoverTestStore) lastTake() []Bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.takes) == 0 {
		return nil
	}
	return s.takes[len(s.takes)-1]
}

// failure_mode: open answers from the fallback at the per-instance share
// while Redis is down, says so, and goes back to Redis when it returns.
func TestFailoverOpen(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	cfg := testRedisConfig(srv.URL())
	local := &failoverTestStore{}
	f := NewFailover(newTestRedis(t, cfg), local, 3, false)
	buckets := []Bucket{
		{Layer: "route:orders", Key: "c1", Rate: Rate{Limit: 30, Per: time.Minute, Burst: 60}},
		{Layer: "ip", Key: "192.0.2.1", Rate: Rate{Limit: 2, Per: time.Second, Burst: 2}},
	}
	ctx := t.Context()

	if d := take(t, f, buckets...); d[0].Remaining != 59 || d[1].Remaining != 1 {
		t.Errorf("Take with Redis up = %+v, want Remaining 59 and 1 (Redis's buckets)", d)
	}
	if n, _, _ := local.calls(); n != 0 || f.Degraded() || f.Status() != "" {
		t.Errorf("with Redis up: fallback Takes = %d, Degraded() = %v, Status() = %q, want 0, false, \"\"", n, f.Degraded(), f.Status())
	}

	srv.Kill()
	const takes = 5 // through the breaker opening
	for range takes {
		take(t, f, buckets...)
	}
	want := []Bucket{
		{Layer: "route:orders", Key: "c1", Rate: Rate{Limit: 10, Per: time.Minute, Burst: 20}},
		{Layer: "ip", Key: "192.0.2.1", Rate: Rate{Limit: 1, Per: time.Second, Burst: 1}},
	}
	if got := local.lastTake(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("fallback Take got %+v, want the per-instance share %+v", got, want)
	}
	if n, _, _ := local.calls(); n != takes {
		t.Errorf("fallback Takes = %d, want %d", n, takes)
	}
	if n := f.FallbackDecisions(); n != takes*uint64(len(buckets)) {
		t.Errorf("FallbackDecisions() = %d, want %d", n, takes*len(buckets))
	}
	if !f.Degraded() || f.Ready() != "" || !strings.HasPrefix(f.Status(), "degraded: ") {
		t.Errorf("with Redis down: Degraded() = %v, Ready() = %q, Status() = %q, want true, \"\", \"degraded: ...\"", f.Degraded(), f.Ready(), f.Status())
	}
	if n, err := f.Count(ctx, "quota:gold:c1:20260101", time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("Count with Redis down = %d, %v, want 1 from the fallback", n, err)
	}
	if err := f.Lock(ctx, "lock:ip:192.0.2.1", time.Minute); err != nil {
		t.Errorf("Lock with Redis down = %v, want nil", err)
	}
	if d, locked, err := f.Locked(ctx, "lock:ip:192.0.2.1"); err != nil || !locked || d != time.Minute {
		t.Errorf("Locked with Redis down = %v, %v, %v, want the fallback's lock", d, locked, err)
	}

	srv.Start()
	back := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !back; time.Sleep(20 * time.Millisecond) {
		take(t, f, buckets...)
		back = !f.Degraded()
	}
	if !back {
		t.Fatal("still degraded 5s after Redis came back")
	}
	fallbackTakes, _, _ := local.calls()
	// A fresh Redis: the first Take after recovery left 59 and 1.
	if d := take(t, f, buckets...); d[0].Remaining != 58 || d[1].Remaining != 0 {
		t.Errorf("Take after recovery = %+v, want Remaining 58 and 0 (Redis's buckets)", d)
	}
	if n, _, _ := local.calls(); n != fallbackTakes || f.Status() != "" {
		t.Errorf("after recovery: fallback Takes %d -> %d, Status() = %q, want no new fallback Takes and \"\"", fallbackTakes, n, f.Status())
	}
	if n, err := f.Count(ctx, "quota:gold:c1:20260101", time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("Count after recovery = %d, %v, want 1 from Redis", n, err)
	}
	if _, counts, locks := local.calls(); counts != 1 || locks != 1 {
		t.Errorf("fallback Counts, Locks = %d, %d, want 1, 1 (none after recovery)", counts, locks)
	}
}

// failure_mode: closed returns the error: the stage answers 503.
func TestFailoverClosed(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	cfg := testRedisConfig(srv.URL())
	local := &failoverTestStore{}
	f := NewFailover(newTestRedis(t, cfg), local, 3, true)
	b := Bucket{Layer: "global", Rate: Rate{Limit: 10, Per: time.Second}}
	ctx := t.Context()
	take(t, f, b)

	srv.Kill()
	for i := range cfg.BreakerFailures + 2 {
		if err := f.Take(ctx, []Bucket{b}, make([]Decision, 1)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take %d with Redis down = %v, want ErrUnavailable", i, err)
		}
	}
	if _, err := f.Count(ctx, "quota:x", time.Now().Add(time.Hour)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Count with Redis down = %v, want ErrUnavailable", err)
	}
	if err := f.Lock(ctx, "lock:x", time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lock with Redis down = %v, want ErrUnavailable", err)
	}
	if _, _, err := f.Locked(ctx, "lock:x"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Locked with Redis down = %v, want ErrUnavailable", err)
	}
	if takes, counts, locks := local.calls(); takes+counts+locks != 0 {
		t.Errorf("fallback calls = %d, %d, %d, want none", takes, counts, locks)
	}
	if f.Degraded() || f.FallbackDecisions() != 0 || f.Ready() != "redis unavailable" || f.Status() != "redis unavailable" {
		t.Errorf("Degraded() = %v, FallbackDecisions() = %d, Ready() = %q, Status() = %q, want false, 0, \"redis unavailable\" twice",
			f.Degraded(), f.FallbackDecisions(), f.Ready(), f.Status())
	}
}

// The per-instance share, against a Redis that refuses connections.
func TestFailoverShare(t *testing.T) {
	redisLeakCheck(t)
	tests := []struct {
		name       string
		instances  int
		rate, want Rate
	}{
		{"one instance", 1, Rate{Limit: 10, Per: time.Second, Burst: 20}, Rate{Limit: 10, Per: time.Second, Burst: 20}},
		{"zero counts as one", 0, Rate{Limit: 10, Per: time.Second, Burst: 20}, Rate{Limit: 10, Per: time.Second, Burst: 20}},
		{"divided", 4, Rate{Limit: 100, Per: time.Minute, Burst: 40}, Rate{Limit: 25, Per: time.Minute, Burst: 10}},
		{"rounds down", 3, Rate{Limit: 10, Per: time.Second, Burst: 10}, Rate{Limit: 3, Per: time.Second, Burst: 3}},
		{"at least 1", 8, Rate{Limit: 5, Per: time.Second, Burst: 5}, Rate{Limit: 1, Per: time.Second, Burst: 1}},
		{"default burst stays default", 2, Rate{Limit: 10, Per: time.Second}, Rate{Limit: 5, Per: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := &failoverTestStore{}
			f := NewFailover(newTestRedis(t, testRedisConfig("redis://127.0.0.1:1/0")), local, tt.instances, false)
			d := take(t, f, Bucket{Layer: "ip", Key: "192.0.2.1", Rate: tt.rate})
			got := local.lastTake()
			if len(got) != 1 || got[0].Rate != tt.want || !d[0].Allowed {
				t.Errorf("fallback Take got %+v (allowed %v), want rate %+v", got, d[0].Allowed, tt.want)
			}
		})
	}
}

// A caller that gave up gets its error, not a fallback answer.
func TestFailoverCanceledCaller(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	local := &failoverTestStore{}
	f := NewFailover(newTestRedis(t, testRedisConfig(srv.URL())), local, 2, false)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := f.Take(ctx, []Bucket{{Layer: "global", Rate: Rate{Limit: 1, Per: time.Second}}}, make([]Decision, 1))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Take with a canceled context = %v, want context.Canceled", err)
	}
	if n, _, _ := local.calls(); n != 0 || f.Degraded() {
		t.Errorf("fallback Takes = %d, Degraded() = %v, want 0 and false", n, f.Degraded())
	}
}

func TestFailoverClose(t *testing.T) {
	redisLeakCheck(t)
	local := &failoverTestStore{}
	f := NewFailover(newTestRedis(t, testRedisConfig("redis://127.0.0.1:1/0")), local, 2, false)
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !local.closed {
		t.Error("Close did not close the fallback")
	}
}
