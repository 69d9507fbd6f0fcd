package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
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
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout.D(),
		ExpectContinueTimeout:  expectContinueTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// meter wraps the transport of one route: it observes the round trip
// (request sent → response headers received) and records the upstream's
// status on the request's exchange record.
type meter struct {
	next     http.RoundTripper
	duration prometheus.Observer
}

var _ http.RoundTripper = (*meter)(nil)

func (m *meter) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := m.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	m.duration.Observe(time.Since(start).Seconds())
	if rec := exchange.From(req.Context()); rec != nil {
		rec.UpstreamStatus = res.StatusCode
	}
	return res, nil
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
