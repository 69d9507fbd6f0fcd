package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestNewUpstreamRejects(t *testing.T) {
	missing := config.Path(filepath.Join(t.TempDir(), "missing.pem"))
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	tests := []struct {
		name string
		cfg  config.Upstream
		want string // a fragment of the error
	}{
		{name: "not a URL", cfg: config.Upstream{URL: "http://[::1"}, want: "url: not a valid URL"},
		{name: "relative URL", cfg: config.Upstream{URL: "/orders"}, want: "must be http or https"},
		{name: "ftp scheme", cfg: config.Upstream{URL: "ftp://127.0.0.1"}, want: "must be http or https"},
		{name: "no host", cfg: config.Upstream{URL: "http:///orders"}, want: "missing host"},
		{name: "credentials", cfg: config.Upstream{URL: "http://u:secret@127.0.0.1"}, want: "credentials"},
		{name: "query", cfg: config.Upstream{URL: "http://127.0.0.1/?a=1"}, want: "query"},
		{name: "fragment", cfg: config.Upstream{URL: "http://127.0.0.1/#x"}, want: "fragment"},
		{name: "negative timeout", cfg: config.Upstream{URL: "http://127.0.0.1", Timeout: -1}, want: "timeout"},
		{name: "negative connect timeout", cfg: config.Upstream{URL: "http://127.0.0.1", ConnectTimeout: -1}, want: "connect_timeout"},
		{name: "negative idle conns", cfg: config.Upstream{URL: "http://127.0.0.1", MaxIdleConnsPerHost: -1}, want: "max_idle_conns_per_host"},
		{name: "tls on http", cfg: config.Upstream{URL: "http://127.0.0.1", TLS: &config.UpstreamTLS{}}, want: "not https"},
		{name: "bad min version", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{MinVersion: "1.1"}}, want: "min_version"},
		{name: "missing ca file", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{CAFile: missing}}, want: "ca_file"},
		{name: "ca file without PEM", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{CAFile: notPEM}}, want: "no PEM certificate"},
		{name: "cert without key", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{CertFile: notPEM}}, want: "without key_file"},
		{name: "key without cert", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{KeyFile: notPEM}}, want: "without cert_file"},
		{name: "unreadable key pair", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{CertFile: notPEM, KeyFile: notPEM}}, want: "cert_file, key_file"},
		{name: "pin not base64", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{PinSHA256: []string{"!!"}}}, want: "pin_sha256: [0]"},
		{name: "pin too short", cfg: config.Upstream{URL: "https://127.0.0.1", TLS: &config.UpstreamTLS{PinSHA256: []string{"AAAA"}}}, want: "want a 32-byte"},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NewUpstream("orders", tt.cfg, f.deps)
			if err == nil {
				u.Close()
				t.Fatalf("NewUpstream(%+v) = nil error, want one containing %q", tt.cfg, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), `upstream "orders": `) {
				t.Errorf("NewUpstream error = %q, want it to start with the upstream and contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("NewUpstream error = %q, want no credentials in it", err)
			}
		})
	}
}

func TestNewUpstreamRequiresDeps(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		deps Deps
	}{
		{name: "no problem writer", deps: Deps{Duration: f.deps.Duration}},
		{name: "no histogram", deps: Deps{Problems: f.deps.Problems}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewUpstream("orders", config.Upstream{URL: "http://127.0.0.1"}, tt.deps); err == nil {
				t.Errorf("NewUpstream with %s = nil error, want an error", tt.name)
			}
		})
	}
}

