package edge

import (
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

func TestNewRefusesBadConfig(t *testing.T) {
	pw, _ := newProblems(t)
	deps := Deps{Log: zap.NewNop(), Problems: pw}
	with := func(edit func(*config.Server)) config.Server {
		cfg := testServerConfig()
		edit(&cfg)
		return cfg
	}
	tests := []struct {
		name string
		cfg  config.Server
		deps Deps
	}{
		{name: "no problem writer", cfg: testServerConfig(), deps: Deps{Log: zap.NewNop()}},
		{name: "no logger", cfg: testServerConfig(), deps: Deps{Problems: pw}},
		{name: "header count zero", cfg: with(func(c *config.Server) { c.MaxHeaderCount = 0 }), deps: deps},
		{name: "invalid trusted prefix", cfg: with(func(c *config.Server) { c.TrustedProxies = []netip.Prefix{{}} }), deps: deps},
		{name: "short IPv4-mapped prefix", cfg: with(func(c *config.Server) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("::ffff:0:0/64")}
		}), deps: deps},
		{name: "invalid identity header", cfg: with(func(c *config.Server) { c.IdentityHeaders = []string{"X User"} }), deps: deps},
		{name: "negative HSTS max-age", cfg: with(func(c *config.Server) {
			c.TLS = &config.TLS{HSTS: config.HSTS{MaxAge: config.Duration(-time.Second)}}
		}), deps: deps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, tt.deps); err == nil {
				t.Errorf("New(%s) error = nil, want an error", tt.name)
			}
		})
	}
}

// TestEdgeRefuses sends, through a real client, requests the edge must
// refuse, and checks the problem and that nothing reached the route or the
// upstream.
func TestEdgeRefuses(t *testing.T) {
	manyHeaders := http.Header{}
	for i := range 101 {
		manyHeaders.Set("X-Filler-"+strconv.Itoa(i), "x")
	}
	tests := []struct {
		name   string
		target string
		header http.Header
		status int
		slug   string
	}{
		{name: "encoded slash", target: "/orders%2f1", status: 400, slug: "non-canonical-path"},
		{name: "encoded backslash", target: "/orders%5c1", status: 400, slug: "non-canonical-path"},
		{name: "encoded NUL", target: "/orders/1%00.json", status: 400, slug: "non-canonical-path"},
		{name: "encoded dot-dot", target: "/orders/%2e%2e/admin", status: 400, slug: "non-canonical-path"},
		{name: "half-encoded dot-dot", target: "/orders/.%2E/admin", status: 400, slug: "non-canonical-path"},
		{name: "overlong UTF-8 dot-dot", target: "/orders/%c0%ae%c0%ae/admin", status: 400, slug: "non-canonical-path"},
		{name: "double encoding", target: "/orders/%252e%252e/admin", status: 400, slug: "non-canonical-path"},
		{name: "encoded CRLF", target: "/orders/%0d%0aX-Evil:%201", status: 400, slug: "non-canonical-path"},
		{name: "fullwidth solidus", target: "/orders%EF%BC%8Fadmin", status: 400, slug: "non-canonical-path"},
		{name: "too many header fields", target: "/orders", header: manyHeaders, status: 431, slug: "headers-too-large"},
		{name: "h2c upgrade", target: "/orders", header: http.Header{
			"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQAAP__"},
		}, status: 400, slug: "upgrade-unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t, harnessOptions{cfg: testServerConfig()})
			req := h.newRequest(t, http.MethodGet, tt.target, nil)
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			resp, body := h.do(t, req)
			checkProblem(t, resp, body, tt.status, tt.slug)
			if n := h.up.hits.Load(); n != 0 {
				t.Errorf("upstream hits = %d, want 0", n)
			}
			if n := h.rec.count(); n != 0 {
				t.Errorf("requests past the edge = %d, want 0", n)
			}
		})
	}
}

