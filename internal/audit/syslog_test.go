package audit

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// syslogMessage is one message a test receiver parsed.
type syslogMessage struct {
	conn                                     int // which connection, from 1
	client                                   string
	pri                                      int
	version, stamp, host, app, procid, msgid string
	sd, msg                                  string
}

// syslogReceiver is a real RFC 5425/6587 receiver on loopback: it reads
// octet-counted frames and parses each RFC 5424 header.
type syslogReceiver struct {
	t    testing.TB
	addr string
	tls  *tls.Config
	// resetAfter makes the receiver reset its first connection after it
	// has read that many messages (0: never); graceful closes with a FIN
	// instead.
	resetAfter int
	graceful   bool

	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
	nconns   int
	msgs     []syslogMessage
	problems []string
	closed   chan struct{} // closed when the first connection was closed
	changed  chan struct{}
	wg       sync.WaitGroup
}

func startSyslogReceiver(t testing.TB, r *syslogReceiver) *syslogReceiver {
	t.Helper()
	r.t = t
	r.closed = make(chan struct{})
	r.changed = make(chan struct{}, 1)
	r.listen("127.0.0.1:0")
	t.Cleanup(func() {
		r.stop()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.problems {
			t.Errorf("syslog receiver: %s", p)
		}
	})
	return r
}

func (r *syslogReceiver) listen(addr string) {
	r.t.Helper()
	var ln net.Listener
	var err error
	if r.tls != nil {
		ln, err = tls.Listen("tcp", addr, r.tls)
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		r.t.Fatalf("syslog receiver: listen: %v", err)
	}
	r.mu.Lock()
	r.ln, r.addr = ln, ln.Addr().String()
	r.mu.Unlock()
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.nconns++
			n := r.nconns
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Go(func() { r.serve(c, n) })
		}
	})
}

// stop closes the listener and resets every connection: the receiver is
// down.
func (r *syslogReceiver) stop() {
	r.mu.Lock()
	_ = r.ln.Close()
	for _, c := range r.conns {
		reset(c)
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// reset closes c with a TCP RST (SO_LINGER 0), as a crashing receiver
// does.
func reset(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (r *syslogReceiver) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

var syslogPRI = regexp.MustCompile(`^<([0-9]{1,3})>([1-9][0-9]{0,2})$`)

func (r *syslogReceiver) serve(c net.Conn, n int) {
	defer c.Close()
	client := ""
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			client = certs[0].Subject.CommonName
		}
	}
	br := bufio.NewReader(c)
	for read := 0; ; read++ {
		if n == 1 && r.resetAfter > 0 && read == r.resetAfter {
			if r.graceful {
				_ = c.Close()
			} else {
				reset(c)
			}
			close(r.closed)
			return
		}
		// RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG, MSG-LEN without
		// leading zeros.
		digits, err := br.ReadString(' ')
		if err != nil {
			if (err != io.EOF && !errors.Is(err, net.ErrClosed)) || digits != "" {
				r.problem("connection %d: frame cut short: %q, %v", n, digits, err)
			}
			return
		}
		digits = strings.TrimSuffix(digits, " ")
		size, err := strconv.Atoi(digits)
		if err != nil || size < 1 || digits[0] == '0' {
			r.problem("connection %d: MSG-LEN %q", n, digits)
			return
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(br, buf); err != nil {
			r.problem("connection %d: message shorter than its MSG-LEN %d: %v", n, size, err)
			return
		}
		m, ok := parseSyslog(string(buf))
		if !ok {
			r.problem("connection %d: not an RFC 5424 message: %q", n, buf)
			return
		}
		m.conn, m.client = n, client
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
}

// parseSyslog parses "<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
// SD MSG".
func parseSyslog(s string) (syslogMessage, bool) {
	f := strings.SplitN(s, " ", 8)
	if len(f) != 8 {
		return syslogMessage{}, false
	}
	pm := syslogPRI.FindStringSubmatch(f[0])
	if pm == nil {
		return syslogMessage{}, false
	}
	pri, _ := strconv.Atoi(pm[1])
	return syslogMessage{pri: pri, version: pm[2], stamp: f[1], host: f[2], app: f[3], procid: f[4], msgid: f[5], sd: f[6], msg: f[7]}, true
}

func (r *syslogReceiver) messages() []syslogMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]syslogMessage(nil), r.msgs...)
}

func (r *syslogReceiver) msgTexts() []string {
	var out []string
	for _, m := range r.messages() {
		out = append(out, m.msg)
	}
	return out
}

func (r *syslogReceiver) waitMessages(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for len(r.messages()) < n {
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("syslog receiver: %d messages after 30s, want %d", len(r.messages()), n)
		}
	}
}

func (r *syslogReceiver) config() config.AuditSyslog {
	return config.AuditSyslog{Address: r.addr, AppName: "bulwark-test", Facility: 13}
}

