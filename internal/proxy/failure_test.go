package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// closedPort returns the URL of a loopback port that nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// startHanging starts an upstream whose handler writes headersFirst (if
// true: headers and a first chunk, flushed) and then waits for the request
// to end. It counts hits.
func startHanging(t testing.TB, headersFirst bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if headersFirst {
			_, _ = io.WriteString(w, "first chunk\n")
			_ = http.NewResponseController(w).Flush()
		}
		<-r.Context().Done() // the proxy gave up and closed the connection
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

func TestProxyUpstreamFailures(t *testing.T) {
	tests := []struct {
		name      string
		upstream  func(t testing.TB) (string, *atomic.Int64)
		cfg       config.Upstream
		want      int
		wantType  string
		wantClass string
		wantHits  int64
	}{
		{
			name:      "upstream down",
			upstream:  func(t testing.TB) (string, *atomic.Int64) { return closedPort(t), new(atomic.Int64) },
			want:      http.StatusBadGateway,
			wantType:  "bad-gateway",
			wantClass: classRefused,
		},
		{
			name: "slow headers past response_header_timeout",
			upstream: func(t testing.TB) (string, *atomic.Int64) {
				srv, hits := startHanging(t, false)
				return srv.URL, hits
			},
			cfg:       config.Upstream{ResponseHeaderTimeout: config.Duration(50 * time.Millisecond)},
			want:      http.StatusGatewayTimeout,
			wantType:  "gateway-timeout",
			wantClass: classTimeout,
			wantHits:  1,
		},
		{
			name: "slow headers past the overall timeout",
			upstream: func(t testing.TB) (string, *atomic.Int64) {
				srv, hits := startHanging(t, false)
				return srv.URL, hits
			},
			cfg:       config.Upstream{Timeout: config.Duration(50 * time.Millisecond)},
			want:      http.StatusGatewayTimeout,
			wantType:  "gateway-timeout",
			wantClass: classTimeout,
			wantHits:  1,
		},
		{
			name: "upstream closes without answering",
			upstream: func(t testing.TB) (string, *atomic.Int64) {
				hits := new(atomic.Int64)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						_ = conn.Close()
					}
				}))
				t.Cleanup(srv.Close)
				return srv.URL, hits
			},
			want:      http.StatusBadGateway,
			wantType:  "bad-gateway",
			wantClass: classClosed,
			wantHits:  1,
		},
		{
			name: "upstream answers garbage",
			upstream: func(t testing.TB) (string, *atomic.Int64) {
				hits := new(atomic.Int64)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					conn, brw, err := http.NewResponseController(w).Hijack()
					if err == nil {
						_, _ = brw.WriteString("SSH-2.0-OpenSSH\r\n\r\n")
						_ = brw.Flush()
						_ = conn.Close()
					}
				}))
				t.Cleanup(srv.Close)
				return srv.URL, hits
			},
			want:      http.StatusBadGateway,
			wantType:  "bad-gateway",
			wantClass: classOther,
			wantHits:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, hits := tt.upstream(t)
			cfg := tt.cfg
			cfg.URL = url
			f := newFixture(t)
			u := f.upstream(t, cfg)
			g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())

			req, err := http.NewRequest(http.MethodGet, g.srv.URL+"/orders/7?token=s3cr3t-query", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Request-Id", "rid-fail")
			req.Header.Set("Authorization", "Bearer s3cr3t-token")
			res := g.do(t, req)
			if res.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.want)
			}
			p := readProblem(t, res)
			if p.Type != problem.TypePrefix+tt.wantType || p.Status != tt.want {
				t.Errorf("problem = %+v, want type %s and status %d", p, tt.wantType, tt.want)
			}
			if res.Header.Get("X-Upstream") != "" || strings.Contains(p.Detail, "127.0.0.1") {
				t.Errorf("problem %+v leaks upstream details", p)
			}
			if got := g.next(t).rec.UpstreamStatus; got != 0 {
				t.Errorf("record UpstreamStatus = %d, want 0 (no upstream answer)", got)
			}
			if got := hits.Load(); got != tt.wantHits {
				t.Errorf("upstream hits = %d, want %d", got, tt.wantHits)
			}
			entries := f.logs.FilterLevelExact(zapcore.WarnLevel).All()
			if len(entries) != 1 {
				t.Fatalf("warn log entries = %d, want 1", len(entries))
			}
			fields := entries[0].ContextMap()
			want := map[string]any{"route": "get-order", "upstream": "orders", "request_id": "rid-fail", "error_class": tt.wantClass}
			for k, v := range want {
				if fields[k] != v {
					t.Errorf("log field %s = %v, want %v", k, fields[k], v)
				}
			}
			if line := fmt.Sprint(f.logs.All()); strings.Contains(line, "s3cr3t") {
				t.Errorf("log %s contains the query or Authorization value", line)
			}
		})
	}
}

