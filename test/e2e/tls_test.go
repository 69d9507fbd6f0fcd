package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// tlsConfig returns a config serving HTTPS with tls.crt/tls.key beside it;
// extra lines go into server.tls.
func tlsConfig(upstreamURL string, extra ...string) string {
	cfg := baseConfig(upstreamURL, route("x", "GET", "/x"))
	tlsBlock := "  tls:\n    cert_file: tls.crt\n    key_file: tls.key\n    reload_interval: 100ms\n"
	for _, e := range extra {
		tlsBlock += "    " + e + "\n"
	}
	return strings.Replace(cfg, "  listen: \"127.0.0.1:0\"\n", "  listen: \"127.0.0.1:0\"\n"+tlsBlock, 1)
}

func httpsClient(roots *x509.CertPool, mutate func(*tls.Config)) *http.Client {
	tc := &tls.Config{RootCAs: roots}
	if mutate != nil {
		mutate(tc)
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true},
	}
}

func TestTLSTermination(t *testing.T) {
	ca := newCA(t, "test CA")
	srv := ca.issue(t, "localhost", true)
	up := startUpstream(t, nil)
	g := startGateway(t, tlsConfig("http://"+up.addr), map[string][]byte{"tls.crt": srv.certPEM, "tls.key": srv.keyPEM})

	resp, err := httpsClient(ca.pool(), nil).Get(g.URL("/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol = %s, want HTTP/2 over TLS", resp.Proto)
	}
	if got, want := resp.Header.Get("Strict-Transport-Security"), "max-age=31536000"; got != want {
		t.Errorf("Strict-Transport-Security = %q, want %q", got, want)
	}
	last, _ := up.lastRequest()
	if got := last.Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("upstream X-Forwarded-Proto = %q, want https", got)
	}

	before := up.hits.Load()
	old := httpsClient(ca.pool(), func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11 })
	if resp, err := old.Get(g.URL("/x")); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS 1.1 client got %d, want a failed handshake", resp.StatusCode)
	}
	if up.hits.Load() != before {
		t.Errorf("a refused handshake reached the upstream")
	}
	if v := g.metric(t, "bulwark_tls_certificate_not_after_timestamp_seconds"); v != float64(srv.cert.NotAfter.Unix()) {
		t.Errorf("certificate expiry metric = %v, want %d", v, srv.cert.NotAfter.Unix())
	}
}

