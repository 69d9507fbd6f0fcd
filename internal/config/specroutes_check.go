package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// checkRoutesFromSpec expands routes_from_spec into routes, then checks
// every route. A problem that checkRoutes finds in a generated route is
// reported at its routes_from_spec entry and names the operation: the
// route has no YAML of its own.
func (c *checker) checkRoutesFromSpec() {
	c.expandSpecRoutes()
	start := len(c.r.errs)
	c.checkRoutes()
	c.cfg.attributeGenerated(c.r.errs[start:])
}

// specExpansion is what the entries of routes_from_spec share while they
// expand: what the explicit routes and the earlier entries already took.
type specExpansion struct {
	names    map[string]string // route name -> who has it ("routes[3]", or an operation)
	explicit map[string]int    // method + " " + pattern key -> explicit route index
	patterns map[string]string // method + " " + pattern key -> generated operation
	prefixes map[string]int    // catch-all prefix -> entry
	specs    map[string]int    // spec name -> entry
}

func (c *checker) expandSpecRoutes() {
	if len(c.cfg.RoutesFromSpec) == 0 {
		return
	}
	x := &specExpansion{
		names:    map[string]string{},
		explicit: map[string]int{},
		patterns: map[string]string{},
		prefixes: map[string]int{},
		specs:    map[string]int{},
	}
	for i, rt := range c.cfg.Routes {
		if rt.Name != "" {
			if _, dup := x.names[rt.Name]; !dup {
				x.names[rt.Name] = fmt.Sprintf("routes[%d]", i)
			}
		}
		if key, err := RoutePattern(rt.Path); err == nil {
			if _, dup := x.explicit[rt.Method+" "+key]; !dup {
				x.explicit[rt.Method+" "+key] = i
			}
		}
	}
	for i := range c.cfg.RoutesFromSpec {
		c.expandEntry(i, x)
	}
}

// expandEntry checks one routes_from_spec entry and appends its routes.
// An entry with any problem of its own adds no route, so that one mistake
// is reported once, not once per operation.
func (c *checker) expandEntry(i int, x *specExpansion) {
	s := &c.cfg.RoutesFromSpec[i]
	p := fmt.Sprintf("routes_from_spec[%d]", i)
	for path := range c.bad {
		if path == p || strings.HasPrefix(path, p+".") {
			return // a value did not decode; that error says it all
		}
	}
	before := len(c.r.errs)
	var spec *validate.Spec
	switch _, ok := c.cfg.Specs[s.Spec]; {
	case s.Spec == "":
		c.errf(p+".spec", "is required: the name of one of the specs")
	case !ok:
		c.errf(p+".spec", "unknown spec %q", s.Spec)
	default:
		if j, dup := x.specs[s.Spec]; dup {
			c.errf(p+".spec", "spec %q already drives routes at routes_from_spec[%d]", s.Spec, j)
		}
		x.specs[s.Spec] = i
		spec = c.cfg.specs[s.Spec] // nil when it failed to load: that error says it all
	}
	switch _, ok := c.cfg.Upstreams[s.Upstream]; {
	case s.Upstream == "":
		c.errf(p+".upstream", "is required: the name of one of the upstreams")
	case !ok:
		c.errf(p+".upstream", "unknown upstream %q", s.Upstream)
	}
	if s.NamePrefix != "" && !validName(s.NamePrefix, 63) {
		c.errf(p+".name_prefix", "invalid name prefix: letters, digits, '_', '.' or '-' (route names are metric labels)")
	}
	v := &s.Validate
	c.checkEnum(p+".validate.request", v.Request, ValidateEnforce, ValidateReport, ValidateOff)
	c.checkEnum(p+".validate.response", v.Response, ValidateOff, ValidateReport, ValidateEnforce)
	c.checkJSONLimits(p+".validate.json", &v.JSON)
	if s.Response != nil {
		// The checks of a route's response rules that do not depend on the
		// route; the others run on each generated route.
		c.checkRouteResponse(p, &Route{Response: s.Response})
	}
	if spec == nil || len(c.r.errs) > before {
		return
	}
	prefix, ok := c.specPrefix(p, s, spec)
	if !ok {
		return
	}
	if j, dup := x.prefixes[prefix]; dup {
		at := p + ".path_prefix"
		if !c.set(at) {
			at = p
		}
		shown := prefix
		if shown == "" {
			shown = "/"
		}
		c.errf(at, "routes_from_spec[%d] already covers the path prefix %s: two catch-alls cannot share it; set path_prefix", j, shown)
		return
	}
	x.prefixes[prefix] = i
	catchAll := s.Spec + ".undocumented"
	if who, taken := x.names[catchAll]; taken {
		c.errf(p, "the catch-all's name %q is already taken by %s", catchAll, who)
		return
	}
	x.names[catchAll] = p + " (its catch-all)"
	s.undocumented = Undocumented{Name: catchAll, Spec: s.Spec, Upstream: s.Upstream, Prefix: prefix}
	for _, op := range spec.Operations() {
		c.expandOperation(p, s, spec, op, prefix, x)
	}
}

