//go:build !race

// Allocation budgets do not hold under the race detector, which changes
// what escapes; this file is left out of -race builds.

package authn

import (
	"context"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// jwtBenchAuth returns a JWKS-backed authenticator holding keys, with the
// verified-token cache of cacheSize entries (0: every check verifies).
func jwtBenchAuth(b testing.TB, cacheSize int, keys ...*jwtTestKey) *jwtAuth {
	b.Helper()
	srv := newJWKSTestServer(b, keys...)
	a := newJWTForTest(b, jwtTestConfig(func(c *config.Authenticator) {
		c.JWKSURL = srv.jwksURL()
		c.CacheSize = cacheSize
	}), Deps{})
	jwtWaitReady(b, a)
	return a
}

// BenchmarkJWTVerify measures a cold verification (no cache): parse,
// key lookup, signature, claims and principal.
func BenchmarkJWTVerify(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			key := newJWTTestKey(b, "bench-"+alg, alg, 0)
			a := jwtBenchAuth(b, 0, key)
			in := &Input{Token: key.sign(b, jwtTestClaims(nil), nil)}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJWTCacheHit measures a token found in the verified-token cache.
func BenchmarkJWTCacheHit(b *testing.B) {
	key := newJWTTestKey(b, "bench", "ES256", 0)
	a := jwtBenchAuth(b, 100, key)
	in := &Input{Token: key.sign(b, jwtTestClaims(nil), nil)}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJWTCacheHitAllocs holds a cache hit to its allocation budget.
func TestJWTCacheHitAllocs(t *testing.T) {
	key := newJWTTestKey(t, "allocs", "ES256", 0)
	a := jwtBenchAuth(t, 100, key)
	in := &Input{Token: key.sign(t, jwtTestClaims(nil), nil)}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, in); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.Authenticate(ctx, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("cache hit allocations = %v, want at most 2", allocs)
	}
}
