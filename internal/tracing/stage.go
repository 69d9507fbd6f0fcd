package tracing

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// Stage spans (docs/operations.md "Tracing"). Every stage that a sampled
// request runs gets one span, a child of the request's server span: the
// stages run one after another, so their spans are siblings, each from
// when its stage began to when it passed the request on (or answered it
// itself). A stage that denies ends the chain, so later stages have no
// span. The span of the upstream call is a client span, and the upstream
// receives it as its parent.

// Span attribute keys of the stage spans.
const (
	attrRoute          = attribute.Key("bulwark.route")
	attrUpstream       = attribute.Key("bulwark.upstream")
	attrDecisionStage  = attribute.Key("bulwark.decision.stage")
	attrDecisionReason = attribute.Key("bulwark.decision.reason")
	attrDecisionRule   = attribute.Key("bulwark.decision.rule")
	attrDecisionMode   = attribute.Key("bulwark.decision.mode")
	attrStatusCode     = attribute.Key("http.response.status_code")
	attrMethod         = attribute.Key("http.request.method")
)

// EdgeSpan is the name of the span of the edge's work before the first
// stage: request id, client address, path canonicalisation, header
// hygiene and the trace context.
const EdgeSpan = "edge"

// Stage is how one stage's spans start: its name and start options, built
// once with the chain. It is safe for concurrent use.
type Stage struct {
	name   string
	client bool
	opts   []trace.SpanStartOption
}

// Stage returns the span template of the stage name on route route ("" for
// a stage that runs before routing). Safe on a nil Tracer, which returns
// nil.
func (t *Tracer) Stage(name, route string) *Stage {
	if t == nil {
		return nil
	}
	st := &Stage{name: name, opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}}
	if route != "" {
		st.opts = append(st.opts, trace.WithAttributes(attrRoute.String(route)))
	}
	return st
}

// Upstream returns the span template of the upstream call of route: a
// client span named "proxy", whose span id the upstream receives as its
// parent (Spans.Upstream). method is the route's method, upstream the
// configured upstream's name. Safe on a nil Tracer, which returns nil.
func (t *Tracer) Upstream(route, method, upstream string) *Stage {
	if t == nil {
		return nil
	}
	return &Stage{name: "proxy", client: true, opts: []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrRoute.String(route), attrMethod.String(method), attrUpstream.String(upstream)),
	}}
}

// Spans is the stage spans of one request. The gateway creates it when the
// request arrives (NewSpans), begins it right after the edge (Begin), and
// its stages start and end their spans one after another (Start, Pass,
// Finish). It is not safe for concurrent use: the stages of a request run
// on the request's goroutine. A nil *Spans, and one whose request is not
// sampled, record nothing.
type Spans struct {
	t        *Tracer
	incoming string
	rec      *exchange.Record
	// parent carries the server span's context, the form in which the SDK
	// takes a parent. It is context.Background's child, with no deadline
	// or cancellation of the request's; nil until Begin found the
	// request sampled.
	parent context.Context
	// open is the span of the stage that runs now; nil between stages.
	open trace.Span
	seq  int // counts the spans started, so Finish knows whether its span is still open
	// client reports whether open is the upstream call's span; upstream
	// is then the traceparent that names it.
	client   bool
	upstream string
	// flags are the flags the upstream receives: the edge's (the client's
	// for a continued trace), with the sampled flag set.
	flags byte
	// What the record held when open started: an enforced denial, and how
	// many report-mode decisions.
	denied bool
	would  int
}

// NewSpans returns the stage spans of a request that arrived with the
// traceparent incoming (its only header line; "" for none or several).
// Safe on a nil Tracer, which returns nil.
func (t *Tracer) NewSpans(incoming string) *Spans {
	if t == nil {
		return nil
	}
	return &Spans{t: t, incoming: incoming}
}

