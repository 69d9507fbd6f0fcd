package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Failover is the Store of store: redis with its failure_mode. Calls go
// to the primary (Redis). When it is unavailable (ErrUnavailable, a
// timeout), failure_mode: open answers from the fallback (this
// instance's memory) with every limit divided by the number of
// instances, so that the cluster as a whole stays near the configured
// limit while Redis is down; failure_mode: closed returns the error (the
// stage answers 503). As soon as the primary answers again, its answers
// are used again.
type Failover struct {
	primary   Store
	fallback  Store
	instances int
	closed    bool

	degraded          atomic.Bool
	fallbackDecisions atomic.Uint64
}

var (
	_ Store   = (*Failover)(nil)
	_ Batcher = (*Failover)(nil)
)

// NewFailover wraps primary. instances is fallback_instances (below 1
// counts as 1); closed is failure_mode: closed. The Failover owns both
// stores: Close closes them.
func NewFailover(primary, fallback Store, instances int, closed bool) *Failover {
	return &Failover{primary: primary, fallback: fallback, instances: max(instances, 1), closed: closed}
}

// useFallback reports whether err from the primary is answered from the
// fallback, and records the degradation.
func (f *Failover) useFallback(err error) bool {
	if f.closed || !(errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
		return false
	}
	f.degraded.Store(true)
	return true
}

func (f *Failover) recovered() {
	if f.degraded.Load() {
		f.degraded.Store(false)
	}
}

// Take takes from the primary, or from the fallback at the per-instance
// share of every bucket (Limit and Burst divided by instances, at least
// 1; Per unchanged).
func (f *Failover) Take(ctx context.Context, buckets []Bucket, out []Decision) error {
	err := f.primary.Take(ctx, buckets, out)
	if err == nil {
		f.recovered()
		return nil
	}
	if !f.useFallback(err) {
		return err
	}
	shares := make([]Bucket, len(buckets))
	for i, b := range buckets {
		b.Rate.Limit = f.share(b.Rate.Limit)
		b.Rate.Burst = f.share(b.Rate.Burst)
		shares[i] = b
	}
	if err := f.fallback.Take(ctx, shares, out); err != nil {
		return fmt.Errorf("fallback take: %w", err)
	}
	f.fallbackDecisions.Add(uint64(len(buckets)))
	return nil
}

// Batch asks the primary, in one call when it is a Batcher; when it is
// unavailable, the fallback answers the whole batch, every bucket at its
// per-instance share, as Take does.
func (f *Failover) Batch(ctx context.Context, b *Batch) error {
	err := runBatch(ctx, f.primary, b)
	if err == nil {
		f.recovered()
		return nil
	}
	if !f.useFallback(err) {
		return err
	}
	buckets := b.Buckets
	shares := make([]Bucket, len(buckets))
	for i, bk := range buckets {
		bk.Rate.Limit = f.share(bk.Rate.Limit)
		bk.Rate.Burst = f.share(bk.Rate.Burst)
		shares[i] = bk
	}
	b.Buckets = shares
	err = runBatch(ctx, f.fallback, b)
	b.Buckets = buckets
	if err != nil {
		return fmt.Errorf("fallback batch: %w", err)
	}
	if !b.Locked || !b.Guard {
		f.fallbackDecisions.Add(uint64(len(buckets)))
	}
	return nil
}

// share is this instance's part of n; 0 (a burst left to its default)
// stays 0.
func (f *Failover) share(n int) int {
	if n <= 0 {
		return n
	}
	return max(n/f.instances, 1)
}

// Count counts in the primary, or in the fallback (this instance's count
// only: quotas and failure windows are per instance while degraded).
func (f *Failover) Count(ctx context.Context, key string, until time.Time) (int64, error) {
	n, err := f.primary.Count(ctx, key, until)
	if err == nil {
		f.recovered()
		return n, nil
	}
	if !f.useFallback(err) {
		return 0, err
	}
	return f.fallback.Count(ctx, key, until)
}

// Lock locks in the primary, or in the fallback.
func (f *Failover) Lock(ctx context.Context, key string, d time.Duration) error {
	err := f.primary.Lock(ctx, key, d)
	if err == nil {
		f.recovered()
		return nil
	}
	if !f.useFallback(err) {
		return err
	}
	return f.fallback.Lock(ctx, key, d)
}

// Locked asks the primary, or the fallback.
func (f *Failover) Locked(ctx context.Context, key string) (time.Duration, bool, error) {
	d, locked, err := f.primary.Locked(ctx, key)
	if err == nil {
		f.recovered()
		return d, locked, nil
	}
	if !f.useFallback(err) {
		return 0, false, err
	}
	return f.fallback.Locked(ctx, key)
}

// Ready returns "" when the store can decide: under failure_mode: open
// it always can (the fallback answers), under closed only while the
// primary can.
func (f *Failover) Ready() string {
	if f.closed {
		return f.primary.Ready()
	}
	return f.fallback.Ready()
}

// Status is Ready's reason, or, under failure_mode: open, "degraded: ..."
// while the fallback answers for the primary: the body of /readyz.
func (f *Failover) Status() string {
	if f.closed {
		return f.primary.Ready()
	}
	if r := f.fallback.Ready(); r != "" {
		return r
	}
	if f.degraded.Load() || f.primary.Ready() != "" {
		return fmt.Sprintf("degraded: rate-limit store unavailable, limits counted per instance (1/%d of each)", f.instances)
	}
	return ""
}

// Degraded reports whether the last call was answered by the fallback.
func (f *Failover) Degraded() bool { return f.degraded.Load() }

// FallbackDecisions returns how many bucket decisions the fallback made.
func (f *Failover) FallbackDecisions() uint64 { return f.fallbackDecisions.Load() }

// Close closes both stores.
func (f *Failover) Close() error {
	return errors.Join(f.primary.Close(), f.fallback.Close())
}
