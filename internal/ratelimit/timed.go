package ratelimit

import (
	"context"
	"time"
)

// Timed wraps s so that every Take is observed (the store latency
// histogram).
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
