package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The validation tests run the real binary with an OpenAPI document
// (testdata/validate/orders.yaml) and routes with `validate:`
// (docs/configuration.md, `specs` and route validation; docs/errors.md,
// invalid-request, unsupported-media-type, invalid-json,
// invalid-upstream-response). A refused request never reaches the
// upstream, and its problem names the field and the rule but never the
// value the client sent (valSecret). A request that passes reaches the
// upstream byte for byte as it was sent.

// valSecret is written into every invalid value: no answer may echo it.
const valSecret = "ZZSECRETZZ"

// valPathSecret is the invalid path parameter: the audit event records
// the path, so it is kept apart from valSecret.
const valPathSecret = "ZZPATHZZ"

// valOrderID is a well-formed uuid.
const valOrderID = "0b0e5c9a-1f2d-4c3b-9a8e-7d6c5b4a3f21"

// valOrder is a request body that conforms to the Order schema.
const valOrder = `{"customer":{"email":"ana@example.com","name":"Ana"},"items":[{"sku":"ABC-1234","quantity":2}],"currency":"EUR","notes":"ring twice"}`

// valStored is an order as the upstream answers it (with its readOnly id).
const valStored = `{"id":"` + valOrderID + `","customer":{"email":"ana@example.com"},"items":[{"sku":"ABC-1234","quantity":2}],"currency":"EUR"}`

// valAnswer is one upstream answer.
type valAnswer struct {
	status int
	ct     string // "" means application/json, "-" none
	body   string
	gzip   bool // sent with Content-Encoding: gzip
}

// valStoredWith is valStored with more members (JSON text after a comma).
func valStoredWith(more string) string {
	return strings.TrimSuffix(valStored, "}") + more + "}"
}

// valPrettyStored is a conforming answer with whitespace, its own key
// order and an integer beyond int64.
const valPrettyStored = `{
  "currency": "USD",
  "items": [ {"quantity": 1000, "sku": "XYZ-0001"} ],
  "customer": {"email": "b@example.org"},
  "externalRef": 12345678901234567890,
  "id": "` + valOrderID + `"
}
`

// valAnswers are what the upstream answers, chosen by the request's
// X-Val-Answer header (absent: "ok").
var valAnswers = map[string]valAnswer{
	"ok":         {body: valStored},
	"pretty":     {body: valPrettyStored},
	"extra":      {body: valStoredWith(`,"internal_cost":"` + valSecret + `"`)},
	"write-only": {body: valStoredWith(`,"password":"` + valSecret + `"`)},
	"wrong-type": {body: `{"id":"` + valOrderID + `","customer":{"email":"ana@example.com"},"items":[{"sku":"ABC-1234","quantity":"` + valSecret + `"}],"currency":"EUR"}`},
	// customer is required
	"missing-req": {body: `{"id":"` + valOrderID + `","items":[{"sku":"ABC-1234","quantity":2}],"currency":"EUR","notes":"` + valSecret + `"}`},
	"teapot":      {status: http.StatusTeapot, body: `{"debug":"` + valSecret + `"}`},
	"html":        {ct: "text/html", body: `<html>` + valSecret + `</html>`},
	"no-ct":       {ct: "-", body: valStored},
	"not-found":   {status: http.StatusNotFound, ct: "text/plain", body: "no such order"},
	"gzip-extra":  {gzip: true, body: valStoredWith(`,"internal_cost":"` + valSecret + `"`)},
	"dup-member":  {body: valStoredWith(`,"currency":"` + valSecret + `"`)},
}

