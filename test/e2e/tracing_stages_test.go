package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestTracingStageSpans runs the real binary exporting to a real OTLP/HTTP
// receiver, on a route with a per-IP limit, API-key authentication, a
// route limit, a scope requirement, request and response validation and
// response filtering, and checks the stage spans:
//   - an allowed request has one span per stage the route runs, in chain
//     order and one after another, each a child of the server span (itself
//     the child of the client's span), with unique ids; the upstream call is
//     a client span, and the upstream received a traceparent naming it as
//     the parent, in the request's trace, which is also the audit event's;
//   - a request without credentials (401) has the authentication span,
//     carrying the audit event's denial and an error status, and no later
//     stage span; so has a request that validation refuses (400), on the
//     validation span; the upstream is asked by neither;
//   - a request the client marked not sampled (flags 00), and a trace the
//     gateway starts with sample_ratio none, export no span at all.
func TestTracingStageSpans(t *testing.T) {
	rcv := startOTLPReceiver(t)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"customer":{"email":"ann@example.com","name":"Ann"},"items":[{"sku":"ABC-1234","quantity":2}],"currency":"EUR"}`)
	}))
	apiKey := "bwk_" + randomSecret(t)
	g := startGateway(t, fmt.Sprintf(`server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
audit: { sink: file, file: { path: audit.jsonl } }
tracing:
  service_name: stages-gw
  otlp: { endpoint: "%s", timeout: 2s }
upstreams:
  api: { url: "http://%s" }
specs:
  orders: { file: orders.yaml }
rate_limits:
  per_ip: { limit: 1000, per: 1m }
authenticators:
  keys: { type: api_key, header: X-API-Key }
consumers:
  - { id: acme, scopes: [orders:read], api_keys: [ { id: k1, sha256: %q } ] }
routes:
  - name: get-order
    method: GET
    path: "/orders/{orderId}"
    upstream: api
    auth: [keys]
    rate_limit: { key: consumer, limit: 1000, per: 1m }
    require: { scopes: [orders:read] }
    validate: { spec: orders, request: enforce, response: enforce }
    response:
      deny: ["$.customer.email"]