// Begin decides whether the request's stages are recorded, once the edge
// has decided its trace context: rec.TraceID, and outgoing, the
// traceparent the edge set for the upstream. The decision is the server
// span's (Record): a stage span is recorded exactly when its parent is.
// A recorded request gets its first span here: the edge's work, from
// rec.Start until now.
func (s *Spans) Begin(rec *exchange.Record, outgoing string) {
	if s == nil || rec == nil {
		return
	}
	sc, ok := s.t.server(s.incoming, outgoing, rec.TraceID)
	if !ok {
		return
	}
	s.rec = rec
	s.flags = byte(trace.FlagsSampled)
	var f [1]byte
	if len(outgoing) >= 55 && decodeLower(f[:], outgoing[53:55]) {
		s.flags |= f[0]
	}
	s.parent = trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: sc.trace, SpanID: sc.span, TraceFlags: trace.FlagsSampled,
	}))
	_, span := s.t.tracer.Start(s.parent, EdgeSpan, trace.WithTimestamp(rec.Start))
	span.End()
}

// Start ends the open span, if any, and starts the span of st as the open
// one. It returns the token that Finish takes. Safe on a nil Spans and a
// nil st.
func (s *Spans) Start(st *Stage) int {
	if s == nil || s.parent == nil || st == nil {
		return 0
	}
	s.Pass()
	denied, would := s.rec.Decisions()
	s.denied, s.would = denied != nil, len(would)
	_, s.open = s.t.tracer.Start(s.parent, st.name, st.opts...)
	s.seq++
	s.client = st.client
	if st.client {
		s.upstream = traceparent(s.open.SpanContext(), s.flags)
	}
	return s.seq
}

// Pass ends the open span, if any: its stage passed the request on. Safe
// on a nil Spans.
func (s *Spans) Pass() {
	if s == nil || s.open == nil {
		return
	}
	s.end(false)
}

// Finish ends the span of token if it is still open: its stage answered
// the request itself, usually with a denial. failed marks a stage that
// failed without a decision of its own (a response stage's error). Safe
// on a nil Spans.
func (s *Spans) Finish(token int, failed bool) {
	if s == nil || s.open == nil || token != s.seq {
		return
	}
	if failed {
		s.open.SetStatus(codes.Error, "stage failed")
	}
	s.end(false)
}

// Close ends the span left open when a panic unwound the chain (an aborted
// response), marked as an error. Safe on a nil Spans.
func (s *Spans) Close() {
	if s == nil || s.open == nil {
		return
	}
	s.end(true)
}

// Upstream returns the traceparent for the upstream request: the open
// client span as its parent, the sampled flag set beside the other flags
// the edge kept. "" when no client span is open (the request is not
// recorded); the upstream then gets the edge's traceparent. Safe on a nil
// Spans.
func (s *Spans) Upstream() string {
	if s == nil || s.open == nil || !s.client {
		return ""
	}
	return s.upstream
}

// end ends the open span with what its stage decided: the decision it
// recorded, enforced (an error) or in report mode; for the upstream call,
// the upstream's status code.
func (s *Spans) end(aborted bool) {
	span := s.open
	s.open = nil
	denied, would := s.rec.Decisions()
	var attrs []attribute.KeyValue
	switch {
	case denied != nil && !s.denied:
		attrs = decisionAttrs(attrs, denied)
		span.SetStatus(codes.Error, denied.Reason)
	case len(would) > s.would:
		attrs = decisionAttrs(attrs, &would[len(would)-1])
	}
	if s.client {
		// OpenTelemetry's HTTP conventions: a client span's status is an
		// error for a 4xx or 5xx answer, and for no answer at all.
		if code := s.rec.UpstreamStatus; code != 0 {
			attrs = append(attrs, attrStatusCode.Int(code))
			if code >= 400 {
				span.SetStatus(codes.Error, "")
			}
		} else {
			span.SetStatus(codes.Error, "no upstream response")
		}
	}
	if aborted {
		span.SetStatus(codes.Error, "aborted")
	}
	if len(attrs) > 0 {
		span.SetAttributes(attrs...)
	}
	span.End()
}

func decisionAttrs(attrs []attribute.KeyValue, d *exchange.Decision) []attribute.KeyValue {
	mode := d.Mode
	if mode == config.ModeInherit {
		mode = config.ModeEnforce
	}
	attrs = append(attrs, attrDecisionStage.String(d.Stage), attrDecisionReason.String(d.Reason),
		attrDecisionMode.String(string(mode)))
	if d.Rule != "" {
		attrs = append(attrs, attrDecisionRule.String(d.Rule))
	}
	return attrs
}

// traceparent formats sc as a version-00 traceparent with flags.
func traceparent(sc trace.SpanContext, flags byte) string {
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}
