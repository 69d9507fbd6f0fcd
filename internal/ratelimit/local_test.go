package ratelimit

import (
	"context"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// localClock is a clock that moves only when told, safe for concurrent use.
type localClock struct{ ns atomic.Int64 }

func newLocalClock() *localClock {
	c := &localClock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *localClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *localClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// localTake takes one token from b.
func localTake(t testing.TB, l *Local, b Bucket) Decision {
	t.Helper()
	out := make([]Decision, 1)
	if err := l.Take(context.Background(), []Bucket{b}, out); err != nil {
		t.Fatalf("Take(%q, %q) error: %v", b.Layer, b.Key, err)
	}
	return out[0]
}

// localHas reports whether l holds the bucket, without touching it.
func localHas(l *Local, layer, key string) bool {
	k := localKey{layer: layer, key: key}
	h := l.buckets.hash(k)
	s := l.buckets.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[h]
	return ok && s.slots[i].key == k
}

func TestLocalTakeExact(t *testing.T) {
	tests := []struct {
		name       string
		rate       Rate
		wantDenied Decision // the decision after the burst
	}{
		{
			name:       "burst equals limit",
			rate:       Rate{Limit: 10, Per: time.Second, Burst: 10},
			wantDenied: Decision{RetryAfter: 100 * time.Millisecond, Reset: time.Second},
		},
		{
			name:       "burst larger than limit",
			rate:       Rate{Limit: 10, Per: time.Minute, Burst: 25},
			wantDenied: Decision{RetryAfter: 6 * time.Second, Reset: 150 * time.Second},
		},
		{
			name:       "burst smaller than limit",
			rate:       Rate{Limit: 100, Per: time.Second, Burst: 5},
			wantDenied: Decision{RetryAfter: 10 * time.Millisecond, Reset: 50 * time.Millisecond},
		},
		{
			name:       "burst of one",
			rate:       Rate{Limit: 1, Per: time.Second, Burst: 1},
			wantDenied: Decision{RetryAfter: time.Second, Reset: time.Second},
		},
		{
			name: "a third of a second rounds up",
			rate: Rate{Limit: 3, Per: time.Second, Burst: 3},
			// 333333333ns refills 0.999999999 tokens: too few.
			wantDenied: Decision{RetryAfter: 333333334 * time.Nanosecond, Reset: time.Second},
		},
		{
			// A new bucket starts full even when the rate would take
			// centuries to fill it.
			name:       "slow rate, large burst",
			rate:       Rate{Limit: 1, Per: 365 * 24 * time.Hour, Burst: 1000},
			wantDenied: Decision{RetryAfter: 365 * 24 * time.Hour, Reset: time.Duration(math.MaxInt64)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLocal(100, newLocalClock().now)
			b := Bucket{Layer: LayerPerIP, Key: "192.0.2.1", Rate: tt.rate}
			for i := range tt.rate.Burst {
				got := localTake(t, l, b)
				want := Decision{Allowed: true, Remaining: tt.rate.Burst - 1 - i}
				if got.Allowed != want.Allowed || got.Remaining != want.Remaining || got.RetryAfter != 0 {
					t.Fatalf("take %d = %+v, want allowed with Remaining %d", i+1, got, want.Remaining)
				}
			}
			if got := localTake(t, l, b); got != tt.wantDenied {
				t.Errorf("take %d = %+v, want %+v", tt.rate.Burst+1, got, tt.wantDenied)
			}
			if got := localTake(t, l, b); got != tt.wantDenied {
				t.Errorf("take %d (denials charge nothing) = %+v, want %+v", tt.rate.Burst+2, got, tt.wantDenied)
			}
		})
	}
}

func TestLocalRefill(t *testing.T) {
	tests := []struct {
		name string
		rate Rate
	}{
		{name: "10 per second", rate: Rate{Limit: 10, Per: time.Second, Burst: 10}},
		{name: "3 per second", rate: Rate{Limit: 3, Per: time.Second, Burst: 3}},
		{name: "7 per second", rate: Rate{Limit: 7, Per: time.Second, Burst: 2}},
		{name: "3 per minute, burst 5", rate: Rate{Limit: 3, Per: time.Minute, Burst: 5}},
		{name: "1000 per hour", rate: Rate{Limit: 1000, Per: time.Hour, Burst: 1}},
		{name: "13 per 17ms", rate: Rate{Limit: 13, Per: 17 * time.Millisecond, Burst: 4}},
		{name: "1 per day", rate: Rate{Limit: 1, Per: 24 * time.Hour, Burst: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newLocalClock()
			l := NewLocal(100, clock.now)
			b := Bucket{Layer: LayerPlan, Key: "consumer-1", Rate: tt.rate}
			for range tt.rate.Burst {
				localTake(t, l, b)
			}
			denied := localTake(t, l, b)
			interval := time.Duration(math.Ceil(float64(tt.rate.Per) / float64(tt.rate.Limit)))
			if denied.Allowed || denied.RetryAfter < interval || denied.RetryAfter > interval+time.Microsecond {
				t.Fatalf("after the burst: %+v, want denied with RetryAfter ≈ %v", denied, interval)
			}

			clock.advance(denied.RetryAfter - time.Nanosecond)
			if got := localTake(t, l, b); got.Allowed {
				t.Errorf("1ns before RetryAfter %v: %+v, want denied", denied.RetryAfter, got)
			}
			clock.advance(time.Nanosecond)
			if got := localTake(t, l, b); !got.Allowed || got.Remaining != 0 {
				t.Errorf("at RetryAfter %v: %+v, want allowed with Remaining 0", denied.RetryAfter, got)
			}

			// A long idle time refills to the burst, not beyond.
			clock.advance(1000 * tt.rate.Per)
			allowed := 0
			for range tt.rate.Burst + 5 {
				if localTake(t, l, b).Allowed {
					allowed++
				}
			}
			if allowed != tt.rate.Burst {
				t.Errorf("after a long idle time: %d allowed, want the burst %d", allowed, tt.rate.Burst)
			}
		})
	}
}

func TestLocalDecisionValues(t *testing.T) {
	clock := newLocalClock()
	l := NewLocal(100, clock.now)
	b := Bucket{Layer: LayerRoute, Key: "orders", Rate: Rate{Limit: 10, Per: time.Second, Burst: 5}}
	steps := []struct {
		advance time.Duration
		want    Decision
	}{
		{want: Decision{Allowed: true, Remaining: 4, Reset: 100 * time.Millisecond}},
		{want: Decision{Allowed: true, Remaining: 3, Reset: 200 * time.Millisecond}},
		// 3 + 0.5 refilled - 1 = 2.5 tokens: Remaining is the floor.
		{advance: 50 * time.Millisecond, want: Decision{Allowed: true, Remaining: 2, Reset: 250 * time.Millisecond}},
		{want: Decision{Allowed: true, Remaining: 1, Reset: 350 * time.Millisecond}},
		{want: Decision{Allowed: true, Remaining: 0, Reset: 450 * time.Millisecond}},
		// 0.5 tokens: half an interval to the next one.
		{want: Decision{Allowed: false, Remaining: 0, RetryAfter: 50 * time.Millisecond, Reset: 450 * time.Millisecond}},
		{advance: 50 * time.Millisecond, want: Decision{Allowed: true, Remaining: 0, Reset: 500 * time.Millisecond}},
		{advance: time.Hour, want: Decision{Allowed: true, Remaining: 4, Reset: 100 * time.Millisecond}},
	}
	for i, st := range steps {
		clock.advance(st.advance)
		if got := localTake(t, l, b); got != st.want {
			t.Errorf("step %d (after +%v): Take = %+v, want %+v", i, st.advance, got, st.want)
		}
	}
}

func TestLocalRateChangeKeepsTokens(t *testing.T) {
	tests := []struct {
		name        string
		from, to    Rate
		taken       int      // under from
		wantAllowed int      // under to, at the same instant
		wantDenied  Decision // then
	}{
		{
			name:        "slower rate, larger burst",
			from:        Rate{Limit: 10, Per: time.Second, Burst: 10},
			to:          Rate{Limit: 1, Per: time.Second, Burst: 20},
			taken:       4,
			wantAllowed: 6,
			wantDenied:  Decision{RetryAfter: time.Second, Reset: 20 * time.Second},
		},
		{
			name:        "smaller burst caps the tokens",
			from:        Rate{Limit: 10, Per: time.Second, Burst: 10},
			to:          Rate{Limit: 10, Per: time.Second, Burst: 5},
			taken:       2,
			wantAllowed: 5,
			wantDenied:  Decision{RetryAfter: 100 * time.Millisecond, Reset: 500 * time.Millisecond},
		},
		{
			name:        "faster rate refills an empty bucket sooner",
			from:        Rate{Limit: 1, Per: time.Minute, Burst: 4},
			to:          Rate{Limit: 10, Per: time.Second, Burst: 4},
			taken:       4,
			wantAllowed: 0,
			wantDenied:  Decision{RetryAfter: 100 * time.Millisecond, Reset: 400 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLocal(100, newLocalClock().now)
			b := Bucket{Layer: LayerPlan, Key: "consumer-1", Rate: tt.from}
			for range tt.taken {
				localTake(t, l, b)
			}
			b.Rate = tt.to
			allowed := 0
			var last Decision
			for range tt.to.Burst + 1 {
				if last = localTake(t, l, b); last.Allowed {
					allowed++
				}
			}
			if allowed != tt.wantAllowed {
				t.Errorf("after the rate change: %d allowed, want %d (the tokens left)", allowed, tt.wantAllowed)
			}
			if last != tt.wantDenied {
				t.Errorf("after the rate change: last Take = %+v, want %+v", last, tt.wantDenied)
			}
		})
	}
}

func TestLocalTakeBucketsIndependently(t *testing.T) {
	clock := newLocalClock()
	l := NewLocal(100, clock.now)
	buckets := []Bucket{
		{Layer: LayerPerIP, Key: "x", Rate: Rate{Limit: 1, Per: time.Second, Burst: 1}},
		{Layer: LayerPlan, Key: "x", Rate: Rate{Limit: 1, Per: time.Second, Burst: 3}}, // same key, other layer
		{Layer: "a", Key: "bc", Rate: Rate{Limit: 1, Per: time.Second, Burst: 1}},
		{Layer: "ab", Key: "c", Rate: Rate{Limit: 1, Per: time.Second, Burst: 2}}, // not the same as a/bc
	}
	out := make([]Decision, len(buckets))
	want := [][]bool{
		{true, true, true, true},
		{false, true, false, true},
		{false, true, false, false},
		{false, false, false, false},
	}
	for round, w := range want {
		if err := l.Take(context.Background(), buckets, out); err != nil {
			t.Fatalf("round %d: Take error: %v", round, err)
		}
		for i, d := range out {
			if d.Allowed != w[i] {
				t.Errorf("round %d: bucket %s/%s Allowed = %v, want %v", round, buckets[i].Layer, buckets[i].Key, d.Allowed, w[i])
			}
		}
	}
	// The denied buckets were not charged: one second gives each
	// exactly one token.
	clock.advance(time.Second)
	for range 2 {
		if err := l.Take(context.Background(), buckets, out); err != nil {
			t.Fatalf("Take error: %v", err)
		}
	}
	for i, d := range out {
		if d.Allowed || d.RetryAfter != time.Second {
			t.Errorf("bucket %s/%s after 1s and two takes: %+v, want denied with RetryAfter 1s", buckets[i].Layer, buckets[i].Key, d)
		}
	}
}

func TestLocalTakeErrors(t *testing.T) {
	good := Rate{Limit: 1, Per: time.Second, Burst: 1}
	tests := []struct {
		name    string
		buckets []Bucket
		out     int
	}{
		{name: "too few decisions", buckets: []Bucket{{Layer: "a", Rate: good}}, out: 0},
		{name: "too many decisions", buckets: []Bucket{{Layer: "a", Rate: good}}, out: 2},
		{name: "zero limit", buckets: []Bucket{{Layer: "a", Rate: good}, {Layer: "b", Rate: Rate{Per: time.Second, Burst: 1}}}, out: 2},
		{name: "zero period", buckets: []Bucket{{Layer: "a", Rate: good}, {Layer: "b", Rate: Rate{Limit: 1, Burst: 1}}}, out: 2},
		{name: "zero burst", buckets: []Bucket{{Layer: "a", Rate: good}, {Layer: "b", Rate: Rate{Limit: 1, Per: time.Second}}}, out: 2},
		{name: "negative limit", buckets: []Bucket{{Layer: "a", Rate: good}, {Layer: "b", Rate: Rate{Limit: -1, Per: time.Second, Burst: 1}}}, out: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLocal(100, newLocalClock().now)
			if err := l.Take(context.Background(), tt.buckets, make([]Decision, tt.out)); err == nil {
				t.Fatal("Take error = nil, want an error")
			}
			if n := l.buckets.len(); n != 0 {
				t.Errorf("after a failed Take: %d buckets, want 0 (nothing charged)", n)
			}
		})
	}
}

func TestLocalShardLimits(t *testing.T) {
	for _, maxKeys := range []int{1, 3, 255, 256, 1000, 1001, 10_000, 100_000, 1 << 30} {
		var tab lruTable[string, localLock]
		tab.init(maxKeys, func(string) uint64 { return 0 }, func(*localLock, time.Time) bool { return false })
		n, sum := len(tab.shards), 0
		for i := range tab.shards {
			if tab.shards[i].limit < 1 {
				t.Errorf("maxKeys %d: shard %d holds %d keys, want 1 or more", maxKeys, i, tab.shards[i].limit)
			}
			sum += tab.shards[i].limit
		}
		if sum != maxKeys || n < 1 || n > maxShards || n&(n-1) != 0 || (n > 1 && maxKeys/n < minShardKeys) {
			t.Errorf("maxKeys %d: %d shards holding %d keys, want a power of two ≤ %d holding %d, ≥ %d each",
				maxKeys, n, sum, maxShards, maxKeys, minShardKeys)
		}
	}
	if n := len(NewLocal(0, nil).buckets.shards); n != maxShards {
		t.Errorf("NewLocal(0): %d shards, want %d (the default of %d keys)", n, maxShards, defaultMaxKeys)
	}
}

func TestLocalEvictsLeastRecentlyUsed(t *testing.T) {
	clock := newLocalClock()
	l := NewLocal(3, clock.now) // one shard: an exact LRU
	slow := Rate{Limit: 1, Per: time.Hour, Burst: 2}
	take := func(key string, r Rate) Decision {
		return localTake(t, l, Bucket{Layer: LayerPerIP, Key: key, Rate: r})
	}
	take("a", slow)
	take("b", slow)
	take("c", slow)
	take("a", slow) // a is now the most recently used, b the least
	if got := take("d", Rate{Limit: 1, Per: time.Hour, Burst: 5}); got.Remaining != 4 {
		t.Errorf("new key d in a reused slot: Remaining = %d, want 4 (full at its own burst)", got.Remaining)
	}
	for key, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if got := localHas(l, LayerPerIP, key); got != want {
			t.Errorf("after adding d: holds %q = %v, want %v", key, got, want)
		}
	}
	if got := l.Evictions(); got != 1 {
		t.Errorf("Evictions() = %d, want 1", got)
	}
	// a kept its state: both tokens are gone.
	if got := take("a", slow); got.Allowed {
		t.Errorf("a after the eviction of b: %+v, want denied", got)
	}
	// b was forgotten: it is full again (the looser limit Evictions counts).
	if got := take("b", slow); !got.Allowed || got.Remaining != 1 {
		t.Errorf("b after its eviction: %+v, want allowed with Remaining 1", got)
	}
	if got := l.Evictions(); got != 2 {
		t.Errorf("Evictions() = %d, want 2 (b came back and evicted c)", got)
	}
	if localHas(l, LayerPerIP, "c") {
		t.Error("holds c, want it evicted as the least recently used")
	}
}

