package e2e

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a real OTLP/HTTP trace receiver: it decodes the
// protobuf ExportTraceServiceRequest POSTed to /v1/traces.
type otlpReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
	headers  []http.Header
	requests int
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP receiver: %s %s (%s): %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.requests++
		rc.headers = append(rc.headers, r.Header.Clone())
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					rc.services = append(rc.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = fmt.Sprint(v.IntValue)
		}
	}
	return m
}

func sendTraced(t *testing.T, url string, method string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestTracingExport runs the gateway exporting to a real OTLP/HTTP
// receiver and checks the spans of sampled requests: the client's trace
// id, the client's span as the server span's parent, the route name and
// the attributes; the spans of the edge and the upstream call under the
// server span, the latter being the parent the upstream received; a
// request the client marked not sampled, and a started trace with
// sample_ratio none, export nothing. (TestTracingStageSpans covers the
// spans of the other stages.)
func TestTracingExport(t *testing.T) {
	rcv := startOTLPReceiver(t)
	up := startUpstream(t, nil)
	g := startGateway(t, fmt.Sprintf(`server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
tracing:
  service_name: edge-gw
  otlp: { endpoint: "%s", headers: { X-Api-Key: "${OTLP_KEY}" }, timeout: 2s }
upstreams:
  api: { url: "http://%s" }
routes:
  - { name: items, method: GET, path: "/items/{id}", upstream: api, auth: none }
`, rcv.srv.URL, up.addr), nil, "OTLP_KEY=k3y")

	clientTP, clientTrace := traceparent(t) // sampled
	resp := sendTraced(t, g.URL("/items/42"), http.MethodGet, http.Header{"Traceparent": {clientTP}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /items/42: status %d", resp.StatusCode)
	}
	okID := resp.Header.Get("X-Request-Id")
	got, _ := up.lastRequest()
	sent := got.Header.Get("Traceparent") // 00-<trace>-<proxy span>-01

	deniedTP, deniedTrace := traceparent(t)
	resp = sendTraced(t, g.URL("/items/42"), http.MethodPost, http.Header{"Traceparent": {deniedTP}})
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /items/42: status %d", resp.StatusCode)
	}
	deniedID := resp.Header.Get("X-Request-Id")

	unsampledTP, unsampledTrace := traceparent(t)
	unsampledTP = unsampledTP[:53] + "00"
	sendTraced(t, g.URL("/items/1"), http.MethodGet, http.Header{"Traceparent": {unsampledTP}})
	sendTraced(t, g.URL("/items/2"), http.MethodGet, http.Header{}) // started trace, sample_ratio none

	g.stop(t) // flushes the batch
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d\n%s", code, g.Logs())
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	// The allowed request: server, edge and proxy spans; the denied one
	// (no route): server and edge spans.
	if len(rcv.spans) != 5 {
		t.Fatalf("received %d spans, want 5 (those of the sampled requests): %v", len(rcv.spans), rcv.spans)
	}
	for _, s := range rcv.services {
		if s != "edge-gw" {
			t.Errorf("service.name = %q, want edge-gw", s)
		}
	}
	for _, h := range rcv.headers {
		if h.Get("X-Api-Key") != "k3y" {
			t.Errorf("export without the configured header: %v", h)
		}
	}
	byTrace := map[string]*tracepb.Span{}    // the server span of each trace
	children := map[string][]*tracepb.Span{} // the other spans of each trace
	for _, s := range rcv.spans {
		trace := hex.EncodeToString(s.TraceId)
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			if byTrace[trace] != nil {
				t.Errorf("trace %s has two server spans", trace)
			}
			byTrace[trace] = s
		} else {
			children[trace] = append(children[trace], s)
		}
	}
	for _, trace := range []string{unsampledTrace} {
		if byTrace[trace] != nil {
			t.Errorf("span exported for a request the client marked not sampled")
		}
	}

	s := byTrace[clientTrace]
	if s == nil {
		t.Fatalf("no span with the client's trace id %s", clientTrace)
	}
	if s.Name != "items" || s.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("span name %q kind %v, want items, server", s.Name, s.Kind)
	}
	sid := hex.EncodeToString(s.SpanId)
	var edge, proxy *tracepb.Span
	for _, c := range children[clientTrace] {
		switch c.Name {
		case "edge":
			edge = c
		case "proxy":
			proxy = c
		}
	}
	if len(children[clientTrace]) != 2 || edge == nil || proxy == nil {
		t.Fatalf("spans under the server span: %v, want edge and proxy", children[clientTrace])
	}
	for _, c := range []*tracepb.Span{edge, proxy} {
		if p := hex.EncodeToString(c.ParentSpanId); p != sid {
			t.Errorf("%s span: parent %s, want the server span %s", c.Name, p, sid)
		}
	}
	if id := hex.EncodeToString(proxy.SpanId); id != sent[36:52] || proxy.Kind != tracepb.Span_SPAN_KIND_CLIENT || id == sid {
		t.Errorf("proxy span %s (kind %v), want a client span, the parent sent upstream (%s)", id, proxy.Kind, sent)
	}
	if p := hex.EncodeToString(s.ParentSpanId); p != clientTP[36:52] {
		t.Errorf("parent span id %s, want the client's %s", p, clientTP[36:52])
	}
	if s.EndTimeUnixNano <= s.StartTimeUnixNano {
		t.Errorf("span times %d..%d", s.StartTimeUnixNano, s.EndTimeUnixNano)
	}
	want := map[string]string{"http.request.method": "GET", "http.route": "/items/{id}",
		"http.response.status_code": "200", "bulwark.request_id": okID}
	a := attrs(s.Attributes)
	for k, v := range want {
		if a[k] != v {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, a[k], v, a)
		}
	}
	for k := range a {
		if strings.HasPrefix(k, "bulwark.decision") {
			t.Errorf("allowed request's span has %s", k)
		}
	}

	d := byTrace[deniedTrace]
	if d == nil {
		t.Fatalf("no span for the denied request")
	}
	a = attrs(d.Attributes)
	want = map[string]string{"http.request.method": "POST", "http.response.status_code": "405",
		"bulwark.request_id": deniedID, "bulwark.decision.stage": "route", "bulwark.decision.reason": "method_not_allowed"}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("denied: attribute %s = %q, want %q (all: %v)", k, a[k], v, a)
		}
	}
	if strings.Contains(d.Name, "/") {
		t.Errorf("denied span named %q: a route name, never a path", d.Name)
	}
	if c := children[deniedTrace]; len(c) != 1 || c[0].Name != "edge" {
		t.Errorf("spans under the denied request's server span: %v, want only edge (no route matched)", c)
	}
}

// TestTracingOff checks that without a tracing section nothing is
// exported, even for sampled requests and with the OTLP environment
// variables pointing at a receiver.
func TestTracingOff(t *testing.T) {
	rcv := startOTLPReceiver(t)
	up := startUpstream(t, nil)
	g := startGateway(t, fmt.Sprintf(`server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
upstreams:
  api: { url: "http://%s" }
routes:
  - { name: items, method: GET, path: "/items/{id}", upstream: api, auth: none }
`, up.addr), nil, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.srv.URL, "OTEL_TRACES_EXPORTER=otlp")
	tp, _ := traceparent(t)
	for range 3 {
		if resp := sendTraced(t, g.URL("/items/1"), http.MethodGet, http.Header{"Traceparent": {tp}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	g.stop(t)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.requests != 0 {
		t.Errorf("%d export requests with tracing off", rcv.requests)
	}
}