// valUpstream answers with valAnswers: 201 for a POST, 200 otherwise,
// unless the answer says.
func valUpstream(t testing.TB) *upstream {
	t.Helper()
	return startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.Header.Get("X-Val-Answer")
		if name == "" {
			name = "ok"
		}
		a, ok := valAnswers[name]
		if !ok {
			http.Error(w, "unknown answer", http.StatusInternalServerError)
			return
		}
		switch a.ct {
		case "":
			w.Header().Set("Content-Type", "application/json")
		case "-":
			w.Header()["Content-Type"] = nil // no sniffing either
		default:
			w.Header().Set("Content-Type", a.ct)
		}
		body := []byte(a.body)
		if a.gzip {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = b.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
		}
		status := a.status
		if status == 0 {
			status = http.StatusOK
			if r.Method == http.MethodPost {
				status = http.StatusCreated
			}
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
}

// valSpec returns the fixture testdata/validate/<name>.
func valSpec(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "validate", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// valGORACE turns off the race detector's one-second sleep at exit
// (GORACE atexit_sleep_ms) for the processes the tests start.
func valGORACE() string {
	return strings.TrimSpace("GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0")
}

// valConfig is baseConfig with the orders spec (orders.yaml) and an
// audit file sink (audit.jsonl).
func valConfig(upstreamURL string, routes ...string) string {
	return baseConfig(upstreamURL, routes...) +
		"specs:\n  orders: { file: orders.yaml }\naudit: { sink: file, file: { path: audit.jsonl } }\n"
}

// valStart starts a gateway on cfg with the orders spec beside it (the
// harness writes files flat: it creates no directories).
func valStart(t testing.TB, cfg string) *gateway {
	t.Helper()
	return startGateway(t, cfg, map[string][]byte{"orders.yaml": valSpec(t, "orders.yaml")}, valGORACE())
}

// valEnforceRoutes are the routes of the enforcing gateway: create-order
// and get-order validate requests and responses; import has the JSON
// limits only.
var valEnforceRoutes = []string{
	route("create-order", "POST", "/orders", "max_body_size: 256KiB",
		"validate: { spec: orders, request: enforce, response: enforce }"),
	route("get-order", "GET", "/orders/{orderId}", "validate: { spec: orders, response: enforce }"),
	route("import", "POST", "/import", "validate: { json: { max_depth: 4 } }"),
	route("import-small", "POST", "/import-small",
		"validate: { json: { max_members: 3, max_elements: 5, max_string: 16, max_size: 100 } }"),
}

// valSend makes a request with body (nil: none), Content-Type ct (""
// for none) and header name/value pairs, and returns the answer.
func valSend(t testing.TB, method, url, ct string, body []byte, hdr ...string) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return valDo(t, req)
}

// valDo sends req with authClient and reads the whole answer.
func valDo(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := authClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// valChunked sends body chunked (no Content-Length).
func valChunked(t testing.TB, method, url, ct string, body []byte, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, io.MultiReader(bytes.NewReader(body))) // not a *bytes.Reader: no length
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return valDo(t, req)
}

// valCount is metricSum with "absent" read as 0.
func valCount(t testing.TB, g *gateway, name string, labels ...string) float64 {
	t.Helper()
	return max(metricSum(t, g, name, labels...), 0)
}

// valRefused asserts that a is the problem status/slug, that nothing of
// the submitted secret is in it, and that the upstream saw no request
// since hitsBefore. It returns the problem.
func valRefused(t testing.TB, a answer, up *upstream, hitsBefore int64, status int, slug string) problemBody {
	t.Helper()
	p := a.problem(t, status, slug)
	if bytes.Contains(a.body, []byte(valSecret)) {
		t.Errorf("the answer echoes the submitted value: %s", a.body)
	}
	if n := up.hits.Load() - hitsBefore; n != 0 {
		t.Errorf("the upstream received %d requests, want none", n)
	}
	return p
}

// valBody returns valOrder with the member name set to raw (a JSON value).
func valBody(t testing.TB, name, raw string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(valOrder), &m); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(m, name)
	} else {
		m[name] = json.RawMessage(raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// valNested returns depth nested arrays around 1.
func valNested(depth int) []byte {
	return []byte(strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth))
}

// TestValidationRequests sends invalid requests to the enforcing routes:
// each is refused with its problem and counted by reason, its detail names
// the field and rule without the value, and the upstream is never called.
func TestValidationRequests(t *testing.T) {
	up := valUpstream(t)
	g := valStart(t, valConfig("http://"+up.addr, valEnforceRoutes...))
	orders := g.URL("/orders")
	order := g.URL("/orders/" + valOrderID)
	const js = "application/json"
	hugeArray := `[0` + strings.Repeat(`,0`, 10000) + `]` // 10001 elements, max_elements 10000

	tests := []struct {
		name   string
		method string
		url    string
		ct     string
		body   []byte
		hdr    []string
		status int
		slug   string
		reason string   // of bulwark_validation_failures_total and bulwark_denials_total
		detail []string // the detail must contain each
	}{
		// Schema rules of the body.
		{name: "wrong type", url: orders, ct: js, body: valBody(t, "items", `[{"sku":"ABC-1234","quantity":"`+valSecret+`"}]`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/items/0/quantity"`, `"type"`}},
		{name: "integer above maximum", url: orders, ct: js, body: valBody(t, "items", `[{"sku":"ABC-1234","quantity":987654}]`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/items/0/quantity"`, `"maximum"`}},
		{name: "integer below minimum", url: orders, ct: js, body: valBody(t, "items", `[{"sku":"ABC-1234","quantity":2},{"sku":"ABC-1234","quantity":-987654}]`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/items/1/quantity"`, `"minimum"`}},
		{name: "pattern", url: orders, ct: js, body: valBody(t, "items", `[{"sku":"`+valSecret+`","quantity":1}]`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/items/0/sku"`, `"pattern"`}},
		{name: "enum", url: orders, ct: js, body: valBody(t, "currency", `"`+valSecret+`"`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/currency"`, `"enum"`}},
		{name: "email format", url: orders, ct: js, body: valBody(t, "customer", `{"email":"`+valSecret+`"}`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/customer/email"`, `"format"`}},
		{name: "maxLength", url: orders, ct: js, body: valBody(t, "notes", `"`+strings.Repeat(valSecret, 21)+`"`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/notes"`, `"maxLength"`}},
		{name: "empty items", url: orders, ct: js, body: valBody(t, "items", `[]`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"/items"`, `"minItems"`}},
		{name: "missing required member", url: orders, ct: js, body: valBody(t, "customer", ""),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`customer`, `"required"`}},
		{name: "missing nested required member", url: orders, ct: js, body: valBody(t, "items", `[{"quantity":1}]`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`sku`, `"required"`}},
		{name: "body not an object", url: orders, ct: js, body: []byte(`"` + valSecret + `"`),
			status: 400, slug: "invalid-request", reason: "body_schema", detail: []string{`"type"`}},
		{name: "missing body", url: orders, ct: js,
			status: 400, slug: "invalid-request", reason: "missing_body", detail: []string{"required"}},
		// Mass assignment: strict (the default) closes the schemas.
		{name: "extra property", url: orders, ct: js, body: valBody(t, "isAdmin", `"`+valSecret+`"`),
			status: 400, slug: "invalid-request", reason: "additional_property", detail: []string{`"/isAdmin"`, `"additionalProperties"`}},
		{name: "extra nested property", url: orders, ct: js, body: valBody(t, "items", `[{"sku":"ABC-1234","quantity":1,"discount":"`+valSecret+`"}]`),
			status: 400, slug: "invalid-request", reason: "additional_property", detail: []string{`"/items/0/discount"`, `"additionalProperties"`}},
		{name: "readOnly property", url: orders, ct: js, body: valBody(t, "id", `"5ec7e700-0000-4000-8000-00000000abcd"`),
			status: 400, slug: "invalid-request", reason: "read_only", detail: []string{`"/id"`, `"readOnly"`}},
		// Content types.
		{name: "text/plain", url: orders, ct: "text/plain", body: []byte(valSecret),
			status: 415, slug: "unsupported-media-type", reason: "content_type"},
		{name: "form", url: orders, ct: "application/x-www-form-urlencoded", body: []byte("currency=" + valSecret),
			status: 415, slug: "unsupported-media-type", reason: "content_type"},
		{name: "no content type", url: orders, body: []byte(valOrder),
			status: 415, slug: "unsupported-media-type", reason: "content_type"},
		// JSON threats: refused while the body is read.
		{name: "malformed JSON", url: orders, ct: js, body: []byte(`{"customer": ` + valSecret + `}`),
			status: 400, slug: "invalid-json", reason: "json_syntax"},
		{name: "truncated JSON", url: orders, ct: js, body: []byte(valOrder[:len(valOrder)-1]),
			status: 400, slug: "invalid-json", reason: "json_syntax"},
		{name: "trailing data", url: orders, ct: js, body: []byte(valOrder + `{"notes":"` + valSecret + `"}`),
			status: 400, slug: "invalid-json", reason: "json_trailing_data"},
		{name: "blank body", url: orders, ct: js, body: []byte("  \n "),
			status: 400, slug: "invalid-json", reason: "json_empty"},
		{name: "huge array", url: orders, ct: js, body: valBody(t, "items", hugeArray),
			status: 400, slug: "invalid-json", reason: "json_elements", detail: []string{"10000"}},
		{name: "duplicate member", url: orders, ct: js,
			body:   []byte(`{"customer":{"email":"ana@example.com"},"items":[{"sku":"ABC-1234","quantity":1}],"currency":"EUR","currency":"` + valSecret + `"}`),
			status: 400, slug: "invalid-json", reason: "json_duplicate_member", detail: []string{"currency"}},
		{name: "duplicate member a", url: orders, ct: js, body: []byte(`{"a":1,"a":2}`),
			status: 400, slug: "invalid-json", reason: "json_duplicate_member"},
		{name: "invalid UTF-8", url: orders, ct: js, body: valBody(t, "notes", `"`+valSecret+"\xff"+`"`),
			status: 400, slug: "invalid-json", reason: "json_invalid_utf8"},
		{name: "lone surrogate", url: orders, ct: js, body: valBody(t, "notes", `"`+valSecret+`\ud800"`),
			status: 400, slug: "invalid-json", reason: "json_invalid_utf8"},
		{name: "+json is JSON", url: orders, ct: "application/merge-patch+json; charset=utf-8", body: []byte(`{"a":1,"a":"` + valSecret + `"}`),
			status: 400, slug: "invalid-json", reason: "json_duplicate_member"},
		// Parameters.
		{name: "path uuid", method: "GET", url: g.URL("/orders/" + valPathSecret), hdr: []string{"X-Tenant", "acme"},
			status: 400, slug: "invalid-request", reason: "parameter", detail: []string{`"orderId"`, `"format"`}},
		{name: "query above maximum", method: "GET", url: order + "?limit=987654", hdr: []string{"X-Tenant", "acme"},
			status: 400, slug: "invalid-request", reason: "parameter", detail: []string{`"limit"`, `"maximum"`}},
		{name: "query below minimum", method: "GET", url: order + "?limit=0", hdr: []string{"X-Tenant", "acme"},
			status: 400, slug: "invalid-request", reason: "parameter", detail: []string{`"limit"`, `"minimum"`}},
		{name: "query not an integer", method: "GET", url: order + "?limit=" + valSecret, hdr: []string{"X-Tenant", "acme"},
			status: 400, slug: "invalid-request", reason: "parameter", detail: []string{`"limit"`, `"type"`}},
		{name: "missing header", method: "GET", url: order,
			status: 400, slug: "invalid-request", reason: "missing_parameter", detail: []string{`"X-Tenant"`, "required"}},
		{name: "header pattern", method: "GET", url: order, hdr: []string{"X-Tenant", valSecret},
			status: 400, slug: "invalid-request", reason: "parameter", detail: []string{`"X-Tenant"`, `"pattern"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "POST"
			}
			route := "create-order"
			if method == "GET" {
				route = "get-order"
			}
			failures := valCount(t, g, "bulwark_validation_failures_total", `route="`+route+`"`, `direction="request"`, `reason="`+tt.reason+`"`)
			denials := valCount(t, g, "bulwark_denials_total", `route="`+route+`"`, `stage="validate"`, `mode="enforce"`, `reason="`+tt.reason+`"`)
			before := up.hits.Load()
			a := valSend(t, method, tt.url, tt.ct, tt.body, tt.hdr...)
			p := valRefused(t, a, up, before, tt.status, tt.slug)
			for _, want := range tt.detail {
				if !strings.Contains(p.Detail, want) {
					t.Errorf("detail %q does not name %s", p.Detail, want)
				}
			}
			for _, v := range []string{"987654", "5ec7e700", "ana@example.com", valPathSecret} {
				if strings.Contains(p.Detail, v) {
					t.Errorf("detail %q repeats the value %s", p.Detail, v)
				}
			}
			if d := valCount(t, g, "bulwark_validation_failures_total", `route="`+route+`"`, `direction="request"`, `reason="`+tt.reason+`"`) - failures; d != 1 {
				t.Errorf("bulwark_validation_failures_total{route=%q,direction=\"request\",reason=%q} moved by %v, want 1", route, tt.reason, d)
			}
			if d := valCount(t, g, "bulwark_denials_total", `route="`+route+`"`, `stage="validate"`, `mode="enforce"`, `reason="`+tt.reason+`"`) - denials; d != 1 {
				t.Errorf("bulwark_denials_total{route=%q,stage=\"validate\",mode=\"enforce\",reason=%q} moved by %v, want 1", route, tt.reason, d)
			}
		})
	}

	t.Run("depth bomb", func(t *testing.T) {
		before := up.hits.Load()
		start := time.Now()
		a := valSend(t, "POST", orders, js, []byte(strings.Repeat("[", 100000)))
		took := time.Since(start)
		p := valRefused(t, a, up, before, 400, "invalid-json")
		if !strings.Contains(p.Detail, "32") {
			t.Errorf("detail %q does not name the depth limit 32", p.Detail)
		}
		if took > 2*time.Second {
			t.Errorf("a depth bomb took %v to refuse", took)
		}
		// A closed bomb too, and an object bomb.
		a = valSend(t, "POST", orders, js, valNested(50000))
		valRefused(t, a, up, before, 400, "invalid-json")
		a = valSend(t, "POST", orders, js, []byte(strings.Repeat(`{"a":`, 50000)))
		valRefused(t, a, up, before, 400, "invalid-json")
		if g.readyStatus(t) != http.StatusOK {
			t.Errorf("the gateway is not ready after the bombs")
		}
		if a := valSend(t, "POST", orders, js, []byte(valOrder)); a.status != http.StatusCreated {
			t.Errorf("a valid order after the bombs: status %d (%s), want 201", a.status, a.body)
		}
	})

	// Parameter pollution: the gateway forwards every value, so every
	// value must pass (an upstream may read the last one).
	t.Run("repeated query parameter", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "GET", order+"?limit=5&limit=987654", "", nil, "X-Tenant", "acme")
		p := valRefused(t, a, up, before, 400, "invalid-request")
		if !strings.Contains(p.Detail, `"limit"`) || strings.Contains(p.Detail, "987654") {
			t.Errorf("detail %q: want it to name limit and not the value", p.Detail)
		}
	})
	t.Run("repeated header", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "GET", order, "", nil, "X-Tenant", "acme", "X-Tenant", valSecret)
		p := valRefused(t, a, up, before, 400, "invalid-request")
		if !strings.Contains(p.Detail, `"X-Tenant"`) {
			t.Errorf("detail %q does not name X-Tenant", p.Detail)
		}
	})

	// 1000.00000000000000001 is not an integer, and above the maximum;
	// as a float64 it is 1000. An upstream that reads numbers exactly
	// (BigDecimal) sees what the schema forbids.
	t.Run("integer checked on the number as written", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "POST", orders, js, valBody(t, "items", `[{"sku":"ABC-1234","quantity":1000.00000000000000001}]`))
		p := valRefused(t, a, up, before, 400, "invalid-request")
		if !strings.Contains(p.Detail, `"/items/0/quantity"`) {
			t.Errorf("detail %q does not name /items/0/quantity", p.Detail)
		}
	})

	// A Content-Type whose media type is application/json but whose
	// parameters do not parse is still JSON to the operation (and to many
	// upstreams): the JSON limits must read it.
	t.Run("depth bomb with a malformed Content-Type", func(t *testing.T) {
		for _, ct := range []string{"application/json; charset", "application/json;;"} {
			before := up.hits.Load()
			a := valSend(t, "POST", orders, ct, []byte(strings.Repeat("[", 100000)))
			valRefused(t, a, up, before, 400, "invalid-json")
		}
	})

	t.Run("body over max_body_size", func(t *testing.T) {
		// 300 KiB > 256KiB, and within every JSON limit.
		item := `{"sku":"ABC-1234","quantity":1,"pad":"` + strings.Repeat("x", 100) + `"}`
		big := valBody(t, "items", "["+strings.Repeat(item+",", 2499)+item+"]")
		if len(big) < 300<<10 {
			t.Fatalf("the big body has %d bytes", len(big))
		}
		before := up.hits.Load()
		a := valSend(t, "POST", orders, js, big)
		valRefused(t, a, up, before, 413, "body-too-large")
		// Chunked: the limit is found while the validator reads.
		a = valChunked(t, "POST", orders, js, big)
		valRefused(t, a, up, before, 413, "body-too-large")
	})

	t.Run("the audit event names the rule, never the value", func(t *testing.T) {
		a := valSend(t, "POST", orders, js, valBody(t, "items", `[{"sku":"`+valSecret+`","quantity":1}]`))
		p := a.problem(t, 400, "invalid-request")
		events, raw := valReadAudit(t, g)
		ev, ok := events[p.RequestID]
		if !ok {
			t.Fatalf("no audit event for request %s", p.RequestID)
		}
		want := valDecision{Allowed: false, Stage: "validate", Reason: "body_schema", Rule: "pattern", Mode: "enforce"}
		if ev.Decision != want {
			t.Errorf("audit decision = %+v, want %+v", ev.Decision, want)
		}
		if ev.Status != 400 || ev.Route != "create-order" {
			t.Errorf("audit event status %d route %q, want 400 create-order", ev.Status, ev.Route)
		}
		if bytes.Contains(raw, []byte(valSecret)) {
			t.Errorf("the audit file holds a submitted value:\n%s", raw)
		}
	})
}

// valEvent is the part of an audit event these tests read.
type valEvent struct {
	RequestID string        `json:"request_id"`
	Route     string        `json:"route"`
	Status    int           `json:"status"`
	Decision  valDecision   `json:"decision"`
	WouldDeny []valDecision `json:"would_deny"`
}

type valDecision struct {
	Allowed bool   `json:"allowed"`
	Stage   string `json:"stage"`
	Reason  string `json:"reason"`
	Rule    string `json:"rule"`
	Mode    string `json:"mode"`
}

// valReadAudit stops g and returns its audit events by request id and the
// raw file.
func valReadAudit(t testing.TB, g *gateway) (map[string]valEvent, []byte) {
	t.Helper()
	g.stop(t)
	raw, err := os.ReadFile(filepath.Join(g.dir, "audit.jsonl"))
	if err != nil {
		t.Fatalf("read the audit file: %v", err)
	}
	events := map[string]valEvent{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var ev valEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%s", err, line)
		}
		events[ev.RequestID] = ev
	}
	return events, raw
}

// valPretty is a conforming order with whitespace, an unusual key order,
// escapes, a writeOnly password (allowed in requests) and an integer
// beyond int64 in externalRef (type integer, no format).
const valPretty = `{
  "currency" : "USD",
	"items": [ {"quantity": 1000, "sku": "XYZ-0001"},{"sku":"ABC-0002","quantity":1} ],
  "customer": {"name": "Zo\u00e9 \/ Ana", "email": "zoe@example.org"},
  "externalRef": 12345678901234567890,
  "notes": "café ☕ \"quoted\"",
  "password": "p"
}
`

// TestValidationPassesUnchanged: a valid request reaches the upstream
// byte for byte (whitespace, key order, escapes, a big integer), with its
// query and headers, and a conforming response comes back byte for byte.
func TestValidationPassesUnchanged(t *testing.T) {
	if !json.Valid([]byte(valPretty)) {
		t.Fatalf("valPretty is not JSON: %s", valPretty)
	}
	up := valUpstream(t)
	g := valStart(t, valConfig("http://"+up.addr, valEnforceRoutes...))

	check := func(t *testing.T, a answer, wantStatus int, wantBody string, sent []byte, ct string) {
		t.Helper()
		if a.status != wantStatus || string(a.body) != wantBody {
			t.Errorf("answer %d %q, want %d %q", a.status, a.body, wantStatus, wantBody)
		}
		r, got := up.lastRequest()
		if r == nil {
			t.Fatal("the upstream received nothing")
		}
		if !bytes.Equal(got, sent) {
			t.Errorf("the upstream received\n%q\nwant\n%q", got, sent)
		}
		if r.Header.Get("Content-Type") != ct {
			t.Errorf("upstream Content-Type = %q, want %q", r.Header.Get("Content-Type"), ct)
		}
	}

	t.Run("pretty body, pretty response", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "POST", g.URL("/orders"), "application/json", []byte(valPretty), "X-Val-Answer", "pretty")
		check(t, a, http.StatusCreated, valPrettyStored, []byte(valPretty), "application/json")
		if r, _ := up.lastRequest(); r.ContentLength != int64(len(valPretty)) {
			t.Errorf("upstream Content-Length = %d, want %d", r.ContentLength, len(valPretty))
		}
		if cl := a.header.Get("Content-Length"); cl != fmt.Sprint(len(valPrettyStored)) {
			t.Errorf("answer Content-Length = %q, want %d", cl, len(valPrettyStored))
		}
		if n := up.hits.Load() - before; n != 1 {
			t.Errorf("the upstream received %d requests, want 1", n)
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		a := valChunked(t, "POST", g.URL("/orders"), "application/json; charset=utf-8", []byte(valPretty))
		check(t, a, http.StatusCreated, valStored, []byte(valPretty), "application/json; charset=utf-8")
	})
	t.Run("query and headers are forwarded", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/orders/"+valOrderID+"?limit=100&b=2&a=1"), "", nil,
			"X-Tenant", "acme", "X-Other", "kept")
		check(t, a, http.StatusOK, valStored, nil, "")
		r, _ := up.lastRequest()
		if r.URL.Path != "/orders/"+valOrderID || r.URL.RawQuery != "limit=100&b=2&a=1" {
			t.Errorf("upstream URL = %s, want /orders/%s?limit=100&b=2&a=1", r.URL, valOrderID)
		}
		if r.Header.Get("X-Tenant") != "acme" || r.Header.Get("X-Other") != "kept" {
			t.Errorf("upstream headers X-Tenant %q X-Other %q, want acme and kept", r.Header.Get("X-Tenant"), r.Header.Get("X-Other"))
		}
	})
	t.Run("declared 404 without content", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/orders/"+valOrderID), "", nil, "X-Tenant", "acme", "X-Val-Answer", "not-found")
		if a.status != http.StatusNotFound || string(a.body) != "no such order" {
			t.Errorf("answer %d %q, want 404 %q", a.status, a.body, "no such order")
		}
	})
	t.Run("no JSON limits on other content types", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/octet-stream", "application/jsonl", "application/x-json-stream"} {
			body := append(valNested(64), []byte(` {"a":1,"a":2} "\xff"`)...)
			a := valSend(t, "POST", g.URL("/import"), ct, body)
			check(t, a, http.StatusCreated, valStored, body, ct)
		}
	})
}

// TestValidationResponses: with response: enforce, an upstream answer that
// breaks the spec becomes a 502 that carries nothing of it, counted by
// reason with direction="response"; a conforming answer passes.
func TestValidationResponses(t *testing.T) {
	up := valUpstream(t)
	g := valStart(t, valConfig("http://"+up.addr, valEnforceRoutes...))
	tests := []struct {
		answer string // of valAnswers
		get    bool   // GET /orders/{orderId} (get-order) rather than POST /orders
		reason string
	}{
		{answer: "extra", reason: "additional_property"},
		{answer: "write-only", reason: "write_only"},
		{answer: "wrong-type", reason: "response_schema"},
		{answer: "missing-req", reason: "response_schema"},
		{answer: "teapot", reason: "undeclared_status"},
		{answer: "html", reason: "response_content_type"},
		{answer: "no-ct", reason: "response_content_type"},
		{answer: "dup-member", reason: "invalid_json"},
		{answer: "gzip-extra", reason: "additional_property"},
		{answer: "extra", get: true, reason: "additional_property"},
		{answer: "write-only", get: true, reason: "write_only"},
		{answer: "teapot", get: true, reason: "undeclared_status"},
	}
	for _, tt := range tests {
		rt := "create-order"
		if tt.get {
			rt = "get-order"
		}
		t.Run(rt+" "+tt.answer, func(t *testing.T) {
			labels := []string{`route="` + rt + `"`, `direction="response"`, `reason="` + tt.reason + `"`}
			failures := valCount(t, g, "bulwark_validation_failures_total", labels...)
			denials := valCount(t, g, "bulwark_denials_total", `route="`+rt+`"`, `stage="validate"`, `mode="enforce"`, `reason="`+tt.reason+`"`)
			before := up.hits.Load()
			var a answer
			if tt.get {
				a = valSend(t, "GET", g.URL("/orders/"+valOrderID), "", nil, "X-Tenant", "acme", "X-Val-Answer", tt.answer)
			} else {
				a = valSend(t, "POST", g.URL("/orders"), "application/json", []byte(valOrder), "X-Val-Answer", tt.answer)
			}
			a.problem(t, http.StatusBadGateway, "invalid-upstream-response")
			for _, leak := range []string{valSecret, "internal_cost", "password", "html", valOrderID} {
				if bytes.Contains(a.body, []byte(leak)) {
					t.Errorf("the 502 carries %q of the upstream's answer: %s", leak, a.body)
				}
			}
			if n := up.hits.Load() - before; n != 1 {
				t.Errorf("the upstream received %d requests, want 1", n)
			}
			if d := valCount(t, g, "bulwark_validation_failures_total", labels...) - failures; d != 1 {
				t.Errorf("bulwark_validation_failures_total%v moved by %v, want 1", labels, d)
			}
			if d := valCount(t, g, "bulwark_denials_total", `route="`+rt+`"`, `stage="validate"`, `mode="enforce"`, `reason="`+tt.reason+`"`) - denials; d != 1 {
				t.Errorf("bulwark_denials_total{route=%q,stage=\"validate\",mode=\"enforce\",reason=%q} moved by %v, want 1", rt, tt.reason, d)
			}
		})
	}
	t.Run("conforming answers pass byte for byte", func(t *testing.T) {
		a := valSend(t, "POST", g.URL("/orders"), "application/json", []byte(valOrder), "X-Val-Answer", "pretty")
		if a.status != http.StatusCreated || string(a.body) != valPrettyStored {
			t.Errorf("answer %d %q, want 201 %q", a.status, a.body, valPrettyStored)
		}
		a = valSend(t, "GET", g.URL("/orders/"+valOrderID), "", nil, "X-Tenant", "acme")
		if a.status != http.StatusOK || string(a.body) != valStored {
			t.Errorf("answer %d %q, want 200 %q", a.status, a.body, valStored)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
	})
}

// valReportRoutes: create-order in report mode both ways; get-order
// enforcing with strict_query.
var valReportRoutes = []string{
	route("create-order", "POST", "/orders", "max_body_size: 256KiB",
		"validate: { spec: orders, request: report, response: report }"),
	route("get-order", "GET", "/orders/{orderId}", "validate: { spec: orders, strict_query: true }"),
}

// TestValidationReportMode: request: report lets an invalid request
// through and counts a report-mode denial; the JSON limits still refuse;
// response: report lets a bad answer through and counts it.
func TestValidationReportMode(t *testing.T) {
	up := valUpstream(t)
	g := valStart(t, valConfig("http://"+up.addr, valReportRoutes...))
	orders := g.URL("/orders")

	reported := func(t *testing.T, reason string, send func() answer) (answer, int64) {
		t.Helper()
		labels := []string{`route="create-order"`, `stage="validate"`, `mode="report"`, `reason="` + reason + `"`}
		denials := valCount(t, g, "bulwark_denials_total", labels...)
		failures := valCount(t, g, "bulwark_validation_failures_total", `route="create-order"`, `direction="request"`, `reason="`+reason+`"`)
		before := up.hits.Load()
		a := send()
		if n := up.hits.Load() - before; n != 1 {
			t.Errorf("the upstream received %d requests, want 1", n)
		}
		if d := valCount(t, g, "bulwark_denials_total", labels...) - denials; d != 1 {
			t.Errorf("bulwark_denials_total%v moved by %v, want 1", labels, d)
		}
		if d := valCount(t, g, "bulwark_validation_failures_total", `route="create-order"`, `direction="request"`, `reason="`+reason+`"`) - failures; d != 1 {
			t.Errorf("bulwark_validation_failures_total{route=\"create-order\",direction=\"request\",reason=%q} moved by %v, want 1", reason, d)
		}
		return a, before
	}

	var reportedID string
	t.Run("schema failure reaches the upstream", func(t *testing.T) {
		body := valBody(t, "items", `[{"sku":"`+valSecret+`","quantity":1}]`)
		a, _ := reported(t, "body_schema", func() answer {
			return valSend(t, "POST", orders, "application/json", body)
		})
		if a.status != http.StatusCreated || string(a.body) != valStored {
			t.Errorf("answer %d %q, want 201 %q", a.status, a.body, valStored)
		}
		if _, got := up.lastRequest(); !bytes.Equal(got, body) {
			t.Errorf("the upstream received %q, want %q", got, body)
		}
		reportedID = a.header.Get("X-Request-Id")
	})
	t.Run("mass assignment reaches the upstream", func(t *testing.T) {
		body := valBody(t, "isAdmin", "true")
		a, _ := reported(t, "additional_property", func() answer {
			return valSend(t, "POST", orders, "application/json", body)
		})
		if a.status != http.StatusCreated {
			t.Errorf("status %d, want 201", a.status)
		}
	})
	t.Run("content type reaches the upstream", func(t *testing.T) {
		a, _ := reported(t, "content_type", func() answer {
			return valSend(t, "POST", orders, "text/plain", []byte(valSecret))
		})
		if a.status != http.StatusCreated {
			t.Errorf("status %d, want 201", a.status)
		}
		if _, got := up.lastRequest(); string(got) != valSecret {
			t.Errorf("the upstream received %q, want %q", got, valSecret)
		}
	})
	if !strings.Contains(g.Logs(), "would deny") {
		t.Errorf("no would-deny decision was logged")
	}

	// The JSON limits are a protocol defence: they enforce in report mode.
	for _, tt := range []struct {
		name, reason string
		body         []byte
	}{
		{"depth bomb", "json_depth", []byte(strings.Repeat("[", 100000))},
		{"duplicate member", "json_duplicate_member", []byte(`{"a":1,"a":2}`)},
		{"duplicate valid member", "json_duplicate_member", []byte(`{"customer":{"email":"ana@example.com"},"items":[{"sku":"ABC-1234","quantity":1}],"currency":"EUR","currency":"` + valSecret + `"}`)},
		{"invalid UTF-8", "json_invalid_utf8", valBody(t, "notes", `"`+valSecret+"\xff"+`"`)},
		{"malformed", "json_syntax", []byte(`{"notes":"` + valSecret + `",}`)},
		{"huge array", "json_elements", valBody(t, "items", `[0`+strings.Repeat(`,0`, 10000)+`]`)},
	} {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			labels := []string{`route="create-order"`, `stage="validate"`, `mode="enforce"`, `reason="` + tt.reason + `"`}
			denials := valCount(t, g, "bulwark_denials_total", labels...)
			report := valCount(t, g, "bulwark_denials_total", `route="create-order"`, `stage="validate"`, `mode="report"`, `reason="`+tt.reason+`"`)
			before := up.hits.Load()
			a := valSend(t, "POST", orders, "application/json", tt.body)
			valRefused(t, a, up, before, 400, "invalid-json")
			if d := valCount(t, g, "bulwark_denials_total", labels...) - denials; d != 1 {
				t.Errorf("bulwark_denials_total%v moved by %v, want 1", labels, d)
			}
			if d := valCount(t, g, "bulwark_denials_total", `route="create-order"`, `stage="validate"`, `mode="report"`, `reason="`+tt.reason+`"`) - report; d != 0 {
				t.Errorf("a report-mode denial was counted for %s", tt.reason)
			}
		})
	}

	// Report mode must not open the JSON limits to a Content-Type that
	// the limits do not recognise but the operation reads as JSON.
	for _, ct := range []string{"application/json; charset", "application/json;;", "application/json; charset=utf-8; charset=latin1"} {
		t.Run("depth bomb and duplicate member with Content-Type "+ct, func(t *testing.T) {
			before := up.hits.Load()
			a := valSend(t, "POST", orders, ct, []byte(strings.Repeat("[", 100000)))
			valRefused(t, a, up, before, 400, "invalid-json")
			a = valSend(t, "POST", orders, ct, []byte(`{"customer":{"email":"ana@example.com"},"items":[{"sku":"ABC-1234","quantity":1}],"currency":"EUR","currency":"`+valSecret+`"}`))
			valRefused(t, a, up, before, 400, "invalid-json")
		})
	}

	t.Run("response report lets the answer through", func(t *testing.T) {
		labels := []string{`route="create-order"`, `direction="response"`, `reason="additional_property"`}
		failures := valCount(t, g, "bulwark_validation_failures_total", labels...)
		denials := valCount(t, g, "bulwark_denials_total", `route="create-order"`, `stage="validate"`, `mode="report"`, `reason="additional_property"`)
		a := valSend(t, "POST", orders, "application/json", []byte(valOrder), "X-Val-Answer", "extra")
		if a.status != http.StatusCreated || string(a.body) != valAnswers["extra"].body {
			t.Errorf("answer %d %q, want 201 %q", a.status, a.body, valAnswers["extra"].body)
		}
		if d := valCount(t, g, "bulwark_validation_failures_total", labels...) - failures; d != 1 {
			t.Errorf("bulwark_validation_failures_total%v moved by %v, want 1", labels, d)
		}
		if d := valCount(t, g, "bulwark_denials_total", `route="create-order"`, `stage="validate"`, `mode="report"`, `reason="additional_property"`) - denials; d != 1 {
			t.Errorf("report-mode response denials moved by %v, want 1", d)
		}
		a = valSend(t, "POST", orders, "application/json", []byte(valOrder), "X-Val-Answer", "teapot")
		if a.status != http.StatusTeapot || string(a.body) != valAnswers["teapot"].body {
			t.Errorf("answer %d %q, want 418 %q", a.status, a.body, valAnswers["teapot"].body)
		}
	})

	t.Run("strict_query", func(t *testing.T) {
		labels := []string{`route="get-order"`, `direction="request"`, `reason="unknown_query"`}
		failures := valCount(t, g, "bulwark_validation_failures_total", labels...)
		before := up.hits.Load()
		a := valSend(t, "GET", g.URL("/orders/"+valOrderID+"?limit=5&debug="+valSecret), "", nil, "X-Tenant", "acme")
		p := valRefused(t, a, up, before, 400, "invalid-request")
		if !strings.Contains(p.Detail, `"debug"`) {
			t.Errorf("detail %q does not name the parameter debug", p.Detail)
		}
		if d := valCount(t, g, "bulwark_validation_failures_total", labels...) - failures; d != 1 {
			t.Errorf("bulwark_validation_failures_total%v moved by %v, want 1", labels, d)
		}
		a = valSend(t, "GET", g.URL("/orders/"+valOrderID+"?limit=5"), "", nil, "X-Tenant", "acme")
		if a.status != http.StatusOK {
			t.Errorf("declared query only: status %d (%s), want 200", a.status, a.body)
		}
	})

	t.Run("audit records the would-deny", func(t *testing.T) {
		if reportedID == "" {
			t.Skip("the report-mode request failed")
		}
		events, raw := valReadAudit(t, g)
		ev, ok := events[reportedID]
		if !ok {
			t.Fatalf("no audit event for request %s", reportedID)
		}
		// The first report-mode decision is the event's decision
		// (docs/audit.md, decisions and report mode).
		want := valDecision{Allowed: true, Stage: "validate", Reason: "body_schema", Rule: "pattern", Mode: "report"}
		if ev.Decision != want || len(ev.WouldDeny) != 0 || ev.Status != http.StatusCreated {
			t.Errorf("audit event: decision %+v would_deny %+v status %d; want %+v, none, 201", ev.Decision, ev.WouldDeny, ev.Status, want)
		}
		if bytes.Contains(raw, []byte(valSecret)) {
			t.Errorf("the audit file holds a submitted value:\n%s", raw)
		}
	})
}