func TestLocalHashCollision(t *testing.T) {
	// Every key hashes alike: the newer key replaces the older, and an
	// older one that carried state counts as evicted.
	var tab lruTable[string, localLock]
	tab.init(10, func(string) uint64 { return 42 }, func(v *localLock, now time.Time) bool { return !now.Before(v.until) })
	now := newLocalClock().now()
	s := tab.shard(42)
	*tab.add(s, 42, "a", now) = localLock{until: now.Add(time.Hour)}
	if v := s.get(42, "b"); v != nil {
		t.Fatalf("get(b) = %+v, want nil: only a is held", v)
	}
	*tab.add(s, 42, "b", now) = localLock{until: now.Add(time.Minute)}
	if v := s.get(42, "a"); v != nil {
		t.Errorf("get(a) after b replaced it = %+v, want nil", v)
	}
	if v := s.get(42, "b"); v == nil || !v.until.Equal(now.Add(time.Minute)) {
		t.Errorf("get(b) = %+v, want its lock", v)
	}
	if n, ev := tab.len(), tab.evictions.Load(); n != 1 || ev != 1 {
		t.Errorf("after the collision: %d keys, %d evictions, want 1, 1", n, ev)
	}
}

func TestLocalBoundsBuckets(t *testing.T) {
	const maxKeys, keys = 1000, 5000
	l := NewLocal(maxKeys, newLocalClock().now)
	b := Bucket{Layer: LayerPerIP, Rate: Rate{Limit: 1, Per: time.Hour, Burst: 2}}
	for i := range keys {
		b.Key = "198.51.100." + strconv.Itoa(i)
		localTake(t, l, b)
		if n := l.buckets.len(); n > maxKeys {
			t.Fatalf("after %d keys: %d buckets, want ≤ %d", i+1, n, maxKeys)
		}
	}
	n := l.buckets.len()
	if n != maxKeys {
		t.Errorf("after %d keys: %d buckets, want %d (every shard full)", keys, n, maxKeys)
	}
	if got, want := l.Evictions(), uint64(keys-n); got != want {
		t.Errorf("Evictions() = %d, want %d (no bucket was full, so every drop is an eviction)", got, want)
	}
}

