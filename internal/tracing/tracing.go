// Package tracing exports one OpenTelemetry server span per request over
// OTLP/HTTP (protobuf), when the config has a tracing section
// (docs/operations.md "Tracing").
//
// The edge (internal/edge/trace.go) owns the trace context: it keeps the
// client's trace id or starts a trace, and sends the upstream a traceparent
// with a span id of its own. The span recorded here reuses those ids, so
// the exported span is the upstream's parent and a child of the client's
// span: the SDK's id generator is replaced by one that returns the ids the
// edge chose, and the client's span becomes the remote parent.
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
	// none: sample_ratio is 0, so only a sampled remote parent records.
	none bool
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
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(edgeIDs{}),
		// A valid incoming traceparent's sampled flag decides; a trace the
		// edge started is sampled by ratio of its trace id.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Ratio()))),
	)
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/bulwark-gateway/bulwark"), none: cfg.Ratio() == 0}, nil
}

// Shutdown exports the spans still queued, within ctx, and stops the
// exporter. Safe on a nil Tracer.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
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
	ptid, psid, pflags, fromClient := parse(r.Incoming)
	tid, sid, flags, ok := parse(r.Outgoing)
	if !ok {
		// The edge denied the request before it set the upstream's
		// traceparent (a malformed request): the span keeps the trace id
		// and gets a span id of its own.
		if len(r.TraceID) != 32 || !decodeLower(tid[:], r.TraceID) || !tid.IsValid() {
			return // the edge did not run: no trace context to report on
		}
		for !sid.IsValid() {
			binary.BigEndian.PutUint64(sid[:], rand.Uint64())
		}
		flags = 0
		if fromClient && ptid == tid {
			flags = pflags
		}
	}
	continued := fromClient && ptid == tid
	// The sampler's decision, taken here when it is known to be no: it
	// spares the SDK's work for the requests that are not recorded.
	if (continued && !flags.IsSampled()) || (!continued && t.none) {
		return
	}
	ctx = context.WithValue(ctx, idsKey{}, ids{tid, sid})
	if continued {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: psid, TraceFlags: flags, Remote: true,
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

// edgeIDs is the SDK's id generator: it returns the ids Record put in the
// context, so the span has the edge's trace id and the span id the
// upstream received as its parent.
type edgeIDs struct{}

func (edgeIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	v, _ := ctx.Value(idsKey{}).(ids)
	return v.trace, v.span
}

func (edgeIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	v, _ := ctx.Value(idsKey{}).(ids)
	return v.span
}
