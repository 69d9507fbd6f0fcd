package authn

import (
	"sync"
	"time"
)

// cache is a bounded map from a token hash to a verified result with an
// expiry. When full, an insert evicts an arbitrary entry: random eviction
// keeps inserts O(1), and a flood of distinct tokens (which fail
// verification and are never inserted anyway) cannot grow it. A lookup
// takes a read lock and allocates nothing.
type cache[V any] struct {
	mu      sync.RWMutex
	entries map[[32]byte]cacheEntry[V]
	max     int
	now     func() time.Time
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

// newCache returns a cache of at most size entries; nil when size is 0 (a
// nil cache misses every lookup and stores nothing).
func newCache[V any](size int) *cache[V] {
	if size <= 0 {
		return nil
	}
	return &cache[V]{entries: make(map[[32]byte]cacheEntry[V], min(size, 1024)), max: size, now: time.Now}
}

// get returns the value under key unless it expired.
func (c *cache[V]) get(key [32]byte) (V, bool) {
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

// put stores v under key until expires.
func (c *cache[V]) put(key [32]byte, v V, expires time.Time) {
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
	c.entries[key] = cacheEntry[V]{v: v, expires: expires}
}

// len returns the number of entries, expired ones included.
func (c *cache[V]) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
