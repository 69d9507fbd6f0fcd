package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// discardWriter is a reusable ResponseWriter for benchmarks.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	body := []byte(`{"id":"ord_0001","status":"shipped","customer":"acme","items":3,"total":"42.50","currency":"EUR"}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(up.Close)
	return up
}

// benchGateway builds the whole public handler (observer, edge, router,
// route chain, proxy) for a pass-through route to upstream.
func benchGateway(b *testing.B, upstream, upstreamOptions string) http.Handler {
	b.Helper()
	return benchGatewayConfig(b, `
upstreams:
  up: { url: "`+upstream+`"`+upstreamOptions+` }
routes:
  - { name: bench, method: GET, path: /bench, upstream: up, auth: none }
`)
}

// benchSecret signs the JWT of the bulwark-jwt case (HS256: the cached
// path is the same whatever the algorithm).
const benchSecret = "bench-secret-0123456789abcdef0123456789"

// benchJWTConfig routes GET /bench through a jwt authenticator.
func benchJWTConfig(upstream string) string {
	return `
upstreams:
  up: { url: "` + upstream + `" }
authenticators:
  bench: { type: jwt, issuer: https://bench.test, audiences: [bench], algorithms: [HS256], secret: "` + benchSecret + `" }
routes:
  - { name: bench, method: GET, path: /bench, upstream: up, auth: [bench] }
`
}

func benchToken(b *testing.B) string {
	b.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "https://bench.test", "aud": "bench", "sub": "bench-user", "scope": "orders:read",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(benchSecret))
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// benchGatewayConfig builds the whole public handler from a config.
func benchGatewayConfig(b *testing.B, yaml string) http.Handler {
	b.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	m := metrics.New(metrics.BuildInfo{})
	h, err := Build(cfg, Deps{Log: zap.NewNop(), Metrics: m, Problems: problem.New(zap.NewNop(), m.Denials)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	var active atomic.Pointer[Handler]
	active.Store(h)
	return newObserver(&active, m, nil)
}

// bareProxy is the baseline: httputil.ReverseProxy tuned as production Go
// proxies are (buffer pool, 256 idle connections per host).
func bareProxy(b *testing.B, upstream string) http.Handler {
	b.Helper()
	target, _ := url.Parse(upstream)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	b.Cleanup(tr.CloseIdleConnections)
	pool := sync.Pool{New: func() any { return make([]byte, 32<<10) }}
	return &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport:  tr,
		BufferPool: bufPool{&pool},
	}
}

type bufPool struct{ p *sync.Pool }

func (b bufPool) Get() []byte  { return b.p.Get().([]byte) }
func (b bufPool) Put(x []byte) { b.p.Put(x) } //nolint:staticcheck // a slice header per Put is fine in a baseline

// BenchmarkChain compares the whole pass-through chain with the bare proxy
// in the same run, each served by a real http.Server and driven over
// loopback by a keep-alive client, as in production (server-side request
// contexts, deadlines, connection reuse). The difference is what the
// gateway adds per request; the load harness (test/load) measures the same
// under concurrent load.
func BenchmarkChain(b *testing.B) {
	up := benchUpstream(b)
	token := "Bearer " + benchToken(b)
	for _, tc := range []struct {
		name string
		h    http.Handler
		auth string
	}{
		{"bare", bareProxy(b, up.URL), ""},
		{"bulwark", benchGateway(b, up.URL, ""), ""},
		{"bulwark-no-overall-timeout", benchGateway(b, up.URL, ", timeout: 0s"), ""},
		// The same token on every request: the verified-token cache path.
		{"bare-with-token", bareProxy(b, up.URL), token},
		{"bulwark-jwt", benchGatewayConfig(b, benchJWTConfig(up.URL)), token},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			client := srv.Client()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/bench", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
