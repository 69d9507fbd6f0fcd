package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envOf returns a lookupEnv over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// lines joins YAML lines, so a test can count line numbers at a glance.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// minimal is the smallest valid config: one upstream, one public route.
const minimal = `upstreams:
  app: { url: "http://127.0.0.1:9000" }
routes:
  - { name: r, method: GET, path: /, upstream: app, auth: none }
`

// mustParse parses src as t.yaml and fails the test on any error.
func mustParse(t testing.TB, src string, env map[string]string) *Config {
	t.Helper()
	cfg, err := Parse("t.yaml", []byte(src), envOf(env))
	if err != nil {
		t.Fatalf("Parse() error:\n%v", err)
	}
	return cfg
}

// parseErrors parses src as t.yaml and returns its errors; it fails the
// test when src loads.
func parseErrors(t testing.TB, src string, env map[string]string) Errors {
	t.Helper()
	_, err := Parse("t.yaml", []byte(src), envOf(env))
	if err == nil {
		t.Fatalf("Parse() succeeded, want an error for:\n%s", src)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse() error is %T, want Errors", err)
	}
	return errs
}

// where formats the position and path of an error: "3:5: routes[0].path".
func where(e Error) string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Path) }

// errorCase is one config that must fail with exactly one error.
type errorCase struct {
	name string
	src  string
	env  map[string]string
	want string // position and path, "line:col: path"
	msg  string // a part of the message
}

// runErrorCases checks that each case fails with exactly the one expected
// error.
func runErrorCases(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, tt.src, tt.env)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(errs), errs)
			}
			if got := where(errs[0]); got != tt.want {
				t.Errorf("error at %q, want %q (%v)", got, tt.want, errs[0])
			}
			if !strings.Contains(errs[0].Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", errs[0].Msg, tt.msg)
			}
		})
	}
}

// pki is a throw-away CA with a server certificate, written to files.
type pki struct {
	caFile, certFile, keyFile string
	// pin is the base64 SHA-256 of the server certificate's public key.
	pin string
}

func newPKI(t testing.TB) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	p := pki{
		caFile:   writeFile(t, dir, "ca.crt", pemOf("CERTIFICATE", caDER)),
		certFile: writeFile(t, dir, "tls.crt", pemOf("CERTIFICATE", der)),
		keyFile:  writeFile(t, dir, "tls.key", pemOf("PRIVATE KEY", keyDER)),
		pin:      base64.StdEncoding.EncodeToString(sum[:]),
	}
	return p
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	writeFile(t, dir, "certs/tls.crt", mustRead(t, p.certFile))
	writeFile(t, dir, "certs/tls.key", mustRead(t, p.keyFile))
	path := writeFile(t, dir, "conf/bulwark.yaml", lines(
		"server:",
		"  tls:",
		"    cert_file: ../certs/tls.crt",
		"    key_file: "+filepath.Join(dir, "certs/tls.key"),
		minimal,
	))
	cfg, err := Load(path, envOf(nil))
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	if got, want := cfg.File, path; got != want {
		t.Errorf("File = %q, want %q", got, want)
	}
	if got, want := cfg.Dir, filepath.Join(dir, "conf"); got != want {
		t.Errorf("Dir = %q, want %q", got, want)
	}
	// The relative path resolves against the config file's directory, the
	// absolute one stays as written.
	if got, want := string(cfg.Server.TLS.CertFile), filepath.Join(dir, "certs/tls.crt"); got != want {
		t.Errorf("cert_file = %q, want %q", got, want)
	}
	if got, want := string(cfg.Server.TLS.KeyFile), filepath.Join(dir, "certs/tls.key"); got != want {
		t.Errorf("key_file = %q, want %q", got, want)
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		path   string
		want   string
		wantIs error
	}{
		{
			name:   "missing file",
			path:   filepath.Join(dir, "nope.yaml"),
			want:   filepath.Join(dir, "nope.yaml") + ": cannot read the config: no such file or directory",
			wantIs: fs.ErrNotExist,
		},
		{
			name: "directory",
			path: dir,
			want: dir + ": cannot read the config: is a directory",
		},
		{
			name: "bad config reports the file as given",
			path: writeFile(t, dir, "bad.yaml", "server: {listen: 1}\n"+minimal),
			want: filepath.Join(dir, "bad.yaml") + ":1:18: server.listen: must be host:port, e.g. :8080 or 127.0.0.1:8080",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path, envOf(nil))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load() error = %v (%T), want Errors", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Load() error = %q, want %q", got, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantIs)
			}
		})
	}
}

// TestParseReportsEveryError checks that one file with several problems
// reports all of them, in file order, one per line.
func TestParseReportsEveryError(t *testing.T) {
	src := lines(
		"server:",
		"  listen: nope",
		"  bogus: 1",
		"upstreams:",
		"  app: { url: ftp://x }",
		"routes:",
		"  - { name: r, method: TRACE, path: /a, upstream: app, auth: none }",
		"specs: { orders: { file: missing.yaml } }",
	)
	errs := parseErrors(t, src, nil)
	want := strings.Join([]string{
		`t.yaml:2:11: server.listen: must be host:port, e.g. :8080 or 127.0.0.1:8080`,
		`t.yaml:3:3: server.bogus: unknown key "bogus" (known keys here: listen, tls, http_redirect, trusted_proxies, identity_headers, max_body_size, max_header_bytes, max_header_count, max_response_buffer, read_header_timeout, read_timeout, write_timeout, idle_timeout, shutdown_delay, shutdown_timeout)`,
		`t.yaml:5:15: upstreams.app.url: scheme must be http or https`,
		`t.yaml:7:24: routes[0].method: TRACE is refused: it echoes the request back, headers included (cross-site tracing)`,
		`t.yaml:8:26: specs.orders.file: missing.yaml: open missing.yaml: no such file or directory`,
	}, "\n")
	if got := errs.Error(); got != want {
		t.Errorf("Errors.Error() =\n%s\nwant\n%s", got, want)
	}
}
