package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLocalTakeExisting is one decision on a bucket that exists: the
// hot path of every request (target: under 200ns, 0 allocations).
func BenchmarkLocalTakeExisting(b *testing.B) {
	l := NewLocal(100_000, nil)
	ctx := context.Background()
	buckets := []Bucket{{Layer: LayerPerIP, Key: "192.0.2.1", Rate: Rate{Limit: 1_000_000_000, Per: time.Second, Burst: 1000}}}
	out := make([]Decision, 1)
	if err := l.Take(ctx, buckets, out); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Take(ctx, buckets, out)
	}
}

// BenchmarkLocalTakeNewKey is one decision on a key never seen: a flood
// of distinct IPs (target: under 1µs). Past 100,000 keys every new key
// also drops an old one.
func BenchmarkLocalTakeNewKey(b *testing.B) {
	keys := make([]string, max(b.N, 1))
	for i := range keys {
		keys[i] = "2001:db8::" + strconv.FormatInt(int64(i), 16)
	}
	l := NewLocal(100_000, nil)
	ctx := context.Background()
	buckets := []Bucket{{Layer: LayerPerIP, Rate: Rate{Limit: 10, Per: time.Second, Burst: 20}}}
	out := make([]Decision, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		buckets[0].Key = keys[i]
		_ = l.Take(ctx, buckets, out)
	}
}

// BenchmarkLocalTakeParallel is decisions from every core over 1000 keys:
// the cost of the shard locks under contention.
func BenchmarkLocalTakeParallel(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "198.51.100." + strconv.Itoa(i)
	}
	l := NewLocal(100_000, nil)
	ctx := context.Background()
	var goroutines atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buckets := []Bucket{{Layer: LayerPerIP, Rate: Rate{Limit: 1_000_000_000, Per: time.Second, Burst: 1000}}}
		out := make([]Decision, 1)
		i := int(goroutines.Add(1)) * 397 // each goroutine its own walk
		for pb.Next() {
			buckets[0].Key = keys[i%len(keys)]
			_ = l.Take(ctx, buckets, out)
			i++
		}
	})
}

// BenchmarkLocalBatchExisting is one stage decision on keys the store
// holds: a lock, three buckets and a counter, as the stages ask a Batcher.
func BenchmarkLocalBatchExisting(b *testing.B) {
	l := NewLocal(1000, nil)
	rate := Rate{Limit: 1 << 30, Per: time.Second, Burst: 1 << 30}
	batch := &Batch{
		Lock: "lock:cred:keys/key/k1", Guard: true,
		Buckets: []Bucket{
			{Layer: "plan", Key: "consumer-42", Rate: rate},
			{Layer: "route:orders", Key: "consumer-42", Rate: rate},
			{Layer: "route:orders:2", Key: "192.0.2.1", Rate: rate},
		},
		Decisions: make([]Decision, 3),
		Count:     "quota:gold-quota:consumer-42:20261123", Until: time.Now().Add(24 * time.Hour),
	}
	ctx := context.Background()
	_ = l.Batch(ctx, batch)
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Batch(ctx, batch)
	}
}
