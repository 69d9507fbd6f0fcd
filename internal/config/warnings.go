package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Warnings returns what loads but deserves a second look (a route in report
// mode, an admin listener reachable beyond loopback without admin.allow,
// ...), in file order, each with its position and path like an Error.
func (c *Config) Warnings() []Error {
	return slices.Clone(c.warnings)
}

// warn computes the warnings of a config that passed validation.
func (c *Config) warn() []Error {
	r := &report{file: c.File}
	at := func(path, format string, args ...any) {
		r.add(c.Pos(path), path, format, args...)
	}
	if c.Mode == ModeReport {
		at("mode", "every route runs in report mode: denials are only recorded (would_deny) and every request goes through")
	}
	for i, rt := range c.Routes {
		if rt.Mode == ModeReport && c.Mode != ModeReport {
			at(fmt.Sprintf("routes[%d].mode", i), "route %q runs in report mode: its denials are only recorded (would_deny) and its requests go through", rt.Name)
		}
		if a := rt.Authorize; a != nil && a.Mode == ModeReport && rt.Mode != ModeReport && (rt.Mode == ModeEnforce || c.Mode != ModeReport) {
			at(fmt.Sprintf("routes[%d].authorize.mode", i), "route %q checks its object-level rules in report mode: requests that break them reach the upstream", rt.Name)
		}
	}
	for i, rt := range c.Routes {
		// The innermost mode wins: authn.mode, else the route's, else the
		// top level's.
		mode, path := c.Mode, "mode"
		if rt.Mode != ModeInherit {
			mode, path = rt.Mode, fmt.Sprintf("routes[%d].mode", i)
		}
		if rt.Authn != nil && rt.Authn.Mode != ModeInherit {
			mode, path = rt.Authn.Mode, fmt.Sprintf("routes[%d].authn.mode", i)
		}
		if !rt.Auth.None && mode == ModeReport {
			at(path, "route %q authenticates in report mode: requests without valid credentials reach the upstream", rt.Name)
		}
	}
	for _, name := range sortedNames(c.Authenticators) {
		a := c.Authenticators[name]
		if a.Type != "mtls" || a.Identity == "subject_cn" {
			continue
		}
		for i, v := range a.Allow {
			prefix, ok := strings.CutSuffix(v, "*")
			if ok && prefix != "" && !strings.ContainsAny(prefix[len(prefix)-1:], "/.:") {
				at(fmt.Sprintf("authenticators.%s.allow[%d]", name, i), "the prefix %q does not end at a '/', '.' or ':', so it also matches longer names (%sevil...)", v, prefix)
			}
		}
	}
	if c.RateLimits.Redis != nil && c.RateLimits.Store != "redis" {
		at("rate_limits.redis", "not used: rate_limits.store is %s, so every instance counts its limits alone", c.RateLimits.Store)
	}
	if len(c.Routes) == 0 {
		at("routes", "no routes: every request gets 404")
	}
	used := map[string]bool{}
	for _, rt := range c.Routes {
		used[rt.Upstream] = true
	}
	for name := range c.Upstreams {
		if !used[name] {
			at(joinPath("upstreams", name), "upstream %q is not used by any route", name)
		}
	}
	if !LoopbackOnly(c.Admin.Listen) {
		if len(c.Admin.Allow) == 0 {
			at("admin.listen", "the admin listener is reachable beyond loopback and admin.allow is empty: only /livez and /readyz will answer; list the CIDRs of your scrapers in admin.allow")
		} else if c.Admin.Token == "" {
			at("admin.allow", "the admin listener is reachable beyond loopback with no admin.token: /metrics is guarded by admin.allow alone")
		}
	} else if c.Admin.Token != "" {
		at("admin.token", "not used: the admin listener is on loopback, where admin.allow and admin.token are not checked")
	}
	for i, p := range c.Server.TrustedProxies {
		if p.Bits() == 0 {
			at(fmt.Sprintf("server.trusted_proxies[%d]", i), "trusts every peer: any client can set its own X-Forwarded-For and X-Request-Id")
		}
	}
	c.attributeGenerated(r.errs)
	r.errs = append(r.errs, c.specWarnings()...)
	sortErrors(r.errs)
	return r.errs
}

// LoopbackOnly reports whether a listen address can only be reached from
// this host.
func LoopbackOnly(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
