package tracing

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// request runs the stage spans of one request the way the gateway does:
// NewSpans when it arrives, Begin after the edge, the stages, then the
// server span at the end.
type request struct {
	tr       *Tracer
	spans    *Spans
	rec      *exchange.Record
	in, out  string
	upstream string // the traceparent the proxy would send
}

func startRequest(tr *Tracer, in, out, traceID string) *request {
	r := &request{tr: tr, in: in, out: out, rec: &exchange.Record{TraceID: traceID, Start: time.Now()}}
	r.spans = tr.NewSpans(in)
	r.spans.Begin(r.rec, out)
	return r
}

func (r *request) end(status int) {
	r.spans.Close()
	r.tr.Record(context.Background(), &Request{Start: r.rec.Start, End: time.Now(), Incoming: r.in, Outgoing: r.out,
		Route: "orders", Method: "GET", Status: status, TraceID: r.rec.TraceID})
}

func byName(spans []*tracepb.Span) map[string]*tracepb.Span {
	m := map[string]*tracepb.Span{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

func names(spans []*tracepb.Span) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

// TestStageSpans records an allowed request through authentication, a
// route limit in report mode, the upstream call and a response stage, and
// a request denied by its second stage: every stage span is a child of
// the server span, with an id of its own; the upstream's traceparent
// names the proxy span; a denial is on the span of the stage that denied.
func TestStageSpans(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	rc, srv := startReceiver(t)
	tr := newTracer(t, srv.URL, "none")
	authn, limit := tr.Stage("authn", "orders"), tr.Stage("ratelimit.route", "orders")
	proxy, filter := tr.Upstream("orders", "GET", "api"), tr.Stage("filter.response", "orders")

	in := "00-" + clientTrace + "-" + clientSpan + "-01"
	ok := startRequest(tr, in, "00-"+clientTrace+"-"+gatewaySpan+"-01", clientTrace)
	ok.spans.Start(authn)
	ok.spans.Pass()
	tok := ok.spans.Start(limit)
	ok.rec.Decide(exchange.Decision{Stage: "ratelimit", Reason: "rate_limited", Mode: config.ModeReport})
	ok.spans.Pass()
	ok.spans.Finish(tok, false) // passed on: no second end
	tok = ok.spans.Start(proxy)
	ok.upstream = ok.spans.Upstream()
	ok.rec.UpstreamStatus = 200
	rtok := ok.spans.Start(filter) // ends the proxy span
	if got := ok.spans.Upstream(); got != "" {
		t.Errorf("Upstream() after the upstream call = %q, want \"\"", got)
	}
	ok.spans.Finish(rtok, false)
	ok.spans.Finish(tok, false)
	ok.end(200)

	denied := startRequest(tr, "00-"+otherTrace+"-"+clientSpan+"-01", "00-"+otherTrace+"-"+gatewaySpan+"-01", otherTrace)
	denied.spans.Start(authn)
	denied.spans.Pass()
	tok = denied.spans.Start(limit)
	denied.rec.Decide(exchange.Decision{Stage: "ratelimit", Reason: "rate_limited", Rule: "per-consumer", Mode: config.ModeEnforce})
	denied.spans.Finish(tok, false)
	denied.end(429)

	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	goleak.VerifyNone(t, ignore)
	rc.mu.Lock()
	defer rc.mu.Unlock()

	traces := map[string][]*tracepb.Span{}
	for _, s := range rc.spans {
		traces[hex.EncodeToString(s.TraceId)] = append(traces[hex.EncodeToString(s.TraceId)], s)
	}
	allowed := byName(traces[clientTrace])
	if len(traces[clientTrace]) != 6 || len(allowed) != 6 {
		t.Fatalf("allowed request: spans %v, want edge, authn, ratelimit.route, proxy, filter.response and the server span", names(traces[clientTrace]))
	}
	server := allowed["orders"]
	if hex.EncodeToString(server.SpanId) != gatewaySpan || hex.EncodeToString(server.ParentSpanId) != clientSpan {
		t.Errorf("server span %x, parent %x: want %s under the client's %s", server.SpanId, server.ParentSpanId, gatewaySpan, clientSpan)
	}
	ids := map[string]bool{gatewaySpan: true}
	for _, name := range []string{"edge", "authn", "ratelimit.route", "proxy", "filter.response"} {
		s := allowed[name]
		if p := hex.EncodeToString(s.ParentSpanId); p != gatewaySpan {
			t.Errorf("%s: parent %s, want the server span %s", name, p, gatewaySpan)
		}
		if s.Flags != 0x101 {
			t.Errorf("%s: flags %#x, want sampled with a local parent (0x101)", name, s.Flags)
		}
		id := hex.EncodeToString(s.SpanId)
		if ids[id] || id == "0000000000000000" {
			t.Errorf("%s: span id %s is not unique", name, id)
		}
		ids[id] = true
		if s.EndTimeUnixNano < s.StartTimeUnixNano || s.StartTimeUnixNano < server.StartTimeUnixNano || s.EndTimeUnixNano > server.EndTimeUnixNano {
			t.Errorf("%s: %d..%d, not within the server span %d..%d", name, s.StartTimeUnixNano, s.EndTimeUnixNano,
				server.StartTimeUnixNano, server.EndTimeUnixNano)
		}
	}
	if a := kv(allowed["authn"]); !equal(a, map[string]string{"bulwark.route": "orders"}) || allowed["authn"].Status.GetCode() != tracepb.Status_STATUS_CODE_UNSET {
		t.Errorf("authn span: attributes %v, status %v; want the route only, no status", a, allowed["authn"].Status)
	}
	want := map[string]string{"bulwark.route": "orders", "bulwark.decision.stage": "ratelimit",
		"bulwark.decision.reason": "rate_limited", "bulwark.decision.mode": "report"}
	if a := kv(allowed["ratelimit.route"]); !equal(a, want) || allowed["ratelimit.route"].Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("report-mode span: attributes %v, status %v; want %v and no error", a, allowed["ratelimit.route"].Status, want)
	}
	p := allowed["proxy"]
	want = map[string]string{"bulwark.route": "orders", "http.request.method": "GET", "bulwark.upstream": "api",
		"http.response.status_code": "200"}
	if a := kv(p); !equal(a, want) || p.Kind != tracepb.Span_SPAN_KIND_CLIENT || p.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("proxy span: kind %v, attributes %v, status %v; want a client span with %v", p.Kind, a, p.Status, want)
	}
	if wantTP := "00-" + clientTrace + "-" + hex.EncodeToString(p.SpanId) + "-01"; ok.upstream != wantTP {
		t.Errorf("upstream traceparent %q, want %q (the proxy span as the parent)", ok.upstream, wantTP)
	}
	if f := allowed["filter.response"]; f.StartTimeUnixNano < p.EndTimeUnixNano {
		t.Errorf("filter.response starts at %d, before the proxy span ends (%d)", f.StartTimeUnixNano, p.EndTimeUnixNano)
	}

	d := byName(traces[otherTrace])
	if len(traces[otherTrace]) != 4 || d["edge"] == nil || d["authn"] == nil || d["ratelimit.route"] == nil || d["orders"] == nil {
		t.Fatalf("denied request: spans %v, want edge, authn, ratelimit.route and the server span", names(traces[otherTrace]))
	}
	want = map[string]string{"bulwark.route": "orders", "bulwark.decision.stage": "ratelimit",
		"bulwark.decision.reason": "rate_limited", "bulwark.decision.rule": "per-consumer", "bulwark.decision.mode": "enforce"}
	if s := d["ratelimit.route"]; !equal(kv(s), want) || s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || s.Status.GetMessage() != "rate_limited" {
		t.Errorf("denying span: attributes %v, status %v; want %v and an error", kv(s), s.Status, want)
	}
	if a := kv(d["authn"]); a["bulwark.decision.reason"] != "" {
		t.Errorf("authn span of the denied request has the later stage's denial: %v", a)
	}
}

