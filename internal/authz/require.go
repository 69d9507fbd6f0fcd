package authz

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// Realm is the realm of every challenge, authentication's too.
const Realm = "bulwark"

// Require returns the stage that checks a route's require section: every
// scope of scopes, at least one of any_scopes, every role of roles, and
// for each claim of claims one of its values. Matching is exact (no case
// folding, no prefixes). Failing is a 403 with error="insufficient_scope".
// A route without requirements gets no stage.
func Require(rt config.Route, problems *problem.Writer) func(http.Handler) http.Handler {
	q := rt.Require
	if q == nil || len(q.Scopes)+len(q.AnyScopes)+len(q.Roles)+len(q.Claims) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	challenge := `Bearer realm="` + Realm + `", error="insufficient_scope"`
	if scopes := slices.Concat(q.Scopes, q.AnyScopes); len(scopes) > 0 {
		challenge += `, scope="` + strings.Join(scopes, " ") + `"`
	}
	rq := &require{
		scopes:    q.Scopes,
		anyScopes: q.AnyScopes,
		roles:     q.Roles,
		challenge: challenge,
		problems:  problems,
	}
	for _, name := range sortedKeys(q.Claims) {
		rq.claims = append(rq.claims, claimRule{path: name, values: q.Claims[name]})
	}
	return func(next http.Handler) http.Handler {
		c := *rq
		c.next = next
		return &c
	}
}

type require struct {
	next      http.Handler
	scopes    []string
	anyScopes []string
	roles     []string
	claims    []claimRule
	challenge string
	problems  *problem.Writer
}

// claimRule: the claim at path (dotted, like realm_access.tenant) must be
// one of values; an array claim must hold one of them.
type claimRule struct {
	path   string
	values []string
}

var _ http.Handler = (*require)(nil)

func (rq *require) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := exchange.From(r.Context())
	// No principal: authentication ran in report mode and refused the
	// credential; that decision is already recorded.
	if rec == nil || rec.Principal != nil {
		var p *exchange.Principal
		if rec != nil {
			p = rec.Principal
		}
		if reason := rq.check(p); reason != "" {
			answer := problem.InsufficientScope(rq.challenge)
			if reason != "insufficient_scope" {
				answer = problem.InsufficientPrivileges(reason, rq.challenge)
			}
			if rq.problems.Deny(w, r, answer) {
				return
			}
		}
	}
	rq.next.ServeHTTP(w, r)
}

// check returns the reason p does not meet the requirements, or "". A nil
// principal meets none.
func (rq *require) check(p *exchange.Principal) string {
	if p == nil {
		return "insufficient_scope"
	}
	for _, s := range rq.scopes {
		if !slices.Contains(p.Scopes, s) {
			return "insufficient_scope"
		}
	}
	if len(rq.anyScopes) > 0 && !slices.ContainsFunc(rq.anyScopes, func(s string) bool { return slices.Contains(p.Scopes, s) }) {
		return "insufficient_scope"
	}
	for _, role := range rq.roles {
		if !slices.Contains(p.Roles, role) {
			return "missing_role"
		}
	}
	for _, c := range rq.claims {
		if !c.matches(p.Claims) {
			return "claim_mismatch"
		}
	}
	return ""
}

// matches reports whether the claim holds one of the values: a string
// equal to one, a number or boolean whose JSON text is one, or an array
// with such an element.
func (c claimRule) matches(claims map[string]any) bool {
	v := exchange.ClaimPath(claims, c.path)
	if arr, ok := v.([]any); ok {
		return slices.ContainsFunc(arr, func(e any) bool { return c.scalar(e) })
	}
	return c.scalar(v)
}

func (c claimRule) scalar(v any) bool {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case bool:
		s = fmt.Sprint(v)
	case float64:
		s = fmt.Sprint(v)
	default:
		return false // missing, null, object: never a match
	}
	return slices.Contains(c.values, s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
