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