func TestProxyJoinsPaths(t *testing.T) {
	echo, _ := startEcho(t)
	tests := []struct {
		name      string
		base      string
		path      string
		wantPath  string
		wantQuery string
	}{
		{name: "no base path", base: "", path: "/orders/7", wantPath: "/orders/7"},
		{name: "base path", base: "/api/v1", path: "/orders/7?b=2&a=1", wantPath: "/api/v1/orders/7", wantQuery: "b=2&a=1"},
		{name: "base path with slash", base: "/api/", path: "/orders/7", wantPath: "/api/orders/7"},
		{name: "root under base", base: "/api", path: "/", wantPath: "/api/"},
		{name: "escaped segment kept", base: "/api", path: "/files/a%20b", wantPath: "/api/files/a b"},
		{name: "repeated query keys kept in order", base: "", path: "/o?x=2&x=1&y=", wantPath: "/o", wantQuery: "x=2&x=1&y="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: echo.URL + tt.base})
			g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())
			var got seen
			if err := json.NewDecoder(g.get(t, tt.path).Body).Decode(&got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Path != tt.wantPath || got.RawQuery != tt.wantQuery {
				t.Errorf("upstream saw %q ? %q, want %q ? %q", got.Path, got.RawQuery, tt.wantPath, tt.wantQuery)
			}
		})
	}
}

func TestProxyForwardingHeaders(t *testing.T) {
	echo, _ := startEcho(t)
	tests := []struct {
		name      string
		opt       gatewayOptions
		wantFor   string
		wantProto string
	}{
		{name: "client ip from record", opt: withRecord(), wantFor: "203.0.113.9", wantProto: "http"},
		{name: "no record falls back to socket peer", opt: gatewayOptions{}, wantFor: "127.0.0.1", wantProto: "http"},
		{name: "tls listener", opt: gatewayOptions{clientIP: netip.MustParseAddr("2001:db8::7"), tls: true}, wantFor: "2001:db8::7", wantProto: "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: echo.URL})
			g := startGateway(t, u.Handler("get-order", ResponseOptions{}), tt.opt)
			req, err := http.NewRequest(http.MethodGet, g.srv.URL+"/orders/7", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "shop.example"
			req.Header.Set("X-Request-Id", "rid-42")
			req.Header.Set("Accept-Encoding", "br")
			// Client-sent forwarding headers are lies until proven otherwise.
			req.Header.Set("X-Forwarded-For", "10.9.9.9")
			req.Header.Set("X-Forwarded-Host", "evil.example")
			req.Header.Set("X-Forwarded-Proto", "gopher")
			req.Header.Set("Forwarded", "for=10.9.9.9")
			var got seen
			if err := json.NewDecoder(g.do(t, req).Body).Decode(&got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := map[string][]string{
				"X-Forwarded-For":   {tt.wantFor},
				"X-Forwarded-Host":  {"shop.example"},
				"X-Forwarded-Proto": {tt.wantProto},
				"X-Request-Id":      {"rid-42"},
				"Accept-Encoding":   {"br"},
				"Forwarded":         nil,
			}
			for k, v := range want {
				if got := got.Header[k]; !equalStrings(got, v) {
					t.Errorf("upstream header %s = %q, want %q", k, got, v)
				}
			}
			if host := strings.TrimPrefix(echo.URL, "http://"); got.Host != host {
				t.Errorf("upstream Host = %q, want %q", got.Host, host)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestProxyRecordsUpstreamStatusAndDuration(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(upstream.Close)
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: upstream.URL})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())

	if got := g.get(t, "/").StatusCode; got != http.StatusTeapot {
		t.Errorf("status = %d, want %d", got, http.StatusTeapot)
	}
	if got := g.next(t).rec.UpstreamStatus; got != http.StatusTeapot {
		t.Errorf("record UpstreamStatus = %d, want %d", got, http.StatusTeapot)
	}
	if got := f.observed(t, "get-order"); got != 1 {
		t.Errorf("observed round trips = %d, want 1", got)
	}
}

func TestProxyFlushesStreams(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		first, rest string
	}{
		{name: "server-sent events", contentType: "text/event-stream", first: "data: one\n\n", rest: "data: two\n\n"},
		{name: "unknown length", contentType: "application/x-ndjson", first: "{\"n\":1}\n", rest: "{\"n\":2}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = io.WriteString(w, tt.first)
				_ = http.NewResponseController(w).Flush()
				select { // hold the stream open until the client has read the first event
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, tt.rest)
			}))
			t.Cleanup(upstream.Close)
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: upstream.URL})
			g := startGateway(t, u.Handler("events", ResponseOptions{}), withRecord())

			// The deadline only guards against a hang when flushing is broken.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.srv.URL+"/events", nil)
			if err != nil {
				t.Fatal(err)
			}
			res := g.do(t, req)
			first := make([]byte, len(tt.first))
			if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != tt.first {
				t.Fatalf("first event = %q, %v; want %q while the upstream holds the stream open", first, err, tt.first)
			}
			close(release)
			rest, err := io.ReadAll(res.Body)
			if err != nil || string(rest) != tt.rest {
				t.Errorf("rest of stream = %q, %v; want %q", rest, err, tt.rest)
			}
		})
	}
}