func TestLocalSweepsIdleBuckets(t *testing.T) {
	tests := []struct {
		name          string
		maxKeys       int
		rate          Rate
		old, new      int
		idle          time.Duration // between the old keys and the new
		wantMax       int           // most buckets held at the end
		wantEvictions uint64
	}{
		{
			name: "refilled buckets make room", maxKeys: 20,
			rate: Rate{Limit: 1, Per: time.Second, Burst: 1}, old: 12, new: 12, idle: time.Second,
			wantMax: 19,
		},
		{
			name: "refilled buckets make room at the limit", maxKeys: 4,
			rate: Rate{Limit: 1, Per: time.Second, Burst: 1}, old: 4, new: 4, idle: time.Second,
			wantMax: 4,
		},
		{
			name: "many refilled buckets go", maxKeys: 100,
			rate: Rate{Limit: 1, Per: time.Second, Burst: 1}, old: 90, new: 60, idle: time.Second,
			wantMax: 75,
		},
		{
			name: "buckets still refilling are evicted", maxKeys: 20,
			rate: Rate{Limit: 1, Per: time.Hour, Burst: 1}, old: 12, new: 12, idle: time.Minute,
			wantMax: 20, wantEvictions: 4,
		},
		{
			name: "buckets still refilling are evicted at the limit", maxKeys: 4,
			rate: Rate{Limit: 1, Per: time.Hour, Burst: 1}, old: 4, new: 4, idle: time.Minute,
			wantMax: 4, wantEvictions: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newLocalClock()
			l := NewLocal(tt.maxKeys, clock.now)
			b := Bucket{Layer: LayerPerIP, Rate: tt.rate}
			for i := range tt.old {
				b.Key = "old-" + strconv.Itoa(i)
				localTake(t, l, b)
			}
			clock.advance(tt.idle)
			for i := range tt.new {
				b.Key = "new-" + strconv.Itoa(i)
				localTake(t, l, b)
			}
			if got := l.buckets.len(); got > tt.wantMax {
				t.Errorf("buckets = %d, want ≤ %d", got, tt.wantMax)
			}
			if got := l.Evictions(); got != tt.wantEvictions {
				t.Errorf("Evictions() = %d, want %d", got, tt.wantEvictions)
			}
			for i := range tt.new {
				if key := "new-" + strconv.Itoa(i); !localHas(l, LayerPerIP, key) {
					t.Errorf("lost %q, a bucket taken from last", key)
				}
			}
		})
	}
}