// specPrefix is the path prefix of an entry's routes: path_prefix, else
// the spec's servers' one.
func (c *checker) specPrefix(p string, s *SpecRoutes, spec *validate.Spec) (string, bool) {
	prefixes := spec.ServerPrefixes()
	if c.set(p + ".path_prefix") {
		// Validation finds a route's operation by its path, as written in
		// the spec or under one of its servers' prefixes: no other prefix.
		prefix := strings.TrimRight(s.PathPrefix, "/")
		switch {
		case prefix == "" || slices.Contains(prefixes, prefix):
		case len(prefixes) == 0:
			c.errf(p+".path_prefix", "must be \"\" (none): the spec's servers[].url have no path, and validation finds an operation by its path as written")
			return "", false
		default:
			c.errf(p+".path_prefix", "must be \"\" (none) or the path of one of the spec's servers[].url (%s)", strings.Join(prefixes, ", "))
			return "", false
		}
		return prefix, true
	}
	switch len(prefixes) {
	case 0:
		return "", true
	case 1:
		if err := checkPathPrefix(prefixes[0]); err != nil {
			c.errf(p+".spec", "the path %s of the spec's servers[].url cannot prefix routes (%s): set path_prefix: \"\"", prefixes[0], err.Error())
			return "", false
		}
		return prefixes[0], true
	}
	c.errf(p+".spec", "the spec's servers have different path prefixes (%s): set path_prefix to the one clients call", strings.Join(prefixes, ", "))
	return "", false
}

// checkPathPrefix checks a path prefix without its trailing slash: empty,
// or a route path of fixed segments.
func checkPathPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if strings.ContainsAny(prefix, "{}*") {
		return fmt.Errorf("must be fixed segments, without {params} or *")
	}
	_, err := RoutePattern(prefix)
	return err
}

// expandOperation appends the route of one operation, unless an explicit
// route replaces it or it cannot be a route (a config error naming it).
func (c *checker) expandOperation(p string, s *SpecRoutes, spec *validate.Spec, op validate.OperationInfo, prefix string, x *specExpansion) {
	label := opLabel(op)
	fail := func(format string, args ...any) {
		c.errf(p, "operation %s: %s", label, fmt.Sprintf(format, args...))
	}
	path := routeParams(prefix + op.Path)
	key, err := RoutePattern(path)
	if err != nil {
		fail("path %s cannot be a route: %s", prefix+op.Path, err.Error())
		return
	}
	if j, ok := x.explicit[op.Method+" "+key]; ok {
		rp := fmt.Sprintf("routes[%d]", j)
		s.warnings = append(s.warnings, Error{File: c.r.file, Line: c.cfg.Pos(rp).Line, Col: c.cfg.Pos(rp).Col, Path: rp,
			Msg: fmt.Sprintf("route %q replaces the route of operation %s from %s: its own auth, require and validate apply, not the spec's", c.cfg.Routes[j].Name, label, p)})
		return
	}
	if !slices.Contains(routeMethods(), op.Method) {
		// TRACE echoes the request back (cross-site tracing): it is never
		// served, and its requests are answered by the catch-all.
		s.warnings = append(s.warnings, Error{File: c.r.file, Line: c.cfg.Pos(p).Line, Col: c.cfg.Pos(p).Col, Path: p,
			Msg: fmt.Sprintf("operation %s gets no route: the gateway never serves %s", label, op.Method)})
		return
	}
	if other, dup := x.patterns[op.Method+" "+key]; dup {
		fail("same method and path as operation %s: the second would never be reached", other)
		return
	}
	auth, scopes, msg := c.specSecurity(s, spec, op)
	if msg != "" {
		fail("%s", msg)
		return
	}
	name := s.NamePrefix + routeNameOf(op)
	switch who, taken := x.names[name]; {
	case len(name) > 64:
		fail("route name %q is longer than 64 characters: set a shorter name_prefix, or replace the operation with an explicit route", name)
		return
	case taken:
		fail("route name %q is already taken by %s: set name_prefix", name, who)
		return
	}
	x.names[name] = "operation " + label + " of " + p
	x.patterns[op.Method+" "+key] = label + " of " + p
	rt := Route{
		Name:     name,
		Method:   op.Method,
		Path:     path,
		Upstream: s.Upstream,
		Auth:     auth,
		Mode:     s.Mode,
		Validate: &RouteValidate{
			Spec: s.Spec, Operation: op.ID,
			Request: s.Validate.Request, Response: s.Validate.Response,
			Strict: s.Validate.Strict, StrictQuery: s.Validate.StrictQuery, JSON: s.Validate.JSON,
		},
	}
	if len(scopes) > 0 {
		rt.Require = &Require{Scopes: scopes}
	}
	if s.Response != nil {
		r := *s.Response
		rt.Response = &r
	}
	n := len(c.cfg.Routes)
	c.cfg.Routes = append(c.cfg.Routes, rt)
	s.generated = append(s.generated, generatedRoute{index: n, label: label})
	c.cfg.aliasPositions(p, fmt.Sprintf("routes[%d]", n))
}

