package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The audit tests run the real binary with the file sink (docs/audit.md)
// and read the file after the gateway stopped on SIGTERM: one event per
// request, with the fields SIEM rules read, and never a credential.

// auditEvent is one line of the audit file, as a consumer outside this
// repository decodes it: the field names are the fixed interface, and an
// unknown field is an error.
type auditEvent struct {
	Time           string            `json:"time"`
	RequestID      string            `json:"request_id"`
	TraceID        string            `json:"trace_id"`
	Route          string            `json:"route"`
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	ClientIP       string            `json:"client_ip"`
	Principal      *auditPrincipal   `json:"principal"`
	Decision       auditDecision     `json:"decision"`
	OWASP          string            `json:"owasp"`
	NIST           []string          `json:"nist"`
	Status         int               `json:"status"`
	UpstreamStatus int               `json:"upstream_status"`
	DurationMS     float64           `json:"duration_ms"`
	BytesIn        int64             `json:"bytes_in"`
	BytesOut       int64             `json:"bytes_out"`
	WouldDeny      []auditDecision   `json:"would_deny"`
	Headers        map[string]string `json:"headers"`
}

type auditPrincipal struct {
	Subject    string         `json:"subject"`
	Consumer   string         `json:"consumer"`
	AuthMethod string         `json:"auth_method"`
	KeyID      string         `json:"key_id"`
	Claims     map[string]any `json:"claims"`
}

type auditDecision struct {
	Allowed bool   `json:"allowed"`
	Stage   string `json:"stage"`
	Reason  string `json:"reason"`
	Rule    string `json:"rule"`
	Mode    string `json:"mode"`
}

// startAuditGateway starts a gateway whose jwt authenticator corp trusts
// key "a" of rsaKey(t, 0), with an api_key authenticator keys and the
// audit section audit (a flow mapping). Its routes: create-order (POST
// /orders, [corp, keys], scope orders:write), limited (public, one request
// per hour per IP) and watch (GET /watch, [corp], authentication in report
// mode).
func startAuditGateway(t *testing.T, audit string) (*gateway, *upstream, *keyServer) {
	t.Helper()
	up := startUpstream(t, nil)
	keys := startKeyServer(t, rsaJWK("a", &rsaKey(t, 0).PublicKey))
	return startGateway(t, auditConfig(up, keys, audit), nil), up, keys
}

// auditConfig is the config of startAuditGateway.
func auditConfig(up *upstream, keys *keyServer, audit string) string {
	return authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url()), "  keys: { type: api_key, header: X-API-Key }"},
		top:            "audit: " + audit,
		routes: []string{
			"  - name: create-order\n    method: POST\n    path: /orders\n    upstream: api\n    auth: [corp, keys]\n" +
				"    require: { scopes: [orders:write] }",
			authRoute("limited", "/limited", "none", "rate_limit: { key: ip, limit: 1, per: 1h }"),
			authRoute("watch", "/watch", "[corp]", "authn: { mode: report }"),
		},
	}.yaml()
}

// sent is one request the test made and what it got.
type sent struct {
	name      string
	status    int
	requestID string // the X-Request-Id of the answer
}

// auditSend makes a request with body (nil for none) and header name/value
// pairs, and returns its status and request id.
func auditSend(t *testing.T, name, method, url string, body []byte, hdr ...string) sent {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := authClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", name, method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("%s: the answer has no X-Request-Id", name)
	}
	return sent{name: name, status: resp.StatusCode, requestID: id}
}

// readAudit reads the audit file: every line must be one JSON object with
// only the documented fields.
func readAudit(t *testing.T, path string) (events []auditEvent, raw []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the audit file: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var ev auditEvent
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("audit line is not a documented event: %v\n%s", err, sc.Bytes())
		}
		events = append(events, ev)
	}
	return events, raw
}

// byRequest indexes events by request id, failing on a request with more
// than one event.
func byRequest(t *testing.T, events []auditEvent) map[string]auditEvent {
	t.Helper()
	m := map[string]auditEvent{}
	for _, ev := range events {
		if _, dup := m[ev.RequestID]; dup {
			t.Errorf("request %s has more than one event", ev.RequestID)
		}
		m[ev.RequestID] = ev
	}
	return m
}

