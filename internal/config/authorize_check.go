package config

import (
	"errors"
	"fmt"

	"github.com/bulwark-gateway/bulwark/internal/authz/rules"
)

// checkRouteAuthorize compiles and type-checks each rule on its own, so
// that a bad expression is reported where it is written.
func (c *checker) checkRouteAuthorize(p string, rt *Route) {
	a := rt.Authorize
	if a == nil {
		return
	}
	p += ".authorize"
	if a.DenyStatus != 403 && a.DenyStatus != 404 {
		c.errf(p+".deny_status", "must be 403 or 404")
	}
	if len(a.Rules) == 0 {
		c.errf(p+".rules", "must list at least one rule ({name, expr})")
	}
	if rt.WebSocket {
		c.errf(p, "a websocket route cannot have object-level rules")
	}
	names := map[string]int{}
	for i, r := range a.Rules {
		rp := fmt.Sprintf("%s.rules[%d]", p, i)
		switch {
		case !validName(r.Name, 64):
			c.errf(rp+".name", "invalid rule name: 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)")
		default:
			if j, dup := names[r.Name]; dup {
				c.errf(rp+".name", "duplicate rule name %q (first at rules[%d])", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		if r.Expr == "" {
			c.errf(rp+".expr", "is required: a CEL expression that must hold")
			continue
		}
		set, err := rules.Compile([]rules.Rule{{Name: r.Name, Expr: r.Expr}})
		var ce *rules.CompileError
		switch {
		case errors.As(err, &ce):
			c.errf(rp+".expr", "expression %d:%d: %s", ce.Line, ce.Col, ce.Msg)
		case err != nil:
			c.errf(rp+".expr", "%s", err.Error())
		case rt.Auth.None && set.ReadsPrincipal():
			c.errf(rp+".expr", "a public route (auth: none) has no principal for principal.* to read")
		}
	}
}
