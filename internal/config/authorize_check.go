package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

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
	if len(a.Rules) == 0 && len(a.WritableFields) == 0 && len(a.ResponseRules) == 0 && a.Policy == "" {
		c.errf(p+".rules", "must list at least one rule ({name, expr}), or give writable_fields, response_rules or policy")
	}
	if rt.WebSocket {
		c.errf(p, "a websocket route cannot have object-level rules")
	}
	if _, ok := c.cfg.Policies[a.Policy]; a.Policy != "" && !ok {
		c.errf(p+".policy", "unknown policy %q: name one of the policies: section", a.Policy)
	}
	c.checkWritableFields(p+".writable_fields", rt)
	if e := a.Enumeration; e != nil {
		c.checkEnumeration(p+".enumeration", rt.Path, e)
	}
	names := map[string]string{}
	for i, r := range a.Rules {
		c.checkRule(fmt.Sprintf("%s.rules[%d]", p, i), rt, r.Name, r.Expr, names, rules.Compile)
	}
	for i, r := range a.ResponseRules {
		rp := fmt.Sprintf("%s.response_rules[%d]", p, i)
		set := c.checkRule(rp, rt, r.Name, r.Expr, names, rules.CompileResponse)
		switch {
		case r.Items != "" && !validItems(r.Items):
			c.errf(rp+".items", "invalid path %q: $ (the body) or $ followed by .name steps ($.invoices, $.data.items)", r.Items)
		case set != nil && r.Items == "" && set.ReadsItem():
			c.errf(rp+".expr", "response.item is only set for a rule with items (the path to the array whose elements it checks)")
		}
	}
}

// checkRule checks one rule's name (unique among the route's request and
// response rules, as it is a metric label) and compiles its expression,
// which it returns; nil when it does not compile.
func (c *checker) checkRule(rp string, rt *Route, name, expr string, names map[string]string, compile func([]rules.Rule) (*rules.Set, error)) *rules.Set {
	switch {
	case !validName(name, 64):
		c.errf(rp+".name", "invalid rule name: 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)")
	default:
		if first, dup := names[name]; dup {
			c.errf(rp+".name", "duplicate rule name %q (first at %s)", name, first)
		} else {
			names[name] = rp[strings.LastIndexByte(rp, '.')+1:]
		}
	}
	if expr == "" {
		c.errf(rp+".expr", "is required: a CEL expression that must hold")
		return nil
	}
	set, err := compile([]rules.Rule{{Name: name, Expr: expr}})
	var ce *rules.CompileError
	switch {
	case errors.As(err, &ce):
		c.errf(rp+".expr", "expression %d:%d: %s", ce.Line, ce.Col, ce.Msg)
		return nil
	case err != nil:
		c.errf(rp+".expr", "%s", err.Error())
		return nil
	case rt.Auth.None && set.ReadsPrincipal():
		c.errf(rp+".expr", "a public route (auth: none) has no principal for principal.* to read")
	}
	return set
}

// validItems reports whether path is $ or $ followed by .name steps, none
// of them empty.
func validItems(path string) bool {
	rest, ok := strings.CutPrefix(path, "$")
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	rest, ok = strings.CutPrefix(rest, ".")
	return ok && !slices.Contains(strings.Split(rest, "."), "")
}

// checkWritableFields checks the field paths of authorize.writable_fields:
// dotted member names, none of them empty. On a public route no principal
// holds a role or scope, so a field there can only be read-only ({}).
func (c *checker) checkWritableFields(p string, rt *Route) {
	paths := make([]string, 0, len(rt.Authorize.WritableFields))
	for path := range rt.Authorize.WritableFields {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	for _, path := range paths {
		fp := joinPath(p, path)
		if path == "" || slices.Contains(strings.Split(path, "."), "") {
			c.keyErrf(fp, "invalid field path %q: member names joined by '.', none of them empty", path)
			continue
		}
		f := rt.Authorize.WritableFields[path]
		if rt.Auth.None && len(f.Roles)+len(f.Scopes) > 0 {
			c.errf(fp, "a public route (auth: none) has no principal to hold roles or scopes; {} makes the field read-only")
		}
	}
}

// MaxEnumerationThreshold bounds authorize.enumeration.threshold: the
// detector keeps up to that many id hashes per tracked key.
const MaxEnumerationThreshold = 100

// checkEnumeration checks authorize.enumeration.
// The object id it counts is the route's path parameter values: a route
// without any has a single object, and nothing to enumerate.
func (c *checker) checkEnumeration(p, path string, e *Enumeration) {
	if len(PathParams(path)) == 0 {
		c.errf(p, "the route's path has no parameters ({id}): their values are the object id that enumeration counts")
	}
	if e.Threshold < 2 || e.Threshold > MaxEnumerationThreshold {
		c.errf(p+".threshold", "must be between 2 and %d", MaxEnumerationThreshold)
	}
	if e.Window <= 0 {
		c.errf(p+".window", "must be greater than 0")
	}
	if e.BlockStatus != 429 && e.BlockStatus != 403 {
		c.errf(p+".block_status", "must be 429 or 403")
	}
}