// specSecurity maps an operation's effective security to a route's auth
// and required scopes; msg says why it cannot ("" when it can).
func (c *checker) specSecurity(s *SpecRoutes, spec *validate.Spec, op validate.OperationInfo) (auth AuthList, scopes []string, msg string) {
	const override = "replace the operation with an explicit route"
	reqs := op.Security
	if reqs == nil {
		return auth, nil, "declares no security (neither the operation nor the document has security:): declare it in the spec (security: [] for a public operation), or " + override
	}
	empty := 0
	for _, r := range reqs {
		if len(r) == 0 {
			empty++
		}
	}
	switch {
	case empty == len(reqs): // security: [] or [{}]
		if !s.AllowPublic {
			return auth, nil, "is public in the spec (security: []), and allow_public is false: set allow_public: true to serve it without authentication, or " + override
		}
		return AuthList{None: true}, nil, ""
	case empty > 0:
		return auth, nil, "makes authentication optional (an empty requirement {} beside others), which a route cannot express: " + override
	}
	schemes := spec.SecuritySchemes()
	var first []string
	for i, r := range reqs {
		if len(r) > 1 {
			names := sortedNames(r)
			return auth, nil, fmt.Sprintf("requires the schemes %s together, and a route accepts any one of its authenticators, never several at once: %s", strings.Join(names, " and "), override)
		}
		var name string
		for k := range r { // the one scheme of the requirement
			name = k
		}
		want := r[name]
		a, ok := c.cfg.Authenticators[name]
		if !ok {
			return auth, nil, fmt.Sprintf("security scheme %q is not a configured authenticator: name an authenticator %q, or %s", name, name, override)
		}
		if info, ok := schemes[name]; ok {
			if why := schemeMismatch(info, a); why != "" {
				return auth, nil, fmt.Sprintf("security scheme %q is %s, but authenticator %q is of type %s", name, why, name, a.Type)
			}
			c.apiKeyPlacement(s, op, name, info, a)
		}
		want = slices.Compact(slices.Sorted(slices.Values(want)))
		if i == 0 {
			first = want
		} else if !slices.Equal(first, want) {
			return auth, nil, fmt.Sprintf("its security alternatives need different scopes ([%s] and [%s]), and a route requires the same scopes of every authenticator: %s",
				strings.Join(first, " "), strings.Join(want, " "), override)
		}
		if !slices.Contains(auth.Names, name) {
			auth.Names = append(auth.Names, name)
		}
	}
	return auth, first, ""
}

// schemeMismatch says what kind of scheme info is when no authenticator of
// a's type can verify its credentials; "" when one can.
func schemeMismatch(info validate.SchemeInfo, a Authenticator) string {
	bearer := a.Type == "jwt" || a.Type == "introspection"
	switch info.Type {
	case "http":
		if info.Scheme == "bearer" {
			if bearer {
				return ""
			}
			return "an http bearer scheme"
		}
		return "an http " + info.Scheme + " scheme, which no authenticator verifies"
	case "oauth2", "openIdConnect":
		if bearer {
			return ""
		}
		return "an " + info.Type + " scheme (bearer tokens)"
	case "apiKey":
		switch {
		case info.In == "cookie":
			return "an apiKey scheme in a cookie, which no authenticator reads"
		case a.Type == "api_key":
			return ""
		}
		return "an apiKey scheme"
	case "mutualTLS":
		if a.Type == "mtls" {
			return ""
		}
		return "a mutualTLS scheme"
	}
	return "" // unknown to this build: the name alone maps it
}