func TestLocalKeepsKeysBelowHalf(t *testing.T) {
	// A bucket that refills between requests is kept while there is room,
	// not dropped and added again.
	clock := newLocalClock()
	l := NewLocal(100, clock.now)
	b := Bucket{Layer: LayerPerIP, Rate: Rate{Limit: 1, Per: time.Second, Burst: 1}}
	for i := range 49 {
		b.Key = "k-" + strconv.Itoa(i)
		localTake(t, l, b)
		clock.advance(time.Second)
	}
	if got := l.buckets.len(); got != 49 {
		t.Errorf("buckets = %d, want 49 (all kept below half of max keys)", got)
	}
}

func TestLocalCount(t *testing.T) {
	ctx := context.Background()
	clock := newLocalClock()
	l := NewLocal(100, clock.now)
	t0 := clock.now()
	steps := []struct {
		advance time.Duration
		key     string
		until   time.Time
		want    int64
	}{
		{key: "fail:ip:a", until: t0.Add(time.Minute), want: 1},
		{key: "fail:ip:a", until: t0.Add(time.Minute), want: 2},
		{key: "fail:ip:b", until: t0.Add(time.Minute), want: 1},
		{key: "fail:ip:a", until: t0.Add(time.Minute), want: 3},
		// A running counter keeps the expiry it started with.
		{advance: 30 * time.Second, key: "fail:ip:a", until: t0.Add(time.Hour), want: 4},
		{advance: 30*time.Second - time.Nanosecond, key: "fail:ip:a", until: t0.Add(time.Hour), want: 5},
		// Expired at until: it starts over, with the new expiry.
		{advance: time.Nanosecond, key: "fail:ip:a", until: t0.Add(2 * time.Minute), want: 1},
		{key: "fail:ip:b", until: t0.Add(2 * time.Minute), want: 1},
		{advance: 59 * time.Second, key: "fail:ip:a", until: t0.Add(time.Hour), want: 2},
		{advance: time.Second, key: "fail:ip:a", until: t0.Add(time.Hour), want: 1},
		// Calendar quota: one key per day, expiring at midnight.
		{key: "quota:gold:c1:20260301", until: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), want: 1},
		{advance: 6 * time.Hour, key: "quota:gold:c1:20260301", until: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), want: 2},
	}
	for i, st := range steps {
		clock.advance(st.advance)
		got, err := l.Count(ctx, st.key, st.until)
		if err != nil || got != st.want {
			t.Errorf("step %d: Count(%q) = %d, %v, want %d, nil", i, st.key, got, err, st.want)
		}
	}
}

