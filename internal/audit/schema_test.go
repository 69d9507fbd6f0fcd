package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/audit"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// eventSchemaFile is the JSON Schema of one audit event that docs/audit.md
// publishes for SIEM pipelines.
const eventSchemaFile = "../../docs/audit.schema.json"

// compileEventSchema compiles docs/audit.schema.json.
func compileEventSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(eventSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", eventSchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("audit.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("audit.schema.json")
	if err != nil {
		t.Fatalf("compile %s: %v", eventSchemaFile, err)
	}
	return sch
}

// schemaCase is one finished request handed to the Logger.
type schemaCase struct {
	name      string
	route     string // "" for no route matched
	principal *exchange.Principal
	decisions []exchange.Decision // in the order the stages recorded them
	req       audit.Request
	upstream  int
	trace     string
}

// logEvents runs the cases through a Logger writing to a real file (the
// file sink, as configured by an audit section) and returns the lines of
// the file after Close, one per event.
func logEvents(t *testing.T, a config.Audit, cases []schemaCase) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a.Sink, a.File = "file", &config.AuditFile{Path: config.Path(path), MaxSize: 100 << 20, MaxBackups: 10}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_audit_events_total"}, []string{"kind"})
	l, err := audit.New(a, audit.Deps{
		Log:     zap.NewNop(),
		Events:  events,
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "test_audit_dropped_total"}),
		Failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "test_audit_failed_total"}),
	})
	if err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	start := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	for i, c := range cases {
		rec := &exchange.Record{
			RequestID:      "0123456789abcdef0123456789abcde" + string(rune('0'+i%10)),
			TraceID:        c.trace,
			ClientIP:       netip.MustParseAddr("203.0.113.7"),
			Start:          start,
			Principal:      c.principal,
			UpstreamStatus: c.upstream,
		}
		if c.route != "" {
			rec.Route = &exchange.Route{Name: c.route, Upstream: "orders", Mode: config.ModeEnforce}
		}
		for _, d := range c.decisions {
			rec.Decide(d)
		}
		req := c.req
		req.End = start.Add(12345 * time.Microsecond)
		l.Log(rec, req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	return lines
}

var (
	jwtAlice = &exchange.Principal{
		Subject: "alice", Issuer: "https://idp.example.com", Consumer: "orders-web", Method: "jwt",
		Authenticator: "corp", KeyID: "2026-03", Scopes: []string{"orders:write"},
		Claims: map[string]any{"sub": "alice", "tenant": "acme", "groups": []any{"ops", "eu"}, "scope": "orders:write"},
	}
	keyAcme = &exchange.Principal{Subject: "acme", Consumer: "acme", Method: "api_key", Authenticator: "keys", KeyID: "k1"}

	insufficientScope = exchange.Decision{Stage: "authz", Reason: "insufficient_scope", Status: 403,
		OWASP: "API5:2023", NIST: []string{"AC-3", "AC-6"}, Mode: config.ModeEnforce}
	missingCredentials = exchange.Decision{Stage: "authn", Reason: "missing_credentials", Status: 401,
		OWASP: "API2:2023", NIST: []string{"IA-2", "IA-5", "AC-7"}, Mode: config.ModeEnforce}
	expiredReport = exchange.Decision{Stage: "authn", Reason: "expired", Status: 401,
		OWASP: "API2:2023", NIST: []string{"SC-23", "AC-12", "IA-5"}, Mode: config.ModeReport}
	routeLimitReport = exchange.Decision{Stage: "ratelimit", Reason: "route", Rule: "create-order", Status: 429,
		OWASP: "API4:2023", NIST: []string{"SC-5", "AC-10"}, Mode: config.ModeReport}
	routeLimit = exchange.Decision{Stage: "ratelimit", Reason: "route", Rule: "create-order", Status: 429,
		OWASP: "API4:2023", NIST: []string{"SC-5", "AC-10"}, Mode: config.ModeEnforce}
	noRoute = exchange.Decision{Stage: "route", Reason: "no_route", Status: 404, Mode: config.ModeEnforce}
)

// schemaCases are one of each kind of event: denials with and without a
// principal, a protocol answer without a threat id, would-denies, and
// allowed requests.
func schemaCases() []schemaCase {
	hdr := http.Header{"User-Agent": {"curl/8.7"}, "Authorization": {"Bearer not-a-real-token"}, "X-Tenant": {"acme"}}
	return []schemaCase{
		{name: "denial with principal", route: "create-order", principal: jwtAlice, decisions: []exchange.Decision{insufficientScope},
			trace: "4bf92f3577b34da6a3ce929d0e0e4736",
			req:   audit.Request{Method: "POST", Path: "/orders", Header: hdr, Status: 403, BytesOut: 231}},
		{name: "denial without principal", route: "create-order", decisions: []exchange.Decision{missingCredentials},
			req: audit.Request{Method: "POST", Path: "/orders", Header: http.Header{}, Status: 401, BytesOut: 198}},
		{name: "protocol answer", decisions: []exchange.Decision{noRoute},
			req: audit.Request{Method: "GET", Path: "/admin/.env", Header: http.Header{}, Status: 404, BytesOut: 170}},
		{name: "would-deny", route: "create-order", decisions: []exchange.Decision{expiredReport}, upstream: 201,
			req: audit.Request{Method: "POST", Path: "/orders", Header: hdr, Status: 201, BytesIn: 42, BytesOut: 57}},
		{name: "two would-denies", route: "create-order", principal: jwtAlice, decisions: []exchange.Decision{expiredReport, routeLimitReport},
			upstream: 201, req: audit.Request{Method: "POST", Path: "/orders", Header: hdr, Status: 201, BytesIn: 42, BytesOut: 57}},
		{name: "denial after a would-deny", route: "create-order", principal: jwtAlice, decisions: []exchange.Decision{expiredReport, routeLimit},
			req: audit.Request{Method: "POST", Path: "/orders", Header: hdr, Status: 429, BytesOut: 240}},
		{name: "allowed with principal", route: "get-order", principal: keyAcme, upstream: 200,
			trace: "0af7651916cd43dd8448eb211c80319c",
			req:   audit.Request{Method: "GET", Path: "/orders/42", Header: hdr, Status: 200, BytesOut: 512}},
		{name: "allowed public", route: "health", upstream: 204,
			req: audit.Request{Method: "GET", Path: "/health", Header: http.Header{}, Status: 204}},
		{name: "allowed, upstream failed", route: "get-order", principal: keyAcme,
			req: audit.Request{Method: "GET", Path: "/orders/43", Header: http.Header{}, Status: 502, BytesOut: 180}},
	}
}

// TestEventsMatchSchema checks that every kind of event the Logger writes
// validates against docs/audit.schema.json, and holds what the request
// was.
func TestEventsMatchSchema(t *testing.T) {
	sch := compileEventSchema(t)
	cases := schemaCases()
	lines := logEvents(t, config.Audit{Allowed: "all", QueueSize: 100, OnFull: "drop", BlockFor: config.Duration(100 * time.Millisecond),
		Headers: []string{"user-agent", "x-tenant"}, Claims: []string{"tenant", "groups", "missing"}}, cases)
	if len(lines) != len(cases) {
		t.Fatalf("the file holds %d events, want %d:\n%s", len(lines), len(cases), bytes.Join(lines, []byte("\n")))
	}
	events := map[string]map[string]any{}
	for i, line := range lines {
		c := cases[i]
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err != nil {
			t.Fatalf("%s: event is not JSON: %v\n%s", c.name, err, line)
		}
		if err := sch.Validate(doc); err != nil {
			t.Errorf("%s: event does not match the schema: %v\n%s", c.name, err, line)
		}
		if bytes.Contains(line, []byte("not-a-real-token")) {
			t.Errorf("%s: the event holds the Authorization header: %s", c.name, line)
		}
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		events[c.name] = ev
	}

	// What each event says, field by field, in the JSON consumers read.
	checks := []struct {
		event string
		field string // a path of keys, dot-separated
		want  any
	}{
		{"denial with principal", "time", "2026-03-14T09:26:53.012Z"},
		{"denial with principal", "route", "create-order"},
		{"denial with principal", "method", "POST"},
		{"denial with principal", "path", "/orders"},
		{"denial with principal", "client_ip", "203.0.113.7"},
		{"denial with principal", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"denial with principal", "principal", map[string]any{"subject": "alice", "consumer": "orders-web", "auth_method": "jwt",
			"key_id": "2026-03", "claims": map[string]any{"tenant": "acme", "groups": []any{"ops", "eu"}}}},
		{"denial with principal", "decision", map[string]any{"allowed": false, "stage": "authz", "reason": "insufficient_scope", "mode": "enforce"}},
		{"denial with principal", "owasp", "API5:2023"},
		{"denial with principal", "nist", []any{"AC-3", "AC-6"}},
		{"denial with principal", "status", 403.0},
		{"denial with principal", "upstream_status", 0.0},
		{"denial with principal", "duration_ms", 12.345},
		{"denial with principal", "bytes_out", 231.0},
		{"denial with principal", "headers", map[string]any{"User-Agent": "curl/8.7", "X-Tenant": "acme"}},
		{"denial with principal", "would_deny", nil},
		{"denial without principal", "principal", nil},
		{"denial without principal", "trace_id", ""},
		{"denial without principal", "decision", map[string]any{"allowed": false, "stage": "authn", "reason": "missing_credentials", "mode": "enforce"}},
		{"denial without principal", "owasp", "API2:2023"},
		{"denial without principal", "nist", []any{"IA-2", "IA-5", "AC-7"}},
		{"denial without principal", "headers", nil},
		{"protocol answer", "route", "_unmatched"},
		{"protocol answer", "decision", map[string]any{"allowed": false, "stage": "route", "reason": "no_route", "mode": "enforce"}},
		{"protocol answer", "owasp", nil},
		{"protocol answer", "nist", nil},
		{"would-deny", "decision", map[string]any{"allowed": true, "stage": "authn", "reason": "expired", "mode": "report"}},
		{"would-deny", "owasp", "API2:2023"},
		{"would-deny", "nist", []any{"SC-23", "AC-12", "IA-5"}},
		{"would-deny", "status", 201.0},
		{"would-deny", "upstream_status", 201.0},
		{"would-deny", "bytes_in", 42.0},
		{"would-deny", "would_deny", nil},
		{"two would-denies", "decision", map[string]any{"allowed": true, "stage": "authn", "reason": "expired", "mode": "report"}},
		{"two would-denies", "would_deny", []any{map[string]any{"allowed": true, "stage": "ratelimit", "reason": "route",
			"rule": "create-order", "mode": "report"}}},
		{"denial after a would-deny", "decision", map[string]any{"allowed": false, "stage": "ratelimit", "reason": "route",
			"rule": "create-order", "mode": "enforce"}},
		{"denial after a would-deny", "owasp", "API4:2023"},
		{"denial after a would-deny", "would_deny", []any{map[string]any{"allowed": true, "stage": "authn", "reason": "expired", "mode": "report"}}},
		{"allowed with principal", "decision", map[string]any{"allowed": true}},
		{"allowed with principal", "principal", map[string]any{"subject": "acme", "consumer": "acme", "auth_method": "api_key", "key_id": "k1"}},
		{"allowed with principal", "owasp", nil},
		{"allowed with principal", "trace_id", "0af7651916cd43dd8448eb211c80319c"},
		{"allowed public", "principal", nil},
		{"allowed public", "status", 204.0},
		{"allowed public", "bytes_in", 0.0},
		{"allowed, upstream failed", "status", 502.0},
		{"allowed, upstream failed", "upstream_status", 0.0},
	}
	for _, c := range checks {
		ev, ok := events[c.event]
		if !ok {
			t.Fatalf("no event %q", c.event)
		}
		got, _ := lookup(ev, c.field)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %s = %#v, want %#v", c.event, c.field, got, c.want)
		}
	}
}

