package proxy

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture holds the dependencies of one test's upstreams and what they
// recorded: log entries and the duration histogram.
type fixture struct {
	deps     Deps
	duration *prometheus.HistogramVec
	logs     *observer.ObservedLogs
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "upstream_seconds"}, []string{"route", "upstream"})
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
	return &fixture{
		deps:     Deps{Log: zap.New(core), Problems: problem.New(zap.NewNop(), denials), Duration: duration},
		duration: duration,
		logs:     logs,
	}
}

// upstream builds an Upstream from cfg and closes its pool at cleanup.
func (f *fixture) upstream(t testing.TB, cfg config.Upstream) *Upstream {
	t.Helper()
	u, err := NewUpstream("orders", cfg, f.deps)
	if err != nil {
		t.Fatalf("NewUpstream: %v", err)
	}
	t.Cleanup(u.Close)
	return u
}

// observed returns how many round trips the histogram observed for route.
func (f *fixture) observed(t testing.TB, route string) uint64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.duration)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var n uint64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// result is what the gateway side saw of one request once its handler
// returned.
type result struct {
	rec    *exchange.Record
	status int
}

// gateway is an HTTP server standing in for the gateway's outer layers: it
// creates the request's exchange record and wraps the ResponseWriter in a
// writer that, like the gateway's, implements Flush and Unwrap.
type gateway struct {
	srv     *httptest.Server
	results chan result
}

type gatewayOptions struct {
	// clientIP is the record's ClientIP; the zero Addr means no record at all.
	clientIP netip.Addr
	// maxBody wraps the request body in http.MaxBytesReader, as the edge does.
	maxBody int64
	// tls serves the gateway over HTTPS.
	tls bool
}

func startGateway(t testing.TB, h http.Handler, opt gatewayOptions) *gateway {
	t.Helper()
	g := &gateway{results: make(chan result, 64)}
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opt.maxBody > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, opt.maxBody)
		}
		sw := &statusWriter{ResponseWriter: w}
		var rec *exchange.Record
		if opt.clientIP.IsValid() {
			rec = &exchange.Record{
				RequestID: r.Header.Get("X-Request-Id"),
				ClientIP:  opt.clientIP,
				Start:     time.Now(),
				TLS:       r.TLS != nil,
				Route:     &exchange.Route{Name: "get-order", Upstream: "orders"},
			}
			r = r.WithContext(exchange.With(r.Context(), rec))
		}
		defer func() { // also when ReverseProxy aborts the stream with a panic
			select {
			case g.results <- result{rec: rec, status: sw.status}:
			default:
			}
		}()
		h.ServeHTTP(sw, r)
	})
	g.srv = httptest.NewUnstartedServer(outer)
	g.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opt.tls {
		g.srv.StartTLS()
	} else {
		g.srv.Start()
	}
	t.Cleanup(g.srv.Close)
	return g
}

// next returns the result of the next request whose handler finished.
func (g *gateway) next(t testing.TB) result {
	t.Helper()
	select {
	case res := <-g.results:
		return res
	case <-time.After(10 * time.Second): // a guard against a hang, not a timing assertion
		t.Fatal("gateway handler did not finish")
		return result{}
	}
}

// statusWriter is the gateway's response wrapper in miniature: it records
// the status and passes Flush and Hijack through (Unwrap).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// seen is what the echo upstream reports about the request it received.
type seen struct {
	Method   string
	Path     string
	RawQuery string
	Host     string
	Proto    int
	Header   http.Header
}

// startEcho starts an upstream that answers every request with a JSON
// description of it, and counts its hits.
func startEcho(t testing.TB) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	srv := httptest.NewServer(echoHandler(hits))
	t.Cleanup(srv.Close)
	return srv, hits
}

func echoHandler(hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Host: r.Host, Proto: r.ProtoMajor, Header: r.Header})
	})
}

// problemBody is the part of a problem+json body the tests check.
type problemBody struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// readProblem asserts that res is a problem+json answer and decodes it.
func readProblem(t testing.TB, res *http.Response) problemBody {
	t.Helper()
	if got := res.Header.Get("Content-Type"); got != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q", got, problem.ContentType)
	}
	var p problemBody
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	return p
}

// do sends req with the gateway's client and closes the body at cleanup.
func (g *gateway) do(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	res, err := g.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return res
}

func (g *gateway) get(t testing.TB, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.srv.URL+path, nil)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	return g.do(t, req)
}

// withRecord gives the gateway's requests an exchange record whose client
// IP is 203.0.113.9, a documentation address no socket has.
func withRecord() gatewayOptions {
	return gatewayOptions{clientIP: netip.MustParseAddr("203.0.113.9")}
}