// TestStageSpansSampling: an unsampled trace, and a trace the edge started
// with sample_ratio none, record no stage span and leave the upstream the
// edge's traceparent; with sample_ratio all a started trace records them
// under a root server span.
func TestStageSpansSampling(t *testing.T) {
	for _, tc := range []struct {
		name, ratio, in, out string
		want                 int // spans exported
	}{
		{name: "client not sampled", ratio: "all", in: "00-" + clientTrace + "-" + clientSpan + "-00",
			out: "00-" + clientTrace + "-" + gatewaySpan + "-00", want: 0},
		{name: "started, ratio none", ratio: "none", out: "00-" + startedTrace + "-" + gatewaySpan + "-00", want: 0},
		{name: "started, ratio all", ratio: "all", out: "00-" + startedTrace + "-" + gatewaySpan + "-00", want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, srv := startReceiver(t)
			defer srv.Close()
			tr := newTracer(t, srv.URL, tc.ratio)
			r := startRequest(tr, tc.in, tc.out, tc.out[3:35])
			tok := r.spans.Start(tr.Upstream("orders", "GET", "api"))
			upstream := r.spans.Upstream()
			r.rec.UpstreamStatus = 502
			r.spans.Finish(tok, false)
			r.end(502)
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if len(rc.spans) != tc.want {
				t.Fatalf("spans %v, want %d", names(rc.spans), tc.want)
			}
			if tc.want == 0 {
				if upstream != "" {
					t.Errorf("Upstream() = %q for an unrecorded request, want \"\" (the edge's traceparent stays)", upstream)
				}
				return
			}
			s := byName(rc.spans)
			if len(s["orders"].ParentSpanId) != 0 || hex.EncodeToString(s["proxy"].ParentSpanId) != gatewaySpan {
				t.Errorf("server span parent %x, proxy parent %x: want a root server span %s", s["orders"].ParentSpanId,
					s["proxy"].ParentSpanId, gatewaySpan)
			}
			if s["proxy"].Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || kv(s["proxy"])["http.response.status_code"] != "502" {
				t.Errorf("proxy span of a 502: status %v, attributes %v; want an error with the status code", s["proxy"].Status, kv(s["proxy"]))
			}
			if want := "00-" + startedTrace + "-" + hex.EncodeToString(s["proxy"].SpanId) + "-01"; upstream != want {
				t.Errorf("Upstream() = %q, want %q", upstream, want)
			}
		})
	}
}

