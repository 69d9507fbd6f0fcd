package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPathCanonicalisation sends every spelling of a path attack over a raw
// socket (an HTTP client would clean most of them) and asserts a 400
// problem and that the upstream was never contacted.
func TestPathCanonicalisation(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr,
		route("order", "GET", "/orders/{id}"),
		route("files", "GET", "/files/*"),
	), nil)

	attacks := []struct{ name, target string }{
		{"dot-dot segment", "/orders/1/../2"},
		{"dot-dot escaping the route", "/orders/../admin"},
		{"single dot segment", "/orders/./2"},
		{"encoded dot-dot", "/orders/1/%2e%2e/2"},
		{"mixed encoded dot-dot", "/orders/1/.%2E/2"},
		{"encoded slash", "/orders/1%2f..%2fadmin"},
		{"encoded backslash", "/orders/1%5c..%5cadmin"},
		{"literal backslash", "/orders/1\\..\\admin"},
		{"encoded NUL", "/orders/1%00"},
		{"double slash", "//orders/1"},
		{"empty segment", "/orders//1"},
		{"overlong UTF-8 dot", "/orders/%c0%ae%c0%ae/admin"},
		{"invalid UTF-8", "/orders/%ff"},
		{"tomcat path parameter", "/orders/..;/admin"},
		{"double encoding", "/orders/%252e%252e/admin"},
		{"catch-all traversal", "/files/a/../../etc/passwd"},
		{"control character", "/orders/1%0d%0aX-Injected:%20yes"},
		{"asterisk form", "*"},
	}
	for _, tt := range attacks {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			c := dialRaw(t, g.public)
			resp := c.roundTrip(t, "GET "+tt.target+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
			checkProblem(t, resp, http.StatusBadRequest, "non-canonical-path")
			if got := up.hits.Load() - before; got != 0 {
				t.Errorf("upstream hits = %d, want 0", got)
			}
		})
	}

	// Harmless spellings are accepted and forwarded in canonical form.
	for _, tt := range []struct{ target, upstreamPath string }{
		{"/orders/%41bc", "/orders/Abc"},
		{"/orders/caf%C3%A9", "/orders/café"},
		{"/files/a/b.txt", "/files/a/b.txt"},
	} {
		c := dialRaw(t, g.public)
		resp := c.roundTrip(t, "GET "+tt.target+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp.Body.Close()
		last, _ := up.lastRequest()
		if resp.StatusCode != 200 || last.URL.Path != tt.upstreamPath {
			t.Errorf("GET %s = %d, upstream path %q; want 200 and %q", tt.target, resp.StatusCode, last.URL.Path, tt.upstreamPath)
		}
	}
}

// TestSmuggling sends ambiguous framings and asserts that the upstream
// never receives a second, smuggled request.
func TestSmuggling(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr,
		route("post", "POST", "/submit"),
		route("admin", "GET", "/admin"),
	), nil)

	t.Run("content-length and chunked", func(t *testing.T) {
		before := up.hits.Load()
		c := dialRaw(t, g.public)
		// CL.TE: a front end that trusts Content-Length would forward the
		// whole thing as one body; one that trusts chunked sees a second
		// request "GET /admin" hidden after the 0 chunk.
		smuggled := "GET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n"
		body := "5\r\nhello\r\n0\r\n\r\n" + smuggled
		raw := fmt.Sprintf("POST /submit HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(body), body)
		resp := c.roundTrip(t, raw)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 400 {
			t.Fatalf("status = %d, want 200 (re-framed by Transfer-Encoding) or 400", resp.StatusCode)
		}
		if resp.StatusCode == 200 {
			last, got := up.lastRequest()
			if string(got) != "hello" || last.Header.Get("Content-Length") != "" || last.URL.Path != "/submit" {
				t.Errorf("upstream got path %s body %q Content-Length %q; want /submit, \"hello\", none",
					last.URL.Path, got, last.Header.Get("Content-Length"))
			}
			if !resp.Close {
				t.Errorf("response does not announce Connection: close after an ambiguous framing")
			}
		}
		if !c.closed(5 * time.Second) {
			t.Errorf("connection still open after an ambiguous framing: the smuggled request could be read")
		}
		if got := up.hits.Load() - before; got > 1 {
			t.Errorf("upstream hits = %d, want at most 1 (no smuggled request)", got)
		}
		if strings.Contains(g.Logs(), `"route":"admin"`) {
			t.Errorf("the smuggled /admin request was routed")
		}
	})

	for _, tt := range []struct{ name, headers string }{
		{"conflicting content-lengths", "Content-Length: 5\r\nContent-Length: 6\r\n"},
		{"unknown transfer coding", "Transfer-Encoding: gzip, chunked\r\n"},
		{"chunked twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"},
		{"bad content-length", "Content-Length: 5, 5x\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			c := dialRaw(t, g.public)
			resp := c.roundTrip(t, "POST /submit HTTP/1.1\r\nHost: localhost\r\n"+tt.headers+"\r\n5\r\nhello\r\n0\r\n\r\n")
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 600 {
				t.Errorf("status = %d, want a 4xx/501 refusal", resp.StatusCode)
			}
			if got := up.hits.Load() - before; got != 0 {
				t.Errorf("upstream hits = %d, want 0", got)
			}
		})
	}
}

