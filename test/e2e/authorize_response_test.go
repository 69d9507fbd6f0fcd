package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// invoiceUpstream answers like an invoice service that does not check
// who asks: any invoice by id, every invoice in the list, and whatever
// body it is sent.
func invoiceUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60")
		switch r.URL.Path {
		case "/invoices/1":
			_, _ = io.WriteString(w, `{"id":1,"owner_id":"alice","amount":10.50}`)
		case "/invoices/2":
			_, _ = io.WriteString(w, `{"id":2,"owner_id":"bob","amount":99.00,"note":"bob-secret-data"}`)
		case "/invoices":
			_, _ = io.WriteString(w, `{"total":3,"invoices":[{"id":1,"owner_id":"alice","amount":10.50},{"id":2,"owner_id":"bob","note":"bob-secret-data"},{"owner_id":"alice","id":3,"amount":1e2}]}`)
		case "/big":
			_, _ = io.WriteString(w, `{"owner_id":"alice","pad":"`+strings.Repeat("x", 4096)+`"}`)
		case "/plain":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "owner bob: bob-secret-data")
		default:
			_, _ = io.WriteString(w, `{"ok":true}`)
		}
	})
}

// TestAuthorizeResponseRules runs response-side ownership and writable
// fields through the real binary with a real JWKS: alice cannot read
// bob's invoice (404, and none of it in the body), the list holds only
// her invoices, byte for byte, she cannot set the admin-only status (and
// the upstream never sees the attempt) while an admin can, and a
// response over max_response_buffer or not JSON on such a route fails
// closed.
func TestAuthorizeResponseRules(t *testing.T) {
	up := startUpstream(t, invoiceUpstream())
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	const owner = `authorize: { deny_status: 404, response_rules: [ { name: owner, expr: 'response.body.owner_id == principal.sub || "admin" in principal.roles' } ] }`
	cfg := authnSetup{
		upstream:       up.addr,
		server:         []string{"max_response_buffer: 1KiB"},
		authenticators: []string{jwtAuthenticator("corp", keys.url())},
		routes: []string{
			authorizeRoute("get-invoice", "GET", "/invoices/{id}", owner),
			authorizeRoute("list-invoices", "GET", "/invoices",
				`authorize: { response_rules: [ { name: mine, expr: 'response.item.owner_id == principal.sub', items: $.invoices } ] }`),
			authorizeRoute("put-user", "PUT", "/users/{id}", `authorize: { writable_fields: { status: { roles: [admin] } } }`),
			authorizeRoute("big", "GET", "/big", owner),
			authorizeRoute("plain", "GET", "/plain", owner),
		},
	}.yaml()
	g := startGateway(t, cfg, nil)

	token := func(sub string, roles ...any) string {
		return "Bearer " + signRS256(t, key, "a", claims(sub, "invoices", func(c jwt.MapClaims) { c["roles"] = roles }))
	}
	alice, admin := token("alice", "user"), token("carol", "admin")

	t.Run("alice reads her invoice", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/invoices/1"), "", nil, "Authorization", alice)
		if a.status != 200 || string(a.body) != `{"id":1,"owner_id":"alice","amount":10.50}` {
			t.Errorf("GET /invoices/1 = %d %s, want 200 and her invoice", a.status, a.body)
		}
		if got := a.header.Get("Cache-Control"); got != "private, max-age=60" {
			t.Errorf("Cache-Control = %q, want private, max-age=60", got)
		}
	})

	t.Run("alice reads bob's invoice", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "GET", g.URL("/invoices/2"), "", nil, "Authorization", alice)
		a.problem(t, http.StatusNotFound, "not-found")
		if up.hits.Load() != before+1 {
			t.Errorf("upstream hits moved by %d, want 1 (the rule reads its answer)", up.hits.Load()-before)
		}
		// Nothing of the invoice: its owner, amount or note (the request id
		// is random hex, so look for the JSON text, not bare digits).
		if b := string(a.body); strings.Contains(b, "bob") || strings.Contains(b, "99.00") || strings.Contains(b, "owner_id") {
			t.Errorf("bob's invoice leaked: %s", a.body)
		}
		if got := metricSum(t, g, "bulwark_authz_decisions_total", `route="get-invoice"`, `rule="owner"`, `result="deny"`); got != 1 {
			t.Errorf("authz decisions (deny) = %v, want 1", got)
		}
	})

	t.Run("an admin reads bob's invoice", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/invoices/2"), "", nil, "Authorization", admin)
		if a.status != 200 || !strings.Contains(string(a.body), "bob-secret-data") {
			t.Errorf("GET /invoices/2 as admin = %d %s, want 200 and the invoice", a.status, a.body)
		}
	})

	t.Run("the list holds only alice's invoices", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/invoices"), "", nil, "Authorization", alice)
		const want = `{"total":3,"invoices":[{"id":1,"owner_id":"alice","amount":10.50},{"owner_id":"alice","id":3,"amount":1e2}]}`
		if a.status != 200 || string(a.body) != want {
			t.Errorf("GET /invoices = %d %s, want 200 %s", a.status, a.body, want)
		}
		if got := metricSum(t, g, "bulwark_authz_decisions_total", `route="list-invoices"`, `rule="mine"`, `result="dropped"`); got != 1 {
			t.Errorf("authz decisions (dropped) = %v, want 1", got)
		}
	})

	t.Run("alice writes the admin-only status", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "PUT", g.URL("/users/alice"), "application/json", []byte(`{"name":"Alice","status":"vip"}`), "Authorization", alice)
		p := a.problem(t, http.StatusForbidden, "field-not-writable")
		if !strings.Contains(p.Detail, `"status"`) || strings.Contains(string(a.body), "vip") {
			t.Errorf("detail %q, want the field named and not its value (body %s)", p.Detail, a.body)
		}
		if up.hits.Load() != before {
			t.Errorf("a denied write reached the upstream")
		}
	})

	t.Run("alice writes other fields", func(t *testing.T) {
		a := valSend(t, "PUT", g.URL("/users/alice"), "application/json", []byte(`{"name":"Alice"}`), "Authorization", alice)
		if a.status != 200 {
			t.Errorf("PUT without status = %d %s, want 200", a.status, a.body)
		}
	})

	t.Run("an admin writes status", func(t *testing.T) {
		const body = `{"status":"vip"}`
		a := valSend(t, "PUT", g.URL("/users/alice"), "application/json", []byte(body), "Authorization", admin)
		if a.status != 200 {
			t.Fatalf("PUT as admin = %d %s, want 200", a.status, a.body)
		}
		if _, got := up.lastRequest(); string(got) != body {
			t.Errorf("upstream body = %q, want %q", got, body)
		}
	})

	t.Run("a response over the buffer fails closed", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/big"), "", nil, "Authorization", alice)
		a.problem(t, http.StatusBadGateway, "upstream-response-too-large")
	})

	t.Run("a non-JSON response fails closed", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/plain"), "", nil, "Authorization", admin)
		a.problem(t, http.StatusBadGateway, "unfilterable-upstream-response")
		if strings.Contains(string(a.body), "bob") {
			t.Errorf("the upstream body leaked: %s", a.body)
		}
	})
}