func TestSyslogMessageFormat(t *testing.T) {
	r := startSyslogReceiver(t, &syslogReceiver{})
	cfg := r.config()
	cfg.Facility = 10 // authpriv
	s, err := NewSyslog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := []struct {
		name string
		ev   string
		pri  int
	}{
		{name: "allowed", ev: `{"request_id":"a","decision":{"allowed":true}}`, pri: 10*8 + 6},
		{name: "denied", ev: `{"request_id":"b","decision":{"allowed":false,"stage":"authn","reason":"expired"}}`, pri: 10*8 + 4},
		{name: "would deny", ev: `{"request_id":"c","decision":{"allowed":true,"stage":"authz","mode":"report"}}`, pri: 10*8 + 5},
		{name: "denial words in a claim", ev: `{"principal":{"claims":{"x":{"decision":{"allowed":false}}}},"decision":{"allowed":true}}`, pri: 10*8 + 6},
		{name: "multi-byte and newline escapes", ev: `{"path":"/caf\u00e9/\n","decision":{"allowed":true}}`, pri: 10*8 + 6},
	}
	var batch [][]byte
	for _, e := range events {
		batch = append(batch, []byte(e.ev))
	}
	before := time.Now().Add(-time.Second)
	if err := s.Write(batch); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	r.waitMessages(t, len(events))
	host, _ := os.Hostname()
	for i, m := range r.messages() {
		e := events[i]
		if m.pri != e.pri {
			t.Errorf("%s: PRI = %d, want %d", e.name, m.pri, e.pri)
		}
		if m.msg != e.ev {
			t.Errorf("%s: MSG = %q, want the event %q", e.name, m.msg, e.ev)
		}
		at, err := time.Parse(time.RFC3339Nano, m.stamp)
		if err != nil || !strings.HasSuffix(m.stamp, "Z") || at.Before(before) {
			t.Errorf("%s: TIMESTAMP = %q (%v), want RFC 3339 UTC of now", e.name, m.stamp, err)
		}
		got := []string{m.version, m.host, m.app, m.procid, m.msgid, m.sd}
		want := []string{"1", host, "bulwark-test", strconv.Itoa(os.Getpid()), "audit", "-"}
		if !sameSlice(got, want) {
			t.Errorf("%s: VERSION HOSTNAME APP-NAME PROCID MSGID SD = %q, want %q", e.name, got, want)
		}
	}
}

func TestSyslogSeverity(t *testing.T) {
	tests := []struct {
		name string
		ev   string
		want int
	}{
		{name: "allowed", ev: `{"decision":{"allowed":true}}`, want: syslogInfo},
		{name: "denied", ev: `{"decision":{"allowed":false,"mode":"enforce"}}`, want: syslogWarning},
		{name: "report mode", ev: `{"decision":{"allowed":true,"mode":"report"}}`, want: syslogNotice},
		{name: "allowed with a denying claim", ev: `{"principal":{"claims":{"decision":{"allowed":false}}},"decision":{"allowed":true}}`, want: syslogInfo},
		{name: "denied with an allowing claim", ev: `{"principal":{"claims":{"decision":{"allowed":true}}},"decision":{"allowed":false}}`, want: syslogWarning},
		{name: "not JSON", ev: `"allowed":false`, want: syslogInfo},
		{name: "no decision", ev: `{"x":{"allowed":false}}`, want: syslogInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := syslogSeverity([]byte(tt.ev)); got != tt.want {
				t.Errorf("syslogSeverity(%s) = %d, want %d", tt.ev, got, tt.want)
			}
		})
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all written to files.
type testPKI struct {
	caFile, certFile, keyFile config.Path // CA; client certificate and key
	server                    tls.Certificate
	pool                      *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "audit test CA"},
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
	ca, _ := x509.ParseCertificate(caDER)
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	srvDER, srvKey := issue(2, "syslog receiver", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := issue(3, "bulwark-audit", x509.ExtKeyUsageClientAuth, nil)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	p.certFile = writePEM(t, dir, "client.pem", "CERTIFICATE", cliDER)
	p.keyFile = writePEM(t, dir, "client-key.pem", "PRIVATE KEY", keyDER)
	return p
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) config.Path {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Path(path)
}

func TestSyslogTLS(t *testing.T) {
	pki := newTestPKI(t)
	r := startSyslogReceiver(t, &syslogReceiver{tls: &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}})
	cfg := r.config()
	cfg.TLS = &config.ClientTLS{CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile}
	s, err := NewSyslog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write([][]byte{testEvent(0), testEvent(1)}); err != nil {
		t.Fatalf("Write() over TLS = %v", err)
	}
	r.waitMessages(t, 2)
	for _, m := range r.messages() {
		if m.client != "bulwark-audit" {
			t.Errorf("client certificate CN = %q, want bulwark-audit", m.client)
		}
	}
	if got, want := r.msgTexts(), testEvents(0, 2); !sameSlice(got, want) {
		t.Errorf("messages = %q, want %q", got, want)
	}
}

