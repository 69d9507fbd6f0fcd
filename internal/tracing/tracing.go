// Package tracing exports OpenTelemetry spans over OTLP/HTTP (protobuf),
// when the config has a tracing section (docs/operations.md "Tracing"):
// one server span per request and, under it, one span per stage of the
// route's chain (stage.go).
//
// The edge (internal/edge/trace.go) owns the trace context: it keeps the
// client's trace id or starts a trace, and chooses a span id. The server
// span recorded here reuses those ids, so it is a child of the client's
// span: the SDK's id generator is replaced by one that returns the ids the
// edge chose (and fresh random ids for the stage spans), and the client's
// span becomes the remote parent. The upstream's parent is the span of the
// upstream call, a child of the server span.
package tracing

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// Tracer records and exports the spans. A nil *Tracer records nothing.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	// ratio is the sampler of the traces the edge starts; none: sample_ratio
	// is 0, so only a sampled remote parent records.
	ratio sdktrace.Sampler
	none  bool
}

// New starts the exporter of cfg: a batching span processor (one
// goroutine) in front of an OTLP/HTTP client (export.go). Nothing is sent until a
// sampled span ends.
// Export errors go to log (the SDK's error handler is process-wide).
func New(cfg config.Tracing, version string, log *zap.Logger) (*Tracer, error) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("span export failed", zap.Error(err))
	}))
	headers := make(map[string]string, len(cfg.OTLP.Headers))
	for k, v := range cfg.OTLP.Headers {
		headers[k] = string(v)
	}
	exp := newExporter(strings.TrimSuffix(cfg.OTLP.Endpoint, "/")+"/v1/traces", headers, cfg.OTLP.Timeout.D())
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", version),
	)
	ratio := sdktrace.TraceIDRatioBased(cfg.Ratio())
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(edgeIDs{}),
		// A valid incoming traceparent's sampled flag decides; a trace the
		// edge started is sampled by ratio of its trace id. A stage span's
		// parent is the sampled server span, so it is always recorded.
		sdktrace.WithSampler(sdktrace.ParentBased(ratio)),
	)
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/bulwark-gateway/bulwark"), ratio: ratio,
		none: cfg.Ratio() == 0}, nil
}

// Shutdown exports the spans still queued, within ctx, and stops the
// exporter. Safe on a nil Tracer.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// ForceFlush exports the spans queued so far, within ctx. Safe on a nil
// Tracer.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// Request is what the gateway knows about a finished request.
type Request struct {
	Start, End time.Time
	// Incoming is the client's traceparent (its only header line; "" for
	// none or several); Outgoing the traceparent the edge set for the
	// upstream ("" when the edge did not run).
	Incoming, Outgoing string
	Route              string // the route name, or exchange.Unmatched
	Pattern            string // the matched route pattern; "" when none
	Method             string // bounded: GET ... TRACE or OTHER
	Status             int
	RequestID          string
	TraceID            string // the request's trace id (exchange.Record.TraceID)
	Denied             *exchange.Decision
}

// Record records the server span of a finished request. Safe on a nil
// Tracer.
func (t *Tracer) Record(ctx context.Context, r *Request) {
	if t == nil {
		return
	}
	// The sampler's decision, taken here first: it spares the SDK's work
	// for the requests that are not recorded.
	sc, ok := t.server(r.Incoming, r.Outgoing, r.TraceID)
	if !ok {
		return
	}
	ctx = context.WithValue(ctx, idsKey{}, ids{sc.trace, sc.span})
	if sc.parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: sc.trace, SpanID: sc.parent, TraceFlags: sc.flags, Remote: true,
		}))
	}
	_, span := t.tracer.Start(ctx, r.Route,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(r.Start),
		trace.WithAttributes(attribute.String("http.request.method", r.Method)))
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs,
		attribute.Int("http.response.status_code", r.Status),
		attribute.String("bulwark.request_id", r.RequestID))
	if r.Pattern != "" {
		attrs = append(attrs, attribute.String("http.route", r.Pattern))
	}
	if d := r.Denied; d != nil {
		attrs = append(attrs, attribute.String("bulwark.decision.stage", d.Stage),
			attribute.String("bulwark.decision.reason", d.Reason))
	}
	span.SetAttributes(attrs...)
	if r.Status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End(trace.WithTimestamp(r.End))
}

// serverIDs are the ids of a request's server span: the trace id, its own
// span id, the flags, and the client's span (its remote parent) when the
// trace continues the client's; parent is invalid when the edge started
// the trace.
type serverIDs struct {
	trace  trace.TraceID
	span   trace.SpanID
	parent trace.SpanID
	flags  trace.TraceFlags
}

// server returns the ids of the server span of a request, from the
// client's traceparent (incoming), the one the edge set for the upstream
// (outgoing) and the request's trace id, and whether the span is recorded:
// a trace that continues the client's is when the client's sampled flag is
// set, one the edge started when the ratio sampler picks its trace id. The
// server span (Record) and its stage spans (Spans.Begin) take the same
// decision here, so a trace never has stage spans without their parent.
func (t *Tracer) server(incoming, outgoing, traceID string) (serverIDs, bool) {
	var sc serverIDs
	ptid, psid, pflags, fromClient := parse(incoming)
	tid, sid, flags, ok := parse(outgoing)
	if !ok {
		// The edge denied the request before it set the upstream's
		// traceparent (a malformed request): the span keeps the trace id
		// and gets a span id of its own.
		if len(traceID) != 32 || !decodeLower(tid[:], traceID) || !tid.IsValid() {
			return sc, false // the edge did not run: no trace context to report on
		}
		sid = randomSpanID(trace.SpanID{})
		flags = 0
		if fromClient && ptid == tid {
			flags = pflags
		}
	}
	sc.trace, sc.span, sc.flags = tid, sid, flags
	if fromClient && ptid == tid {
		sc.parent = psid
		return sc, flags.IsSampled()
	}
	if t.none {
		return sc, false
	}
	return sc, t.ratio.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(),
		TraceID: tid}).Decision == sdktrace.RecordAndSample
}

// parse reads a traceparent the way the edge wrote or accepted it: the
// trace id, parent id and flags at their version-00 offsets. Only the
// sampled flag is kept.
func parse(v string) (trace.TraceID, trace.SpanID, trace.TraceFlags, bool) {
	var tid trace.TraceID
	var sid trace.SpanID
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return tid, sid, 0, false
	}
	var f [1]byte
	if !decodeLower(tid[:], v[3:35]) || !decodeLower(sid[:], v[36:52]) || !decodeLower(f[:], v[53:55]) ||
		!tid.IsValid() || !sid.IsValid() {
		return tid, sid, 0, false
	}
	return tid, sid, trace.TraceFlags(f[0]) & trace.FlagsSampled, true
}

func decodeLower(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'F' {
			return false // hex.Decode accepts upper case; the spec does not
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

// edgeIDs is the SDK's id generator. For the server span it returns the
// ids Record put in the context, so the span has the edge's trace id and
// span id; every other span (the stage spans, whose context has no ids)
// gets a fresh random span id, never its parent's.
type edgeIDs struct{}

func (edgeIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.trace, v.span
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID(trace.SpanID{})
}

func (edgeIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.span
	}
	return randomSpanID(trace.SpanContextFromContext(ctx).SpanID())
}

// randomSpanID returns a random span id that is valid and not not (the
// parent's). math/rand/v2's generator is ChaCha8, seeded per thread by
// the runtime from the kernel's entropy.
func randomSpanID(not trace.SpanID) trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() || sid == not {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}