// traceparent returns a W3C traceparent header with a fresh trace id, and
// the trace id.
func traceparent(t *testing.T) (header, traceID string) {
	traceID = randomSecret(t) // 32 lower-case hex digits
	return "00-" + traceID + "-" + randomSecret(t)[:16] + "-01", traceID
}

func TestAuditFileEvents(t *testing.T) {
	g, _, _ := startAuditGateway(t, "{ sink: file, file: { path: audit.jsonl } }")
	key := rsaKey(t, 0)
	good := signRS256(t, key, "a", claims("alice", "orders:write orders:read"))
	readOnly := signRS256(t, key, "a", claims("alice", "orders:read"))
	forged := signRS256(t, rsaKey(t, 1), "a", claims("alice", "orders:write"))
	cookie, apiKey, query := randomSecret(t), "bwk_"+randomSecret(t), randomSecret(t)
	body := []byte(`{"item":"book","quantity":2}`)
	secrets := map[string]string{
		"valid token": good, "read-only token": readOnly, "forged token": forged,
		"cookie": cookie, "API key": apiKey, "query value": query,
	}
	for name, tok := range map[string]string{"valid token": good, "read-only token": readOnly, "forged token": forged} {
		secrets["signature of the "+name] = tok[strings.LastIndex(tok, ".")+1:]
	}

	type expect struct {
		name      string
		resp      sent
		trace     string
		route     string
		method    string
		path      string
		principal *auditPrincipal
		decision  auditDecision
		owasp     string
		nist      []string
		upstream  int
		bytesIn   int64
	}
	var want []expect
	do := func(e expect, method, path string, body []byte, hdr ...string) {
		t.Helper()
		tp, trace := traceparent(t)
		e.resp = auditSend(t, e.name, method, g.URL(path), body, append(hdr, "Traceparent", tp, "Cookie", "session="+cookie)...)
		e.trace, e.method = trace, method
		if e.path == "" {
			e.path = path
		}
		want = append(want, e)
	}
	alice := &auditPrincipal{Subject: "alice", Consumer: testClient, AuthMethod: "jwt", KeyID: "a"}
	api2 := []string{"IA-2", "IA-5", "AC-7"}

	do(expect{name: "allowed", route: "create-order", principal: alice, decision: auditDecision{Allowed: true},
		upstream: 200, bytesIn: int64(len(body))}, "POST", "/orders", body, "Authorization", "Bearer "+good)
	do(expect{name: "no route", route: "_unmatched", path: "/orders/export",
		decision: auditDecision{Stage: "route", Reason: "no_route", Mode: "enforce"}, owasp: "API9:2023", nist: []string{"CM-7", "CM-8"}},
		"GET", "/orders/export?access="+query, nil)
	do(expect{name: "missing credential", route: "create-order",
		decision: auditDecision{Stage: "authn", Reason: "missing_credentials", Mode: "enforce"}, owasp: "API2:2023", nist: api2},
		"POST", "/orders", body)
	do(expect{name: "bad token", route: "create-order",
		decision: auditDecision{Stage: "authn", Reason: "bad_signature", Mode: "enforce"}, owasp: "API2:2023", nist: api2},
		"POST", "/orders", body, "Authorization", "Bearer "+forged)
	do(expect{name: "unknown API key", route: "create-order",
		decision: auditDecision{Stage: "authn", Reason: "unknown_key", Mode: "enforce"}, owasp: "API2:2023", nist: api2},
		"POST", "/orders", body, "X-API-Key", apiKey)
	do(expect{name: "insufficient scope", route: "create-order", principal: alice,
		decision: auditDecision{Stage: "authz", Reason: "insufficient_scope", Mode: "enforce"}, owasp: "API5:2023", nist: []string{"AC-3", "AC-6"}},
		"POST", "/orders", body, "Authorization", "Bearer "+readOnly)
	do(expect{name: "first limited", route: "limited", decision: auditDecision{Allowed: true}, upstream: 200}, "GET", "/limited", nil)
	do(expect{name: "rate limited", route: "limited",
		decision: auditDecision{Stage: "ratelimit", Reason: "route", Rule: "limited", Mode: "enforce"}, owasp: "API4:2023", nist: []string{"SC-5", "AC-10"}},
		"GET", "/limited", nil)
	do(expect{name: "would deny", route: "watch", upstream: 200,
		decision: auditDecision{Allowed: true, Stage: "authn", Reason: "bad_signature", Mode: "report"}, owasp: "API2:2023", nist: api2},
		"GET", "/watch", nil, "Authorization", "Bearer "+forged)

	wantStatus := map[string]int{"allowed": 200, "no route": 404, "missing credential": 401, "bad token": 401, "unknown API key": 401,
		"insufficient scope": 403, "first limited": 200, "rate limited": 429, "would deny": 200}
	for _, e := range want {
		if e.resp.status != wantStatus[e.name] {
			t.Errorf("%s: status %d, want %d", e.name, e.resp.status, wantStatus[e.name])
		}
	}
	for kind, n := range map[string]float64{"denied": 6, "would_deny": 1, "allowed": 2} {
		if got := g.metric(t, `bulwark_audit_events_total{kind="`+kind+`"}`); got != n {
			t.Errorf(`bulwark_audit_events_total{kind=%q} = %v, want %v`, kind, got, n)
		}
	}
	if got := g.metric(t, "bulwark_audit_events_dropped_total"); got != 0 {
		t.Errorf("bulwark_audit_events_dropped_total = %v, want 0", got)
	}

	g.stop(t) // SIGTERM: the queued events are written before the process exits
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("bulwark exited with %d after SIGTERM, want 0\n%s", code, g.Logs())
	}
	path := filepath.Join(g.dir, "audit.jsonl")
	events, raw := readAudit(t, path)
	if len(events) != len(want) {
		t.Errorf("the audit file holds %d events, want %d (one per request):\n%s", len(events), len(want), raw)
	}
	got := byRequest(t, events)
	for _, e := range want {
		ev, ok := got[e.resp.requestID]
		if !ok {
			t.Errorf("%s: no event for request %s", e.name, e.resp.requestID)
			continue
		}
		checks := []struct {
			field     string
			got, want any
		}{
			{"route", ev.Route, e.route},
			{"method", ev.Method, e.method},
			{"path", ev.Path, e.path},
			{"status", ev.Status, e.resp.status},
			{"upstream_status", ev.UpstreamStatus, e.upstream},
			{"trace_id", ev.TraceID, e.trace},
			{"client_ip", ev.ClientIP, "127.0.0.1"},
			{"principal", ev.Principal, e.principal},
			{"decision", ev.Decision, e.decision},
			{"owasp", ev.OWASP, e.owasp},
			{"nist", ev.NIST, e.nist},
			{"bytes_in", ev.BytesIn, e.bytesIn},
			{"would_deny", ev.WouldDeny, []auditDecision(nil)},
			{"headers", ev.Headers, map[string]string(nil)},
		}
		for _, c := range checks {
			if !equalJSON(c.got, c.want) {
				t.Errorf("%s: %s = %s, want %s", e.name, c.field, jsonOf(c.got), jsonOf(c.want))
			}
		}
		if ev.BytesOut <= 0 {
			t.Errorf("%s: bytes_out = %d, want the size of the answer's body", e.name, ev.BytesOut)
		}
		if ev.DurationMS <= 0 || ev.DurationMS > 15000 {
			t.Errorf("%s: duration_ms = %v, want a positive time under the client's timeout", e.name, ev.DurationMS)
		}
		if len(ev.Time) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(ev.Time, "Z") {
			t.Errorf("%s: time = %q, want RFC 3339 UTC with milliseconds", e.name, ev.Time)
		}
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("audit file mode = %v, want 0600 (events hold client addresses and subjects)", mode)
	}
	logs := g.Logs()
	for name, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the audit file holds the %s", name)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s", name)
		}
	}
	if strings.Contains(logs, "DATA RACE") {
		t.Errorf("the gateway reported a data race:\n%s", logs)
	}
}

