package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// Defaults for the transport keys an upstream leaves at zero. A connect
// attempt is always bounded; a zero response-header timeout stays zero
// (no limit) so that long-polling upstreams work when the config says so.
const (
	defaultConnectTimeout      = 5 * time.Second
	defaultIdleConnTimeout     = 90 * time.Second
	defaultMaxIdleConnsPerHost = 256
	tcpKeepAlive               = 30 * time.Second
	expectContinueTimeout      = time.Second
	maxResponseHeaderBytes     = 1 << 20
	bufferSize                 = 32 << 10
)

// newTransport builds the upstream's own connection pool. It never consults
// the HTTP_PROXY environment: an upstream is dialled directly.
func newTransport(scheme string, cfg config.Upstream) (*http.Transport, error) {
	for _, d := range []struct {
		key string
		val config.Duration
	}{
		{"connect_timeout", cfg.ConnectTimeout},
		{"response_header_timeout", cfg.ResponseHeaderTimeout},
		{"idle_conn_timeout", cfg.IdleConnTimeout},
	} {
		if d.val < 0 {
			return nil, fmt.Errorf("%s: must not be negative", d.key)
		}
	}
	if cfg.MaxIdleConnsPerHost < 0 {
		return nil, errors.New("max_idle_conns_per_host: must not be negative")
	}
	connect := orDefault(cfg.ConnectTimeout.D(), defaultConnectTimeout)
	idlePerHost := cfg.MaxIdleConnsPerHost
	if idlePerHost == 0 {
		idlePerHost = defaultMaxIdleConnsPerHost
	}
	var tlsConfig *tls.Config
	switch {
	case scheme == "https":
		c, err := newTLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsConfig = c
	case cfg.TLS != nil:
		// Refuse rather than ignore: a pin or CA that silently does
		// nothing would fail open.
		return nil, errors.New("tls: set, but the url is not https")
	}
	dialer := &net.Dialer{Timeout: connect, KeepAlive: tcpKeepAlive}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    connect,
		ForceAttemptHTTP2:      scheme == "https",
		DisableCompression:     true, // the client's Accept-Encoding passes through untouched
		MaxIdleConns:           0,    // no overall cap; MaxIdleConnsPerHost bounds the one host
		MaxIdleConnsPerHost:    idlePerHost,
		IdleConnTimeout:        orDefault(cfg.IdleConnTimeout.D(), defaultIdleConnTimeout),
		ResponseHeaderTimeout:  headerTimeout(cfg),
		ExpectContinueTimeout:  expectContinueTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}, nil
}

// headerTimeout bounds the wait for the response headers: the configured
// response_header_timeout, or the overall timeout when that is shorter, so
// that the overall timeout holds before the headers too.
func headerTimeout(cfg config.Upstream) time.Duration {
	d, overall := cfg.ResponseHeaderTimeout.D(), cfg.Timeout.D()
	if overall > 0 && (d == 0 || overall < d) {
		return overall
	}
	return d
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// meter wraps the transport of one route: it observes the round trip
// (request sent → response headers received), records the upstream's
// status on the request's exchange record, and enforces the upstream's
// overall timeout on the response body.
//
// The overall timeout is not a context deadline around the exchange: that
// costs a context, a timer, a copy of the request and cancellation
// plumbing in the transport for every request. The wait for the headers is
// bounded by the transport (see headerTimeout); the body gets what is left
// of the timeout, after which it is closed, which ends a blocked read.
type meter struct {
	next     http.RoundTripper
	duration prometheus.Observer
	timeout  time.Duration // 0: no overall timeout
}

var _ http.RoundTripper = (*meter)(nil)

// errExchangeTimeout reports that the upstream's overall timeout passed
// before its response headers arrived.
var errExchangeTimeout = fmt.Errorf("upstream exchange exceeded its timeout: %w", context.DeadlineExceeded)

func (m *meter) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := m.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	m.duration.Observe(elapsed.Seconds())
	if rec := exchange.From(req.Context()); rec != nil {
		rec.UpstreamStatus = res.StatusCode
	}
	// An upgraded connection (101) is a session, not a body: the timeout
	// does not apply to it, and ReverseProxy needs res.Body as it is.
	if m.timeout <= 0 || res.StatusCode == http.StatusSwitchingProtocols || res.Body == nil || res.Body == http.NoBody {
		return res, nil
	}
	left := m.timeout - elapsed
	if left <= 0 {
		_ = res.Body.Close() // nothing of it will be read
		return nil, errExchangeTimeout
	}
	body := &deadlineBody{rc: res.Body}
	body.timer = time.AfterFunc(left, body.expire)
	res.Body = body
	return res, nil
}

// deadlineBody is a response body that is closed when its deadline passes,
// so that a read blocked on a stalled upstream returns. Closing a transport
// body concurrently with a Read is safe: that is how the transport itself
// cancels requests.
type deadlineBody struct {
	rc      io.ReadCloser
	timer   *time.Timer
	expired atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && b.expired.Load() {
		return n, errExchangeTimeout
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}

func (b *deadlineBody) expire() {
	b.expired.Store(true)
	_ = b.rc.Close() // the blocked Read reports the timeout
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers. It pools array
// pointers, so Get and Put do not allocate.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([bufferSize]byte) }}}
}

// Get returns a buffer of bufferSize bytes.
func (p *bufferPool) Get() []byte {
	return p.pool.Get().(*[bufferSize]byte)[:]
}

// Put returns b to the pool; buffers of another size are dropped.
func (p *bufferPool) Put(b []byte) {
	if cap(b) < bufferSize {
		return
	}
	p.pool.Put((*[bufferSize]byte)(b[:bufferSize]))
}
