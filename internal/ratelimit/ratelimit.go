// Package ratelimit limits requests in layers (DESIGN.md request flow):
// global and per-IP limits before routing, so floods are shed before any
// signature check; plan limits, quotas and route limits after
// authentication; and the auth-failure lockout that the authentication
// stage consults. Limits are token buckets (GCRA in Redis, x/time/rate
// locally), counted in a Store: this instance's memory, or Redis for
// limits that hold exactly across instances.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Rate is a token bucket: Limit tokens per Per, holding at most Burst.
type Rate struct {
	Limit int
	Per   time.Duration
	Burst int
}

// Bucket names one token bucket of one layer. Layer namespaces the keys
// (global, ip, plan, route:<name>, lockout, ...); Key is the value counted
// by (an IP, a consumer id, a header value; "" for the global layer).
type Bucket struct {
	Layer string
	Key   string
	Rate  Rate
}

// Decision is a store's answer for one bucket.
type Decision struct {
	// Allowed reports whether a token was taken.
	Allowed bool
	// Remaining is the number of tokens left after this request.
	Remaining int
	// RetryAfter is how long until a token is available again (0 when
	// allowed); Reset how long until the bucket is full again.
	RetryAfter time.Duration
	Reset      time.Duration
}

// Store counts tokens. Implementations are safe for concurrent use.
type Store interface {
	// Take takes one token from each of buckets, independently (a bucket
	// without a token gives none and is not charged), and writes one
	// decision per bucket into out (len(out) == len(buckets)). A store
	// with a remote backend makes one round trip for all of them.
	Take(ctx context.Context, buckets []Bucket, out []Decision) error
	// Count adds one to the counter key (created at 0) that expires at
	// until, and returns its new value: quotas per calendar period and
	// failures per window.
	Count(ctx context.Context, key string, until time.Time) (int64, error)
	// Lock marks key locked for d; Locked reports whether it is and for
	// how much longer.
	Lock(ctx context.Context, key string, d time.Duration) error
	Locked(ctx context.Context, key string) (time.Duration, bool, error)
	// Ready returns "" when the store can decide, else why not.
	Ready() string
	// Close releases the store's connections and background work.
	Close() error
}

// ErrUnavailable is returned (wrapped) by a remote store that cannot be
// reached or whose circuit breaker is open.
var ErrUnavailable = errors.New("rate-limit store unavailable")

// Batch is everything one stage asks its store about one request: a lock
// to read, buckets to take a token from, and a counter to count. A
// Batcher answers it in one call, which is one round trip to Redis.
type Batch struct {
	// Lock is the key of a lock to read ("" for none). With Guard, a
	// held lock ends the batch: no bucket is taken, nothing counted.
	Lock  string
	Guard bool
	// Buckets are taken from independently, as by Store.Take.
	Buckets []Bucket
	// Count is the key of a counter that expires at Until ("" for none),
	// counted as by Store.Count, but only when every bucket allowed.
	Count string
	Until time.Time

	// Locked and LockLeft answer Lock, as Store.Locked does.
	Locked   bool
	LockLeft time.Duration
	// Decisions answer Buckets, one each; the caller gives them the
	// length of Buckets. They are not set when a guarding lock is held.
	Decisions []Decision
	// Counted reports whether Count was counted, and N is its new value.
	Counted bool
	N       int64
}

// Batcher is a Store that answers a whole Batch in one call. Stages ask a
// Batcher instead of making one call per question; a Store that is not
// one (a test double) is asked the old way, one call per question.
type Batcher interface {
	// Batch answers b, safely for concurrent use. Its questions are
	// answered in this order, as if asked one by one with nothing in
	// between: the lock, the buckets, the counter (on a Redis Cluster,
	// the same holds once Batch has undone what a refused request must
	// not have done: see redis_batch.go). On an error nothing in b is
	// valid, and whatever the store may have done before failing is what
	// a failed Take or Count may have done.
	Batch(ctx context.Context, b *Batch) error
}

// batchInSteps answers b with one call to s per question: the behaviour
// that every Batcher has to match.
func batchInSteps(ctx context.Context, s Store, b *Batch) error {
	if len(b.Decisions) != len(b.Buckets) {
		return fmt.Errorf("ratelimit: batch: %d decisions for %d buckets", len(b.Decisions), len(b.Buckets))
	}
	b.Locked, b.LockLeft, b.Counted, b.N = false, 0, false, 0
	if b.Lock != "" {
		left, locked, err := s.Locked(ctx, b.Lock)
		if err != nil {
			return err
		}
		b.Locked, b.LockLeft = locked, left
		if locked && b.Guard {
			return nil
		}
	}
	if len(b.Buckets) > 0 {
		if err := s.Take(ctx, b.Buckets, b.Decisions); err != nil {
			return err
		}
	}
	if b.Count == "" || !allAllowed(b.Decisions) {
		return nil
	}
	n, err := s.Count(ctx, b.Count, b.Until)
	if err != nil {
		return err
	}
	b.Counted, b.N = true, n
	return nil
}

func allAllowed(ds []Decision) bool {
	for _, d := range ds {
		if !d.Allowed {
			return false
		}
	}
	return true
}

// runBatch answers b from s: in one call when s is a Batcher, else in
// one call per question.
func runBatch(ctx context.Context, s Store, b *Batch) error {
	if bs, ok := s.(Batcher); ok {
		return bs.Batch(ctx, b)
	}
	return batchInSteps(ctx, s, b)
}