`, rcv.srv.URL, up.addr, sha256Hex(apiKey)), map[string][]byte{"orders.yaml": valSpec(t, "orders.yaml")}, valGORACE())
	const path = "/orders/6f1c0b8e-2a4d-4c1e-9b7a-0d3e5f6a7b8c"

	// Allowed.
	okTP, okTrace := traceparent(t)
	resp := sendTraced(t, g.URL(path), http.MethodGet, http.Header{"Traceparent": {okTP}, "X-Api-Key": {apiKey},
		"X-Tenant": {"acme"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed request: status %d, want 200\n%s", resp.StatusCode, g.Logs())
	}
	okID := resp.Header.Get("X-Request-Id")
	got, body := up.lastRequest()
	if strings.Contains(string(body), "ann@") {
		t.Fatalf("upstream got a request body %q", body)
	}
	sent := got.Header.Values("Traceparent")
	hits := up.hits.Load()

	// Denied by authentication: no credentials.
	deniedTP, deniedTrace := traceparent(t)
	resp = sendTraced(t, g.URL(path), http.MethodGet, http.Header{"Traceparent": {deniedTP}, "X-Tenant": {"acme"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request without credentials: status %d, want 401", resp.StatusCode)
	}
	deniedID := resp.Header.Get("X-Request-Id")
	if n := up.hits.Load(); n != hits {
		t.Errorf("the upstream got %d requests after the denied one, want %d", n, hits)
	}

	// Denied by request validation: the order id is not a UUID.
	invalidTP, invalidTrace := traceparent(t)
	resp = sendTraced(t, g.URL("/orders/42"), http.MethodGet, http.Header{"Traceparent": {invalidTP}, "X-Api-Key": {apiKey},
		"X-Tenant": {"acme"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("invalid order id: status %d, want 400", resp.StatusCode)
	}
	invalidID := resp.Header.Get("X-Request-Id")
	if n := up.hits.Load(); n != hits {
		t.Errorf("the upstream got %d requests after the invalid one, want %d", n, hits)
	}

	// Not recorded: the client's flags 00, and a trace the gateway starts.
	unsampledTP, unsampledTrace := traceparent(t)
	unsampledTP = unsampledTP[:53] + "00"
	resp = sendTraced(t, g.URL(path), http.MethodGet, http.Header{"Traceparent": {unsampledTP}, "X-Api-Key": {apiKey},
		"X-Tenant": {"acme"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unsampled request: status %d, want 200", resp.StatusCode)
	}
	unsampledGot, _ := up.lastRequest()
	unsampledSent := unsampledGot.Header.Get("Traceparent")
	resp = sendTraced(t, g.URL(path), http.MethodGet, http.Header{"X-Api-Key": {apiKey}, "X-Tenant": {"acme"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("request without traceparent: status %d, want 200", resp.StatusCode)
	}
	startedID := resp.Header.Get("X-Request-Id")

	g.stop(t) // flushes the batch
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d\n%s", code, g.Logs())
	}
	audit, raw := readTraceAudit(t, filepath.Join(g.dir, "audit.jsonl"))

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	traces := map[string][]*tracepb.Span{}
	for _, s := range rcv.spans {
		id := hex.EncodeToString(s.TraceId)
		traces[id] = append(traces[id], s)
	}
	if len(traces) != 3 {
		t.Errorf("spans of %d traces exported, want 3 (the sampled requests)", len(traces))
	}
	if n := len(traces[unsampledTrace]); n != 0 {
		t.Errorf("%d spans exported for a request the client marked not sampled", n)
	}
	if startedTrace := audit[startedID].TraceID; len(traces[startedTrace]) != 0 {
		t.Errorf("%d spans exported for a trace the gateway started with sample_ratio none", len(traces[startedTrace]))
	}
	if !strings.HasSuffix(unsampledSent, "-00") || !strings.Contains(unsampledSent, unsampledTrace) {
		t.Errorf("unsampled request: upstream traceparent %q, want the client's trace %s, flags 00", unsampledSent, unsampledTrace)
	}

	// The allowed request.
	chain := []string{"edge", "ratelimit.edge", "authn", "ratelimit.route", "authz.require", "validate.request", "proxy",
		"validate.response", "filter.response"}
	spans := map[string]*tracepb.Span{}
	for _, s := range traces[okTrace] {
		if spans[s.Name] != nil {
			t.Errorf("allowed request: two spans named %s", s.Name)
		}
		spans[s.Name] = s
	}
	if want := append([]string{"get-order"}, chain...); len(traces[okTrace]) != len(want) || !hasAll(spans, want) {
		t.Fatalf("allowed request: spans %v, want %v", spanNames(traces[okTrace]), want)
	}
	server := spans["get-order"]
	serverID := hex.EncodeToString(server.SpanId)
	if server.Kind != tracepb.Span_SPAN_KIND_SERVER || hex.EncodeToString(server.ParentSpanId) != okTP[36:52] {
		t.Errorf("server span: kind %v, parent %x; want a server span under the client's %s", server.Kind, server.ParentSpanId, okTP[36:52])
	}
	if a := attrs(server.Attributes); a["bulwark.request_id"] != okID || a["http.response.status_code"] != "200" {
		t.Errorf("server span attributes %v, want request id %s and status 200", a, okID)
	}
	ids := map[string]string{serverID: "get-order"}
	for i, name := range chain {
		s := spans[name]
		if p := hex.EncodeToString(s.ParentSpanId); p != serverID {
			t.Errorf("%s: parent %s, want the server span %s", name, p, serverID)
		}
		id := hex.EncodeToString(s.SpanId)
		if other, dup := ids[id]; dup {
			t.Errorf("%s: span id %s already used by %s", name, id, other)
		}
		ids[id] = name
		a := attrs(s.Attributes)
		if name != "edge" && name != "ratelimit.edge" && a["bulwark.route"] != "get-order" {
			t.Errorf("%s: bulwark.route = %q, want get-order", name, a["bulwark.route"])
		}
		for k := range a {
			if strings.HasPrefix(k, "bulwark.decision") {
				t.Errorf("%s of the allowed request has %s", name, k)
			}
		}
		if s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("%s of the allowed request has an error status", name)
		}
		if s.StartTimeUnixNano < server.StartTimeUnixNano || s.EndTimeUnixNano > server.EndTimeUnixNano {
			t.Errorf("%s: %d..%d, outside the server span %d..%d", name, s.StartTimeUnixNano, s.EndTimeUnixNano,
				server.StartTimeUnixNano, server.EndTimeUnixNano)
		}
		if i > 0 && s.StartTimeUnixNano < spans[chain[i-1]].EndTimeUnixNano {
			t.Errorf("%s starts at %d, before %s ended (%d): stages run one after another", name, s.StartTimeUnixNano,
				chain[i-1], spans[chain[i-1]].EndTimeUnixNano)
		}
	}
	proxy := spans["proxy"]
	if a := attrs(proxy.Attributes); proxy.Kind != tracepb.Span_SPAN_KIND_CLIENT || a["http.response.status_code"] != "200" ||
		a["bulwark.upstream"] != "api" || a["http.request.method"] != "GET" {
		t.Errorf("proxy span: kind %v, attributes %v; want a client span with the upstream's 200", proxy.Kind, a)
	}
	m := upstreamTraceparent.FindStringSubmatch(strings.Join(sent, ","))
	if m == nil {
		t.Fatalf("upstream traceparent lines %q, want one of version 00", sent)
	}
	if m[1] != okTrace || m[2] != hex.EncodeToString(proxy.SpanId) || m[3] != "01" {
		t.Errorf("upstream traceparent %q, want trace %s, the proxy span %x as the parent, sampled", sent[0], okTrace, proxy.SpanId)
	}
	if ev := audit[okID]; ev.TraceID != okTrace {
		t.Errorf("audit event of the allowed request: trace_id %q, want the spans' %s", ev.TraceID, okTrace)
	}

	// The denied requests: the denying stage's span carries the audit
	// event's decision; no later stage has a span.
	for _, d := range []struct {
		name, trace, id, stage, span string
		spans                        []string
	}{
		{name: "no credentials", trace: deniedTrace, id: deniedID, stage: "authn", span: "authn",
			spans: []string{"get-order", "edge", "ratelimit.edge", "authn"}},
		{name: "invalid order id", trace: invalidTrace, id: invalidID, stage: "validate", span: "validate.request",
			spans: []string{"get-order", "edge", "ratelimit.edge", "authn", "ratelimit.route", "authz.require", "validate.request"}},
	} {
		spans := map[string]*tracepb.Span{}
		for _, s := range traces[d.trace] {
			spans[s.Name] = s
		}
		if len(traces[d.trace]) != len(d.spans) || !hasAll(spans, d.spans) {
			t.Errorf("%s: spans %v, want %v (no stage after the denial)", d.name, spanNames(traces[d.trace]), d.spans)
			continue
		}
		ev, ok := audit[d.id]
		if !ok || ev.TraceID != d.trace || ev.Decision.Stage != d.stage || ev.Decision.Reason == "" {
			t.Errorf("%s: audit event %+v, want trace_id %s and a decision of %s\n%s", d.name, ev, d.trace, d.stage, raw)
			continue
		}
		s := spans[d.span]
		want := map[string]string{"bulwark.route": "get-order", "bulwark.decision.stage": ev.Decision.Stage,
			"bulwark.decision.reason": ev.Decision.Reason, "bulwark.decision.mode": "enforce"}
		a := attrs(s.Attributes)
		for k, v := range want {
			if a[k] != v {
				t.Errorf("%s: %s span: %s = %q, want %q (all: %v)", d.name, d.span, k, a[k], v, a)
			}
		}
		if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || s.Status.GetMessage() != ev.Decision.Reason {
			t.Errorf("%s: %s span status %v, want an error with the reason %s", d.name, d.span, s.Status, ev.Decision.Reason)
		}
		serverID := hex.EncodeToString(spans["get-order"].SpanId)
		for _, name := range d.spans[1:] {
			if p := hex.EncodeToString(spans[name].ParentSpanId); p != serverID {
				t.Errorf("%s: %s span: parent %s, want the server span %s", d.name, name, p, serverID)
			}
			if name != d.span && attrs(spans[name].Attributes)["bulwark.decision.reason"] != "" {
				t.Errorf("%s: %s span carries a decision, want it only on %s", d.name, name, d.span)
			}
		}
	}

	// Nothing secret in any span.
	for _, s := range rcv.spans {
		for k, v := range attrs(s.Attributes) {
			if strings.Contains(v, apiKey) || strings.Contains(v, "ann@") {
				t.Errorf("span %s: attribute %s carries a secret or body value: %q", s.Name, k, v)
			}
		}
	}
}

// traceAuditEvent is the part of an audit event these tests compare with
// the spans. (readAudit refuses the filter field of a filtering route.)
type traceAuditEvent struct {
	RequestID string `json:"request_id"`
	TraceID   string `json:"trace_id"`
	Decision  struct {
		Stage  string `json:"stage"`
		Reason string `json:"reason"`
	} `json:"decision"`
}

// readTraceAudit reads the audit file at path, by request id.
func readTraceAudit(t *testing.T, path string) (map[string]traceAuditEvent, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the audit file: %v", err)
	}
	events := map[string]traceAuditEvent{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var ev traceAuditEvent
		if err := json.Unmarshal(line, &ev); err != nil || ev.RequestID == "" {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if _, dup := events[ev.RequestID]; dup {
			t.Errorf("request %s has more than one audit event", ev.RequestID)
		}
		events[ev.RequestID] = ev
	}
	return events, raw
}

func hasAll(spans map[string]*tracepb.Span, names []string) bool {
	for _, n := range names {
		if spans[n] == nil {
			return false
		}
	}
	return true
}

func spanNames(spans []*tracepb.Span) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	slices.Sort(n)
	return n
}