// TestBodyLimit streams 50 MiB at a 1 MiB route and checks the 413, that the
// upstream saw at most the limit, and that the gateway's memory stayed small.
func TestBodyLimit(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr,
		route("upload", "POST", "/upload"),
		route("small", "POST", "/small", "max_body_size: 1KiB"),
	), nil)

	t.Run("declared length over the limit never reaches the upstream", func(t *testing.T) {
		before := up.hits.Load()
		resp, err := http.Post(g.URL("/small"), "application/octet-stream", bytes.NewReader(make([]byte, 2048)))
		if err != nil {
			t.Fatal(err)
		}
		checkProblem(t, resp, http.StatusRequestEntityTooLarge, "body-too-large")
		if got := up.hits.Load() - before; got != 0 {
			t.Errorf("upstream hits = %d, want 0", got)
		}
	})

	t.Run("50 MiB chunked stream is cut at 1 MiB", func(t *testing.T) {
		const total = 50 << 20
		pr, pw := io.Pipe()
		go func() {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for sent := 0; sent < total; sent += len(chunk) {
				if _, err := pw.Write(chunk); err != nil {
					return // the gateway hung up: expected once it refused the body
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", g.URL("/upload"), pr)
		req.ContentLength = -1 // chunked: the gateway cannot refuse by header
		resp, err := http.DefaultClient.Do(req)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		checkProblem(t, resp, http.StatusRequestEntityTooLarge, "body-too-large")
		if _, body := up.lastRequest(); len(body) > 1<<20 {
			t.Errorf("upstream received %d body bytes, want at most 1 MiB", len(body))
		}
		rss := g.metric(t, "process_resident_memory_bytes")
		t.Logf("gateway resident memory after the upload: %.1f MiB", rss/(1<<20))
		if rss <= 0 || rss > 64<<20 {
			t.Errorf("gateway resident memory = %.0f bytes after a 50 MiB upload, want under 64 MiB", rss)
		}
	})
}

// TestReportModeBodyLimit: a route in report mode counts the would-deny and
// lets the request through; the same route in enforce mode refuses it.
func TestReportModeBodyLimit(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr,
		route("observe", "POST", "/observe", "max_body_size: 1KiB", "mode: report"),
		route("enforce", "POST", "/enforce", "max_body_size: 1KiB"),
	), nil)
	big := bytes.Repeat([]byte("y"), 4096)

	resp, err := http.Post(g.URL("/observe"), "text/plain", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body := up.lastRequest(); resp.StatusCode != 200 || len(body) != len(big) {
		t.Errorf("report mode: status %d, upstream got %d bytes; want 200 and the whole body", resp.StatusCode, len(body))
	}
	if v := g.metric(t, `bulwark_denials_total{mode="report",reason="body_too_large",route="observe",stage="edge"}`); v != 1 {
		t.Errorf("report-mode denials = %v, want 1", v)
	}
	if !strings.Contains(g.Logs(), "would deny") {
		t.Errorf("the would-deny decision was not logged")
	}

	before := up.hits.Load()
	resp, err = http.Post(g.URL("/enforce"), "text/plain", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	checkProblem(t, resp, http.StatusRequestEntityTooLarge, "body-too-large")
	if up.hits.Load() != before {
		t.Errorf("enforce mode: the upstream was reached")
	}
	if v := g.metric(t, `bulwark_denials_total{mode="enforce",reason="body_too_large",route="enforce",stage="edge"}`); v != 1 {
		t.Errorf("enforced denials = %v, want 1", v)
	}
}

// TestSlowHeaders: a client trickling its headers is cut off after
// read_header_timeout.
func TestSlowHeaders(t *testing.T) {
	up := startUpstream(t, nil)
	cfg := strings.Replace(baseConfig("http://"+up.addr, route("x", "GET", "/x")),
		"server:\n", "server:\n  read_header_timeout: 300ms\n", 1)
	g := startGateway(t, cfg, nil)

	c := dialRaw(t, g.public)
	start := time.Now()
	cut := false
	for _, b := range []byte("GET /x HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
		if _, err := c.Write([]byte{b}); err != nil {
			cut = true
			break
		}
		time.Sleep(50 * time.Millisecond)
		if time.Since(start) > 10*time.Second {
			break
		}
	}
	if !cut && !c.closed(5*time.Second) {
		t.Errorf("a client trickling headers for %v was not cut off", time.Since(start))
	}
	if up.hits.Load() != 0 {
		t.Errorf("the trickled request reached the upstream")
	}
}

// TestForwardedHeaders: spoofed identity and forwarding headers from an
// untrusted client never reach the upstream; hop-by-hop headers are removed.
func TestForwardedHeaders(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr, route("x", "GET", "/x")), nil)

	req, _ := http.NewRequest("GET", g.URL("/x"), nil)
	for k, v := range map[string]string{
		"X-Forwarded-For":   "203.0.113.7",
		"X-Forwarded-Host":  "evil.example",
		"X-Forwarded-Proto": "https",
		"Forwarded":         "for=203.0.113.7",
		"X-Real-Ip":         "203.0.113.7",
		"X-User":            "admin",
		"X-Remote-User":     "admin",
		"X-Bulwark-Subject": "admin",
		"X-Request-Id":      "chosen-by-client",
		"Connection":        "X-Drop-Me",
		"X-Drop-Me":         "secret",
		"Keep-Alive":        "timeout=5",
		"Te":                "trailers",
		"Proxy-Connection":  "keep-alive",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	last, _ := up.lastRequest()
	for _, h := range []string{"X-Real-Ip", "Forwarded", "X-User", "X-Remote-User", "X-Bulwark-Subject",
		"X-Drop-Me", "Keep-Alive", "Te", "Proxy-Connection"} {
		if v := last.Header.Get(h); v != "" {
			t.Errorf("upstream received %s: %q, want it stripped", h, v)
		}
	}
	if got := last.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("upstream X-Forwarded-For = %q, want the socket peer 127.0.0.1 (spoofed value ignored)", got)
	}
	if got := last.Header.Get("X-Forwarded-Host"); got != g.public {
		t.Errorf("upstream X-Forwarded-Host = %q, want %q", got, g.public)
	}
	if got := last.Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("upstream X-Forwarded-Proto = %q, want http", got)
	}
	if got := last.Header.Get("X-Request-Id"); got == "chosen-by-client" || got != resp.Header.Get("X-Request-Id") {
		t.Errorf("upstream X-Request-Id = %q (response %q): an untrusted client's id must be replaced", got, resp.Header.Get("X-Request-Id"))
	}
}

