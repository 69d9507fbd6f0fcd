package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/tracing"
)

// tracedGateway builds the whole public handler from a config, with the
// tracer tr (nil: tracing off, as without a tracing section).
func tracedGateway(tb testing.TB, yaml string, tr *tracing.Tracer) http.Handler {
	tb.Helper()
	cfg, err := config.Parse("trace.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatal(err)
	}
	m := metrics.New(metrics.BuildInfo{})
	h, err := Build(cfg, Deps{Log: zap.NewNop(), Metrics: m, Problems: problem.New(zap.NewNop(), m.Denials), Tracer: tr})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	var active atomic.Pointer[Handler]
	active.Store(h)
	o := newObserver(&active, m, nil)
	o.tracer = tr
	return o
}

// startCollector is an OTLP/HTTP receiver that counts the export requests
// and discards them.
func startCollector(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
	}))
	tb.Cleanup(srv.Close)
	return srv, &n
}

func newBenchTracer(tb testing.TB, endpoint string) *tracing.Tracer {
	tb.Helper()
	tr, err := tracing.New(config.Tracing{OTLP: &config.TracingOTLP{Endpoint: endpoint, Timeout: config.Duration(5 * time.Second)},
		SampleRatio: "none", ServiceName: "bench"}, "bench", zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// BenchmarkTracing measures what tracing adds to a request, tracing off
// (no tracing section: no span wrapper in the chain) against tracing on,
// in the same run, over loopback as BenchmarkChain does. Two routes with a
// JWT authenticator: "filtered" filters the ~2.5 KB user document of the
// load harness (spans edge, authn, filter.request... proxy,
// filter.response), "validated" validates the ~1 KB order it POSTs
// (edge, authn, validate.request, proxy). "unsampled" sends a traceparent
// with flags 00 (the sampler's decision only), "sampled" one with flags
// 01: every stage span is recorded and exported to a real OTLP receiver on
// loopback, the background export included.
func BenchmarkTracing(b *testing.B) {
	order, spec, up := benchDocuments(b)
	yaml := `
specs:
  bench: { file: "` + spec + `" }
upstreams:
  up: { url: "` + up.URL + `" }
authenticators:
  bench: { type: jwt, issuer: https://bench.test, audiences: [bench], algorithms: [HS256], secret: "` + benchSecret + `" }
routes:
  - { name: validated, method: POST, path: /bench, upstream: up, auth: [bench], validate: { spec: bench } }
  - name: filtered
    method: GET
    path: /bench-user
    upstream: up
    auth: [bench]
    response:
      allow: ["$.id", "$.name", "$.email", "$.orders[*].id", "$.orders[*].total"]
      mask: { "$.email": redact }
`
	collector, exports := startCollector(b)
	tr := newBenchTracer(b, collector.URL)
	b.Cleanup(func() { _ = tr.Shutdown(b.Context()) })
	off := httptest.NewServer(tracedGateway(b, yaml, nil))
	b.Cleanup(off.Close)
	on := httptest.NewServer(tracedGateway(b, yaml, tr))
	b.Cleanup(on.Close)
	token := "Bearer " + benchToken(b)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"
	for _, route := range []struct {
		name, method, path string
		body               []byte
	}{
		{"filtered", http.MethodGet, "/bench-user", nil},
		{"validated", http.MethodPost, "/bench", order},
	} {
		for _, mode := range []struct {
			name  string
			srv   *httptest.Server
			flags string // "" sends no traceparent
		}{
			{"off", off, "01"},
			{"unsampled", on, "00"},
			{"sampled", on, "01"},
		} {
			b.Run(route.name+"/"+mode.name, func(b *testing.B) {
				client := mode.srv.Client()
				before := exports.Load()
				b.ReportAllocs()
				for b.Loop() {
					req, _ := http.NewRequest(route.method, mode.srv.URL+route.path, bytes.NewReader(route.body))
					req.Header.Set("Authorization", token)
					req.Header.Set("Traceparent", parent+mode.flags)
					if route.body != nil {
						req.Header.Set("Content-Type", "application/json")
					}
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
				b.StopTimer()
				if err := tr.ForceFlush(b.Context()); err != nil {
					b.Fatal(err)
				}
				if got := exports.Load() > before; got != (mode.name == "sampled") {
					b.Fatalf("spans exported: %v, want %v", got, mode.name == "sampled")
				}
			})
		}
	}
}