// TestStageSpanAborted: a span left open when a panic unwound the chain is
// ended by Close, as an error; a failed response stage is an error too.
func TestStageSpanAborted(t *testing.T) {
	rc, srv := startReceiver(t)
	defer srv.Close()
	tr := newTracer(t, srv.URL, "none")
	r := startRequest(tr, "00-"+clientTrace+"-"+clientSpan+"-01", "00-"+clientTrace+"-"+gatewaySpan+"-01", clientTrace)
	tok := r.spans.Start(tr.Stage("validate.response", "orders"))
	r.spans.Finish(tok, true)
	r.spans.Start(tr.Upstream("orders", "GET", "api")) // no answer, then a panic
	r.end(502)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	s := byName(rc.spans)
	if v := s["validate.response"]; v == nil || v.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("failed response stage: %v, want an error status", v)
	}
	if p := s["proxy"]; p == nil || p.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || p.Status.GetMessage() != "aborted" {
		t.Errorf("aborted proxy span: %v, want an error status \"aborted\"", p)
	}
}

func TestNilSpans(t *testing.T) {
	var tr *Tracer
	s := tr.NewSpans("00-" + clientTrace + "-" + clientSpan + "-01")
	s.Begin(&exchange.Record{TraceID: clientTrace}, "00-"+clientTrace+"-"+gatewaySpan+"-01")
	tok := s.Start(tr.Stage("authn", "r"))
	s.Pass()
	s.Finish(tok, true)
	s.Close()
	if got := s.Upstream(); got != "" {
		t.Errorf("nil Spans: Upstream() = %q, want \"\"", got)
	}
}

// BenchmarkStageSpans is the work tracing adds per stage of a sampled
// request: one span started and ended (queued for the exporter).
func BenchmarkStageSpans(b *testing.B) {
	_, srv := startReceiver(b)
	defer srv.Close()
	tr := newTracer(b, srv.URL, "none")
	defer func() { _ = tr.Shutdown(context.Background()) }()
	st := tr.Stage("authn", "orders")
	r := startRequest(tr, "00-"+clientTrace+"-"+clientSpan+"-01", "00-"+clientTrace+"-"+gatewaySpan+"-01", clientTrace)
	b.ReportAllocs()
	for b.Loop() {
		r.spans.Start(st)
		r.spans.Pass()
	}
}

// TestUpstreamFlags: the upstream's traceparent keeps the flags the edge
// kept (a Trace Context Level 2 random flag, 0x02) beside the sampled one.
func TestUpstreamFlags(t *testing.T) {
	_, srv := startReceiver(t)
	defer srv.Close()
	tr := newTracer(t, srv.URL, "none")
	defer func() { _ = tr.Shutdown(context.Background()) }()
	r := startRequest(tr, "00-"+clientTrace+"-"+clientSpan+"-03", "00-"+clientTrace+"-"+gatewaySpan+"-03", clientTrace)
	r.spans.Start(tr.Upstream("orders", "GET", "api"))
	got := r.spans.Upstream()
	if len(got) != 55 || got[:36] != "00-"+clientTrace+"-" || got[52:] != "-03" || got[36:52] == gatewaySpan {
		t.Errorf("Upstream() = %q, want the client's trace, the proxy span's id and flags 03", got)
	}
	r.end(200)
}
