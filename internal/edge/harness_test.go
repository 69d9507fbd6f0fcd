package edge

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServerConfig is a server config as the loader leaves it: defaults
// applied, identity headers merged with the built-in ones.
func testServerConfig() config.Server {
	return config.Server{
		MaxHeaderCount: 100,
		IdentityHeaders: []string{
			"X-User", "X-User-Id", "X-Remote-User", "X-Forwarded-User",
			"X-Auth-Subject", "X-Authenticated-User", "X-Consumer-Id",
		},
	}
}

// newProblems returns a problem writer and the denial counter it counts in.
func newProblems(tb testing.TB) (*problem.Writer, *prometheus.CounterVec) {
	tb.Helper()
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
	return problem.New(zap.NewNop(), denials), denials
}

// counterValue reads one counter of a denial CounterVec.
func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatalf("read counter: %v", err)
	}
	return m.GetCounter().GetValue()
}

// upstreamRequest is what the upstream received.
type upstreamRequest struct {
	Method     string
	RequestURI string
	Header     http.Header
	Body       []byte
	BodyErr    error
}

// upstream is a real HTTP server on loopback that records every request.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	got  []upstreamRequest
}

// startUpstream starts the upstream; custom, when set, answers instead of
// the recording handler (the hit still counts).
func startUpstream(tb testing.TB, custom http.Handler) *upstream {
	tb.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		if custom != nil {
			custom.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, upstreamRequest{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body, BodyErr: err})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream ok")
	}))
	tb.Cleanup(u.srv.Close)
	return u
}

// requests returns a copy of what the upstream received so far.
func (u *upstream) requests() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.got...)
}

// standInProxy stands in for internal/proxy: a ReverseProxy with Rewrite
// and SetURL whose ErrorHandler answers a cut body with 413, as the real
// one does.
func standInProxy(tb testing.TB, target string, pw *problem.Writer) http.Handler {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatalf("parse upstream URL: %v", err)
	}
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				pw.Write(w, r, problem.BodyTooLarge())
				return
			}
			pw.Write(w, r, problem.BadGateway())
		},
	}
}

// seen is what the handler after the edge saw.
type seen struct {
	Path, RawPath string
	Header        http.Header
	Trailer       http.Header
	ClientIP      netip.Addr
	RequestID     string
	TLS           bool
	WouldDeny     []exchange.Decision
}

// recorder sits between the edge and the route's chain.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	n    int
	last seen
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := exchange.From(r.Context())
	s := seen{Path: r.URL.Path, RawPath: r.URL.RawPath, Header: r.Header.Clone(), Trailer: r.Trailer,
		ClientIP: rec.ClientIP, RequestID: rec.RequestID, TLS: rec.TLS}
	rc.next.ServeHTTP(w, r)
	_, wouldDeny := rec.Decisions()
	s.WouldDeny = append(s.WouldDeny, wouldDeny...)
	rc.mu.Lock()
	rc.n++
	rc.last = s
	rc.mu.Unlock()
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

func (rc *recorder) lastSeen() seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last
}

// harness is the edge on a real listener in front of a real upstream:
// edge → recorder → route middlewares → stand-in proxy → upstream.
type harness struct {
	gw      *httptest.Server
	up      *upstream
	rec     *recorder
	pw      *problem.Writer
	denials *prometheus.CounterVec
}

type harnessOptions struct {
	cfg   config.Server
	route []func(http.Handler) http.Handler
	// terminal replaces the proxy and upstream when set.
	terminal http.Handler
	// tlsCert serves HTTPS with this certificate when set.
	tlsCert *tls.Certificate
	// wrap wraps the ResponseWriter before the edge, as the gateway does.
	wrap func(http.ResponseWriter) http.ResponseWriter
	// upstream answers instead of the recording upstream when set.
	upstream http.Handler
	// log is the edge's logger; nil for none.
	log *zap.Logger
}