func TestSyslogTLSUntrustedReceiver(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t) // the sink trusts another CA
	r := startSyslogReceiver(t, &syslogReceiver{tls: &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}})
	cfg := r.config()
	cfg.TLS = &config.ClientTLS{CAFile: other.caFile}
	s, err := NewSyslog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write([][]byte{testEvent(0)}); err == nil {
		t.Error("Write() to a receiver with an untrusted certificate = nil, want an error")
	}
	if got := r.messages(); len(got) != 0 {
		t.Errorf("receiver got %d messages, want none", len(got))
	}
}

// A receiver that goes away between batches: the next batch goes out on a
// fresh connection, every event once.
func TestSyslogReconnectsAfterReceiverCloses(t *testing.T) {
	tests := []struct {
		name     string
		graceful bool
	}{
		{name: "reset", graceful: false},
		{name: "graceful close", graceful: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startSyslogReceiver(t, &syslogReceiver{resetAfter: 2, graceful: tt.graceful})
			sink, err := NewSyslog(r.config())
			if err != nil {
				t.Fatal(err)
			}
			w := NewWriter(sink, WriterConfig{BatchSize: 2, FlushInterval: time.Hour}, nil)
			w.Enqueue(testEvent(0))
			w.Enqueue(testEvent(1))
			receiveWithin(t, r.closed)
			if tt.graceful {
				// A FIN is no error to a writer: the sink must have
				// noticed it before its next write, or that batch is
				// lost. Wait for the sink's reader to see it.
				s := sink.(*syslogSink)
				s.mu.Lock()
				gone := s.gone
				s.mu.Unlock()
				receiveWithin(t, gone)
			}
			for i := 2; i < 6; i++ {
				w.Enqueue(testEvent(i))
			}
			closeWriter(t, w)
			r.waitMessages(t, 6)
			msgs := r.messages()
			if got, want := r.msgTexts(), testEvents(0, 6); !sameSlice(got, want) {
				t.Fatalf("messages = %q, want %q (each once, in order)", got, want)
			}
			if msgs[0].conn != 1 || msgs[5].conn != 2 {
				t.Errorf("connections of the first and last message = %d, %d; want 1, 2", msgs[0].conn, msgs[5].conn)
			}
		})
	}
}

func TestSyslogWriterRetriesWhileReceiverDown(t *testing.T) {
	r := startSyslogReceiver(t, &syslogReceiver{})
	sink, err := NewSyslog(r.config())
	if err != nil {
		t.Fatal(err)
	}
	failed := newTestCounter()
	w := NewWriter(sink, WriterConfig{BatchSize: 3, Failed: failed}, nil)
	w.Enqueue(testEvent(0))
	r.waitMessages(t, 1)
	r.stop()
	for i := 1; i < 10; i++ {
		w.Enqueue(testEvent(i))
	}
	for testutil.ToFloat64(failed) < 2 { // the reset, then a refused dial at least
		time.Sleep(5 * time.Millisecond)
	}
	r.listen(r.addr)
	closeWriter(t, w)
	r.waitMessages(t, 10)
	if got, want := r.msgTexts(), testEvents(0, 10); !sameSlice(got, want) {
		t.Errorf("messages = %q, want %q (each once, in order)", got, want)
	}
}

func TestSyslogConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  config.AuditSyslog
	}{
		{name: "no port", cfg: config.AuditSyslog{Address: "127.0.0.1"}},
		{name: "facility too large", cfg: config.AuditSyslog{Address: "127.0.0.1:6514", Facility: 24}},
		{name: "negative facility", cfg: config.AuditSyslog{Address: "127.0.0.1:6514", Facility: -1}},
		{name: "app name with a space", cfg: config.AuditSyslog{Address: "127.0.0.1:6514", AppName: "bul wark"}},
		{name: "app name too long", cfg: config.AuditSyslog{Address: "127.0.0.1:6514", AppName: strings.Repeat("a", 49)}},
		{name: "missing ca_file", cfg: config.AuditSyslog{Address: "127.0.0.1:6514", TLS: &config.ClientTLS{CAFile: config.Path(filepath.Join(dir, "none.pem"))}}},
		{name: "ca_file without a certificate", cfg: config.AuditSyslog{Address: "127.0.0.1:6514", TLS: &config.ClientTLS{CAFile: writePEM(t, dir, "junk.pem", "JUNK", []byte("x"))}}},
		{name: "certificate without its key", cfg: config.AuditSyslog{Address: "127.0.0.1:6514", TLS: &config.ClientTLS{CertFile: config.Path(filepath.Join(dir, "c.pem"))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSyslog(tt.cfg); err == nil {
				t.Errorf("NewSyslog(%s) = nil error, want one", tt.name)
			}
		})
	}
}