func TestTLSMinVersion13(t *testing.T) {
	ca := newCA(t, "test CA")
	srv := ca.issue(t, "localhost", true)
	up := startUpstream(t, nil)
	g := startGateway(t, tlsConfig("http://"+up.addr, `min_version: "1.3"`),
		map[string][]byte{"tls.crt": srv.certPEM, "tls.key": srv.keyPEM})
	if resp, err := httpsClient(ca.pool(), func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }).Get(g.URL("/x")); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS 1.2 client got %d with min_version 1.3, want a failed handshake", resp.StatusCode)
	}
	if resp, err := httpsClient(ca.pool(), nil).Get(g.URL("/x")); err != nil {
		t.Errorf("a TLS 1.3 client: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newCA(t, "client CA")
	other := newCA(t, "someone else's CA")
	srv := ca.issue(t, "localhost", true)
	good := ca.issue(t, "client-a", false)
	rogue := other.issue(t, "client-a", false)
	files := map[string][]byte{"tls.crt": srv.certPEM, "tls.key": srv.keyPEM, "clients.pem": ca.pem}

	tests := []struct {
		mode     string
		cert     *leaf
		wantPass bool
	}{
		{mode: "require", cert: good, wantPass: true},
		{mode: "require", cert: nil, wantPass: false},
		{mode: "require", cert: rogue, wantPass: false},
		{mode: "request", cert: nil, wantPass: true},
		{mode: "request", cert: good, wantPass: true},
		{mode: "request", cert: rogue, wantPass: false}, // never an unverified certificate
	}
	gateways := map[string]*gateway{}
	up := startUpstream(t, nil)
	for _, mode := range []string{"require", "request"} {
		gateways[mode] = startGateway(t, tlsConfig("http://"+up.addr, "client_ca_file: clients.pem", "client_auth: "+mode), files)
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/cert=%v", tt.mode, tt.cert != nil)
		if tt.cert == rogue {
			name += "(rogue)"
		}
		t.Run(name, func(t *testing.T) {
			client := httpsClient(ca.pool(), func(c *tls.Config) {
				if tt.cert != nil {
					// Present the certificate whatever CAs the server names:
					// a client left to choose would withhold the rogue one.
					cert := tt.cert.tlsCert(t)
					c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
				}
			})
			before := up.hits.Load()
			resp, err := client.Get(gateways[tt.mode].URL("/x"))
			passed := err == nil && resp.StatusCode == 200
			if err == nil {
				resp.Body.Close()
			}
			if passed != tt.wantPass {
				t.Errorf("passed = %v (err %v), want %v", passed, err, tt.wantPass)
			}
			if hits := up.hits.Load() - before; !tt.wantPass && hits != 0 {
				t.Errorf("upstream hits = %d after a refused client certificate, want 0", hits)
			}
		})
	}
}

func TestCertificateReload(t *testing.T) {
	ca := newCA(t, "test CA")
	first := ca.issue(t, "localhost", true)
	up := startUpstream(t, nil)
	g := startGateway(t, tlsConfig("http://"+up.addr), map[string][]byte{"tls.crt": first.certPEM, "tls.key": first.keyPEM})

	// A keep-alive connection made with the first certificate.
	kept := httpsClient(ca.pool(), nil)
	serialOf := func(c *http.Client) (string, bool) {
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequest("GET", g.URL("/x"), nil)
		resp, err := c.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), reused
	}
	if s, _ := serialOf(kept); s != first.cert.SerialNumber.String() {
		t.Fatalf("serving serial %s, want the first certificate's %s", s, first.cert.SerialNumber)
	}

	second := ca.issue(t, "localhost", true)
	writeFile(t, g.dir+"/tls.key", second.keyPEM) // key first: a half-rotated pair must not break serving
	writeFile(t, g.dir+"/tls.crt", second.certPEM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := serialOf(httpsClient(ca.pool(), nil)) // a new connection each time
		if s == second.cert.SerialNumber.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections still get serial %s after the files changed", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The connection made before the rotation is still open and usable.
	s, reused := serialOf(kept)
	if !reused || s != first.cert.SerialNumber.String() {
		t.Errorf("old connection: reused=%v serial=%s, want the same connection with the first certificate", reused, s)
	}
	if v := g.metric(t, `bulwark_tls_certificate_reloads_total{result="success"}`); v < 2 {
		t.Errorf("certificate reloads = %v, want at least 2 (start + rotation)", v)
	}
}

func TestHTTPRedirect(t *testing.T) {
	ca := newCA(t, "test CA")
	srv := ca.issue(t, "localhost", true)
	up := startUpstream(t, nil)
	cfg := strings.Replace(tlsConfig("http://"+up.addr), "server:\n", "server:\n  http_redirect: { listen: \"127.0.0.1:0\" }\n", 1)
	g := startGateway(t, cfg, map[string][]byte{"tls.crt": srv.certPEM, "tls.key": srv.keyPEM})

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Post("http://"+g.redirect+"/x?y=1", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := strings.Cut(g.public, ":")
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("status = %d, want 308", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Location"), "https://127.0.0.1:"+port+"/x?y=1"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if up.hits.Load() != 0 {
		t.Errorf("the redirect listener proxied a request")
	}
}

// TestHTTP2PathCanonicalisation: over HTTP/2 the same edge runs; a
// traversal in :path is refused before any upstream is contacted.
func TestHTTP2PathCanonicalisation(t *testing.T) {
	ca := newCA(t, "test CA")
	srv := ca.issue(t, "localhost", true)
	up := startUpstream(t, nil)
	g := startGateway(t, tlsConfig("http://"+up.addr), map[string][]byte{"tls.crt": srv.certPEM, "tls.key": srv.keyPEM})
	client := httpsClient(ca.pool(), nil)
	for _, target := range []string{"/x/../admin", "/x/%2e%2e/admin", "/x%2fadmin", "/x//y"} {
		req, err := http.NewRequest(http.MethodGet, g.URL("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = target // sent as written, not cleaned by the client
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("GET %s over %s, want HTTP/2", target, resp.Proto)
		}
		checkProblem(t, resp, http.StatusBadRequest, "non-canonical-path")
	}
	if hits := up.hits.Load(); hits != 0 {
		t.Errorf("upstream hits = %d, want 0", hits)
	}
}