// TestEdgeCleansForwardedRequest checks what the route's chain and the
// upstream receive from an untrusted client that sends every header it
// must not control.
func TestEdgeCleansForwardedRequest(t *testing.T) {
	h := startHarness(t, harnessOptions{cfg: testServerConfig()})
	req := h.newRequest(t, http.MethodGet, "/orders/%41bc;v=1?q=1", nil)
	sent := map[string]string{
		"Keep-Alive":            "timeout=5",
		"Proxy-Connection":      "keep-alive",
		"Proxy-Authorization":   "Basic cHJveHk6cHJveHk=",
		"Te":                    "trailers",
		"X-Forwarded-For":       "203.0.113.7",
		"X-Forwarded-Host":      "admin.internal",
		"X-Forwarded-Proto":     "https",
		"X-Forwarded-Port":      "443",
		"X-Forwarded-Prefix":    "/admin",
		"Forwarded":             "for=203.0.113.7;proto=https",
		"X-Real-Ip":             "203.0.113.7",
		"X-Bulwark-Route":       "admin",
		"X-User":                "admin",
		"X-Consumer-Id":         "acme",
		"X_user":                "admin",
		"X-Custom-Hop":          "named in Connection",
		"Connection":            "X-Custom-Hop",
		"Upgrade":               "websocket",
		"X-Request-Id":          "client-chosen-id",
		"Authorization":         "Bearer kept-for-the-chain",
		"Accept":                "application/json",
		"X-Trace-Of-The-Client": "kept",
	}
	for k, v := range sent {
		req.Header[k] = []string{v}
	}
	resp, body := h.do(t, req)
	if resp.StatusCode != http.StatusOK || string(body) != "upstream ok" {
		t.Fatalf("response = %d %q, want 200 \"upstream ok\"", resp.StatusCode, body)
	}
	stripped := []string{
		"Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "X-Forwarded-Host",
		"X-Forwarded-Port", "X-Forwarded-Prefix", "Forwarded", "X-Real-Ip", "X-Bulwark-Route", "X-User",
		"X-Consumer-Id", "X_user", "X-Custom-Hop", "Connection", "Upgrade", "X-Forwarded-For",
	}
	kept := []string{"Authorization", "Accept", "X-Trace-Of-The-Client"}
	id := resp.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("X-Request-Id = %q, want 32 hex digits generated by the edge", id)
	}
	s := h.rec.lastSeen()
	if s.Path != "/orders/Abc;v=1" || s.RawPath != "" {
		t.Errorf("route saw Path %q RawPath %q, want \"/orders/Abc;v=1\" and \"\"", s.Path, s.RawPath)
	}
	if s.ClientIP != netip.MustParseAddr("127.0.0.1") || s.RequestID != id || s.TLS {
		t.Errorf("record = ClientIP %v RequestID %q TLS %v, want 127.0.0.1 %q false", s.ClientIP, s.RequestID, s.TLS, id)
	}
	ups := h.up.requests()
	if len(ups) != 1 {
		t.Fatalf("upstream requests = %d, want 1", len(ups))
	}
	if ups[0].RequestURI != "/orders/Abc;v=1?q=1" {
		t.Errorf("upstream RequestURI = %q, want \"/orders/Abc;v=1?q=1\"", ups[0].RequestURI)
	}
	for where, hdr := range map[string]http.Header{"route": s.Header, "upstream": ups[0].Header} {
		for _, k := range stripped {
			if v, ok := hdr[k]; ok {
				t.Errorf("%s got %s: %q, want it stripped", where, k, v)
			}
		}
		for _, k := range kept {
			if got := hdr.Get(k); got != sent[k] {
				t.Errorf("%s got %s = %q, want %q", where, k, got, sent[k])
			}
		}
		if got := hdr.Get("X-Request-Id"); got != id {
			t.Errorf("%s got X-Request-Id = %q, want %q", where, got, id)
		}
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	for _, k := range []string{"Strict-Transport-Security", "Server"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("plain-HTTP response has %s: %q, want none", k, v)
		}
	}
}

