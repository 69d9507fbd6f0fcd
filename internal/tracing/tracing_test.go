package tracing

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

type receiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	res   []*tracepb.ResourceSpans
}

func startReceiver(t testing.TB) (*receiver, *httptest.Server) {
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil || r.URL.Path != "/v1/traces" || r.Header.Get("X-Key") != "k" {
			t.Errorf("receiver: %s %v %v", r.URL.Path, r.Header, err)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, rs := range req.ResourceSpans {
			rc.res = append(rc.res, rs)
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
	}))
	return rc, srv
}

func newTracer(t testing.TB, url, ratio string) *Tracer {
	tr, err := New(config.Tracing{OTLP: &config.TracingOTLP{Endpoint: url + "/", Timeout: config.Duration(time.Second),
		Headers: map[string]config.Secret{"X-Key": "k"}}, SampleRatio: config.AuditAllowed(ratio), ServiceName: "svc"},
		"v1.2.3", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const (
	clientTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan   = "00f067aa0ba902b7"
	gatewaySpan  = "b7ad6b7169203331"
	otherTrace   = "0af7651916cd43dd8448eb211c80319c"
	startedTrace = "ffffffffffffffff0000000000000001"
)

func TestRecord(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	rc, srv := startReceiver(t)
	tr := newTracer(t, srv.URL, "none")
	start := time.Now()
	base := Request{Start: start, End: start.Add(3 * time.Millisecond), Route: "items", Pattern: "/items/{id}",
		Method: "GET", Status: 200, RequestID: "req-1"}

	sampled := base
	sampled.Incoming = "00-" + clientTrace + "-" + clientSpan + "-01"
	sampled.Outgoing = "00-" + clientTrace + "-" + gatewaySpan + "-01"
	tr.Record(context.Background(), &sampled)

	denied := base
	denied.Incoming = "00-" + otherTrace + "-" + clientSpan + "-01"
	denied.Outgoing = "00-" + otherTrace + "-" + gatewaySpan + "-01"
	denied.Status, denied.Route, denied.Pattern = 502, exchange.Unmatched, ""
	denied.Denied = &exchange.Decision{Stage: "proxy", Reason: "upstream_error"}
	tr.Record(context.Background(), &denied)

	for _, r := range []Request{
		{Incoming: "00-" + clientTrace + "-" + clientSpan + "-00", Outgoing: "00-" + clientTrace + "-" + gatewaySpan + "-00"}, // not sampled
		{Outgoing: "00-" + startedTrace + "-" + gatewaySpan + "-00"},                                                          // started, ratio none
		{Incoming: sampled.Incoming}, // the edge did not run
		{Outgoing: "00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-" + gatewaySpan + "-01"}, // not lower case
	} {
		r.Start, r.End, r.Route = start, start, "x"
		tr.Record(context.Background(), &r)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	goleak.VerifyNone(t, ignore)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.spans) != 2 {
		t.Fatalf("%d spans exported, want 2: %v", len(rc.spans), rc.spans)
	}
	s, d := rc.spans[0], rc.spans[1]
	if hex.EncodeToString(s.TraceId) != clientTrace || hex.EncodeToString(s.SpanId) != gatewaySpan ||
		hex.EncodeToString(s.ParentSpanId) != clientSpan {
		t.Errorf("ids %x %x parent %x", s.TraceId, s.SpanId, s.ParentSpanId)
	}
	if s.Flags != 0x301 {
		t.Errorf("flags %#x, want sampled with a remote parent (0x301)", s.Flags)
	}
	if s.Name != "items" || s.Kind != tracepb.Span_SPAN_KIND_SERVER ||
		s.StartTimeUnixNano != uint64(start.UnixNano()) || s.EndTimeUnixNano != uint64(start.Add(3*time.Millisecond).UnixNano()) {
		t.Errorf("span %v", s)
	}
	want := map[string]string{"http.request.method": "GET", "http.route": "/items/{id}",
		"http.response.status_code": "200", "bulwark.request_id": "req-1"}
	if got := kv(s); !equal(got, want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	want = map[string]string{"http.request.method": "GET", "http.response.status_code": "502", "bulwark.request_id": "req-1",
		"bulwark.decision.stage": "proxy", "bulwark.decision.reason": "upstream_error"}
	if got := kv(d); !equal(got, want) || d.Name != exchange.Unmatched || d.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("denied span %v, attributes %v", d, got)
	}
	res := map[string]string{}
	for _, a := range rc.res[0].Resource.Attributes {
		res[a.Key] = a.Value.GetStringValue()
	}
	if res["service.name"] != "svc" || res["service.version"] != "v1.2.3" {
		t.Errorf("resource %v", res)
	}
}

func TestSampleRatioAll(t *testing.T) {
	rc, srv := startReceiver(t)
	defer srv.Close()
	tr := newTracer(t, srv.URL, "all")
	now := time.Now()
	tr.Record(context.Background(), &Request{Start: now, End: now, Route: "r",
		Outgoing: "00-" + startedTrace + "-" + gatewaySpan + "-00"})
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.spans) != 1 || len(rc.spans[0].ParentSpanId) != 0 || hex.EncodeToString(rc.spans[0].TraceId) != startedTrace {
		t.Errorf("started trace with sample_ratio all: spans %v, want one root span", rc.spans)
	}
}

// TestEdgeDenied: a request the edge refused before it set the upstream's
// traceparent still gets a span, in the request's trace, with a span id of
// its own.
func TestEdgeDenied(t *testing.T) {
	rc, srv := startReceiver(t)
	defer srv.Close()
	tr := newTracer(t, srv.URL, "none")
	now := time.Now()
	tr.Record(context.Background(), &Request{Start: now, End: now, Route: exchange.Unmatched, Status: 400,
		Incoming: "00-" + clientTrace + "-" + clientSpan + "-01", TraceID: clientTrace,
		Denied: &exchange.Decision{Stage: "edge", Reason: "bad_framing"}})
	tr.Record(context.Background(), &Request{Start: now, End: now, Route: exchange.Unmatched, Status: 400,
		Incoming: "00-" + otherTrace + "-" + clientSpan + "-00", TraceID: otherTrace})
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.spans) != 1 {
		t.Fatalf("%d spans, want 1 (the sampled one)", len(rc.spans))
	}
	s := rc.spans[0]
	if hex.EncodeToString(s.TraceId) != clientTrace || hex.EncodeToString(s.ParentSpanId) != clientSpan ||
		len(s.SpanId) != 8 || hex.EncodeToString(s.SpanId) == "0000000000000000" || kv(s)["bulwark.decision.reason"] != "bad_framing" {
		t.Errorf("span %v", s)
	}
}