// TestValidationJSONLimitsWithoutSpec: a route with `validate: { json: ...
// }` and no spec refuses JSON bodies over its limits and passes the rest
// unchanged; bodies of other content types are not scanned.
func TestValidationJSONLimitsWithoutSpec(t *testing.T) {
	up := valUpstream(t)
	g := valStart(t, valConfig("http://"+up.addr, valEnforceRoutes...))
	// sized is a JSON document of n bytes within the other limits.
	sized := func(n int) []byte {
		head, tail := `{"a":"`+valSecret+`","c":[`, `]}`
		return []byte(head + strings.Repeat(" ", n-len(head)-len(tail)) + tail)
	}
	tests := []struct {
		name, path, ct string
		body           []byte
		reason         string // "" passes
		detail         string
	}{
		{name: "depth 4 passes", path: "/import", ct: "application/json", body: valNested(4)},
		{name: "object depth 4 passes", path: "/import", ct: "application/json", body: []byte(`{"a":{"b":[{"c":"` + valSecret + `"}]}}`)},
		{name: "depth 5", path: "/import", ct: "application/json", body: valNested(5), reason: "json_depth", detail: "4"},
		{name: "object depth 5", path: "/import", ct: "application/json", body: []byte(`{"a":{"b":[{"c":{"d":"` + valSecret + `"}}]}}`), reason: "json_depth", detail: "4"},
		{name: "+json depth 5", path: "/import", ct: "application/vnd.api+json", body: valNested(5), reason: "json_depth"},
		{name: "upper-case media type", path: "/import", ct: "Application/JSON; Charset=UTF-8", body: valNested(5), reason: "json_depth"},
		{name: "duplicate member", path: "/import", ct: "application/json", body: []byte(`{"a":1,"a":"` + valSecret + `"}`), reason: "json_duplicate_member"},
		{name: "escaped duplicate member", path: "/import", ct: "application/json", body: []byte(`{"a":1,"\u0061":"` + valSecret + `"}`), reason: "json_duplicate_member"},
		{name: "invalid UTF-8", path: "/import", ct: "application/json", body: []byte(`["` + valSecret + "\xff" + `"]`), reason: "json_invalid_utf8"},
		{name: "no body-schema checks", path: "/import", ct: "application/json", body: []byte(`{"anything":["goes",1,null,true]}`)},
		{name: "text/plain is not scanned", path: "/import", ct: "text/plain", body: valNested(100)},
		{name: "octet-stream is not scanned", path: "/import", ct: "application/octet-stream", body: []byte(`{"a":1,"a":2,"b":"` + "\xff" + `"}`)},
		{name: "members 3 pass", path: "/import-small", ct: "application/json", body: []byte(`{"a":1,"b":2,"c":3}`)},
		{name: "members 4", path: "/import-small", ct: "application/json", body: []byte(`{"a":1,"b":2,"c":3,"d":"` + valSecret + `"}`), reason: "json_members", detail: "3"},
		{name: "elements 5 pass", path: "/import-small", ct: "application/json", body: []byte(`[1,2,3,4,5]`)},
		{name: "elements 6", path: "/import-small", ct: "application/json", body: []byte(`[1,2,3,4,5,"` + valSecret + `"]`), reason: "json_elements", detail: "5"},
		{name: "string 16 passes", path: "/import-small", ct: "application/json", body: []byte(`["` + strings.Repeat("s", 16) + `"]`)},
		{name: "string 17", path: "/import-small", ct: "application/json", body: []byte(`["` + valSecret + strings.Repeat("s", 7) + `"]`), reason: "json_string_length", detail: "16"},
		{name: "name 17", path: "/import-small", ct: "application/json", body: []byte(`{"` + valSecret + strings.Repeat("n", 7) + `":1}`), reason: "json_string_length"},
		{name: "size 100 passes", path: "/import-small", ct: "application/json", body: sized(100)},
		{name: "size 101", path: "/import-small", ct: "application/json", body: sized(101), reason: "json_size", detail: "100"},
	}
	// A media type of application/json with parameters that do not
	// parse is still JSON to many upstreams: the limits must read it.
	for _, ct := range []string{"application/json; charset", "application/json;;", "application/json; charset=utf-8; charset=latin1", `application/json; a="b`} {
		tests = append(tests, struct {
			name, path, ct string
			body           []byte
			reason         string
			detail         string
		}{name: "depth 5 with Content-Type " + ct, path: "/import", ct: ct, body: valNested(5), reason: "json_depth", detail: "4"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := strings.TrimPrefix(tt.path, "/")
			before := up.hits.Load()
			var failures float64
			if tt.reason != "" {
				failures = valCount(t, g, "bulwark_validation_failures_total", `route="`+route+`"`, `direction="request"`, `reason="`+tt.reason+`"`)
			}
			a := valSend(t, "POST", g.URL(tt.path), tt.ct, tt.body)
			if tt.reason == "" {
				if a.status != http.StatusCreated {
					t.Fatalf("status %d (%s), want 201", a.status, a.body)
				}
				if _, got := up.lastRequest(); !bytes.Equal(got, tt.body) {
					t.Errorf("the upstream received %q, want %q", got, tt.body)
				}
				return
			}
			p := valRefused(t, a, up, before, 400, "invalid-json")
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q does not name the limit %s", p.Detail, tt.detail)
			}
			if d := valCount(t, g, "bulwark_validation_failures_total", `route="`+route+`"`, `direction="request"`, `reason="`+tt.reason+`"`) - failures; d != 1 {
				t.Errorf("bulwark_validation_failures_total{route=%q,reason=%q} moved by %v, want 1", route, tt.reason, d)
			}
		})
	}
}