func TestLocalCountBounded(t *testing.T) {
	tests := []struct {
		name          string
		ttl           time.Duration // of the first keys
		wantEvictions uint64
	}{
		{name: "expired counters make room", ttl: time.Second, wantEvictions: 0},
		{name: "running counters are evicted", ttl: time.Hour, wantEvictions: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newLocalClock()
			l := NewLocal(4, clock.now)
			for i := range 4 {
				if _, err := l.Count(ctx, "old-"+strconv.Itoa(i), clock.now().Add(tt.ttl)); err != nil {
					t.Fatalf("Count error: %v", err)
				}
			}
			clock.advance(time.Second)
			for i := range 4 {
				if n, err := l.Count(ctx, "new-"+strconv.Itoa(i), clock.now().Add(time.Hour)); err != nil || n != 1 {
					t.Fatalf("Count(new-%d) = %d, %v, want 1, nil", i, n, err)
				}
			}
			if got := l.counts.len(); got != 4 {
				t.Errorf("counters = %d, want 4", got)
			}
			if got := l.Evictions(); got != tt.wantEvictions {
				t.Errorf("Evictions() = %d, want %d", got, tt.wantEvictions)
			}
		})
	}
}

func TestLocalLock(t *testing.T) {
	ctx := context.Background()
	clock := newLocalClock()
	l := NewLocal(100, clock.now)
	const key = "lock:ip:192.0.2.1"
	check := func(step string, wantLeft time.Duration, wantLocked bool) {
		t.Helper()
		left, locked, err := l.Locked(ctx, key)
		if err != nil || left != wantLeft || locked != wantLocked {
			t.Errorf("%s: Locked = %v, %v, %v, want %v, %v, nil", step, left, locked, err, wantLeft, wantLocked)
		}
	}
	lock := func(d time.Duration) {
		t.Helper()
		if err := l.Lock(ctx, key, d); err != nil {
			t.Fatalf("Lock(%v) error: %v", d, err)
		}
	}
	check("never locked", 0, false)
	lock(10 * time.Second)
	check("just locked", 10*time.Second, true)
	if _, locked, _ := l.Locked(ctx, "lock:ip:192.0.2.2"); locked {
		t.Error("another key is locked, want only the locked key")
	}
	clock.advance(4 * time.Second)
	check("after 4s", 6*time.Second, true)
	clock.advance(6*time.Second - time.Nanosecond)
	check("1ns before the end", time.Nanosecond, true)
	clock.advance(time.Nanosecond)
	check("at the end", 0, false)
	if n := l.locks.len(); n != 0 {
		t.Errorf("after the lock expired: %d locks held, want 0", n)
	}
	lock(time.Minute)
	lock(time.Second)
	check("a new lock replaces the old", time.Second, true)
	lock(0)
	check("a zero lock unlocks", 0, false)
	if n := l.locks.len(); n != 0 {
		t.Errorf("after unlocking: %d locks held, want 0", n)
	}
}