// TestAuditAllowedNone checks that allowed: none leaves allowed requests
// out and still writes every denial and would-deny.
func TestAuditAllowedNone(t *testing.T) {
	g, _, _ := startAuditGateway(t, "{ sink: file, allowed: none, file: { path: audit.jsonl } }")
	good := signRS256(t, rsaKey(t, 0), "a", claims("alice", "orders:write"))
	body := []byte(`{"item":"pen"}`)
	requests := []sent{
		auditSend(t, "allowed", "POST", g.URL("/orders"), body, "Authorization", "Bearer "+good),
		auditSend(t, "allowed public", "GET", g.URL("/limited"), nil),
		auditSend(t, "no route", "GET", g.URL("/nope"), nil),
		auditSend(t, "missing credential", "POST", g.URL("/orders"), body),
		auditSend(t, "rate limited", "GET", g.URL("/limited"), nil),
		auditSend(t, "would deny", "GET", g.URL("/watch"), nil),
		auditSend(t, "allowed again", "POST", g.URL("/orders"), body, "Authorization", "Bearer "+good),
	}
	wantStatus := []int{200, 200, 404, 401, 429, 200, 200}
	for i, r := range requests {
		if r.status != wantStatus[i] {
			t.Errorf("%s: status %d, want %d", r.name, r.status, wantStatus[i])
		}
	}
	g.stop(t)
	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl"))
	got := byRequest(t, events)
	var audited []string
	for _, r := range requests {
		if ev, ok := got[r.requestID]; ok {
			audited = append(audited, fmt.Sprintf("%s: %s/%s/%s", r.name, ev.Decision.Stage, ev.Decision.Reason, ev.Decision.Mode))
		}
	}
	want := []string{
		"no route: route/no_route/enforce",
		"missing credential: authn/missing_credentials/enforce",
		"rate limited: ratelimit/route/enforce",
		"would deny: authn/missing_credentials/report",
	}
	if !slices.Equal(audited, want) {
		t.Errorf("audited requests =\n%s\nwant\n%s\nfile:\n%s", strings.Join(audited, "\n"), strings.Join(want, "\n"), raw)
	}
	if len(events) != len(want) {
		t.Errorf("the audit file holds %d events, want %d", len(events), len(want))
	}
}

