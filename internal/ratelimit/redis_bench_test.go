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
	for range 100 { // connect, load the script
		if err := r.Take(b.Context(), buckets, out); err != nil {
			b.Fatalf("Take: %v", err)
		}
	}
	durations := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		err := r.Take(b.Context(), buckets, out)
		durations = append(durations, time.Since(start))
		if err != nil || !out[0].Allowed {
			b.Fatalf("Take = %+v, %v, want allowed", out, err)
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
