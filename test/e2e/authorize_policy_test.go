package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAuthorizePolicyHook runs the OPA-compatible policy hook through the
// real binary against a real OPA server running testdata/opa/tenants.rego,
// with two tenants' users (alice of acme, bob of globex) and an admin:
// OPA's denials are 403 (or 404) and never reach the upstream, its
// reason reaches the caller, the body is part of the input, cached
// decisions do not ask OPA again (its own metrics count the queries), an
// object rule that denies first spares the call, and a policy server that
// is down, slow, or answers something that is not a decision refuses the
// request (fail closed), behind a circuit breaker.
func TestAuthorizePolicyHook(t *testing.T) {
	slow := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	opa := startOPA(t, []string{"BULWARK_TEST_SLOW_URL=http://" + slow.addr + "/slow"},
		filepath.Join("testdata", "opa", "tenants.rego"))
	closed := listenLoopback(t)
	deadAddr := closed.Addr().String()
	closed.Close() // nothing listens there any more: a policy server that is down

	up := startUpstream(t, nil)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	policies := fmt.Sprintf(`policies:
  tenants: { url: %q, input: { body: true } }
  tenants-bool: { url: %q }
  cached: { url: %q, cache_ttl: 1m }
  slow: { url: %q, timeout: 150ms, breaker_failures: 100 }
  down: { url: %q, breaker_failures: 2, breaker_cooldown: 1m }
  undefined: { url: %q, error_status: 403 }
  bad: { url: %q }
audit: { sink: file, file: { path: %q } }`,
		opa.url("bulwark/authz/decision"), opa.url("bulwark/authz/allow"), opa.url("bulwark/authz/decision"),
		opa.url("bulwark/authz/slow"), "http://"+deadAddr+"/v1/data/bulwark/authz/allow",
		opa.url("bulwark/authz/no_such_rule"), opa.url("bulwark/authz/bad"), auditPath)
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url())},
		top:            policies,
		routes: []string{
			authorizeRoute("docs", "GET", "/tenants/{tenant}/docs/{docId}", "authorize: { policy: tenants }"),
			authorizeRoute("new-doc", "POST", "/tenants/{tenant}/docs", "authorize: { policy: tenants }"),
			authorizeRoute("bool", "GET", "/bool/tenants/{tenant}", "authorize: { policy: tenants-bool, deny_status: 404 }"),
			authorizeRoute("cached", "GET", "/cached/tenants/{tenant}", "authorize: { policy: cached }"),
			authorizeRoute("rules-first", "GET", "/rules/tenants/{tenant}",
				`authorize: { policy: tenants-bool, rules: [ { name: own-tenant, expr: 'request.path.tenant == principal.claims.tenant' } ] }`),
			authorizeRoute("slow", "GET", "/slow/tenants/{tenant}", "authorize: { policy: slow }"),
			authorizeRoute("down", "GET", "/down/tenants/{tenant}", "authorize: { policy: down }"),
			authorizeRoute("undefined", "GET", "/undefined/tenants/{tenant}", "authorize: { policy: undefined }"),
			authorizeRoute("bad", "GET", "/bad/tenants/{tenant}", "authorize: { policy: bad }"),
			authorizeRoute("report", "GET", "/report/tenants/{tenant}", "authorize: { policy: tenants-bool, mode: report }"),
		},
	}.yaml()
	g := startGateway(t, cfg, nil)

	token := func(sub, tenant string, roles ...any) string {
		return "Bearer " + signRS256(t, key, "a", claims(sub, "docs", func(c jwt.MapClaims) {
			c["roles"] = roles
			c["tenant"] = tenant
		}))
	}
	alice, bob, admin := token("alice", "acme", "user"), token("bob", "globex", "user"), token("carol", "corp", "admin")

	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		body   string
		status int
		slug   string
		detail string // a substring of the problem's detail
		calls  int    // OPA queries the request costs
	}{
		{name: "alice reads her tenant", method: "GET", path: "/tenants/acme/docs/1", auth: alice, status: 200, calls: 1},
		{name: "alice reads bob's tenant", method: "GET", path: "/tenants/globex/docs/1", auth: alice, status: 403, slug: "forbidden",
			detail: "the principal is not a member of this tenant", calls: 1},
		{name: "bob reads alice's tenant", method: "GET", path: "/tenants/acme/docs/7", auth: bob, status: 403, slug: "forbidden", calls: 1},
		{name: "an admin reads every tenant", method: "GET", path: "/tenants/globex/docs/1", auth: admin, status: 200, calls: 1},
		{name: "alice writes her own document", method: "POST", path: "/tenants/acme/docs", auth: alice, body: `{"owner":"alice"}`, status: 200, calls: 1},
		{name: "alice writes a document owned by bob", method: "POST", path: "/tenants/acme/docs", auth: alice, body: `{"owner":"bob"}`,
			status: 403, slug: "forbidden", calls: 1},
		{name: "alice writes into bob's tenant", method: "POST", path: "/tenants/globex/docs", auth: alice, body: `{"owner":"alice"}`,
			status: 403, slug: "forbidden", calls: 1},
		{name: "a duplicate owner never reaches OPA", method: "POST", path: "/tenants/acme/docs", auth: alice,
			body: `{"owner":"alice","owner":"bob"}`, status: 400, slug: "invalid-json"},
		{name: "boolean result allows", method: "GET", path: "/bool/tenants/acme", auth: alice, status: 200, calls: 1},
		{name: "boolean result denies as 404", method: "GET", path: "/bool/tenants/globex", auth: alice, status: 404, slug: "not-found", calls: 1},
		{name: "an object rule denies before OPA is asked", method: "GET", path: "/rules/tenants/globex", auth: alice, status: 403, slug: "forbidden"},
		{name: "rules and OPA both allow", method: "GET", path: "/rules/tenants/acme", auth: alice, status: 200, calls: 1},
		{name: "an undefined decision refuses", method: "GET", path: "/undefined/tenants/acme", auth: alice, status: 403, slug: "policy-unavailable", calls: 1},
		{name: "a result that is not a decision refuses", method: "GET", path: "/bad/tenants/acme", auth: alice, status: 503, slug: "policy-unavailable", calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, calls := up.hits.Load(), opa.decisions(t)
			var body []byte
			ct := ""
			if tt.body != "" {
				body, ct = []byte(tt.body), "application/json"
			}
			a := valSend(t, tt.method, g.URL(tt.path), ct, body, "Authorization", tt.auth)
			if got := opa.decisions(t) - calls; got != tt.calls {
				t.Errorf("OPA answered %d queries, want %d", got, tt.calls)
			}
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
			p := a.problem(t, tt.status, tt.slug)
			if !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tt.detail)
			}
			if up.hits.Load() != before {
				t.Errorf("a denied request reached the upstream")
			}
		})
	}

	t.Run("a 404 denial does not carry the policy's reason", func(t *testing.T) {
		a := valSend(t, "GET", g.URL("/bool/tenants/globex"), "", nil, "Authorization", alice)
		if strings.Contains(string(a.body), "tenant") {
			t.Errorf("404 body %s mentions the policy", a.body)
		}
	})

	t.Run("cached decisions do not ask OPA again", func(t *testing.T) {
		before, calls := up.hits.Load(), opa.decisions(t)
		hits := metricSum(t, g, "bulwark_policy_hook_cache_hits_total", `policy="cached"`)
		for range 5 {
			if a := valSend(t, "GET", g.URL("/cached/tenants/acme"), "", nil, "Authorization", alice); a.status != 200 {
				t.Fatalf("status = %d (%s)", a.status, a.body)
			}
			if a := valSend(t, "GET", g.URL("/cached/tenants/globex"), "", nil, "Authorization", alice); a.status != 403 {
				t.Fatalf("status = %d (%s), want the cached denial", a.status, a.body)
			}
		}
		if got := opa.decisions(t) - calls; got != 2 {
			t.Errorf("OPA answered %d queries for 10 requests over 2 inputs, want 2", got)
		}
		if got := up.hits.Load() - before; got != 5 {
			t.Errorf("upstream hits = %d, want 5 (the allowed ones)", got)
		}
		if got := metricSum(t, g, "bulwark_policy_hook_cache_hits_total", `policy="cached"`) - max(hits, 0); got != 8 {
			t.Errorf("cache hits = %v, want 8", got)
		}
		// Another principal is another input.
		if a := valSend(t, "GET", g.URL("/cached/tenants/acme"), "", nil, "Authorization", admin); a.status != 200 {
			t.Fatalf("admin: status = %d (%s)", a.status, a.body)
		}
		if got := opa.decisions(t) - calls; got != 3 {
			t.Errorf("OPA answered %d queries after a new principal, want 3", got)
		}
	})

	t.Run("a slow policy server refuses after the timeout", func(t *testing.T) {
		before := up.hits.Load()
		start := time.Now()
		a := valSend(t, "GET", g.URL("/slow/tenants/acme"), "", nil, "Authorization", alice)
		took := time.Since(start)
		a.problem(t, 503, "policy-unavailable")
		if took < 150*time.Millisecond || took > 2*time.Second {
			t.Errorf("answered after %s, want just over the 150ms timeout", took)
		}
		if up.hits.Load() != before {
			t.Error("a refused request reached the upstream")
		}
		if got := metricSum(t, g, "bulwark_policy_hook_errors_total", `policy="slow"`, `reason="timeout"`); got != 1 {
			t.Errorf("timeout errors = %v, want 1", got)
		}
	})

	t.Run("a policy server that is down refuses, then the breaker answers at once", func(t *testing.T) {
		before := up.hits.Load()
		for i := range 5 {
			start := time.Now()
			a := valSend(t, "GET", g.URL("/down/tenants/acme"), "", nil, "Authorization", alice)
			a.problem(t, 503, "policy-unavailable")
			if i >= 2 && time.Since(start) > time.Second {
				t.Errorf("request %d with the breaker open took %s", i, time.Since(start))
			}
		}
		if up.hits.Load() != before {
			t.Error("a refused request reached the upstream")
		}
		if got := metricSum(t, g, "bulwark_policy_hook_errors_total", `policy="down"`, `reason="unavailable"`); got != 2 {
			t.Errorf("unavailable errors = %v, want 2 (then the breaker opened)", got)
		}
		if got := metricSum(t, g, "bulwark_policy_hook_errors_total", `policy="down"`, `reason="circuit_open"`); got != 3 {
			t.Errorf("circuit_open errors = %v, want 3", got)
		}
		if !strings.Contains(g.Logs(), "circuit breaker open") {
			t.Error("no log line says the breaker opened")
		}
	})

	t.Run("report mode lets a denial through and counts it", func(t *testing.T) {
		before := up.hits.Load()
		a := valSend(t, "GET", g.URL("/report/tenants/globex"), "", nil, "Authorization", alice)
		if a.status != 200 || up.hits.Load() != before+1 {
			t.Fatalf("status = %d, upstream hits +%d; want 200 and one hit", a.status, up.hits.Load()-before)
		}
		if got := metricSum(t, g, "bulwark_denials_total", `route="report"`, `reason="policy_denied"`, `mode="report"`); got != 1 {
			t.Errorf("report-mode denials = %v, want 1", got)
		}
	})

	t.Run("decisions and durations are counted", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			labels []string
			min    float64
		}{
			{"bulwark_authz_decisions_total", []string{`route="docs"`, `rule="policy:tenants"`, `result="allow"`}, 2},
			{"bulwark_authz_decisions_total", []string{`route="docs"`, `rule="policy:tenants"`, `result="deny"`}, 2},
			{"bulwark_authz_decisions_total", []string{`route="down"`, `rule="policy:down"`, `result="error"`}, 5},
			{"bulwark_policy_hook_duration_seconds_count", []string{`policy="tenants"`}, 6},
			{"bulwark_policy_hook_errors_total", []string{`policy="bad"`, `reason="bad_response"`}, 1},
			{"bulwark_policy_hook_errors_total", []string{`policy="undefined"`, `reason="bad_response"`}, 1},
		} {
			if got := metricSum(t, g, c.name, c.labels...); got < c.min {
				t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
			}
		}
	})

	t.Run("the audit event names the policy", func(t *testing.T) {
		denied := auditSend(t, "denied", "GET", g.URL("/tenants/globex/docs/2"), nil, "Authorization", alice)
		down := auditSend(t, "down", "GET", g.URL("/down/tenants/acme"), nil, "Authorization", alice)
		var events map[string]auditEvent
		deadline := time.Now().Add(5 * time.Second)
		for {
			all, _ := readAudit(t, auditPath)
			events = byRequest(t, all)
			_, ok1 := events[denied.requestID]
			_, ok2 := events[down.requestID]
			if ok1 && ok2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, c := range []struct {
			id, reason string
		}{{denied.requestID, "policy_denied"}, {down.requestID, "policy_unavailable"}} {
			ev, ok := events[c.id]
			if !ok {
				t.Fatalf("no audit event for request %s", c.id)
			}
			d := ev.Decision
			if d.Allowed || d.Stage != "authz" || d.Reason != c.reason || ev.OWASP != "API1:2023" {
				t.Errorf("event %s: decision %+v owasp %q", c.reason, d, ev.OWASP)
			}
			if d.Rule != "policy:tenants" && d.Rule != "policy:down" {
				t.Errorf("event %s: rule %q, want the policy", c.reason, d.Rule)
			}
		}
	})
}
