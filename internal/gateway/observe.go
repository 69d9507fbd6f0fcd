package gateway

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bulwark-gateway/bulwark/internal/audit"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/tracing"
)

// observer is the outermost handler of the public listener. It creates the
// request record, hands the request to the active Handler (swapped by
// reloads) and, at every exit, counts the request by route, method and
// status. It lives as long as the listener; Handlers come and go.
type observer struct {
	active  *atomic.Pointer[Handler]
	metrics *metrics.Metrics
	codes   *statusLabels
	audit   *audit.Logger   // nil: no audit events
	tracer  *tracing.Tracer // nil: no spans
}

func newObserver(active *atomic.Pointer[Handler], m *metrics.Metrics, al *audit.Logger) *observer {
	return &observer{active: active, metrics: m, codes: newStatusLabels(), audit: al}
}

var _ http.Handler = (*observer)(nil)

func (o *observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := &requestContext{Context: r.Context()}
	rc.route.RoutePatterns = rc.patterns[:0]
	rc.route.URLParams.Keys = rc.paramKeys[:0]
	rc.route.URLParams.Values = rc.paramValues[:0]
	rec, sw := &rc.rec, &rc.writer
	rec.Start = time.Now()
	sw.ResponseWriter = w
	r2 := r.WithContext(rc)
	if r.Body != nil && r.Body != http.NoBody {
		rc.body.ReadCloser = r.Body
		r2.Body = &rc.body
	}
	// The client's traceparent, read before the edge replaces it with the
	// one it sends upstream.
	var incoming string
	if o.tracer != nil {
		if tp := r.Header["Traceparent"]; len(tp) == 1 {
			incoming = tp[0]
		}
		rc.spans = o.tracer.NewSpans(incoming)
	}
	o.metrics.InFlight.Inc()
	// Deferred so that a response aborted with http.ErrAbortHandler (the
	// proxy does that when the upstream breaks mid-body) is counted too.
	defer func() {
		o.metrics.InFlight.Dec()
		status := sw.status
		switch {
		case status != 0:
		case rec.UpstreamStatus == http.StatusSwitchingProtocols:
			status = rec.UpstreamStatus // the proxy hijacked the connection and wrote the 101 itself
		default:
			status = http.StatusOK
		}
		route, method := rec.RouteName(), methodLabel(r.Method)
		end := time.Now()
		o.metrics.Requests.WithLabelValues(route, method, o.codes.label(status)).Inc()
		o.metrics.Duration.WithLabelValues(route, method).Observe(end.Sub(rec.Start).Seconds())
		if o.audit != nil {
			o.audit.Log(rec, audit.Request{Method: r.Method, Path: r2.URL.Path, Header: r.Header, Status: status,
				BytesIn: rc.body.n.Load(), BytesOut: sw.bytes, End: end})
		}
		if o.tracer != nil {
			rc.spans.Close()
			o.span(rc, r2, incoming, route, method, status, end)
		}
	}()
	o.active.Load().ServeHTTP(sw, r2)
}

// span records the request's server span (internal/tracing). The edge
// left the traceparent it sent upstream in the request's header map, which
// r shares with the request the observer was given.
func (o *observer) span(rc *requestContext, r *http.Request, incoming, route, method string, status int, end time.Time) {
	req := tracing.Request{Start: rc.rec.Start, End: end, Incoming: incoming, Route: route,
		Pattern: rc.route.RoutePattern(), Method: method, Status: status, RequestID: rc.rec.RequestID,
		TraceID: rc.rec.TraceID}
	if tp := r.Header["Traceparent"]; len(tp) == 1 {
		req.Outgoing = tp[0]
	}
	req.Denied, _ = rc.rec.Decisions()
	o.tracer.Record(context.Background(), &req)
}

// countingBody counts the request body bytes the chain read. The proxy may
// still be sending the body when the upstream has answered early, so the
// count is atomic.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// requestContext is the request's context as the gateway hands it to the
// chain: the server's context plus, in one allocation, the request record,
// chi's routing context (so chi does not wrap the request again), the
// status-recording writer and, with tracing, the stage spans.
type requestContext struct {
	context.Context
	rec    exchange.Record
	route  chi.Context
	writer statusWriter
	body   countingBody
	// spans are the request's stage spans; nil without tracing.
	spans *tracing.Spans
	// Room for what routing records, so that chi's appends do not
	// allocate for ordinary routes (one pattern, a few path parameters).
	patterns               [1]string
	paramKeys, paramValues [4]string
}

// Value answers the record, routing and stage-span keys itself, and asks
// the parent for everything else.
func (c *requestContext) Value(key any) any {
	switch key {
	case exchange.Key():
		return &c.rec
	case chi.RouteCtxKey:
		return &c.route
	case spansKey{}:
		return c.spans
	}
	return c.Context.Value(key)
}

// statusLabels holds the code label of every status an HTTP server can
// send, so counting a request does not format one.
type statusLabels [600]string

func newStatusLabels() *statusLabels {
	var l statusLabels
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return &l
}

func (l *statusLabels) label(code int) string {
	if code >= 0 && code < len(l) {
		return l[code]
	}
	return strconv.Itoa(code)
}

// methodLabel bounds the method label: a client can send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// statusWriter remembers the final status code and counts body bytes. It
// keeps Flush (server-sent events) and, through Unwrap,
// http.ResponseController's Hijack (WebSocket upgrades) working.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

// Status returns the status code sent so far, 0 before the header. The
// edge uses it to tell whether a panicking handler had started the response.
func (s *statusWriter) Status() int { return s.status }

// Flush sends buffered data to the client; a no-op when the underlying
// writer cannot flush.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