// lookup returns the value at a dot-separated path of keys.
func lookup(ev map[string]any, path string) (any, bool) {
	var v any = ev
	for key := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TestAllowedNoneWritesDenials checks that allowed: none leaves out the
// allowed requests, and only them: denials and would-denies are always
// audited.
func TestAllowedNoneWritesDenials(t *testing.T) {
	sch := compileEventSchema(t)
	cases := schemaCases()
	lines := logEvents(t, config.Audit{Allowed: "none", QueueSize: 100, OnFull: "drop", BlockFor: config.Duration(time.Millisecond)}, cases)
	var got []string
	for _, line := range lines {
		var ev struct {
			Decision audit.Decision `json:"decision"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got = append(got, ev.Decision.Stage+"/"+ev.Decision.Reason+"/"+ev.Decision.Mode)
		doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err := sch.Validate(doc); err != nil {
			t.Errorf("event does not match the schema: %v\n%s", err, line)
		}
	}
	want := []string{
		"authz/insufficient_scope/enforce",
		"authn/missing_credentials/enforce",
		"route/no_route/enforce",
		"authn/expired/report",
		"authn/expired/report",
		"ratelimit/route/enforce",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

// TestSchemaRefuses checks that the schema is strict enough to catch what
// a consumer would trip over: each document is a valid event with one
// thing wrong.
func TestSchemaRefuses(t *testing.T) {
	sch := compileEventSchema(t)
	const valid = `{"time":"2026-03-14T09:26:53.012Z","request_id":"0123456789abcdef0123456789abcdef","trace_id":"",` +
		`"route":"create-order","method":"POST","path":"/orders","client_ip":"203.0.113.7","principal":null,` +
		`"decision":{"allowed":false,"stage":"authn","reason":"missing_credentials","mode":"enforce"},` +
		`"owasp":"API2:2023","nist":["IA-2","IA-5","AC-7"],"status":401,"upstream_status":0,"duration_ms":0.41,"bytes_in":0,"bytes_out":198}`
	validate := func(doc string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("not JSON: %v\n%s", err, doc)
		}
		return sch.Validate(v)
	}
	if err := validate(valid); err != nil {
		t.Fatalf("the base event does not validate: %v", err)
	}
	tests := []struct{ name, old, new string }{
		{"request_id missing", `"request_id":"0123456789abcdef0123456789abcdef",`, ``},
		{"time not UTC", `"2026-03-14T09:26:53.012Z"`, `"2026-03-14T10:26:53.012+01:00"`},
		{"time without milliseconds", `"2026-03-14T09:26:53.012Z"`, `"2026-03-14T09:26:53Z"`},
		{"trace_id upper-case", `"trace_id":""`, `"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736"`},
		{"denial without stage", `"stage":"authn",`, ``},
		{"denial in report mode", `"mode":"enforce"`, `"mode":"report"`},
		{"unknown mode", `"mode":"enforce"`, `"mode":"audit"`},
		{"owasp of another year", `"API2:2023"`, `"API2:2019"`},
		{"owasp beyond the top ten", `"API2:2023"`, `"API11:2023"`},
		{"owasp without nist", `,"nist":["IA-2","IA-5","AC-7"]`, ``},
		{"nist empty", `["IA-2","IA-5","AC-7"]`, `[]`},
		{"nist not a control", `"IA-5"`, `"ia5"`},
		{"owasp on an allowed request", `{"allowed":false,"stage":"authn","reason":"missing_credentials","mode":"enforce"}`, `{"allowed":true}`},
		{"status 0", `"status":401`, `"status":0`},
		{"upstream_status 42", `"upstream_status":0`, `"upstream_status":42`},
		{"negative bytes", `"bytes_out":198`, `"bytes_out":-1`},
		{"principal without auth_method", `"principal":null`, `"principal":{"subject":"a","consumer":"","key_id":""}`},
		{"principal with a token", `"principal":null`, `"principal":{"subject":"a","consumer":"","auth_method":"jwt","key_id":"","token":"x"}`},
		{"unknown auth_method", `"principal":null`, `"principal":{"subject":"a","consumer":"","auth_method":"basic","key_id":""}`},
		{"unknown field", `"bytes_in":0,`, `"bytes_in":0,"authorization":"Bearer x",`},
		{"would_deny enforced", `"bytes_in":0,`, `"bytes_in":0,"would_deny":[{"allowed":false,"stage":"authn","reason":"expired","mode":"enforce"}],`},
		{"would_deny empty", `"bytes_in":0,`, `"bytes_in":0,"would_deny":[],`},
		{"header name not a token", `"bytes_in":0,`, `"bytes_in":0,"headers":{"X Tenant":"acme"},`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(valid, tt.old) {
				t.Fatalf("the base event has no %s", tt.old)
			}
			if err := validate(strings.Replace(valid, tt.old, tt.new, 1)); err == nil {
				t.Errorf("the schema accepts an event with %s", tt.name)
			}
		})
	}
}
