package cache

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

func TestCacheExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[int](10, func() time.Time { return now })
	k := sha256.Sum256([]byte("a"))
	c.Put(k, 1, now.Add(time.Minute))
	if v, ok := c.Get(k); !ok || v != 1 {
		t.Fatalf("get = %v, %v; want 1, true", v, ok)
	}
	now = now.Add(time.Minute)
	if _, ok := c.Get(k); ok {
		t.Fatal("an entry is returned at its expiry")
	}
	c.Put(sha256.Sum256([]byte("b")), 2, now.Add(-time.Second))
	if c.Len() != 1 {
		t.Fatalf("an already expired value was stored: len = %d", c.Len())
	}
}

func TestCacheBounded(t *testing.T) {
	c := New[int](100, nil)
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		c.Put(sha256.Sum256(fmt.Appendf(nil, "k%d", i)), i, exp)
	}
	if n := c.Len(); n > 100 {
		t.Fatalf("len = %d, want at most 100", n)
	}
	last := sha256.Sum256([]byte("k999"))
	if v, ok := c.Get(last); !ok || v != 999 {
		t.Fatal("the newest entry was evicted")
	}
}

func TestCacheNil(t *testing.T) {
	c := New[int](0, nil)
	if c != nil {
		t.Fatal("size 0 must disable the cache")
	}
	k := sha256.Sum256([]byte("a"))
	c.Put(k, 1, time.Now().Add(time.Hour))
	if _, ok := c.Get(k); ok || c.Len() != 0 {
		t.Fatal("a nil cache stored something")
	}
}

func BenchmarkCacheHit(b *testing.B) {
	c := New[int](1000, nil)
	k := sha256.Sum256([]byte("a"))
	c.Put(k, 1, time.Now().Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(k); !ok {
			b.Fatal("miss")
		}
	}
}
