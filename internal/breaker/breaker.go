// Package breaker is a consecutive-failure circuit breaker for the
// gateway's calls to services it depends on (the Redis rate-limit store,
// external policy decision points): while such a service is down, requests
// are answered at once instead of each waiting for its timeout.
package breaker

import (
	"sync/atomic"
	"time"
)

// Breaker opens after Threshold failures in a row. While open, calls are
// refused until Cooldown has passed; then one call (the probe) goes
// through: its success closes the breaker, its failure opens it for
// another cooldown. Any success closes it. The zero value is not usable:
// build one with New. Safe for concurrent use; no call takes a lock.
type Breaker struct {
	threshold int64
	cooldown  time.Duration
	failures  atomic.Int64
	openUntil atomic.Int64 // UnixNano; 0 while closed
	probing   atomic.Bool
}

// New returns a closed breaker that opens after threshold (at least 1)
// consecutive failures and stays open for cooldown.
func New(threshold int, cooldown time.Duration) *Breaker {
	return &Breaker{threshold: max(int64(threshold), 1), cooldown: cooldown}
}

// Threshold and Cooldown return the breaker's settings, for log lines.
func (b *Breaker) Threshold() int64        { return b.threshold }
func (b *Breaker) Cooldown() time.Duration { return b.cooldown }

// Open reports whether the breaker is open (or half-open, probing).
func (b *Breaker) Open() bool { return b.openUntil.Load() != 0 }

// Allow reports whether a call may go out at now, and whether it is the
// probe. A call that was allowed must end with exactly one of Success,
// Failure or Release, given the same probe value.
func (b *Breaker) Allow(now time.Time) (probe, ok bool) {
	until := b.openUntil.Load()
	switch {
	case until == 0:
		return false, true
	case now.UnixNano() < until:
		return false, false
	case b.probing.CompareAndSwap(false, true):
		return true, true
	}
	return false, false
}

// Success records a good call and reports whether it closed the breaker.
func (b *Breaker) Success(probe bool) bool {
	b.failures.Store(0)
	closed := b.openUntil.Swap(0) != 0
	if probe {
		b.probing.Store(false)
	}
	return closed
}

// Failure records a failed call at now and reports whether it opened the
// breaker (a failed probe keeps it open, and is not reported).
func (b *Breaker) Failure(probe bool, now time.Time) bool {
	until := now.Add(b.cooldown).UnixNano()
	if probe {
		b.openUntil.Store(until)
		b.probing.Store(false)
		return false
	}
	return b.failures.Add(1) >= b.threshold && b.openUntil.CompareAndSwap(0, until)
}

// Release ends a call that neither succeeded nor failed (its caller gave
// up), so that another call may probe.
func (b *Breaker) Release(probe bool) {
	if probe {
		b.probing.Store(false)
	}
}
