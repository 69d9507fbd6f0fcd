package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// authorizeSpec is the OpenAPI document of the validated body route.
const authorizeSpec = `openapi: 3.0.3
info: { title: Notes (e2e authorize tests), version: 1.0.0 }
paths:
  /spec-notes:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [owner]
              properties:
                owner: { type: string }
                text: { type: string }
      responses:
        "200": { description: ok }
`

// authorizeRoute is a route of method to the api upstream with auth
// [corp]; extra are more route keys.
func authorizeRoute(name, method, path string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    method: %s\n    path: %q\n    upstream: api\n    auth: [corp]", name, method, path)
	for _, e := range extra {
		s += "\n    " + e
	}
	return s
}

// TestAuthorizeObjectRules runs object-level rules through the real
// binary with two tenants' users, alice and bob: neither reads, updates
// or deletes the other's objects (and the upstream never sees the
// attempt), an admin passes, body rules hold with and without a spec, a
// 404 denial reads like an unknown route, and repeated parameters that a
// rule reads are refused.
func TestAuthorizeObjectRules(t *testing.T) {
	up := startUpstream(t, nil)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	const owner = `authorize: { rules: [ { name: owner, expr: 'request.path.userId == principal.sub || "admin" in principal.roles' } ] }`
	const bodyOwner = `authorize: { rules: [ { name: body-owner, expr: 'request.body.owner == principal.sub' } ] }`
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url())},
		top:            "specs:\n  notes: { file: notes.yaml }",
		routes: []string{
			authorizeRoute("get-order", "GET", "/users/{userId}/orders/{orderId}", "require: { scopes: [orders:read] }", owner),
			authorizeRoute("put-order", "PUT", "/users/{userId}/orders/{orderId}", owner),
			authorizeRoute("delete-order", "DELETE", "/users/{userId}/orders/{orderId}",
				`authorize: { deny_status: 404, rules: [ { name: owner, expr: 'request.path.userId == principal.sub' } ] }`),
			authorizeRoute("notes", "POST", "/notes", bodyOwner),
			authorizeRoute("spec-notes", "POST", "/spec-notes", "validate: { spec: notes }", bodyOwner),
			authorizeRoute("on-behalf", "GET", "/on-behalf",
				`authorize: { rules: [ { name: on-behalf, expr: 'request.headers["x-on-behalf"] == principal.sub' } ] }`),
			authorizeRoute("tenant-items", "GET", "/tenants/{tenant}/items",
				`authorize: { rules: [ { name: tenant, expr: 'request.path.tenant == principal.claims.tenant && request.query.view == "summary"' } ] }`),
			authorizeRoute("report", "GET", "/report/users/{userId}",
				`authorize: { mode: report, rules: [ { name: owner, expr: 'request.path.userId == principal.sub' } ] }`),
		},
	}.yaml()
	g := startGateway(t, cfg, map[string][]byte{"notes.yaml": []byte(authorizeSpec)})

	token := func(sub string, roles ...any) string {
		return "Bearer " + signRS256(t, key, "a", claims(sub, "orders:read", func(c jwt.MapClaims) {
			c["roles"] = roles
			c["tenant"] = map[string]string{"alice": "acme", "bob": "globex"}[sub]
		}))
	}
	alice, bob, admin := token("alice", "user"), token("bob", "user"), token("carol", "admin")

	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		ct     string
		body   string
		hdr    []string
		status int
		slug   string
	}{
		{name: "alice reads her order", method: "GET", path: "/users/alice/orders/1", auth: alice, status: 200},
		{name: "alice reads bob's order", method: "GET", path: "/users/bob/orders/1", auth: alice, status: 403, slug: "forbidden"},
		{name: "bob reads alice's order", method: "GET", path: "/users/alice/orders/1", auth: bob, status: 403, slug: "forbidden"},
		{name: "encoded path param is decoded", method: "GET", path: "/users/%62ob/orders/1", auth: alice, status: 403, slug: "forbidden"},
		{name: "alice updates bob's order", method: "PUT", path: "/users/bob/orders/1", auth: alice, status: 403, slug: "forbidden"},
		{name: "alice deletes bob's order", method: "DELETE", path: "/users/bob/orders/1", auth: alice, status: 404, slug: "not-found"},
		{name: "alice deletes her order", method: "DELETE", path: "/users/alice/orders/1", auth: alice, status: 200},
		{name: "an admin reads bob's order", method: "GET", path: "/users/bob/orders/1", auth: admin, status: 200},
		{name: "body owner", method: "POST", path: "/notes", auth: alice, ct: "application/json", body: `{"owner":"alice","text":"x"}`, status: 200},
		{name: "body of another owner", method: "POST", path: "/notes", auth: alice, ct: "application/json", body: `{"owner":"bob"}`, status: 403, slug: "forbidden"},
		{name: "body without owner", method: "POST", path: "/notes", auth: alice, ct: "application/json", body: `{"text":"x"}`, status: 403, slug: "forbidden"},
		{name: "no body", method: "POST", path: "/notes", auth: alice, status: 403, slug: "forbidden"},
		{name: "body not JSON", method: "POST", path: "/notes", auth: alice, ct: "text/plain", body: `{"owner":"alice"}`, status: 403, slug: "forbidden"},
		{name: "duplicate owner", method: "POST", path: "/notes", auth: alice, ct: "application/json", body: `{"owner":"alice","owner":"bob"}`, status: 400, slug: "invalid-json"},
		{name: "invalid UTF-8", method: "POST", path: "/notes", auth: alice, ct: "application/json", body: "{\"owner\":\"alice\",\"text\":\"\xff\"}", status: 400, slug: "invalid-json"},
		{name: "spec body owner", method: "POST", path: "/spec-notes", auth: alice, ct: "application/json", body: `{"owner":"alice"}`, status: 200},
		{name: "spec body of another owner", method: "POST", path: "/spec-notes", auth: alice, ct: "application/json", body: `{"owner":"bob"}`, status: 403, slug: "forbidden"},
		{name: "spec duplicate owner", method: "POST", path: "/spec-notes", auth: alice, ct: "application/json", body: `{"owner":"alice","owner":"bob"}`, status: 400, slug: "invalid-json"},
		{name: "header read once", method: "GET", path: "/on-behalf", auth: alice, hdr: []string{"X-On-Behalf", "alice"}, status: 200},
		{name: "header sent twice", method: "GET", path: "/on-behalf", auth: alice, hdr: []string{"X-On-Behalf", "alice", "X-On-Behalf", "bob"}, status: 400, slug: "parameter-pollution"},
		{name: "tenant claim", method: "GET", path: "/tenants/acme/items?view=summary", auth: alice, status: 200},
		{name: "other tenant", method: "GET", path: "/tenants/acme/items?view=summary", auth: bob, status: 403, slug: "forbidden"},
		{name: "query sent twice", method: "GET", path: "/tenants/acme/items?view=summary&view=all", auth: alice, status: 400, slug: "parameter-pollution"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			a := valSend(t, tt.method, g.URL(tt.path), tt.ct, body, append([]string{"Authorization", tt.auth}, tt.hdr...)...)
			if tt.status == http.StatusOK {
				if a.status != 200 {
					t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
				}
				if up.hits.Load() != before+1 {
					t.Errorf("upstream hits moved by %d, want 1", up.hits.Load()-before)
				}
				if _, got := up.lastRequest(); string(got) != tt.body {
					t.Errorf("upstream body = %q, want %q byte for byte", got, tt.body)
				}
				return
			}
			a.problem(t, tt.status, tt.slug)
			if up.hits.Load() != before {
				t.Errorf("a denied request reached the upstream")
			}
		})
	}

	t.Run("404 denial reads like an unknown route", func(t *testing.T) {
		denied := valSend(t, "DELETE", g.URL("/users/bob/orders/1"), "", nil, "Authorization", alice)
		unknown := valSend(t, "DELETE", g.URL("/no/such/route"), "", nil, "Authorization", alice)
		if denied.status != unknown.status {
			t.Fatalf("status = %d, unknown route %d", denied.status, unknown.status)
		}
		strip := func(b []byte) map[string]any {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			delete(m, "request_id")
			delete(m, "instance")
			return m
		}
		if d, u := strip(denied.body), strip(unknown.body); !maps.EqualFunc(d, u, func(a, b any) bool { return a == b }) {
			t.Errorf("denial body %v, unknown route %v", d, u)
		}
		names := func(h http.Header) []string {
			var n []string
			for k := range h {
				if k != "Date" && k != "X-Request-Id" && k != "Traceparent" {
					n = append(n, k)
				}
			}
			slices.Sort(n)
			return n
		}
		if d, u := names(denied.header), names(unknown.header); !slices.Equal(d, u) {
			t.Errorf("denial headers %v, unknown route %v", d, u)
		}
	})

	t.Run("report mode lets it through and counts it", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "GET", g.URL("/report/users/bob"), "", nil, "Authorization", alice)
		if a.status != 200 || up.hits.Load() != before+1 {
			t.Fatalf("status = %d, upstream hits +%d; want 200 and one hit", a.status, up.hits.Load()-before)
		}
		if got := metricSum(t, g, "bulwark_denials_total", `route="report"`, `stage="authz"`, `reason="rule_denied"`, `mode="report"`); got != 1 {
			t.Errorf("report-mode denials = %v, want 1", got)
		}
		if got := metricSum(t, g, "bulwark_authz_decisions_total", `route="report"`, `rule="owner"`, `result="deny"`); got != 1 {
			t.Errorf("authz decisions (deny) = %v, want 1", got)
		}
	})

	t.Run("decisions are counted by rule and result", func(t *testing.T) {
		for _, c := range []struct {
			labels []string
			min    float64
		}{
			{[]string{`route="get-order"`, `rule="owner"`, `result="allow"`}, 2},
			{[]string{`route="get-order"`, `rule="owner"`, `result="deny"`}, 3},
			{[]string{`route="notes"`, `rule="body-owner"`, `result="error"`}, 3},
			{[]string{`route="get-order"`, `stage="authz"`, `reason="rule_denied"`, `mode="enforce"`}, 3},
		} {
			name := "bulwark_authz_decisions_total"
			if strings.Contains(strings.Join(c.labels, ","), "stage=") {
				name = "bulwark_denials_total"
			}
			if got := metricSum(t, g, name, c.labels...); got < c.min {
				t.Errorf("%s%v = %v, want at least %v", name, c.labels, got, c.min)
			}
		}
	})
}
