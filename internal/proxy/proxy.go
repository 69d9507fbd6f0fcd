// Package proxy is the terminal stage of every route's chain: it forwards the
// request to the route's upstream with httputil.ReverseProxy and streams the
// answer back.
//
// Each configured upstream gets one Upstream, built once when the config
// loads: its URL, its own http.Transport (connection pool, connect and
// response-header timeouts, upstream TLS with optional client certificate and
// SPKI pinning). Handler returns the route's handler on top of it. Upstream
// failures become 502 or 504 problems written by the problem writer, never
// an upstream's or Go's own error text.
package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// Deps is what the proxy stage needs from the gateway.
type Deps struct {
	// Log receives upstream failures (at warn) and client disconnects (at
	// debug). nil means no logging.
	Log *zap.Logger
	// Problems writes the 502, 504 and 413 answers. Required.
	Problems *problem.Writer
	// Duration observes the upstream round trip, from the request being
	// sent to the response headers being received, with the labels route
	// and upstream. Failed round trips (no response) are not observed.
	// Required.
	Duration *prometheus.HistogramVec
	// Traceparent, when set, returns the traceparent header line the
	// upstream receives instead of the request's own: the span of the
	// upstream call as the upstream's parent (internal/tracing). "" keeps
	// the request's own. nil (tracing off) costs nothing per request.
	Traceparent func(*http.Request) string
}

// Upstream is one configured upstream: its URL and its own http.Transport
// (connection pool). It is safe for concurrent use; every route that names
// the upstream shares it through Handler.
type Upstream struct {
	name      string
	target    *url.URL
	timeout   time.Duration
	transport *http.Transport
	buffers   *bufferPool
	log       *zap.Logger
	problems  *problem.Writer
	duration  *prometheus.HistogramVec
	// traceparent is Deps.Traceparent; nil without tracing.
	traceparent func(*http.Request) string
}

// NewUpstream validates cfg and builds the upstream named name: the URL is
// parsed, the TLS files are read and the pins decoded here, so a bad config
// fails at load, not under traffic. An error names the offending key.
func NewUpstream(name string, cfg config.Upstream, deps Deps) (*Upstream, error) {
	if deps.Problems == nil || deps.Duration == nil {
		return nil, fmt.Errorf("upstream %q: proxy deps: problem writer and duration histogram are required", name)
	}
	target, err := parseTarget(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: url: %w", name, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("upstream %q: timeout: must not be negative", name)
	}
	transport, err := newTransport(target.Scheme, cfg)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", name, err)
	}
	log := deps.Log
	if log == nil {
		log = zap.NewNop()
	}
	return &Upstream{
		name:        name,
		target:      target,
		timeout:     cfg.Timeout.D(),
		transport:   transport,
		buffers:     newBufferPool(),
		log:         log.Named("proxy"),
		problems:    deps.Problems,
		duration:    deps.Duration,
		traceparent: deps.Traceparent,
	}, nil
}

// parseTarget accepts an absolute http or https URL without credentials,
// query or fragment: the path is the prefix every request path joins onto.
func parseTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL") // the parse error would echo a userinfo password
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q: must be http or https", u.Scheme)
	case u.Host == "":
		return nil, errors.New("missing host")
	case u.User != nil:
		return nil, errors.New("must not carry credentials (they would be logged and sent on every request)")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("must not have a query")
	case u.Fragment != "":
		return nil, errors.New("must not have a fragment")
	}
	return u, nil
}

// Handler returns the terminal handler of one route's chain: it proxies the
// request to the upstream. route labels metrics and log lines. The handler
// is built here, once per route, and only runs per request.
//
// The upstream's timeout also bounds streams such as server-sent events (an
// upstream that serves them needs timeout 0), but not WebSocket sessions:
// after the 101 the connection is a session, not a response. When the
// exchange fails after
// the response headers were sent (the timeout passed, the upstream went
// away mid-body), ReverseProxy aborts the response by panicking with
// http.ErrAbortHandler: a recovery middleware in front must re-panic it.
//
// resp says what happens to the upstream's responses: fingerprint headers
// removed, 5xx bodies masked, and the route's response stages run over one
// buffered, decoded view of the body.
func (u *Upstream) Handler(route string, resp ResponseOptions) http.Handler {
	h := &handler{upstream: u, route: route, resp: resp}
	rewrite := u.rewrite
	if len(resp.Stages) > 0 {
		// A part of a document cannot be validated or filtered: the
		// stages need the whole representation.
		rewrite = func(pr *httputil.ProxyRequest) {
			u.rewrite(pr)
			pr.Out.Header.Del("Range")
			pr.Out.Header.Del("If-Range")
		}
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: rewrite,
		Transport: &meter{
			next:     u.transport,
			duration: u.duration.WithLabelValues(route, u.name),
			timeout:  u.timeout,
		},
		BufferPool:   u.buffers,
		ErrorHandler: h.fail,
	}
	if len(resp.StripHeaders) > 0 || resp.MaskErrors || len(resp.Stages) > 0 {
		h.proxy.ModifyResponse = h.respond
	}
	// ReverseProxy logs body-copy failures (the client or the upstream went
	// away mid-stream) itself. They are routine: keep them at debug. The
	// error only comes back for an invalid level.
	if l, err := zap.NewStdLogAt(u.log.With(zap.String("route", route), zap.String("upstream", u.name)), zap.DebugLevel); err == nil {
		h.proxy.ErrorLog = l
	}
	return h
}

// Close releases the upstream's idle pooled connections. The gateway calls it
// on the upstreams of a replaced config after a reload; requests still in
// flight on them finish normally.
func (u *Upstream) Close() {
	u.transport.CloseIdleConnections()
}

// handler proxies one route's requests to its upstream.
type handler struct {
	upstream *Upstream
	route    string
	resp     ResponseOptions
	proxy    *httputil.ReverseProxy
}

var _ http.Handler = (*handler)(nil)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.proxy.ServeHTTP(w, r)
}

// rewrite points the outbound request at the upstream and sets the
// forwarding headers. ReverseProxy has already removed the hop-by-hop
// headers and every client-sent Forwarded and X-Forwarded-* header.
func (u *Upstream) rewrite(pr *httputil.ProxyRequest) {
	// SetURL joins the upstream's path prefix with the (canonical) request
	// path, keeps the query and sends the upstream's host as Host.
	pr.SetURL(u.target)
	h := pr.Out.Header
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	// One backing array for the three values, each slice capped at its own
	// element, so that an Add to one header can never write into another.
	vals := [3]string{clientIP(pr.In), pr.In.Host, proto}
	all := vals[:]
	if vals[0] != "" {
		h["X-Forwarded-For"] = all[0:1:1]
	}
	if vals[1] != "" {
		h["X-Forwarded-Host"] = all[1:2:2]
	}
	h["X-Forwarded-Proto"] = all[2:3:3]
	if u.traceparent != nil {
		if tp := u.traceparent(pr.In); tp != "" {
			h["Traceparent"] = []string{tp}
		}
	}
}

// clientIP is the address the edge determined (trusting X-Forwarded-For only
// from trusted proxies), or the socket peer when the request has no record.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	rec := exchange.From(r.Context())
	if rec == nil || !rec.ClientIP.IsValid() {
		if err != nil {
			return ""
		}
		return host
	}
	// Most clients connect directly: the socket peer's own text is then the
	// answer, without formatting the address again.
	if err == nil {
		if peer, err := netip.ParseAddr(host); err == nil && peer == rec.ClientIP {
			return host
		}
	}
	return rec.ClientIP.String()
}
