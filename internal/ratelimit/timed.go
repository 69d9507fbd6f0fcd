package ratelimit

import (
	"context"
	"time"
)

// Timed wraps s so that every Take and every Batch is observed (the store
// latency histogram): one sample per stage decision.
func Timed(s Store, observe func(time.Duration)) Store {
	return &timed{Store: s, observe: observe}
}

type timed struct {
	Store
	observe func(time.Duration)
}

func (t *timed) Take(ctx context.Context, buckets []Bucket, out []Decision) error {
	start := time.Now()
	err := t.Store.Take(ctx, buckets, out)
	t.observe(time.Since(start))
	return err
}

// Batch answers b from the wrapped store, in one call when it is a
// Batcher.
func (t *timed) Batch(ctx context.Context, b *Batch) error {
	start := time.Now()
	err := runBatch(ctx, t.Store, b)
	t.observe(time.Since(start))
	return err
}
