package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// discardWriter is a reusable ResponseWriter that keeps only its header.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// typicalRequest is a GET as an API client sends it: ten header fields,
// among them an X-Forwarded-For and a Connection the edge strips.
type typicalRequest struct {
	r          *http.Request
	xff, conn  []string
	pathBefore string
}

func newTypicalRequest(tb testing.TB) *typicalRequest {
	tb.Helper()
	r := httptest.NewRequest(http.MethodGet, "/v1/orders/12345/items?expand=lines", nil)
	r.RemoteAddr = "198.51.100.23:51234"
	h := r.Header
	h["User-Agent"] = []string{"acme-client/2.3 (linux; amd64)"}
	h["Accept"] = []string{"application/json"}
	h["Accept-Encoding"] = []string{"gzip, br"}
	h["Accept-Language"] = []string{"en-GB,en;q=0.9"}
	h["Authorization"] = []string{"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"}
	h["Cookie"] = []string{"session=abc123"}
	h["Cache-Control"] = []string{"no-cache"}
	h["Referer"] = []string{"https://app.example.com/orders"}
	t := &typicalRequest{r: r, xff: []string{"203.0.113.9"}, conn: []string{"keep-alive"}, pathBefore: r.URL.Path}
	t.reset()
	return t
}

// reset puts back what the edge strips or rewrites, without allocating.
func (t *typicalRequest) reset() {
	t.r.Header["X-Forwarded-For"] = t.xff
	t.r.Header["Connection"] = t.conn
	t.r.URL.Path = t.pathBefore
}

// BenchmarkEdge is the whole middleware, with the record attached as the
// gateway's outer handler does.
func BenchmarkEdge(b *testing.B) {
	cfg := testServerConfig()
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	e := newEdge(b, cfg)
	req := newTypicalRequest(b)
	rec := &exchange.Record{Start: time.Now()}
	req.r = req.r.WithContext(exchange.With(context.Background(), rec))
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		req.reset()
		e.ServeHTTP(w, req.r)
	}
}

// BenchmarkCanonicalizeAndClean is the per-request cost the issue budgets:
// path canonicalisation plus header hygiene.
func BenchmarkCanonicalizeAndClean(b *testing.B) {
	e := newEdge(b, testServerConfig())
	req := newTypicalRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		req.reset()
		if err := canonicalizeURL(req.r); err != nil {
			b.Fatal(err)
		}
		if _, ok := e.cleanHeaders(req.r); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkCanonicalPath(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{name: "clean", path: "/v1/orders/12345/items"},
		{name: "escaped", path: "/v1/orders/caf%C3%A9/items"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CanonicalPath(bc.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	xff := []string{"203.0.113.9, 10.1.1.1"}
	b.ReportAllocs()
	for b.Loop() {
		ClientIP("10.0.0.1:4711", xff, trusted)
	}
}