func TestProxyTimeoutMidStream(t *testing.T) {
	// Headers and a first chunk arrive in time; the rest never does. The
	// status is already on the wire, so the overall timeout cannot turn
	// into a 504: the gateway aborts the response and the client sees a
	// truncated chunked body, never a clean end.
	upstream, _ := startHanging(t, true)
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: upstream.URL, Timeout: config.Duration(500 * time.Millisecond)})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())

	res := g.get(t, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want %d (headers arrived before the timeout)", res.StatusCode, http.StatusOK)
	}
	body, err := io.ReadAll(res.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read body = %q, %v; want io.ErrUnexpectedEOF", body, err)
	}
	if string(body) != "first chunk\n" {
		t.Errorf("body = %q, want the first chunk only", body)
	}
	if got := g.next(t).rec.UpstreamStatus; got != http.StatusOK {
		t.Errorf("record UpstreamStatus = %d, want %d", got, http.StatusOK)
	}
}

func TestProxyClientGone(t *testing.T) {
	arrived := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	t.Cleanup(upstream.Close)
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: upstream.URL})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{}), withRecord())

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		res, err := g.srv.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}
	if got := g.next(t).status; got != StatusClientClosedRequest {
		t.Errorf("recorded status = %d, want %d", got, StatusClientClosedRequest)
	}
	if got := f.logs.FilterLevelExact(zapcore.WarnLevel).Len(); got != 0 {
		t.Errorf("warn log entries = %d, want 0 for a client that went away", got)
	}
	if got := f.logs.FilterField(zap.String("error_class", classClientGone)).Len(); got != 1 {
		t.Errorf("client_gone log entries = %d, want 1", got)
	}
}

// timeoutErr is a net.Error that timed out, like the transport's "timeout
// awaiting response headers".
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout awaiting response headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelExpired()
	live := context.Background()
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{name: "body limit", ctx: live, err: &http.MaxBytesError{Limit: 1}, want: classBodyTooLarge},
		{name: "body limit wins over a gone client", ctx: canceled, err: &http.MaxBytesError{Limit: 1}, want: classBodyTooLarge},
		{name: "client gone", ctx: canceled, err: context.Canceled, want: classClientGone},
		{name: "overall deadline", ctx: expired, err: errors.New("read: use of closed connection"), want: classTimeout},
		{name: "response header timeout", ctx: live, err: timeoutErr{}, want: classTimeout},
		{name: "dial timeout", ctx: live, err: dial(timeoutErr{}), want: classTimeout},
		{name: "wrapped deadline", ctx: live, err: fmt.Errorf("x: %w", context.DeadlineExceeded), want: classTimeout},
		{name: "pin mismatch", ctx: live, err: fmt.Errorf("handshake: %w", errPinMismatch), want: classPin},
		{name: "unknown authority", ctx: live, err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, want: classTLS},
		{name: "bare hostname error", ctx: live, err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "orders.internal"}, want: classTLS},
		{name: "remote alert", ctx: live, err: &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, want: classTLS},
		{name: "record header", ctx: live, err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, want: classTLS},
		{name: "refused", ctx: live, err: dial(syscall.ECONNREFUSED), want: classRefused},
		{name: "reset", ctx: live, err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}, want: classReset},
		{name: "broken pipe", ctx: live, err: &net.OpError{Op: "write", Err: syscall.EPIPE}, want: classReset},
		{name: "dns", ctx: live, err: dial(&net.DNSError{Name: "orders.internal", IsNotFound: true}), want: classDNS},
		{name: "other dial failure", ctx: live, err: dial(syscall.EHOSTUNREACH), want: classDial},
		{name: "closed early", ctx: live, err: io.EOF, want: classClosed},
		{name: "closed mid-response", ctx: live, err: fmt.Errorf("read: %w", io.ErrUnexpectedEOF), want: classClosed},
		{name: "anything else", ctx: live, err: errors.New("malformed HTTP response"), want: classOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.ctx, tt.err); got != tt.want {
				t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
