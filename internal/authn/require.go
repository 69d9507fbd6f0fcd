package authn

import (
	"net/http"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// Require returns the stage that checks a route's require.scopes: the
// principal must hold every listed scope (exact match), else 403 with
// error="insufficient_scope". It runs after authentication and the
// consumer and route rate limits (DESIGN.md request flow), so an
// unauthorized caller learns nothing more. A route without requirements
// gets no stage.
func Require(rt config.Route, problems *problem.Writer) func(http.Handler) http.Handler {
	if rt.Require == nil || len(rt.Require.Scopes) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	rq := &require{
		scopes:    rt.Require.Scopes,
		challenge: `Bearer realm="` + Realm + `", error="insufficient_scope", scope="` + strings.Join(rt.Require.Scopes, " ") + `"`,
		problems:  problems,
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
	challenge string
	problems  *problem.Writer
}

var _ http.Handler = (*require)(nil)

func (rq *require) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// No principal: authentication ran in report mode and refused the
	// credential; that decision is already recorded.
	rec := exchange.From(r.Context())
	if rec == nil || rec.Principal != nil && !hasAll(rec.Principal, rq.scopes) {
		if rq.problems.Deny(w, r, problem.InsufficientScope(rq.challenge)) {
			return
		}
	}
	rq.next.ServeHTTP(w, r)
}

func hasAll(p *exchange.Principal, scopes []string) bool {
	for _, s := range scopes {
		if !p.HasScope(s) {
			return false
		}
	}
	return true
}
