package gateway

import (
	"context"
	"net/http"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/proxy"
	"github.com/bulwark-gateway/bulwark/internal/tracing"
)

// Stage spans (docs/operations.md "Tracing"). With a tracer, the chain is
// built with a span wrapper around each stage it contains; without one,
// every helper here returns the stage unchanged, so a chain built without
// tracing has no wrapper and runs no span code.
//
// The request's *tracing.Spans is made by the observer, which knows the
// client's traceparent, and reached by the stages through the request
// context (spansKey); the first handler after the edge begins it.

// spansKey is the context key under which requestContext answers the
// request's *tracing.Spans.
type spansKey struct{}

// spansFrom returns the request's stage spans; nil when the request did not
// pass the observer of a traced gateway.
func spansFrom(ctx context.Context) *tracing.Spans {
	s, _ := ctx.Value(spansKey{}).(*tracing.Spans)
	return s
}

// afterEdge returns what runs after the edge: the global and per-IP rate
// limits (limits), then table. With a tracer, the request's stage spans
// begin first (with the span of the edge's work) and the limits get a span
// of their own when the config has any.
func afterEdge(t *tracing.Tracer, limits func(http.Handler) http.Handler, table http.Handler) http.Handler {
	if t == nil {
		return limits(table)
	}
	return &beginSpans{next: chainSpans{t: t}.stage("ratelimit.edge", limits)(table)}
}

// beginSpans begins the request's stage spans once the edge has set the
// request's trace id and the traceparent for the upstream.
type beginSpans struct{ next http.Handler }

var _ http.Handler = (*beginSpans)(nil)

func (b *beginSpans) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := spansFrom(r.Context()); s != nil {
		var outgoing string
		if tp := r.Header["Traceparent"]; len(tp) == 1 {
			outgoing = tp[0]
		}
		s.Begin(exchange.From(r.Context()), outgoing)
	}
	b.next.ServeHTTP(w, r)
}

// upstreamTraceparent is the proxy's hook for the traceparent the upstream
// receives (proxy.Deps.Traceparent): the request's upstream-call span as
// the parent. nil without a tracer.
func upstreamTraceparent(t *tracing.Tracer) func(*http.Request) string {
	if t == nil {
		return nil
	}
	return func(r *http.Request) string { return spansFrom(r.Context()).Upstream() }
}

// chainSpans wraps the stages of one route's chain in spans. Its zero
// tracer wraps nothing.
type chainSpans struct {
	t     *tracing.Tracer
	route string // "" before routing
}

// stage returns mw with a span named name around the stage's own work:
// the span starts when the stage is entered and ends when it passes the
// request on (or, when it answers the request itself, when it returns). A
// stage that mw leaves out of the chain (mw returns next unchanged) gets no
// span and no wrapper.
func (c chainSpans) stage(name string, mw func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	if c.t == nil {
		return mw
	}
	st := c.t.Stage(name, c.route)
	return func(next http.Handler) http.Handler {
		pass := &passSpan{next: next}
		h := mw(pass)
		if h == http.Handler(pass) {
			return next // the route does not run the stage
		}
		return &startSpan{stage: st, next: h}
	}
}

// upstream returns the proxy handler h with the client span of the upstream
// call around it: the span ends when the first response stage begins, or
// when h returns (a streamed body has then been copied).
func (c chainSpans) upstream(method, upstream string, h http.Handler) http.Handler {
	if c.t == nil {
		return h
	}
	return &startSpan{stage: c.t.Upstream(c.route, method, upstream), next: h}
}

// response returns the response stage rs with a span named name around
// each of its runs.
func (c chainSpans) response(name string, rs proxy.ResponseStage) proxy.ResponseStage {
	if c.t == nil {
		return rs
	}
	return &responseSpan{stage: c.t.Stage(name, c.route), next: rs}
}

// startSpan starts its stage's span, runs the stage, and ends the span if
// the stage did not pass the request on.
type startSpan struct {
	stage *tracing.Stage
	next  http.Handler
}

var _ http.Handler = (*startSpan)(nil)

func (s *startSpan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	spans := spansFrom(r.Context())
	token := spans.Start(s.stage)
	s.next.ServeHTTP(w, r)
	spans.Finish(token, false)
}

// passSpan is the next handler as a stage sees it: it ends the stage's
// span before the request moves on.
type passSpan struct{ next http.Handler }

var _ http.Handler = (*passSpan)(nil)

func (p *passSpan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	spansFrom(r.Context()).Pass()
	p.next.ServeHTTP(w, r)
}

// responseSpan is a response stage with a span around each run.
type responseSpan struct {
	stage *tracing.Stage
	next  proxy.ResponseStage
}

var _ proxy.ResponseStage = (*responseSpan)(nil)

func (s *responseSpan) Respond(r *http.Request, resp *proxy.Response) error {
	spans := spansFrom(r.Context())
	token := spans.Start(s.stage)
	err := s.next.Respond(r, resp)
	spans.Finish(token, err != nil)
	return err
}