func startHarness(tb testing.TB, opts harnessOptions) *harness {
	tb.Helper()
	h := &harness{up: startUpstream(tb, opts.upstream)}
	h.pw, h.denials = newProblems(tb)
	next := opts.terminal
	if next == nil {
		next = standInProxy(tb, h.up.srv.URL, h.pw)
	}
	for i := len(opts.route) - 1; i >= 0; i-- {
		next = opts.route[i](next)
	}
	h.rec = &recorder{next: next}
	logger := opts.log
	if logger == nil {
		logger = zap.NewNop()
	}
	mw, err := New(opts.cfg, Deps{Log: logger, Problems: h.pw})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	root := mw(h.rec)
	if opts.wrap != nil {
		inner := root
		root = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.ServeHTTP(opts.wrap(w), r) })
	}
	h.gw = httptest.NewUnstartedServer(root)
	// The gateway's server must let OPTIONS * reach the edge too.
	h.gw.Config.DisableGeneralOptionsHandler = true
	h.gw.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.tlsCert != nil {
		h.gw.TLS = &tls.Config{Certificates: []tls.Certificate{*opts.tlsCert}}
		h.gw.StartTLS()
	} else {
		h.gw.Start()
	}
	tb.Cleanup(h.gw.Close)
	return h
}

// withRoute binds a route to the request record, as the gateway's router
// does on a match.
func withRoute(rt *exchange.Route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			exchange.From(r.Context()).Route = rt
			next.ServeHTTP(w, r)
		})
	}
}

// do sends req through the harness's client and returns the response with
// its body read.
func (h *harness) do(tb testing.TB, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	resp, err := h.gw.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body of %s %s: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// newRequest builds a request to the harness; target is appended to the
// server URL as given, so its escaping reaches the wire unchanged.
func (h *harness) newRequest(tb testing.TB, method, target string, body io.Reader) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, h.gw.URL+target, body)
	if err != nil {
		tb.Fatalf("NewRequest(%s %q): %v", method, target, err)
	}
	return req
}

// problemBody is the wire form of a problem.
type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	RequestID string `json:"request_id"`
}

// checkProblem asserts that resp is the problem slug with status, whose
// request_id is the X-Request-Id header.
func checkProblem(tb testing.TB, resp *http.Response, body []byte, status int, slug string) {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
		tb.Errorf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		tb.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", body, err)
	}
	if p.Type != problem.TypePrefix+slug || p.Status != status {
		tb.Errorf("problem type, status = %q, %d, want %q, %d", p.Type, p.Status, problem.TypePrefix+slug, status)
	}
	if id := resp.Header.Get("X-Request-Id"); p.RequestID == "" || p.RequestID != id {
		tb.Errorf("problem request_id = %q, want the X-Request-Id header %q", p.RequestID, id)
	}
}

// rawConn is a client connection on which requests are written by hand,
// for what http.Client would normalise or refuse to send.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(tb testing.TB, addr string) *rawConn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// roundTrip writes raw and reads one response with its body.
func (c *rawConn) roundTrip(tb testing.TB, raw string) (*http.Response, []byte) {
	tb.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		tb.Fatalf("write request: %v", err)
	}
	return c.readResponse(tb)
}

func (c *rawConn) readResponse(tb testing.TB) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read response body: %v", err)
	}
	return resp, body
}

// closedByServer reports whether the server closed the connection after
// the last response instead of waiting for another request. The deadline
// only bounds a failing test.
func (c *rawConn) closedByServer(tb testing.TB) bool {
	tb.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		tb.Fatalf("set deadline: %v", err)
	}
	_, err := c.br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil // EOF or reset: closed; a byte: another response, not closed
}

// selfSignedCert generates a certificate for 127.0.0.1.
func selfSignedCert(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "edge test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// hostPort is the listener address of a test server.
func hostPort(s *httptest.Server) string { return s.Listener.Addr().String() }