// TestAuditReportMode checks the event of a request that a report-mode
// stage let through: decision.allowed true with the stage, reason and mode
// report, the OWASP id of what it would have denied, and the upstream's
// answer.
func TestAuditReportMode(t *testing.T) {
	g, up, _ := startAuditGateway(t, "{ sink: file, file: { path: audit.jsonl } }")
	hits := up.hits.Load()
	r := auditSend(t, "would deny", "GET", g.URL("/watch"), nil)
	if r.status != http.StatusOK {
		t.Errorf("report-mode route without a credential = %d, want 200", r.status)
	}
	if got := up.hits.Load() - hits; got != 1 {
		t.Errorf("upstream hits = %d, want 1", got)
	}
	g.stop(t)
	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl"))
	if len(events) != 1 || events[0].RequestID != r.requestID {
		t.Fatalf("want one event for request %s, got:\n%s", r.requestID, raw)
	}
	ev := events[0]
	if want := (auditDecision{Allowed: true, Stage: "authn", Reason: "missing_credentials", Mode: "report"}); ev.Decision != want {
		t.Errorf("decision = %+v, want %+v", ev.Decision, want)
	}
	if ev.OWASP != "API2:2023" || !slices.Equal(ev.NIST, []string{"IA-2", "IA-5", "AC-7"}) {
		t.Errorf("owasp, nist = %q, %q, want API2:2023, [IA-2 IA-5 AC-7]", ev.OWASP, ev.NIST)
	}
	if ev.Principal != nil {
		t.Errorf("principal = %+v, want null: a would-deny passes without one", ev.Principal)
	}
	if ev.Status != 200 || ev.UpstreamStatus != 200 || ev.Route != "watch" {
		t.Errorf("route, status, upstream_status = %s, %d, %d, want watch, 200, 200", ev.Route, ev.Status, ev.UpstreamStatus)
	}
}

