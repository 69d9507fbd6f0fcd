// Package cache is a bounded map from a SHA-256 digest to a value with an
// expiry: the gateway's verified-token, introspection, DPoP key and policy
// decision caches.
package cache

import (
	"sync"
	"time"
)

// Cache is a bounded map from a digest (of a token, a key, a policy
// input) to a value with an expiry. When full, an insert evicts an arbitrary entry: random eviction
// keeps inserts O(1), and a flood of distinct tokens (which fail
// verification and are never inserted anyway) cannot grow it. A lookup
// takes a read lock and allocates nothing.
type Cache[V any] struct {
	mu      sync.RWMutex
	entries map[[32]byte]entry[V]
	max     int
	now     func() time.Time
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns a cache of at most size entries that reads the time from
// now (nil: time.Now); nil when size is 0 (a nil cache misses every
// lookup and stores nothing).
func New[V any](size int, now func() time.Time) *Cache[V] {
	if size <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[V]{entries: make(map[[32]byte]entry[V], min(size, 1024)), max: size, now: now}
}

// Get returns the value under key unless it expired.
func (c *Cache[V]) Get(key [32]byte) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return zero, false
	}
	return e.v, true
}

// Put stores v under key until expires.
func (c *Cache[V]) Put(key [32]byte, v V, expires time.Time) {
	if c == nil || !c.now().Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		// Look at a few entries (map order is random): drop the expired
		// ones among them, or else the first.
		now, seen := c.now(), 0
		var victim [32]byte
		evicted := false
		for k, e := range c.entries {
			if seen == 0 {
				victim = k
			}
			if !now.Before(e.expires) {
				delete(c.entries, k)
				evicted = true
			}
			if seen++; seen == 8 {
				break
			}
		}
		if !evicted {
			delete(c.entries, victim)
		}
	}
	c.entries[key] = entry[V]{v: v, expires: expires}
}

// Len returns the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
