package e2e

import (
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestAuthzRouteRequirements runs the route requirements (scopes,
// any_scopes, roles, claims) and the method-override defences through the
// real binary: an admin route refuses a user's token, whatever headers or
// parameters try to turn its request into another function, and a denied
// request never reaches the upstream.
func TestAuthzRouteRequirements(t *testing.T) {
	up := startUpstream(t, nil)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url())},
		routes: []string{
			authRoute("admin", "/admin/users", "[corp]", "require: { roles: [admin] }"),
			authRoute("reports", "/reports", "[corp]", "require: { any_scopes: [reports:read, reports:admin] }"),
			authRoute("tenant", "/tenant", "[corp]", `require: { claims: { tenant: [acme], "org.tier": [gold] } }`),
			authRoute("orders", "/orders", "[corp]", "require: { scopes: [orders:read] }"),
		},
	}.yaml()
	g := startGateway(t, cfg, nil)

	token := func(scope string, mutate ...func(jwt.MapClaims)) string {
		return "Bearer " + signRS256(t, key, "a", claims("alice", scope, mutate...))
	}
	roles := func(r ...any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c["roles"] = r } }
	set := func(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
	user := token("orders:read", roles("user"))
	admin := token("orders:read", roles("user", "admin"))

	tests := []struct {
		name   string
		method string
		path   string
		hdr    []string
		status int
		slug   string
	}{
		{"admin route, admin token", "GET", "/admin/users", []string{"Authorization", admin}, 200, ""},
		{"admin route, user token", "GET", "/admin/users", []string{"Authorization", user}, 403, "insufficient-privileges"},
		{"admin route, role in another case", "GET", "/admin/users", []string{"Authorization", token("", roles("Admin"))}, 403, "insufficient-privileges"},
		{"admin route, user token, method override header", "GET", "/admin/users", []string{"Authorization", user, "X-HTTP-Method-Override", "GET"}, 403, "insufficient-privileges"},
		{"method override query refused", "GET", "/orders?_method=DELETE", []string{"Authorization", user}, 400, "method-override"},
		{"method override query, encoded", "GET", "/orders?%5Fmethod=DELETE", []string{"Authorization", user}, 400, "method-override"},
		{"any scope: one of them", "GET", "/reports", []string{"Authorization", token("reports:admin")}, 200, ""},
		{"any scope: none", "GET", "/reports", []string{"Authorization", token("orders:read")}, 403, "insufficient-scope"},
		{"claims held", "GET", "/tenant", []string{"Authorization", token("", set("tenant", "acme"), set("org", map[string]any{"tier": "gold"}))}, 200, ""},
		{"claim of another tenant", "GET", "/tenant", []string{"Authorization", token("", set("tenant", "globex"), set("org", map[string]any{"tier": "gold"}))}, 403, "insufficient-privileges"},
		{"nested claim missing", "GET", "/tenant", []string{"Authorization", token("", set("tenant", "acme"))}, 403, "insufficient-privileges"},
		{"scopes: held", "GET", "/orders", []string{"Authorization", user}, 200, ""},
		{"scopes: prefix is not a match", "GET", "/orders", []string{"Authorization", token("orders")}, 403, "insufficient-scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			a := send(t, nil, tt.method, g.URL(tt.path), tt.hdr...)
			if tt.status == http.StatusOK {
				if a.status != 200 {
					t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
				}
				if up.hits.Load() != before+1 {
					t.Errorf("upstream hits moved by %d, want 1", up.hits.Load()-before)
				}
				return
			}
			a.problem(t, tt.status, tt.slug)
			if up.hits.Load() != before {
				t.Errorf("a denied request reached the upstream")
			}
			if tt.status == http.StatusForbidden {
				if ch := a.header.Get("WWW-Authenticate"); ch == "" {
					t.Errorf("403 without a WWW-Authenticate challenge")
				}
			}
		})
	}

	// The override headers never reach the upstream, on any route.
	a := send(t, nil, "GET", g.URL("/orders"), "Authorization", user,
		"X-HTTP-Method-Override", "DELETE", "X-HTTP-Method", "PUT", "X-Method-Override", "PATCH")
	if a.status != 200 {
		t.Fatalf("GET /orders with override headers = %d, want 200 (they are stripped)", a.status)
	}
	last, _ := up.lastRequest()
	for _, h := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"} {
		if v := last.Header.Get(h); v != "" {
			t.Errorf("upstream received %s: %q", h, v)
		}
	}
	if last.Method != http.MethodGet {
		t.Errorf("upstream got method %s, want GET", last.Method)
	}
	if got := metricSum(t, g, "bulwark_denials_total", `route="admin"`, `stage="authz"`, `reason="missing_role"`); got != 3 {
		t.Errorf(`bulwark_denials_total{route="admin",stage="authz",reason="missing_role"} = %v, want 3`, got)
	}
}
