package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// mtlsCA is a certificate authority made for one test.
type mtlsCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newMTLSCA(t testing.TB, name string) *mtlsCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &mtlsCA{cert: cert, key: key, pool: pool}
}

// issue signs a client certificate; names sets its subject and SANs.
func (ca *mtlsCA) issue(t testing.TB, names func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(2 * time.Hour).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	names(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func mtlsCN(name string) func(*x509.Certificate) {
	return func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: name} }
}

func mtlsURIs(t testing.TB, raw ...string) func(*x509.Certificate) {
	return func(c *x509.Certificate) {
		for _, r := range raw {
			u, err := url.Parse(r)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = append(c.URIs, u)
		}
	}
}

func mtlsDNS(names ...string) func(*x509.Certificate) {
	return func(c *x509.Certificate) { c.DNSNames = names }
}

// mtlsResult is what the server's handler got from Authenticate.
type mtlsResult struct {
	p   *exchange.Principal
	err error
}

// startMTLSServer starts a real TLS server that asks for client
// certificates (clientAuth) trusted by clientCAs and hands each request to
// a.Authenticate.
func startMTLSServer(t testing.TB, a Authenticator, clientAuth tls.ClientAuthType, clientCAs *x509.CertPool) (*httptest.Server, <-chan mtlsResult) {
	t.Helper()
	results := make(chan mtlsResult, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r.Context(), &Input{Request: r})
		results <- mtlsResult{p: p, err: err}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{ClientAuth: clientAuth, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, results
}

// mtlsGet makes one request to srv on a fresh connection, presenting cert
// when it is not nil.
func mtlsGet(t testing.TB, srv *httptest.Server, cert *tls.Certificate) error {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		// Always present it: Go's client would otherwise leave out a
		// certificate whose issuer the server did not list, and a hostile
		// client does not.
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(srv.URL + "/orders")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func newTestMTLS(t testing.TB, identity string, allow ...string) *mtlsAuth {
	t.Helper()
	a, err := newMTLS("partners", config.Authenticator{Type: "mtls", Identity: identity, Allow: allow}, Deps{})
	if err != nil {
		t.Fatalf("newMTLS: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestMTLSIdentity(t *testing.T) {
	ca := newMTLSCA(t, "test client CA")
	tests := []struct {
		name        string
		identity    string
		allow       []string
		names       func(*x509.Certificate)
		wantSubject string
		wantReason  string
	}{
		{name: "cn, any", identity: "subject_cn", names: mtlsCN("alice"), wantSubject: "alice"},
		{name: "cn by default", identity: "", names: mtlsCN("alice"), wantSubject: "alice"},
		{name: "cn allowed exactly", identity: "subject_cn", allow: []string{"bob", "alice"}, names: mtlsCN("alice"), wantSubject: "alice"},
		{name: "cn not allowed", identity: "subject_cn", allow: []string{"bob"}, names: mtlsCN("alice"), wantReason: "identity_not_allowed"},
		{name: "cn exact is not a prefix", identity: "subject_cn", allow: []string{"alice"}, names: mtlsCN("alice2"), wantReason: "identity_not_allowed"},
		{name: "cn by prefix", identity: "subject_cn", allow: []string{"svc-*"}, names: mtlsCN("svc-orders"), wantSubject: "svc-orders"},
		{name: "cn outside prefix", identity: "subject_cn", allow: []string{"svc-*"}, names: mtlsCN("admin"), wantReason: "identity_not_allowed"},
		{name: "no cn", identity: "subject_cn", names: mtlsDNS("api.example.com"), wantReason: "no_identity"},
		{name: "spiffe id", identity: "san_uri", names: mtlsURIs(t, "spiffe://example.org/ns/prod/sa/orders"),
			wantSubject: "spiffe://example.org/ns/prod/sa/orders"},
		{name: "first allowed spiffe id", identity: "san_uri", allow: []string{"spiffe://example.org/ns/prod/*"},
			names:       mtlsURIs(t, "spiffe://other.org/ns/prod/sa/x", "spiffe://example.org/ns/prod/sa/orders", "spiffe://example.org/ns/prod/sa/billing"),
			wantSubject: "spiffe://example.org/ns/prod/sa/orders"},
		{name: "spiffe id outside prefix", identity: "san_uri", allow: []string{"spiffe://example.org/ns/prod/*"},
			names: mtlsURIs(t, "spiffe://example.org/ns/dev/sa/orders"), wantReason: "identity_not_allowed"},
		{name: "cn is not a uri identity", identity: "san_uri", names: mtlsCN("spiffe://example.org/ns/prod/sa/orders"), wantReason: "no_identity"},
		{name: "dns name allowed", identity: "san_dns", allow: []string{"orders.internal"},
			names: mtlsDNS("a.internal", "orders.internal"), wantSubject: "orders.internal"},
		{name: "dns name not allowed", identity: "san_dns", allow: []string{"orders.internal"},
			names: mtlsDNS("a.internal"), wantReason: "identity_not_allowed"},
		{name: "no dns name", identity: "san_dns", names: mtlsCN("orders.internal"), wantReason: "no_identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestMTLS(t, tt.identity, tt.allow...)
			srv, results := startMTLSServer(t, a, tls.VerifyClientCertIfGiven, ca.pool)
			cert := ca.issue(t, tt.names)
			if err := mtlsGet(t, srv, &cert); err != nil {
				t.Fatalf("request with a certificate from the trusted CA: %v", err)
			}
			res := <-results
			var gotSubject, gotReason string
			if res.p != nil {
				gotSubject = res.p.Subject
			}
			var f *Failure
			if errors.As(res.err, &f) {
				gotReason = f.Reason
				if f.Status != http.StatusUnauthorized {
					t.Errorf("failure status = %d, want 401", f.Status)
				}
			} else if res.err != nil {
				t.Fatalf("Authenticate error = %v, want a *Failure or none", res.err)
			}
			if gotSubject != tt.wantSubject || gotReason != tt.wantReason {
				t.Errorf("Authenticate = subject %q, reason %q; want %q, %q", gotSubject, gotReason, tt.wantSubject, tt.wantReason)
			}
		})
	}
}

func TestMTLSPrincipal(t *testing.T) {
	ca := newMTLSCA(t, "test client CA")
	a := newTestMTLS(t, "subject_cn")
	srv, results := startMTLSServer(t, a, tls.VerifyClientCertIfGiven, ca.pool)
	cert := ca.issue(t, mtlsCN("alice"))
	if err := mtlsGet(t, srv, &cert); err != nil {
		t.Fatal(err)
	}
	res := <-results
	if res.err != nil {
		t.Fatalf("Authenticate: %v", res.err)
	}
	sum := sha256.Sum256(cert.Leaf.Raw)
	want := exchange.Principal{Subject: "alice", Method: "mtls", Authenticator: "partners", KeyID: hex.EncodeToString(sum[:]), Expiry: cert.Leaf.NotAfter}
	got := *res.p
	if got.Subject != want.Subject || got.Method != want.Method || got.Authenticator != want.Authenticator ||
		got.KeyID != want.KeyID || !got.Expiry.Equal(want.Expiry) || got.Issuer != "" || got.Claims != nil {
		t.Errorf("principal = %+v, want %+v", got, want)
	}
}

// TestMTLSUnverified checks that only a certificate the handshake verified
// counts: none sent, one from another CA, or one a listener took without
// verifying it.
func TestMTLSUnverified(t *testing.T) {
	trusted := newMTLSCA(t, "test client CA")
	other := newMTLSCA(t, "someone else's CA")
	a := newTestMTLS(t, "subject_cn")

	t.Run("no certificate", func(t *testing.T) {
		srv, results := startMTLSServer(t, a, tls.VerifyClientCertIfGiven, trusted.pool)
		if err := mtlsGet(t, srv, nil); err != nil {
			t.Fatal(err)
		}
		if res := <-results; !errors.Is(res.err, ErrNoCredentials) {
			t.Errorf("Authenticate without a certificate = %v, %v; want ErrNoCredentials", res.p, res.err)
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		srv, results := startMTLSServer(t, a, tls.VerifyClientCertIfGiven, trusted.pool)
		cert := other.issue(t, mtlsCN("alice"))
		if err := mtlsGet(t, srv, &cert); err == nil {
			t.Errorf("request with a certificate from another CA succeeded, want a handshake failure")
		}
		select {
		case res := <-results:
			t.Errorf("handler ran with an untrusted certificate: %v, %v", res.p, res.err)
		default:
		}
	})
	t.Run("certificate requested but not verified", func(t *testing.T) {
		srv, results := startMTLSServer(t, a, tls.RequestClientCert, nil)
		cert := other.issue(t, mtlsCN("alice"))
		if err := mtlsGet(t, srv, &cert); err != nil {
			t.Fatal(err)
		}
		if res := <-results; !errors.Is(res.err, ErrNoCredentials) {
			t.Errorf("Authenticate with an unverified certificate = %v, %v; want ErrNoCredentials", res.p, res.err)
		}
	})
	t.Run("plain http", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "http://gateway/orders", nil)
		if p, err := a.Authenticate(context.Background(), &Input{Request: r}); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("Authenticate without TLS = %v, %v; want ErrNoCredentials", p, err)
		}
	})
}

func TestMTLSConstructor(t *testing.T) {
	tests := []struct {
		name     string
		identity string
		allow    []string
	}{
		{name: "unknown identity", identity: "email"},
		{name: "empty allow entry", identity: "subject_cn", allow: []string{""}},
		{name: "star inside", identity: "subject_cn", allow: []string{"svc-*-prod"}},
		{name: "two stars", identity: "subject_cn", allow: []string{"svc-**"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newMTLS("partners", config.Authenticator{Type: "mtls", Identity: tt.identity, Allow: tt.allow}, Deps{}); err == nil {
				t.Errorf("newMTLS(identity %q, allow %q) succeeded, want an error", tt.identity, tt.allow)
			}
		})
	}
	a := newTestMTLS(t, "san_uri", "spiffe://example.org/*")
	if got, want := a.Challenge(), `MutualTLS realm="bulwark"`; got != want {
		t.Errorf("Challenge() = %q, want %q", got, want)
	}
	if got := a.Ready(); got != "" {
		t.Errorf("Ready() = %q, want \"\"", got)
	}
}
