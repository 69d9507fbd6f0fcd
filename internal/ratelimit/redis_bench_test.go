package ratelimit

import (
	"slices"
	"testing"
	"time"
)

// Take latency against a real redis-server on loopback: one round trip
// per Take whatever the number of buckets. Reports the p50 and p99 of
// single Takes in microseconds (target: p99 under 1ms).
func BenchmarkRedisTake(b *testing.B) {
	benchmarkRedisTake(b, []Bucket{
		{Layer: "ip", Key: "192.0.2.1", Rate: Rate{Limit: 1 << 30, Per: time.Second, Burst: 1 << 30}},
	})
}

func BenchmarkRedisTake3(b *testing.B) {
	rate := Rate{Limit: 1 << 30, Per: time.Second, Burst: 1 << 30}
	benchmarkRedisTake(b, []Bucket{
		{Layer: "global", Rate: rate},
		{Layer: "ip", Key: "192.0.2.1", Rate: rate},
		{Layer: "route:orders", Key: "consumer-42", Rate: rate},
	})
}

func benchmarkRedisTake(b *testing.B, buckets []Bucket) {
	srv := startRedisServer(b, "")
	r := newTestRedis(b, testRedisConfig(srv.URL()))
	out := make([]Decision, len(buckets))
	benchmarkRedis(b, func() error {
		err := r.Take(b.Context(), buckets, out)
		if err == nil && !out[0].Allowed {
			b.Fatalf("Take = %+v, want allowed", out)
		}
		return err
	})
}

// benchmarkRedis measures decide, one decision against Redis, after 100
// to connect and load the scripts, and reports the p50 and p99 of single
// decisions in microseconds.
func benchmarkRedis(b *testing.B, decide func() error) {
	for range 100 {
		if err := decide(); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}
	durations := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		err := decide()
		durations = append(durations, time.Since(start))
		if err != nil {
			b.Fatalf("decision: %v", err)
		}
	}
	b.StopTimer()
	slices.Sort(durations)
	q := func(p float64) float64 {
		return float64(durations[int(p*float64(len(durations)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkRedisBatch is one stage decision as the stage after
// authentication makes it: a credential's lock, three buckets and a
// quota counter, in one round trip (the batch script).
func BenchmarkRedisBatch(b *testing.B) {
	srv := startRedisServer(b, "")
	r := newTestRedis(b, testRedisConfig(srv.URL()))
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
	benchmarkRedis(b, func() error {
		err := r.Batch(b.Context(), batch)
		if err == nil && (!batch.Decisions[0].Allowed || !batch.Counted) {
			b.Fatalf("Batch = %+v, want allowed and counted", batch)
		}
		return err
	})
}
