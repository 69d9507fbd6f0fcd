//go:build !race

package ratelimit

import (
	"context"
	"testing"
	"time"
)

// TestLocalAllocs holds the allocation budget of the hot paths: a
// decision on a key the store holds allocates nothing, allowed or denied.
// (The race detector allocates, hence the build tag.)
func TestLocalAllocs(t *testing.T) {
	ctx := context.Background()
	clock := newLocalClock()
	l := NewLocal(1000, clock.now)
	allowed := []Bucket{{Layer: LayerPerIP, Key: "192.0.2.1", Rate: Rate{Limit: 1, Per: time.Hour, Burst: 1_000_000}}}
	denied := []Bucket{{Layer: LayerPerIP, Key: "192.0.2.2", Rate: Rate{Limit: 1, Per: time.Hour, Burst: 1}}}
	several := []Bucket{allowed[0], denied[0], {Layer: LayerGlobal, Rate: Rate{Limit: 1, Per: time.Hour, Burst: 1_000_000}}}
	out := make([]Decision, 3)
	batch := &Batch{Lock: "lock:ip:192.0.2.1", Buckets: several, Decisions: out, Count: "quota:gold:c1:20260302", Until: clock.now().Add(time.Hour)}
	tests := []struct {
		name string
		run  func()
	}{
		{name: "Take allowed", run: func() { _ = l.Take(ctx, allowed, out[:1]) }},
		{name: "Take denied", run: func() { _ = l.Take(ctx, denied, out[:1]) }},
		{name: "Take three buckets", run: func() { _ = l.Take(ctx, several, out) }},
		{name: "Count", run: func() { _, _ = l.Count(ctx, "quota:gold:c1:20260301", clock.now().Add(time.Hour)) }},
		{name: "Lock", run: func() { _ = l.Lock(ctx, "lock:ip:192.0.2.1", time.Minute) }},
		{name: "Locked", run: func() { _, _, _ = l.Locked(ctx, "lock:ip:192.0.2.1") }},
		{name: "Batch of a lock, three buckets and a counter", run: func() { _ = l.Batch(ctx, batch) }},
	}
	for _, tt := range tests {
		tt.run() // the key exists from here on
		if got := testing.AllocsPerRun(1000, tt.run); got != 0 {
			t.Errorf("%s on an existing key: %v allocations, want 0", tt.name, got)
		}
	}
	if got := out[1]; got.Allowed {
		t.Errorf("the denied bucket: %+v, want denied (the denied path was measured)", got)
	}
	if got := out[0]; !got.Allowed {
		t.Errorf("the allowed bucket: %+v, want allowed (the allowed path was measured)", got)
	}
}
