package authn

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

func TestCacheExpiry(t *testing.T) {
	c := newCache[int](10)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	k := sha256.Sum256([]byte("a"))
	c.put(k, 1, now.Add(time.Minute))
	if v, ok := c.get(k); !ok || v != 1 {
		t.Fatalf("get = %v, %v; want 1, true", v, ok)
	}
	now = now.Add(time.Minute)
	if _, ok := c.get(k); ok {
		t.Fatal("an entry is returned at its expiry")
	}
	c.put(sha256.Sum256([]byte("b")), 2, now.Add(-time.Second))
	if c.len() != 1 {
		t.Fatalf("an already expired value was stored: len = %d", c.len())
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache[int](100)
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		c.put(sha256.Sum256(fmt.Appendf(nil, "k%d", i)), i, exp)
	}
	if n := c.len(); n > 100 {
		t.Fatalf("len = %d, want at most 100", n)
	}
	last := sha256.Sum256([]byte("k999"))
	if v, ok := c.get(last); !ok || v != 999 {
		t.Fatal("the newest entry was evicted")
	}
}

func TestCacheNil(t *testing.T) {
	c := newCache[int](0)
	if c != nil {
		t.Fatal("size 0 must disable the cache")
	}
	k := sha256.Sum256([]byte("a"))
	c.put(k, 1, time.Now().Add(time.Hour))
	if _, ok := c.get(k); ok || c.len() != 0 {
		t.Fatal("a nil cache stored something")
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := newCache[int](1000)
	k := sha256.Sum256([]byte("a"))
	c.put(k, 1, time.Now().Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.get(k); !ok {
			b.Fatal("miss")
		}
	}
}