func TestProxyUpgrade(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		pause   time.Duration // between the two messages
	}{
		{name: "no overall timeout"},
		// After the 101 the connection is a session, not a response: the
		// upstream's overall timeout must not cut it.
		{name: "session outlives the overall timeout", timeout: 100 * time.Millisecond, pause: 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) { testProxyUpgrade(t, tt.timeout, tt.pause) })
	}
}

func testProxyUpgrade(t *testing.T, timeout, pause time.Duration) {
	// The upstream answers a raw 101 and then echoes bytes, like a
	// WebSocket server after its handshake.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get("Connection") != "Upgrade" {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		if brw.Flush() != nil {
			return
		}
		_, _ = io.Copy(conn, brw) // until the proxy closes its side
	}))
	t.Cleanup(upstream.Close)
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: upstream.URL, Timeout: config.Duration(timeout)})
	g := startGateway(t, u.Handler("socket", ResponseOptions{}), withRecord())

	conn, err := net.Dial("tcp", g.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a guard against a hang
	if _, err := io.WriteString(conn, "GET /socket HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read handshake: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status = %d, want %d", res.StatusCode, http.StatusSwitchingProtocols)
	}
	for i, msg := range []string{"ping", "a longer second message"} {
		if i > 0 {
			time.Sleep(pause)
		}
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Errorf("echo = %q, %v; want %q", buf, err, msg)
		}
	}
	conn.Close()
	if got := g.next(t).rec.UpstreamStatus; got != http.StatusSwitchingProtocols {
		t.Errorf("record UpstreamStatus = %d, want %d", got, http.StatusSwitchingProtocols)
	}
}

// zeros is an endless-looking body of a fixed size that allocates nothing
// and counts what was read from it.
type zeros struct {
	left int64
	read atomic.Int64
}

func (z *zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	n = min(n, z.left)
	clear(p[:n])
	z.left -= n
	z.read.Add(n)
	return int(n), nil
}

func TestProxyBodyLimit(t *testing.T) {
	const limit = 1 << 20
	received := make(chan int64, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body) // fails when the proxy drops the connection
		received <- n
	}))
	t.Cleanup(upstream.Close)
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: upstream.URL})
	g := startGateway(t, u.Handler("upload", ResponseOptions{}), gatewayOptions{clientIP: netip.MustParseAddr("203.0.113.9"), maxBody: limit})

	body := &zeros{left: 50 << 20}
	req, err := http.NewRequest(http.MethodPost, g.srv.URL+"/upload", io.NopCloser(body)) // unknown length: chunked
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := g.do(t, req)
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want %d", res.StatusCode, http.StatusRequestEntityTooLarge)
	}
	if got := readProblem(t, res); got.Type != problem.TypePrefix+"body-too-large" {
		t.Errorf("problem type = %q, want body-too-large", got.Type)
	}
	g.next(t)
	runtime.ReadMemStats(&after)

	select {
	case n := <-received:
		if n > limit {
			t.Errorf("upstream received %d bytes, want at most the %d-byte limit", n, limit)
		}
	case <-time.After(10 * time.Second): // a guard against a hang
		t.Fatal("upstream handler never finished")
	}
	// Streaming, not buffering: the gateway stopped reading far short of
	// 50 MiB, and the whole exchange allocated far less than the body.
	if got := body.read.Load(); got > 16<<20 {
		t.Errorf("client body read = %d bytes, want under 16 MiB of 50 MiB", got)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("allocated %d bytes during the upload, want under 16 MiB", got)
	}
}

