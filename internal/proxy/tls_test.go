package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// authority is a certificate authority generated for one test.
type authority struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	file   config.Path // PEM of the CA certificate
	pin    string      // base64 SHA-256 of the CA's SPKI
	serial int64
}

// issued is a certificate issued by an authority, with its files.
type issued struct {
	tls      tls.Certificate
	certFile config.Path
	keyFile  config.Path
	pin      string
}

func newAuthority(t testing.TB, name string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
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
	file := writePEM(t, name+"-ca.pem", "CERTIFICATE", der)
	return &authority{cert: cert, key: key, file: file, pin: spkiPin(cert), serial: 1}
}

// issue signs a leaf for the given names; client marks a client certificate.
func (a *authority) issue(t testing.TB, name string, dns []string, ips []net.IP, client bool) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a.serial++
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(a.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writePEM(t, name+".pem", "CERTIFICATE", der)
	keyFile := writePEM(t, name+"-key.pem", "PRIVATE KEY", keyDER)
	pair, err := tls.LoadX509KeyPair(string(certFile), string(keyFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issued{tls: pair, certFile: certFile, keyFile: keyFile, pin: spkiPin(leaf)}
}

func spkiPin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func writePEM(t testing.TB, name, typ string, der []byte) config.Path {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Path(path)
}

// tlsUpstream describes the HTTPS echo upstream of one test case.
type tlsUpstream struct {
	requireClientCert bool
	maxVersion        uint16
	http2             bool
}

// startTLSEcho starts an HTTPS echo upstream with a certificate for
// upstream.test and 127.0.0.1 issued by ca.
func startTLSEcho(t testing.TB, ca *authority, opt tlsUpstream) (*httptest.Server, *atomic.Int64, issued) {
	t.Helper()
	leaf := ca.issue(t, "upstream", []string{"upstream.test"}, []net.IP{net.IPv4(127, 0, 0, 1)}, false)
	hits := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(echoHandler(hits))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point of these tests
	srv.EnableHTTP2 = opt.http2
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.tls}, MaxVersion: opt.maxVersion}
	if opt.requireClientCert {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		srv.TLS.ClientCAs = pool
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, hits, leaf
}

func TestProxyUpstreamTLS(t *testing.T) {
	ca := newAuthority(t, "upstream-ca")
	other := newAuthority(t, "other-ca")
	client := ca.issue(t, "gateway", nil, nil, true)
	tests := []struct {
		name      string
		upstream  tlsUpstream
		tls       func(leaf issued) *config.UpstreamTLS
		want      int
		wantClass string // of the warn log line, when want is not 200
	}{
		{
			name: "trusted CA",
			tls:  func(issued) *config.UpstreamTLS { return &config.UpstreamTLS{CAFile: ca.file} },
			want: http.StatusOK,
		},
		{
			name:      "system roots do not know the test CA",
			tls:       func(issued) *config.UpstreamTLS { return nil },
			want:      http.StatusBadGateway,
			wantClass: classTLS,
		},
		{
			name:      "wrong CA",
			tls:       func(issued) *config.UpstreamTLS { return &config.UpstreamTLS{CAFile: other.file} },
			want:      http.StatusBadGateway,
			wantClass: classTLS,
		},
		{
			name: "server name matches",
			tls: func(issued) *config.UpstreamTLS {
				return &config.UpstreamTLS{CAFile: ca.file, ServerName: "upstream.test"}
			},
			want: http.StatusOK,
		},
		{
			name: "server name mismatch",
			tls: func(issued) *config.UpstreamTLS {
				return &config.UpstreamTLS{CAFile: ca.file, ServerName: "payments.test"}
			},
			want:      http.StatusBadGateway,
			wantClass: classTLS,
		},
		{
			name: "leaf pin matches",
			tls: func(leaf issued) *config.UpstreamTLS {
				return &config.UpstreamTLS{CAFile: ca.file, PinSHA256: []string{other.pin, leaf.pin}}
			},
			want: http.StatusOK,
		},
		{
			name: "CA pin matches",
			tls: func(issued) *config.UpstreamTLS {
				return &config.UpstreamTLS{CAFile: ca.file, PinSHA256: []string{ca.pin}}
			},
			want: http.StatusOK,
		},
		{
			name: "pin mismatch",
			tls: func(issued) *config.UpstreamTLS {
				return &config.UpstreamTLS{CAFile: ca.file, PinSHA256: []string{other.pin}}
			},
			want:      http.StatusBadGateway,
			wantClass: classPin,
		},
		{
			name:     "client certificate presented",
			upstream: tlsUpstream{requireClientCert: true},
			tls: func(issued) *config.UpstreamTLS {
				return &config.UpstreamTLS{CAFile: ca.file, CertFile: client.certFile, KeyFile: client.keyFile}
			},
			want: http.StatusOK,
		},
		{
			name:      "client certificate missing",
			upstream:  tlsUpstream{requireClientCert: true},
			tls:       func(issued) *config.UpstreamTLS { return &config.UpstreamTLS{CAFile: ca.file} },
			want:      http.StatusBadGateway,
			wantClass: classTLS,
		},
		{
			name:      "upstream below min_version",
			upstream:  tlsUpstream{maxVersion: tls.VersionTLS12},
			tls:       func(issued) *config.UpstreamTLS { return &config.UpstreamTLS{CAFile: ca.file, MinVersion: "1.3"} },
			want:      http.StatusBadGateway,
			wantClass: classTLS,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, hits, leaf := startTLSEcho(t, ca, tt.upstream)
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: srv.URL, TLS: tt.tls(leaf)})
			g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())

			res := g.get(t, "/orders/7")
			if res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.want)
			}
			wantHits := int64(1)
			if tt.want != http.StatusOK {
				wantHits = 0 // the handshake failed: no request reached the upstream
				readProblem(t, res)
				entries := f.logs.FilterLevelExact(zapcore.WarnLevel).All()
				if len(entries) != 1 || entries[0].ContextMap()["error_class"] != tt.wantClass {
					t.Errorf("warn log = %v, want one entry with error_class %q", entries, tt.wantClass)
				}
			}
			if got := hits.Load(); got != wantHits {
				t.Errorf("upstream hits = %d, want %d", got, wantHits)
			}
		})
	}
}

