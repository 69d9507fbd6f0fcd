package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// exporter POSTs spans to an OTLP/HTTP receiver as a protobuf
// ExportTraceServiceRequest. It stands in for otlptracehttp, whose
// configuration package links all of gRPC into the binary (about 16 MB);
// this one needs only the OTLP message types. A failed export is reported
// to the batch processor (which logs it through the error handler) and not
// retried: spans are diagnostics, and the batch processor must not back up
// behind a down collector.
type exporter struct {
	url     string
	headers map[string]string
	client  *http.Client
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

func newExporter(url string, headers map[string]string, timeout time.Duration) *exporter {
	return &exporter{url: url, headers: headers, client: &http.Client{
		Timeout:   timeout,
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}}
}

func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	body := marshalRequest(spans)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("exporting %d spans: %w", len(spans), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // a partial-success answer is not read
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("exporting %d spans: the receiver answered %s", len(spans), resp.Status)
	}
	return nil
}

func (e *exporter) Shutdown(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

// marshalRequest encodes an ExportTraceServiceRequest: field 1, repeated
// ResourceSpans. Spans are grouped by resource and scope; the gateway has
// one of each, so this is one ResourceSpans with one ScopeSpans.
func marshalRequest(spans []sdktrace.ReadOnlySpan) []byte {
	type group struct {
		rs     *tracepb.ResourceSpans
		scopes map[string]*tracepb.ScopeSpans
	}
	var order []*group
	byResource := map[attribute.Distinct]*group{}
	for _, s := range spans {
		res := s.Resource()
		key := res.Equivalent()
		g := byResource[key]
		if g == nil {
			g = &group{rs: &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: keyValues(res.Attributes())},
				SchemaUrl: res.SchemaURL()}, scopes: map[string]*tracepb.ScopeSpans{}}
			byResource[key] = g
			order = append(order, g)
		}
		is := s.InstrumentationScope()
		ss := g.scopes[is.Name+"\x00"+is.Version]
		if ss == nil {
			ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: is.Name, Version: is.Version},
				SchemaUrl: is.SchemaURL}
			g.scopes[is.Name+"\x00"+is.Version] = ss
			g.rs.ScopeSpans = append(g.rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, span(s))
	}
	var b []byte
	for _, g := range order {
		m, _ := proto.Marshal(g.rs) // the message types are valid by construction
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	return b
}

// OTLP span flags: the W3C flags in the low byte, then whether the parent
// is known to be local or remote.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

func span(s sdktrace.ReadOnlySpan) *tracepb.Span {
	sc, parent := s.SpanContext(), s.Parent()
	tid, sid := sc.TraceID(), sc.SpanID()
	out := &tracepb.Span{
		TraceId:                tid[:],
		SpanId:                 sid[:],
		TraceState:             sc.TraceState().String(),
		Name:                   s.Name(),
		Kind:                   tracepb.Span_SpanKind(s.SpanKind()), // the same numbering
		StartTimeUnixNano:      uint64(s.StartTime().UnixNano()),
		EndTimeUnixNano:        uint64(s.EndTime().UnixNano()),
		Attributes:             keyValues(s.Attributes()),
		DroppedAttributesCount: uint32(s.DroppedAttributes()),
		Flags:                  uint32(sc.TraceFlags()) | flagHasIsRemote,
	}
	if parent.IsValid() {
		psid := parent.SpanID()
		out.ParentSpanId = psid[:]
		if parent.IsRemote() {
			out.Flags |= flagIsRemote
		}
	}
	switch st := s.Status(); st.Code {
	case codes.Error:
		out.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: st.Description}
	case codes.Ok:
		out.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
	}
	return out
}

func keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		var v commonpb.AnyValue
		switch kv.Value.Type() {
		case attribute.BOOL:
			v.Value = &commonpb.AnyValue_BoolValue{BoolValue: kv.Value.AsBool()}
		case attribute.INT64:
			v.Value = &commonpb.AnyValue_IntValue{IntValue: kv.Value.AsInt64()}
		case attribute.FLOAT64:
			v.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: kv.Value.AsFloat64()}
		case attribute.STRING:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.AsString()}
		default: // slices: the gateway sets none
			v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.Emit()}
		}
		out = append(out, &commonpb.KeyValue{Key: string(kv.Key), Value: &v})
	}
	return out
}