// TestRequestIDTrust checks that a client's X-Request-Id is kept only from
// a trusted proxy and only when it is well-formed.
func TestRequestIDTrust(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		sent    []string
		keep    bool
	}{
		{name: "untrusted peer", sent: []string{"abc-123"}, keep: false},
		{name: "trusted peer, valid id", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, sent: []string{"abc-123:x.y_z"}, keep: true},
		{name: "trusted peer, invalid characters", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, sent: []string{"abc 123"}, keep: false},
		{name: "trusted peer, too long", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, sent: []string{strings.Repeat("a", 129)}, keep: false},
		{name: "trusted peer, two ids", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, sent: []string{"a", "b"}, keep: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testServerConfig()
			cfg.TrustedProxies = tt.trusted
			h := startHarness(t, harnessOptions{cfg: cfg})
			req := h.newRequest(t, http.MethodGet, "/orders", nil)
			req.Header["X-Request-Id"] = tt.sent
			resp, _ := h.do(t, req)
			got := resp.Header.Get("X-Request-Id")
			if kept := got == tt.sent[0]; kept != tt.keep {
				t.Errorf("X-Request-Id = %q for sent %q, kept = %v, want %v", got, tt.sent, kept, tt.keep)
			}
			if up := h.up.requests(); len(up) != 1 || up[0].Header.Get("X-Request-Id") != got {
				t.Errorf("upstream X-Request-Id differs from the response's %q", got)
			}
		})
	}
}

// TestSecurityHeaders checks nosniff everywhere and HSTS on TLS only, over
// real TLS with a certificate generated here.
func TestSecurityHeaders(t *testing.T) {
	cert := selfSignedCert(t)
	tests := []struct {
		name     string
		tls      *config.TLS
		https    bool
		wantHSTS string
	}{
		{name: "https with full HSTS", https: true, wantHSTS: "max-age=31536000; includeSubDomains; preload",
			tls: &config.TLS{HSTS: config.HSTS{MaxAge: config.Duration(8760 * time.Hour), IncludeSubdomains: true, Preload: true}}},
		{name: "https with max-age only", https: true, wantHSTS: "max-age=600",
			tls: &config.TLS{HSTS: config.HSTS{MaxAge: config.Duration(10 * time.Minute)}}},
		{name: "https with HSTS disabled", https: true, wantHSTS: "",
			tls: &config.TLS{HSTS: config.HSTS{MaxAge: 0, IncludeSubdomains: true}}},
		{name: "plain http never", https: false, wantHSTS: "",
			tls: &config.TLS{HSTS: config.HSTS{MaxAge: config.Duration(time.Hour)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testServerConfig()
			cfg.TLS = tt.tls
			opts := harnessOptions{cfg: cfg}
			if tt.https {
				opts.tlsCert = &cert
			}
			h := startHarness(t, opts)
			for _, target := range []string{"/orders", "/orders/%2e%2e"} { // proxied and refused
				resp, _ := h.do(t, h.newRequest(t, http.MethodGet, target, nil))
				if got := resp.Header.Get("Strict-Transport-Security"); got != tt.wantHSTS {
					t.Errorf("GET %s: Strict-Transport-Security = %q, want %q", target, got, tt.wantHSTS)
				}
				if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("GET %s: X-Content-Type-Options = %q, want nosniff", target, got)
				}
				if got := resp.Header.Get("Server"); got != "" {
					t.Errorf("GET %s: Server = %q, want none", target, got)
				}
			}
			if s := h.rec.lastSeen(); s.TLS != tt.https {
				t.Errorf("record TLS = %v, want %v", s.TLS, tt.https)
			}
		})
	}
}

// TestEdgeCreatesRecord checks that the edge works without the gateway's
// outer handler: it attaches a record of its own.
func TestEdgeCreatesRecord(t *testing.T) {
	h := startHarness(t, harnessOptions{cfg: testServerConfig()})
	resp, _ := h.do(t, h.newRequest(t, http.MethodGet, "/orders", nil))
	s := h.rec.lastSeen()
	if resp.StatusCode != http.StatusOK || s.RequestID == "" || !s.ClientIP.IsValid() {
		t.Errorf("status %d, record id %q ip %v, want 200 with an id and an address", resp.StatusCode, s.RequestID, s.ClientIP)
	}
}