func TestProxyUpstreamHTTP2(t *testing.T) {
	ca := newAuthority(t, "upstream-ca")
	srv, _, _ := startTLSEcho(t, ca, tlsUpstream{http2: true})
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: srv.URL, TLS: &config.UpstreamTLS{CAFile: ca.file}})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())

	var got seen
	if err := json.NewDecoder(g.get(t, "/orders/7").Body).Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got.Proto != 2 {
		t.Errorf("upstream request protocol = HTTP/%d, want HTTP/2", got.Proto)
	}
	if got.Path != "/orders/7" || got.Header.Get("X-Forwarded-For") != "203.0.113.9" {
		t.Errorf("upstream saw path %q, X-Forwarded-For %q; want /orders/7, 203.0.113.9", got.Path, got.Header.Get("X-Forwarded-For"))
	}
}

func TestPinSetVerify(t *testing.T) {
	ca := newAuthority(t, "ca")
	leaf := ca.issue(t, "leaf", []string{"leaf.test"}, nil, false)
	leafCert, err := x509.ParseCertificate(leaf.tls.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pins, err := parsePins([]string{leaf.pin})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		chains [][]*x509.Certificate
		want   error
	}{
		{name: "pinned leaf in chain", chains: [][]*x509.Certificate{{leafCert, ca.cert}}, want: nil},
		{name: "pinned leaf in second chain", chains: [][]*x509.Certificate{{ca.cert}, {leafCert}}, want: nil},
		{name: "no pinned key", chains: [][]*x509.Certificate{{ca.cert}}, want: errPinMismatch},
		{name: "no verified chain", chains: nil, want: errPinMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pins.verify(tls.ConnectionState{VerifiedChains: tt.chains}); got != tt.want {
				t.Errorf("verify = %v, want %v", got, tt.want)
			}
		})
	}
}