// TestTrustedProxy: behind a trusted proxy, the client IP is the right-most
// untrusted X-Forwarded-For hop and the proxy's request id is kept.
func TestTrustedProxy(t *testing.T) {
	up := startUpstream(t, nil)
	cfg := strings.Replace(baseConfig("http://"+up.addr, route("x", "GET", "/x")),
		"server:\n", "server:\n  trusted_proxies: [127.0.0.0/8, 10.0.0.0/8]\n", 1)
	g := startGateway(t, cfg, nil)

	req, _ := http.NewRequest("GET", g.URL("/x"), nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.7, 10.1.2.3")
	req.Header.Set("X-Request-Id", "lb-4f2a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	last, _ := up.lastRequest()
	if got := last.Header.Get("X-Forwarded-For"); got != "203.0.113.7" {
		t.Errorf("upstream X-Forwarded-For = %q, want the right-most untrusted hop 203.0.113.7", got)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "lb-4f2a" {
		t.Errorf("X-Request-Id = %q, want the trusted proxy's lb-4f2a", got)
	}
}

// TestUpgradePolicy: an Upgrade request is refused on a route without
// websocket: true and proxied on one with it.
func TestUpgradePolicy(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			w.WriteHeader(400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo
	}))
	g := startGateway(t, baseConfig("http://"+up.addr,
		route("plain", "GET", "/plain"),
		route("ws", "GET", "/ws", "websocket: true"),
	), nil)
	upgrade := "HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

	c := dialRaw(t, g.public)
	checkProblem(t, c.roundTrip(t, "GET /plain "+upgrade), http.StatusBadRequest, "upgrade-not-allowed")
	if up.hits.Load() != 0 {
		t.Errorf("a refused upgrade reached the upstream")
	}

	c = dialRaw(t, g.public)
	c2 := dialRaw(t, g.public)
	checkProblem(t, c2.roundTrip(t, "GET /ws "+strings.Replace(upgrade, "websocket", "h2c", 1)), http.StatusBadRequest, "upgrade-unsupported")
	resp := c.roundTrip(t, "GET /ws "+upgrade)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c.r, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo through the upgraded connection = %q, %v; want ping", buf, err)
	}
}