// equalJSON compares two values as their JSON: a nil and an empty slice
// are different, as a consumer sees them.
func equalJSON(a, b any) bool { return jsonOf(a) == jsonOf(b) }

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

// TestAuditReloadNeedsRestart checks that a reload cannot change the audit
// log: it warns, and the running audit log keeps its settings (here, it
// keeps writing allowed requests after a reload to allowed: none).
func TestAuditReloadNeedsRestart(t *testing.T) {
	g, up, keys := startAuditGateway(t, "{ sink: file, file: { path: audit.jsonl } }")
	before := auditSend(t, "before", "GET", g.URL("/limited"), nil)
	g.reload(t, auditConfig(up, keys, "{ sink: file, allowed: none, file: { path: other.jsonl } }"))
	if !strings.Contains(g.Logs(), `"config reloaded"`) {
		t.Fatalf("the reload was refused:\n%s", g.Logs())
	}
	g.waitLog(t, `"key":"audit"`)
	after := auditSend(t, "after", "GET", g.URL("/watch"), nil, "Authorization", "Bearer "+
		signRS256(t, rsaKey(t, 0), "a", claims("alice", "orders:read")))
	g.stop(t)
	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl"))
	got := byRequest(t, events)
	for _, r := range []sent{before, after} {
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200", r.name, r.status)
		}
		if ev, ok := got[r.requestID]; !ok || !ev.Decision.Allowed || ev.Decision.Stage != "" {
			t.Errorf("%s: want an allowed event in audit.jsonl, got:\n%s", r.name, raw)
		}
	}
	if _, err := os.Stat(filepath.Join(g.dir, "other.jsonl")); err == nil {
		t.Errorf("the reload opened the new audit file: audit settings need a restart")
	}
}

// TestAuditUpstreamAnswersEarly checks the event of a POST whose upstream
// answers before it read the body: the proxy may still be sending the body
// when the response is finished, and counting bytes_in must not race with
// writing the event (the binary runs under the race detector with -race).
func TestAuditUpstreamAnswersEarly(t *testing.T) {
	ln := listenLoopback(t)
	early := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge) // without reading the body
	})}
	go func() { _ = early.Serve(ln) }() // ends with Close in Cleanup
	t.Cleanup(func() { _ = early.Close() })
	g := startGateway(t, authnSetup{
		upstream: ln.Addr().String(),
		top:      "audit: { sink: file, file: { path: audit.jsonl } }",
		routes:   []string{"  - { name: upload, method: POST, path: /upload, upstream: api, auth: none, max_body_size: 64MiB }"},
	}.yaml(), nil)
	body := bytes.Repeat([]byte("x"), 4<<20)
	var requests []sent
	for i := range 10 {
		requests = append(requests, auditSend(t, fmt.Sprint("upload ", i), "POST", g.URL("/upload"), body))
	}
	g.stop(t)
	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl"))
	got := byRequest(t, events)
	for _, r := range requests {
		ev, ok := got[r.requestID]
		switch {
		case !ok:
			t.Errorf("%s: no event", r.name)
		case ev.Status != r.status || ev.UpstreamStatus != http.StatusRequestEntityTooLarge || !ev.Decision.Allowed:
			t.Errorf("%s: status %d, upstream_status %d, decision %+v; want %d, 413, allowed", r.name, ev.Status, ev.UpstreamStatus, ev.Decision, r.status)
		case ev.BytesIn < 0 || ev.BytesIn > int64(len(body)):
			t.Errorf("%s: bytes_in = %d, want 0 to %d", r.name, ev.BytesIn, len(body))
		}
	}
	if len(events) != len(requests) {
		t.Errorf("the audit file holds %d events, want %d:\n%.2000s", len(events), len(requests), raw)
	}
	if logs := g.Logs(); strings.Contains(logs, "DATA RACE") {
		t.Errorf("the gateway reported a data race:\n%s", logs)
	}
}
