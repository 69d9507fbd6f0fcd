//go:build !race

// Under the race detector sync.Pool drops items at random, so allocation
// counts are only meaningful without it.

package proxy

import (
	"net/http"
	"testing"
)

// TestProxyAllocs keeps the route handler within a small allocation budget
// over a bare httputil.ReverseProxy doing the same job: the difference is
// the client IP formatted from the exchange record.
func TestProxyAllocs(t *testing.T) {
	const budget = 2 // allocations per request over the bare proxy
	bulwark, bare, req := benchHandlers(t)
	allocs := func(h http.Handler) float64 {
		w := &discardWriter{header: make(http.Header)}
		return testing.AllocsPerRun(200, func() {
			clear(w.header)
			h.ServeHTTP(w, req)
		})
	}
	got, base := allocs(bulwark), allocs(bare)
	if got > base+budget {
		t.Errorf("allocs per request = %.0f, want at most %.0f (bare proxy %.0f + %d)", got, base+budget, base, budget)
	}
}
