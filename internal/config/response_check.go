package config

import (
	"errors"
	"fmt"

	"github.com/bulwark-gateway/bulwark/internal/filter"
)

// minHashKey is the shortest HMAC key of the hash mask strategy.
const minHashKey = 32

func (c *checker) checkResponses() {
	r := &c.cfg.Response
	c.checkEnum("response.upstream_errors", r.UpstreamErrors, "mask", "pass")
	for i, h := range r.StripHeaders {
		if !isToken(h) {
			c.errf(fmt.Sprintf("response.strip_headers[%d]", i), "not a valid header name")
		}
	}
	if c.set("response.hash_key") && len(r.HashKey) < minHashKey {
		c.errf("response.hash_key", "must be at least %d bytes (write it as ${ENV_VAR}; `openssl rand -base64 48` makes one)", minHashKey)
	}
}

// checkRouteResponse compiles a route's filter rules one path at a time,
// so that a bad path is reported where it is written.
func (c *checker) checkRouteResponse(p string, rt *Route) {
	r := rt.Response
	if r == nil {
		return
	}
	p += ".response"
	c.checkEnum(p+".detect", r.Detect, "off", "report", "block")
	c.checkEnum(p+".non_json", r.NonJSON, "fail", "pass")
	if r.UpstreamErrors != "" {
		c.checkEnum(p+".upstream_errors", r.UpstreamErrors, "mask", "pass")
	}
	if r.Preset != "" {
		c.checkEnum(p+".preset", r.Preset, "sensitive")
	}
	c.checkFilterPaths(p+".allow", r.Allow, func(s string) filter.Rules { return filter.Rules{Allow: []string{s}} })
	c.checkFilterPaths(p+".deny", r.Deny, func(s string) filter.Rules { return filter.Rules{Deny: []string{s}} })
	for _, path := range sortedNames(r.Mask) {
		strategy := r.Mask[path]
		mp := p + ".mask." + path
		switch strategy {
		case "redact", "last4":
		case "hash":
			if len(c.cfg.Response.HashKey) < minHashKey {
				c.errf(mp, "the hash strategy needs response.hash_key (at least %d bytes)", minHashKey)
				continue
			}
		default:
			c.errf(mp, "unknown mask strategy %q: redact, last4 or hash", strategy)
			continue
		}
		if _, err := filter.Compile(filter.Rules{Mask: map[string]string{path: strategy}}, []byte(c.cfg.Response.HashKey)); err != nil {
			c.keyErrf(mp, "%s", ruleReason(err))
		}
	}
	if rt.WebSocket && r.Filters() {
		c.errf(p, "a websocket route's messages cannot be filtered or scanned: after the 101 they are not HTTP responses")
	}
	if len(r.Views) > 0 && rt.Auth.None {
		c.errf(p+".views", "a public route (auth: none) has no principal to choose a view by")
	}
	for i, v := range r.Views {
		vp := fmt.Sprintf("%s.views[%d]", p, i)
		if len(v.When.Roles) == 0 && len(v.When.Scopes) == 0 {
			c.errf(vp+".when", "needs roles or scopes")
		}
		c.checkWords(vp+".when.roles", v.When.Roles, "role")
		c.checkWords(vp+".when.scopes", v.When.Scopes, "scope")
		if len(v.Allow) == 0 {
			c.errf(vp+".allow", "must list at least one path")
		}
		c.checkFilterPaths(vp+".allow", v.Allow, func(s string) filter.Rules { return filter.Rules{Allow: []string{s}} })
	}
	for i, h := range r.Headers.Remove {
		if !isToken(h) {
			c.errf(fmt.Sprintf("%s.headers.remove[%d]", p, i), "not a valid header name")
		}
	}
}

func (c *checker) checkFilterPaths(p string, paths []string, rules func(string) filter.Rules) {
	for i, s := range paths {
		if _, err := filter.Compile(rules(s), nil); err != nil {
			c.errf(fmt.Sprintf("%s[%d]", p, i), "%s", ruleReason(err))
		}
	}
}

// ruleReason is a compile error without the engine's own rule index (the
// path compiled alone is always allow[0] or deny[0] to the engine).
func ruleReason(err error) string {
	var re *filter.RuleError
	if errors.As(err, &re) && re.Path != "" {
		return fmt.Sprintf("%q: %s", re.Path, re.Reason)
	}
	return err.Error()
}
