package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestAuthorizeEnumeration runs enumeration detection through the real
// binary with a real JWKS: alice walks bob's orders 1..5; the fifth
// distinct denial reports her (metric, audit would_deny) and blocks her on
// the route, so that even her own order gets 429 with Retry-After without
// reaching the upstream, while bob is unaffected.
func TestAuthorizeEnumeration(t *testing.T) {
	up := startUpstream(t, nil)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url())},
		top:            "audit: { sink: file, file: { path: audit.jsonl } }",
		routes: []string{
			authorizeRoute("get-order", "GET", "/users/{userId}/orders/{orderId}",
				`authorize: { rules: [ { name: owner, expr: 'request.path.userId == principal.sub' } ],`+
					` enumeration: { threshold: 5, window: 1m, block: 10m } }`),
		},
	}.yaml()
	g := startGateway(t, cfg, nil)
	token := func(sub string) string {
		return "Bearer " + signRS256(t, key, "a", claims(sub, "orders:read", func(jwt.MapClaims) {}))
	}
	alice, bob := token("alice"), token("bob")

	var walk []sent
	for i := 1; i <= 5; i++ {
		r := auditSend(t, fmt.Sprint("alice reads bob's order ", i), "GET", g.URL("/users/bob/orders/"+strconv.Itoa(i)), nil, "Authorization", alice)
		if r.status != http.StatusForbidden {
			t.Fatalf("%s: status %d, want 403", r.name, r.status)
		}
		walk = append(walk, r)
	}
	if got := metricSum(t, g, "bulwark_bola_enumeration_suspected_total", `route="get-order"`); got != 1 {
		t.Errorf("bulwark_bola_enumeration_suspected_total = %v, want 1", got)
	}
	if got := metricSum(t, g, "bulwark_bola_blocked_total", `route="get-order"`); got != 1 {
		t.Errorf("bulwark_bola_blocked_total = %v, want 1", got)
	}

	hits := up.hits.Load()
	a := send(t, nil, "GET", g.URL("/users/alice/orders/1"), "Authorization", alice)
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if a.status != http.StatusTooManyRequests || err != nil || retry < 590 || retry > 600 {
		t.Errorf("alice's own order while blocked: status %d, Retry-After %q; want 429 and about 600", a.status, a.header.Get("Retry-After"))
	}
	if got := up.hits.Load() - hits; got != 0 {
		t.Errorf("a blocked request reached the upstream (%d hits)", got)
	}
	if got := metricSum(t, g, "bulwark_denials_total", `route="get-order"`, `reason="enumeration_blocked"`); got != 1 {
		t.Errorf("bulwark_denials_total{reason=enumeration_blocked} = %v, want 1", got)
	}
	if b := send(t, nil, "GET", g.URL("/users/bob/orders/1"), "Authorization", bob); b.status != http.StatusOK {
		t.Errorf("bob's own order: status %d, want 200", b.status)
	}

	g.stop(t)
	if logs := g.Logs(); !strings.Contains(logs, "object enumeration suspected") {
		t.Errorf("no warn log line for the enumeration")
	}
	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl"))
	got := byRequest(t, events)
	report := auditDecision{Allowed: true, Stage: "authz", Reason: "bola_enumeration_suspected", Mode: "report"}
	for i, r := range walk {
		ev, ok := got[r.requestID]
		if !ok {
			t.Fatalf("%s: no audit event in\n%s", r.name, raw)
		}
		if want := (auditDecision{Stage: "authz", Reason: "rule_denied", Rule: "owner", Mode: "enforce"}); ev.Decision != want {
			t.Errorf("%s: decision = %+v, want %+v", r.name, ev.Decision, want)
		}
		if reported, want := slices.Contains(ev.WouldDeny, report), i == len(walk)-1; reported != want {
			t.Errorf("%s: would_deny %+v has the enumeration report: %v, want %v", r.name, ev.WouldDeny, reported, want)
		}
	}
}