// TestCORS: preflights are answered by the gateway; cross-origin requests
// from origins the policy does not allow never reach the upstream.
func TestCORS(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr,
		route("create", "POST", "/orders",
			"cors: { origins: [\"https://app.example.com\"], headers: [Content-Type], credentials: true, max_age: 10m }"),
		route("list", "GET", "/orders"),
	), nil)
	preflight := func(origin, method string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", g.URL("/orders"), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := preflight("https://app.example.com", "POST")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("allowed preflight = %d %v, want 204 with the origin, credentials and max-age 600", resp.StatusCode, resp.Header)
	}
	checkProblem(t, preflight("https://evil.example", "POST"), http.StatusForbidden, "cors-refused")
	// An OPTIONS that is not a preflight: 405 listing every method of the path.
	plain, _ := http.NewRequest("OPTIONS", g.URL("/orders"), nil)
	resp, err := http.DefaultClient.Do(plain)
	if err != nil {
		t.Fatal(err)
	}
	checkProblem(t, resp, http.StatusMethodNotAllowed, "method-not-allowed")
	if got := resp.Header.Get("Allow"); got != "GET, OPTIONS, POST" {
		t.Errorf("Allow = %q, want %q", got, "GET, OPTIONS, POST")
	}
	checkProblem(t, preflight("https://app.example.com", "DELETE"), http.StatusForbidden, "cors-refused")

	req, _ := http.NewRequest("POST", g.URL("/orders"), strings.NewReader("{}"))
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	checkProblem(t, resp, http.StatusForbidden, "cors-refused")
	if up.hits.Load() != 0 {
		t.Errorf("upstream hits = %d, want 0 (preflights and refused origins stay at the gateway)", up.hits.Load())
	}
	req, _ = http.NewRequest("POST", g.URL("/orders"), strings.NewReader("{}"))
	req.Header.Set("Origin", "https://app.example.com")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("allowed cross-origin POST = %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}