// valCLI writes cfg as bulwark.yaml and files beside it into a fresh
// directory, runs `bulwark validate --config` on it and returns the
// config's path, the combined output and the exit code.
func valCLI(t *testing.T, cfg string, files map[string]string) (path, out string, code int) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), []byte(content))
	}
	path = filepath.Join(dir, "bulwark.yaml")
	writeFile(t, path, []byte(cfg))
	cmd := exec.Command(binary, "validate", "--config", path)
	cmd.Env = append(os.Environ(), valGORACE())
	b, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run bulwark validate: %v", err)
	}
	return path, string(b), cmd.ProcessState.ExitCode()
}

// valPos returns "line:col" (1-based) of the first needle in text, plus
// skip bytes.
func valPos(t *testing.T, text, needle string, skip int) string {
	t.Helper()
	i := strings.Index(text, needle)
	if i < 0 {
		t.Fatalf("%q is not in:\n%s", needle, text)
	}
	i += skip
	line := strings.Count(text[:i], "\n") + 1
	col := i - strings.LastIndex(text[:i], "\n")
	return fmt.Sprintf("%d:%d", line, col)
}

// TestValidationConfigErrors: bulwark validate refuses specs and routes
// that cannot validate, with file:line:col and the key path, and never
// fetches a remote $ref.
func TestValidationConfigErrors(t *testing.T) {
	var remoteHits atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remoteHits.Add(1)
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = io.WriteString(w, "Foo:\n  type: object\n")
	}))
	defer remote.Close()
	orders := string(valSpec(t, "orders.yaml"))
	specs := func(file string) string { return "specs:\n  orders: { file: " + file + " }\n" }
	withRoutes := func(routes ...string) string {
		return baseConfig("http://127.0.0.1:9", routes...) + specs("orders.yaml")
	}
	remoteRef := remote.URL + "/x.yaml#/Foo"
	remoteSpec := strings.Replace(orders, `$ref: "#/components/schemas/Customer"`, `$ref: "`+remoteRef+`"`, 1)
	localSpec := strings.Replace(orders, `$ref: "#/components/schemas/Customer"`, `$ref: "common.yaml#/Customer"`, 1)
	const common = "Customer:\n  type: object\n  properties:\n    email: { type: string, format: email }\n"
	// Line 7 has the error: a mapping value where none may be.
	brokenSpec := "openapi: 3.0.3\ninfo:\n  title: Broken\n  version: 1.0.0\npaths: {}\nx: 1\n y: 2\nz: 3\n"
	createOrder := route("create-order", "POST", "/orders", "validate: { spec: orders }")

	tests := []struct {
		name  string
		cfg   string
		files map[string]string
		// want: the config-side position is found by needle (+skip) in
		// the config; then the key path, then msg (a regexp).
		needle string
		skip   int
		path   string
		msg    string
	}{
		{name: "remote $ref", cfg: withRoutes(createOrder), files: map[string]string{"orders.yaml": remoteSpec},
			needle: "file: orders.yaml", skip: len("file: "), path: "specs.orders.file",
			msg: `\S*orders\.yaml:` + valPos(t, remoteSpec, `"`+remoteRef, 0) + `: remote \$ref "` + regexp.QuoteMeta(remote.URL+"/x.yaml") + `(#/Foo)?" refused`},
		{name: "missing spec file", cfg: baseConfig("http://127.0.0.1:9", createOrder) + specs("nope.yaml"),
			needle: "file: nope.yaml", skip: len("file: "), path: "specs.orders.file", msg: `\S*nope\.yaml.*no such file`},
		{name: "spec YAML syntax error", cfg: withRoutes(createOrder), files: map[string]string{"orders.yaml": brokenSpec},
			needle: "file: orders.yaml", skip: len("file: "), path: "specs.orders.file", msg: `\S*orders\.yaml:7: .*mapping values`},
		{name: "no operation for the route", cfg: withRoutes(route("delete-order", "DELETE", "/orders", "validate: { spec: orders }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "{ spec: orders }", skip: len("{ spec: "), path: `routes\[0\]\.validate\.spec`, msg: `.*DELETE.*/orders`},
		{name: "no operation for the path", cfg: withRoutes(route("list", "GET", "/orders/{orderId}/items", "validate: { spec: orders }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "{ spec: orders }", skip: len("{ spec: "), path: `routes\[0\]\.validate\.spec`, msg: `.*GET.*/orders/\{orderId\}/items`},
		{name: "unknown operationId", cfg: withRoutes(route("create-order", "POST", "/orders", "validate: { spec: orders, operation: nosuchId }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "nosuchId", path: `routes\[0\]\.validate\.operation`, msg: `.*nosuchId`},
		{name: "operationId of another method", cfg: withRoutes(route("create-order", "PUT", "/orders", "validate: { spec: orders, operation: createOrder }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "operation: createOrder", skip: len("operation: "), path: `routes\[0\]\.validate\.operation`, msg: `.*POST`},
		{name: "operationId of another path", cfg: withRoutes(route("get", "GET", "/orders", "validate: { spec: orders, operation: getOrder }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "operation: getOrder", skip: len("operation: "), path: `routes\[0\]\.validate\.operation`, msg: `.*/orders/\{orderId\}`},
		{name: "unknown spec", cfg: withRoutes(route("create-order", "POST", "/orders", "validate: { spec: nope }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "{ spec: nope }", skip: len("{ spec: "), path: `routes\[0\]\.validate\.spec`, msg: `.*"nope"`},
		{name: "JSON limit below 1", cfg: withRoutes(route("import", "POST", "/import", "validate: { json: { max_depth: 0 } }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "max_depth: 0", skip: len("max_depth: "), path: `routes\[0\]\.validate\.json\.max_depth`, msg: `.*at least 1`},
		{name: "strict_query without spec", cfg: withRoutes(route("import", "POST", "/import", "validate: { strict_query: true }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "strict_query: true", skip: len("strict_query: "), path: `routes\[0\]\.validate\.strict_query`, msg: `.*spec`},
		{name: "unknown request mode", cfg: withRoutes(route("create-order", "POST", "/orders", "validate: { spec: orders, request: block }")),
			files:  map[string]string{"orders.yaml": orders},
			needle: "request: block", skip: len("request: "), path: `routes\[0\]\.validate\.request`, msg: `.*`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, out, code := valCLI(t, tt.cfg, tt.files)
			if code != 1 {
				t.Errorf("exit code = %d, want 1\n%s", code, out)
			}
			want := `(?m)^` + regexp.QuoteMeta(path) + `:` + valPos(t, tt.cfg, tt.needle, tt.skip) + `: ` + tt.path + `: ` + tt.msg
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("output does not match %s:\n%s", want, out)
			}
		})
	}
	if n := remoteHits.Load(); n != 0 {
		t.Errorf("the remote $ref was fetched %d times", n)
	}

	t.Run("serve refuses a remote $ref", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "orders.yaml"), []byte(remoteSpec))
		cfg := filepath.Join(dir, "bulwark.yaml")
		writeFile(t, cfg, []byte(withRoutes(createOrder)))
		cmd := exec.Command(binary, "serve", "--config", cfg)
		cmd.Env = append(os.Environ(), valGORACE())
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("serve: exit code = %d, want 1\n%s", code, out)
		}
		if n := remoteHits.Load(); n != 0 {
			t.Errorf("the remote $ref was fetched %d times", n)
		}
	})

	t.Run("valid", func(t *testing.T) {
		for name, files := range map[string]map[string]string{
			"orders":    {"orders.yaml": orders},
			"local ref": {"orders.yaml": localSpec, "common.yaml": common},
		} {
			_, out, code := valCLI(t, withRoutes(valEnforceRoutes...), files)
			if code != 0 {
				t.Errorf("%s: exit code = %d, want 0\n%s", name, code, out)
			}
		}
	})
}

// TestValidationSpecReload: specs are loaded again on every reload; a
// spec that no longer loads (a remote $ref, a syntax error) refuses the
// reload and the running one keeps serving, without fetching anything.
func TestValidationSpecReload(t *testing.T) {
	var remoteHits atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remoteHits.Add(1)
		_, _ = io.WriteString(w, "Foo:\n  type: object\n")
	}))
	defer remote.Close()
	up := valUpstream(t)
	cfg := valConfig("http://"+up.addr, valEnforceRoutes...)
	g := valStart(t, cfg)
	orders := string(valSpec(t, "orders.yaml"))
	const enum = "enum: [EUR, USD]"
	if !strings.Contains(orders, enum) {
		t.Fatalf("the spec lacks %q", enum)
	}
	gbp := valBody(t, "currency", `"GBP"`)
	post := func() int { return valSend(t, "POST", g.URL("/orders"), "application/json", gbp).status }
	reload := func(t *testing.T, spec string, wantApplied bool) {
		t.Helper()
		writeFile(t, filepath.Join(g.dir, "orders.yaml"), []byte(spec))
		refused := strings.Count(g.Logs(), `"config reload refused`)
		g.reload(t, cfg)
		if got := strings.Count(g.Logs(), `"config reload refused`) > refused; got == wantApplied {
			t.Fatalf("reload refused = %v, want %v\n%s", got, !wantApplied, g.Logs())
		}
	}

	if s := post(); s != http.StatusBadRequest {
		t.Fatalf("GBP before the reload: status %d, want 400", s)
	}
	reload(t, strings.Replace(orders, enum, "enum: [EUR, USD, GBP]", 1), true)
	if s := post(); s != http.StatusCreated {
		t.Fatalf("GBP after the spec allowed it: status %d, want 201", s)
	}
	reload(t, strings.Replace(orders, `$ref: "#/components/schemas/Customer"`, `$ref: "`+remote.URL+`/x.yaml#/Foo"`, 1), false)
	reload(t, "openapi: 3.0.3\ninfo: [\n", false)
	reload(t, strings.Replace(orders, "/orders/{orderId}:", "/other/{orderId}:", 1), false) // get-order has no operation
	if s := post(); s != http.StatusCreated {
		t.Errorf("GBP after refused reloads: status %d, want 201 (the last good spec)", s)
	}
	if n := remoteHits.Load(); n != 0 {
		t.Errorf("the remote $ref was fetched %d times", n)
	}
}