func TestProxyReusesConnections(t *testing.T) {
	var accepted atomic.Int64
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	upstream.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	upstream.Start()
	t.Cleanup(upstream.Close)
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: upstream.URL})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())

	get := func() {
		t.Helper()
		res := g.get(t, "/")
		if b, err := io.ReadAll(res.Body); err != nil || string(b) != "ok" {
			t.Fatalf("body = %q, %v; want ok", b, err)
		}
	}
	const n = 20
	for range n {
		get()
	}
	if got := accepted.Load(); got != 1 {
		t.Errorf("upstream connections after %d sequential requests = %d, want 1", n, got)
	}
	// After Close (a reload replaced the upstream), the idle connection is
	// gone: the next request dials a new one.
	u.Close()
	get()
	if got := accepted.Load(); got != 2 {
		t.Errorf("upstream connections after Close = %d, want 2", got)
	}
}

func TestBufferPool(t *testing.T) {
	p := newBufferPool()
	b := p.Get()
	if len(b) != bufferSize {
		t.Fatalf("len(Get()) = %d, want %d", len(b), bufferSize)
	}
	p.Put(b)
	p.Put(make([]byte, 10)) // a foreign small buffer is dropped, not pooled
	if got := len(p.Get()); got != bufferSize {
		t.Errorf("len(Get()) after Put = %d, want %d", got, bufferSize)
	}
}

// writeFile writes content to name in a fresh temporary directory.
func writeFile(t testing.TB, name, content string) config.Path {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Path(path)
}

// discardWriter is a ResponseWriter that keeps nothing but a reused header
// map, so a benchmark measures the proxy, not the recorder.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// benchHandlers returns the route handler and a bare httputil.ReverseProxy
// with the same transport settings and buffer pool, both in front of the
// same trivial loopback upstream, and a request for them.
func benchHandlers(tb testing.TB) (bulwark, bare http.Handler, req *http.Request) {
	tb.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "11")
		_, _ = io.WriteString(w, `{"id":"7"}`+"\n")
	}))
	tb.Cleanup(upstream.Close)
	cfg := config.Upstream{URL: upstream.URL}
	f := newFixture(tb)
	f.deps.Log = zap.NewNop()
	bulwark = f.upstream(tb, cfg).Handler("get-order", ResponseOptions{})

	target, err := parseTarget(upstream.URL)
	if err != nil {
		tb.Fatal(err)
	}
	transport, err := newTransport(target.Scheme, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(transport.CloseIdleConnections)
	bare = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  transport,
		BufferPool: newBufferPool(),
	}

	req = httptest.NewRequest(http.MethodGet, "http://shop.example/orders/7?expand=items", nil)
	req.Header.Set("X-Request-Id", "rid-bench")
	rec := &exchange.Record{RequestID: "rid-bench", ClientIP: netip.MustParseAddr("203.0.113.9"),
		Route: &exchange.Route{Name: "get-order", Upstream: "orders"}}
	return bulwark, bare, req.WithContext(exchange.With(req.Context(), rec))
}

// BenchmarkProxy compares the route handler with a bare ReverseProxy in one
// run (see benchHandlers).
func BenchmarkProxy(b *testing.B) {
	bulwark, bare, req := benchHandlers(b)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{name: "bulwark", h: bulwark},
		{name: "bare", h: bare},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardWriter{header: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				bc.h.ServeHTTP(w, req)
			}
			if w.status != http.StatusOK {
				b.Fatalf("status = %d, want %d", w.status, http.StatusOK)
			}
		})
	}
}