func TestLocalLocksBounded(t *testing.T) {
	ctx := context.Background()
	clock := newLocalClock()
	l := NewLocal(4, clock.now)
	for i := range 6 {
		if err := l.Lock(ctx, "lock:ip:"+strconv.Itoa(i), time.Hour); err != nil {
			t.Fatalf("Lock error: %v", err)
		}
	}
	if got := l.locks.len(); got != 4 {
		t.Errorf("locks = %d, want 4", got)
	}
	if got := l.Evictions(); got != 2 {
		t.Errorf("Evictions() = %d, want 2", got)
	}
	for i, want := range []bool{false, false, true, true, true, true} {
		if _, got, _ := l.Locked(ctx, "lock:ip:"+strconv.Itoa(i)); got != want {
			t.Errorf("Locked(lock:ip:%d) = %v, want %v (the oldest locks evicted)", i, got, want)
		}
	}
}

func TestLocalConcurrentOneKey(t *testing.T) {
	tests := []struct {
		name string
		now  func() time.Time
	}{
		{name: "fixed clock", now: newLocalClock().now},
		// A real clock refills 1/day: far less than a token in the test.
		{name: "real clock", now: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const goroutines, perGoroutine, burst = 32, 100, 1000
			l := NewLocal(100, tt.now)
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					b := []Bucket{{Layer: LayerGlobal, Rate: Rate{Limit: 1, Per: 24 * time.Hour, Burst: burst}}}
					out := make([]Decision, 1)
					for range perGoroutine {
						if err := l.Take(context.Background(), b, out); err != nil {
							t.Errorf("Take error: %v", err)
							return
						}
						if out[0].Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := allowed.Load(); got != burst {
				t.Errorf("%d takes from %d goroutines: %d allowed, want the burst %d", goroutines*perGoroutine, goroutines, got, burst)
			}
		})
	}
}