// apiKeyPlacement warns when the spec documents an API key where its
// authenticator does not look: clients that follow the spec get 401.
func (c *checker) apiKeyPlacement(s *SpecRoutes, op validate.OperationInfo, name string, info validate.SchemeInfo, a Authenticator) {
	if info.Type != "apiKey" || a.Type != "api_key" {
		return
	}
	var got string
	switch {
	case info.In == "header" && !strings.EqualFold(info.Name, a.Header):
		got = "header " + a.Header
	case info.In == "query" && info.Name != a.QueryParam:
		got = "query parameter " + strconv.Quote(a.QueryParam)
		if a.QueryParam == "" {
			got = "no query parameter"
		}
	default:
		return
	}
	ap := joinPath("authenticators", name)
	msg := fmt.Sprintf("the spec's scheme %q sends the key in %s %s, but authenticator %q reads %s: clients that follow the spec get 401", name, info.In, info.Name, name, got)
	for _, w := range s.warnings {
		if w.Msg == msg {
			return
		}
	}
	s.warnings = append(s.warnings, Error{File: c.r.file, Line: c.cfg.Pos(ap).Line, Col: c.cfg.Pos(ap).Col, Path: ap, Msg: msg})
}

// opLabel names an operation in messages: "getOrder (GET /orders/{id})",
// or "GET /orders/{id}" without an operationId.
func opLabel(op validate.OperationInfo) string {
	if op.ID == "" {
		return op.Method + " " + op.Path
	}
	return fmt.Sprintf("%s (%s %s)", op.ID, op.Method, op.Path)
}

// routeNameOf is the name of an operation's route before the prefix: the
// operationId, else the method and path ("get-orders-id"), with every
// character a route name cannot hold replaced by '_'.
func routeNameOf(op validate.OperationInfo) string {
	name := op.ID
	if name == "" {
		parts := []string{strings.ToLower(op.Method)}
		for seg := range strings.SplitSeq(op.Path, "/") {
			if seg = strings.Trim(seg, "{}"); seg != "" {
				parts = append(parts, seg)
			}
		}
		if len(parts) == 1 {
			parts = append(parts, "root")
		}
		name = strings.Join(parts, "-")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '_'
	}, name)
}

// routeParams rewrites the parameter names of a spec path that a route
// path cannot hold ({order-id} -> {order_id}): validation matches
// parameters by position, so only the spelling changes.
func routeParams(path string) string {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if len(seg) < 2 || seg[0] != '{' || seg[len(seg)-1] != '}' || strings.Contains(seg, ":") {
			continue
		}
		name := seg[1 : len(seg)-1]
		if isIdentifier(name) {
			continue
		}
		fixed := []byte(name)
		for j, ch := range fixed {
			if !(ch == '_' || 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9') {
				fixed[j] = '_'
			}
		}
		if len(fixed) == 0 || '0' <= fixed[0] && fixed[0] <= '9' {
			fixed = append([]byte{'_'}, fixed...)
		}
		segs[i] = "{" + string(fixed) + "}"
	}
	return strings.Join(segs, "/")
}

// aliasPositions makes the YAML paths under to (a generated route)
// resolve to the positions of the same paths under from (its entry), so
// that a later problem or warning about the route points at the entry.
func (c *Config) aliasPositions(from, to string) {
	for _, ps := range []positions{c.pos, c.keys} {
		if at, ok := ps[from]; ok {
			ps[to] = at
		}
		for path, at := range ps {
			if rest, ok := strings.CutPrefix(path, from+"."); ok {
				ps[to+"."+rest] = at
			}
		}
	}
}

// attributeGenerated rewrites problems (or warnings) found in generated
// routes, "routes[7].validate: ...", as problems of their entry that name
// the operation: "routes_from_spec[0].validate: operation getOrder (GET
// /orders/{id}): ...". Keys a route has and its entry has not (name,
// path, auth, require) collapse to the entry.
func (c *Config) attributeGenerated(errs []Error) {
	if len(c.RoutesFromSpec) == 0 {
		return
	}
	type origin struct {
		entry int
		label string
	}
	from := map[string]origin{}
	for e, s := range c.RoutesFromSpec {
		for _, g := range s.generated {
			from[fmt.Sprintf("routes[%d]", g.index)] = origin{e, g.label}
		}
	}
	if len(from) == 0 {
		return
	}
	for i := range errs {
		e := &errs[i]
		head, rest := e.Path, ""
		if j := strings.IndexByte(e.Path, ']'); strings.HasPrefix(e.Path, "routes[") && j > 0 {
			head, rest = e.Path[:j+1], e.Path[j+1:]
		}
		o, ok := from[head]
		if !ok {
			continue
		}
		key, _, _ := strings.Cut(strings.TrimPrefix(rest, "."), ".")
		key, _, _ = strings.Cut(key, "[")
		switch key {
		case "validate", "response", "mode", "upstream":
		default:
			rest = ""
		}
		e.Path = fmt.Sprintf("routes_from_spec[%d]%s", o.entry, rest)
		e.Msg = "operation " + o.label + ": " + e.Msg
	}
}

// specWarnings are the warnings routes_from_spec found while expanding.
func (c *Config) specWarnings() []Error {
	var out []Error
	for _, s := range c.RoutesFromSpec {
		out = append(out, s.warnings...)
	}
	return out
}
