package config

import (
	"net/url"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// checkSpecs loads every spec once; routes then look operations up in
// them, and the gateway compiles from the loaded documents (Config.Spec).
func (c *checker) checkSpecs() {
	for _, name := range sortedNames(c.cfg.Specs) {
		s := c.cfg.Specs[name]
		p := "specs." + name
		if !validName(name, 64) {
			c.keyErrf(p, "invalid spec name: 1 to 64 letters, digits, '_', '.' or '-'")
			continue
		}
		if s.File == "" {
			c.errf(p+".file", "is required: the OpenAPI document")
			continue
		}
		spec, err := validate.LoadSpec(string(s.File))
		if err != nil {
			c.errf(p+".file", "%s", err.Error())
			continue
		}
		if c.cfg.specs == nil {
			c.cfg.specs = map[string]*validate.Spec{}
		}
		c.cfg.specs[name] = spec
		c.checkDeprecations(p+".deprecations", s.Deprecations, spec)
	}
}

// checkDeprecations checks a spec's deprecations: each names an operation
// of the document that it marks deprecated, and its dates and link make a
// valid header.
func (c *checker) checkDeprecations(p string, deps map[string]Deprecation, spec *validate.Spec) {
	for _, id := range sortedNames(deps) {
		d := deps[id]
		dp := p + "." + id
		op, ok := spec.FindByID(id)
		switch {
		case !ok:
			c.keyErrf(dp, "the spec has no operation with operationId %q", id)
			continue
		case !op.Deprecated:
			c.keyErrf(dp, "operation %q (%s %s) is not marked deprecated: true in the spec; mark it there, the spec is the source of truth", id, op.Method, op.Path)
			continue
		}
		if !d.Since.IsZero() && !d.Sunset.IsZero() && d.Sunset.Before(d.Since.Time) {
			c.errf(dp+".sunset", "is before since: an operation cannot stop working before it is deprecated")
		}
		if d.Link != "" {
			if err := checkDeprecationLink(d.Link); err != "" {
				c.errf(dp+".link", "%s", err)
			}
		}
	}
}

// checkDeprecationLink returns why link cannot go into a Link header, or
// "". It becomes `<link>; rel="deprecation"`, so it must be an absolute
// http(s) URL with nothing that could end the angle brackets.
func checkDeprecationLink(link string) string {
	if strings.ContainsAny(link, "<> \t\r\n\"") || strings.ContainsFunc(link, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
		return "must be a URL without spaces, quotes, angle brackets or non-ASCII characters (percent-encode them)"
	}
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http or https URL, e.g. https://example.com/docs/migrate"
	}
	return ""
}

// Spec returns the loaded OpenAPI document of specs.<name>; nil when the
// config has no such spec. Specs are loaded once, when the config loads.
func (c *Config) Spec(name string) *validate.Spec { return c.specs[name] }

// checkRouteValidate checks a route's validate section and finds its
// operation, so a route that names no operation of its spec fails at load.
func (c *checker) checkRouteValidate(p string, rt *Route) {
	v := rt.Validate
	if v == nil {
		return
	}
	p += ".validate"
	c.checkEnum(p+".request", v.Request, ValidateEnforce, ValidateReport, ValidateOff)
	c.checkEnum(p+".response", v.Response, ValidateOff, ValidateReport, ValidateEnforce)
	c.checkJSONLimits(p+".json", &v.JSON)
	if v.Spec == "" {
		for _, key := range []string{"operation", "response", "strict", "strict_query"} {
			if c.set(p + "." + key) {
				c.errf(p+"."+key, "needs spec: without a spec only the JSON limits (json:) apply")
			}
		}
		return
	}
	if _, ok := c.cfg.Specs[v.Spec]; !ok {
		c.errf(p+".spec", "unknown spec %q", v.Spec)
		return
	}
	spec := c.cfg.specs[v.Spec]
	if spec == nil {
		return // it failed to load; that error says it all
	}
	if rt.Method == "" || rt.Path == "" {
		return
	}
	op, ok := c.routeOperation(p, rt, spec)
	if !ok {
		return
	}
	if _, err := spec.Compile(op, rt.Path, validate.Options{Strict: v.Strict, StrictQuery: v.StrictQuery}); err != nil {
		c.errf(p, "operation %q: %s", op.ID, err.Error())
	}
}

// routeOperation finds the spec operation a route validates against: by
// operationId, or by method and path template.
func (c *checker) routeOperation(p string, rt *Route, spec *validate.Spec) (validate.OperationInfo, bool) {
	v := rt.Validate
	if v.Operation != "" {
		op, ok := spec.FindByID(v.Operation)
		switch {
		case !ok:
			c.errf(p+".operation", "spec %q has no operation with operationId %q", v.Spec, v.Operation)
		case op.Method != rt.Method:
			c.errf(p+".operation", "operation %q is a %s operation; the route is %s", v.Operation, op.Method, rt.Method)
			ok = false
		default:
			if found, same := spec.Find(rt.Method, rt.Path); !same || found.Path != op.Path {
				c.errf(p+".operation", "operation %q has path %s, which does not match the route's path %s", v.Operation, op.Path, rt.Path)
				ok = false
			}
		}
		return op, ok
	}
	op, ok := spec.Find(rt.Method, rt.Path)
	if !ok {
		c.errf(p+".spec", "spec %q has no %s operation for path %s; name one with operation:", v.Spec, rt.Method, rt.Path)
	}
	return op, ok
}

func (c *checker) checkJSONLimits(p string, l *JSONLimits) {
	for key, n := range map[string]int{"max_depth": l.MaxDepth, "max_members": l.MaxMembers, "max_elements": l.MaxElements} {
		if n < 1 {
			c.errf(p+"."+key, "must be at least 1")
		}
	}
	if l.MaxString <= 0 {
		c.errf(p+".max_string", "must be greater than 0")
	}
	if c.set(p+".max_size") && l.MaxSize <= 0 {
		c.errf(p+".max_size", "must be greater than 0 (leave it out to use the route's body limit)")
	}
}