func TestLocalConcurrentChurn(t *testing.T) {
	const maxKeys, keys, goroutines, ops = 300, 2000, 8, 3000
	clock := newLocalClock()
	l := NewLocal(maxKeys, clock.now)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			bs := []Bucket{
				{Layer: LayerPerIP, Rate: Rate{Limit: 5, Per: time.Second, Burst: 3}},
				{Layer: LayerGlobal, Rate: Rate{Limit: 1000, Per: time.Second, Burst: 100}},
			}
			out := make([]Decision, len(bs))
			for i := range ops {
				k := strconv.Itoa((i*7919 + g*104729) % keys)
				bs[0].Key = k
				if err := l.Take(ctx, bs, out); err != nil {
					t.Errorf("Take error: %v", err)
					return
				}
				if _, err := l.Count(ctx, "fail:"+k, clock.now().Add(time.Second)); err != nil {
					t.Errorf("Count error: %v", err)
					return
				}
				if i%3 == 0 {
					_ = l.Lock(ctx, "lock:"+k, time.Second)
				}
				if _, _, err := l.Locked(ctx, "lock:"+k); err != nil {
					t.Errorf("Locked error: %v", err)
					return
				}
				clock.advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
	for name, n := range map[string]int{"buckets": l.buckets.len(), "counters": l.counts.len(), "locks": l.locks.len()} {
		if n > maxKeys {
			t.Errorf("%s = %d, want ≤ %d", name, n, maxKeys)
		}
	}
}

func TestLocalMemoryFlat(t *testing.T) {
	const maxKeys, keys, maxGrowth = 10_000, 1_000_000, 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	l := NewLocal(maxKeys, newLocalClock().now)
	// Buckets that never refill: every key past the limit evicts one,
	// the most work and the most state the store can be made to hold.
	// One writer per core, each its own keys.
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			bs := []Bucket{{Layer: LayerPerIP, Rate: Rate{Limit: 1, Per: time.Hour, Burst: 2}}}
			out := make([]Decision, 1)
			buf := make([]byte, 0, 32)
			for i := w; i < keys; i += workers {
				buf = strconv.AppendInt(append(buf[:0], "2001:db8::"...), int64(i), 16)
				bs[0].Key = string(buf)
				if err := l.Take(context.Background(), bs, out); err != nil || !out[0].Allowed {
					t.Errorf("key %d: Take = %+v, %v, want allowed (a new key)", i, out[0], err)
					return
				}
				if i%100_000 == 0 {
					if n := l.buckets.len(); n > maxKeys {
						t.Errorf("after about %d keys: %d buckets, want ≤ %d", i+1, n, maxKeys)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	n := l.buckets.len()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(l)

	if n > maxKeys {
		t.Errorf("after %d keys: %d buckets, want ≤ %d", keys, n, maxKeys)
	}
	if got, want := l.Evictions(), uint64(keys-n); got != want {
		t.Errorf("Evictions() = %d, want %d", got, want)
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d keys, %d buckets held, heap growth %.1f MiB", keys, n, float64(growth)/(1<<20))
	if growth > maxGrowth {
		t.Errorf("heap grew %d bytes over %d keys, want < %d", growth, keys, maxGrowth)
	}
}

func TestLocalReadyCloseNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := NewLocal(10, nil)
	localTake(t, l, Bucket{Layer: LayerGlobal, Rate: Rate{Limit: 1, Per: time.Second, Burst: 1}})
	if got := l.Ready(); got != "" {
		t.Errorf("Ready() = %q, want \"\"", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}