func TestNilTracer(t *testing.T) {
	var tr *Tracer
	tr.Record(context.Background(), &Request{Outgoing: "00-" + clientTrace + "-" + gatewaySpan + "-01"})
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func kv(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes {
		if v, ok := a.Value.GetValue().(*commonpb.AnyValue_IntValue); ok {
			m[a.Key] = strconv.FormatInt(v.IntValue, 10)
		} else {
			m[a.Key] = a.Value.GetStringValue()
		}
	}
	return m
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// BenchmarkRecord is the work tracing adds to a request at its end: the
// span of a sampled request (queued for the exporter) and of an unsampled
// one (the sampler's decision only).
func BenchmarkRecord(b *testing.B) {
	_, srv := startReceiver(b)
	defer srv.Close()
	tr := newTracer(b, srv.URL, "none")
	defer func() { _ = tr.Shutdown(context.Background()) }()
	now := time.Now()
	for _, bc := range []struct{ name, flags string }{{"sampled", "01"}, {"unsampled", "00"}} {
		in, out := "00-"+clientTrace+"-"+clientSpan+"-"+bc.flags, "00-"+clientTrace+"-"+gatewaySpan+"-"+bc.flags
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := Request{Start: now, End: now, Route: "items", Pattern: "/items/{id}", Method: "GET", Status: 200,
					RequestID: "01JD0000000000000000000000", Incoming: in, Outgoing: out}
				tr.Record(context.Background(), &r)
			}
		})
	}
}
