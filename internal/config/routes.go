package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// routeMethods are the methods a route may declare. CONNECT (tunnels) and
// TRACE (echoes the request, cross-site tracing) are refused.
func routeMethods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
}

func (c *checker) checkRoutes() {
	names := map[string]int{}    // route name -> index
	patterns := map[string]int{} // host, method, pattern key -> index
	corsPaths := map[string]int{}
	var options []int
	keys := make([]string, len(c.cfg.Routes))
	for i := range c.cfg.Routes {
		rt := &c.cfg.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case rt.Name == "":
			c.errf(p+".name", "is required: a unique name (used in metrics and audit events)")
		case !validName(rt.Name, 64):
			c.errf(p+".name", "invalid route name: 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)")
		default:
			if j, dup := names[rt.Name]; dup {
				c.errf(p+".name", "duplicate route name %q (first at routes[%d], line %d)", rt.Name, j, c.cfg.Pos(fmt.Sprintf("routes[%d].name", j)).Line)
			} else {
				names[rt.Name] = i
			}
		}
		methodOK := c.checkMethod(p+".method", rt.Method)
		key, err := RoutePattern(rt.Path)
		if err != nil {
			c.errf(p+".path", "%s", err.Error())
		}
		pathOK := err == nil
		if rt.Host != "" {
			if err := checkRouteHost(rt.Host); err != nil {
				c.errf(p+".host", "%s", err.Error())
			}
			rt.Host = strings.ToLower(rt.Host)
		}
		switch _, ok := c.cfg.Upstreams[rt.Upstream]; {
		case rt.Upstream == "":
			c.errf(p+".upstream", "is required: the name of one of the upstreams")
		case !ok:
			c.errf(p+".upstream", "unknown upstream %q", rt.Upstream)
		}
		c.checkRouteAuth(p, rt)
		c.checkRouteLimits(p, rt)
		c.checkRouteValidate(p, rt)
		c.checkRouteResponse(p, rt)
		c.checkRouteAuthorize(p, rt)
		if c.set(p+".max_body_size") && rt.MaxBodySize <= 0 {
			c.errf(p+".max_body_size", "must be greater than 0 (leave it out to use server.max_body_size)")
		}
		if rt.WebSocket && methodOK && rt.Method != "GET" {
			c.errf(p+".websocket", "is only allowed on a GET route (a WebSocket handshake is a GET)")
		}
		if rt.CORS != nil {
			c.checkCORS(p+".cors", rt.CORS)
		}
		if !methodOK || !pathOK {
			continue
		}
		keys[i] = rt.Host + " " + key
		if j, dup := patterns[rt.Method+" "+keys[i]]; dup {
			c.errf(p+".path", "same method, path and host as route %q (routes[%d]): the second would never be reached", c.cfg.Routes[j].Name, j)
		} else {
			patterns[rt.Method+" "+keys[i]] = i
		}
		if _, seen := corsPaths[keys[i]]; rt.CORS != nil && !seen {
			corsPaths[keys[i]] = i
		}
		if rt.Method == "OPTIONS" {
			options = append(options, i)
		}
	}
	for _, i := range options {
		if j, ok := corsPaths[keys[i]]; ok {
			c.errf(fmt.Sprintf("routes[%d].method", i), "an OPTIONS route cannot share its path with route %q, which has cors: the gateway answers preflights for that path itself", c.cfg.Routes[j].Name)
		}
	}
}

func (c *checker) checkMethod(path, m string) bool {
	methods := routeMethods()
	if slices.Contains(methods, m) {
		return true
	}
	up := strings.ToUpper(m)
	switch {
	case m == "":
		c.errf(path, "is required: one of %s", strings.Join(methods, ", "))
	case up == "CONNECT":
		c.errf(path, "CONNECT is refused: the gateway does not open tunnels")
	case up == "TRACE":
		c.errf(path, "TRACE is refused: it echoes the request back, headers included (cross-site tracing)")
	case up != m && slices.Contains(methods, up):
		c.errf(path, "must be upper-case: %s", up)
	default:
		c.errf(path, "unknown method: use one of %s", strings.Join(methods, ", "))
	}
	return false
}

// RoutePattern checks a route path and returns its pattern key: the path
// with parameter names dropped ({id} -> {}, {id:[0-9]+} -> {:[0-9]+}), so
// that /a/{x} and /a/{y}, which the router cannot tell apart, compare
// equal.
func RoutePattern(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("is required: a path starting with /, e.g. /orders/{id}")
	case p[0] != '/':
		return "", errors.New("must start with /")
	case !utf8.ValidString(p):
		return "", errors.New("must be valid UTF-8")
	}
	segs := strings.Split(p[1:], "/")
	params := map[string]bool{}
	keys := make([]string, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case seg == "" && !last:
			return "", errors.New("must not contain // (an empty segment)")
		case seg == "*" && last:
			keys[i] = seg // catch-all
			continue
		case seg == "." || seg == "..":
			return "", errors.New("must not contain . or .. segments (routes match the canonical path)")
		case strings.HasPrefix(seg, "{"):
			key, err := routeParam(seg, params)
			if err != nil {
				return "", err
			}
			keys[i] = key
			continue
		}
		for _, r := range seg {
			if err := checkPathRune(r); err != nil {
				return "", err
			}
		}
		keys[i] = seg
	}
	return "/" + strings.Join(keys, "/"), nil
}

// routeParam checks one {name} or {name:regexp} segment and returns its key.
func routeParam(seg string, seen map[string]bool) (string, error) {
	if !strings.HasSuffix(seg, "}") || len(seg) < 2 {
		return "", errors.New("a {param} must be a whole path segment, e.g. /orders/{id}")
	}
	name, re, hasRe := strings.Cut(seg[1:len(seg)-1], ":")
	if !isIdentifier(name) {
		return "", fmt.Errorf("invalid parameter %s: a name matches [A-Za-z_][A-Za-z0-9_]*, and a {param} is a whole path segment", seg)
	}
	if seen[name] {
		return "", fmt.Errorf("parameter {%s} appears twice", name)
	}
	seen[name] = true
	if !hasRe {
		return "{}", nil
	}
	depth := 0
	for _, r := range re {
		switch {
		case r == '{':
			depth++
		case r == '}':
			depth--
		case r < 0x20 || r == 0x7f || r == ' ':
			return "", fmt.Errorf("the pattern of {%s} must not contain spaces or control characters", name)
		}
		if depth < 0 {
			break
		}
	}
	if re == "" || depth != 0 {
		return "", fmt.Errorf("the pattern of {%s} must be a non-empty regexp with balanced braces", name)
	}
	if _, err := regexp.Compile(re); err != nil {
		return "", fmt.Errorf("the pattern of {%s} is not a valid regexp: %v", name, err)
	}
	return "{:" + re + "}", nil
}

// isIdentifier reports whether s matches [A-Za-z_][A-Za-z0-9_]*: the
// spelling of ${VAR} names and of {param} names in route paths.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkPathRune allows the characters of a decoded path segment (RFC 3986
// pchar without %, plus non-ASCII) and explains the common mistakes.
func checkPathRune(r rune) error {
	switch {
	case r < 0x20 || r == 0x7f || r == ' ':
		return errors.New("must not contain spaces or control characters")
	case r == '%':
		return errors.New("must not contain %: write the decoded character (routes match the canonical, decoded path)")
	case r == '\\':
		return errors.New(`must not contain \`)
	case r == '?':
		return errors.New("must not contain ?: a route matches the path only, never the query")
	case r == '#':
		return errors.New("must not contain #")
	case r == '*':
		return errors.New("* is only allowed as the whole last segment (a catch-all), e.g. /static/*")
	case r == '{' || r == '}':
		return errors.New("a {param} must be a whole path segment, e.g. /orders/{id}")
	case r >= 0x80,
		'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9',
		strings.ContainsRune("-._~!$&'()+,;=:@", r):
		return nil
	}
	return fmt.Errorf("character %q is not allowed in a route path", r)
}

// checkRouteHost checks a route's host: a host name, no scheme, no port.
func checkRouteHost(h string) error {
	switch {
	case strings.Contains(h, "://"):
		return errors.New("must be a host name without scheme, e.g. api.example.com")
	case strings.ContainsAny(h, ":[]"):
		return errors.New("must be a host name without port, e.g. api.example.com")
	case strings.Contains(h, "/"):
		return errors.New("must be a host name without path, e.g. api.example.com")
	case !validHostname(h):
		return errors.New("not a valid host name")
	}
	return nil
}

func (c *checker) checkCORS(p string, cors *CORS) {
	if len(cors.Origins) == 0 {
		c.errf(p+".origins", "needs at least one origin, e.g. [https://app.example.com]")
	}
	wildcard := false
	for i, o := range cors.Origins {
		if o == "*" {
			wildcard = true
			continue
		}
		if err := checkOrigin(o); err != nil {
			c.errf(fmt.Sprintf("%s.origins[%d]", p, i), "%s", err.Error())
		}
	}
	if cors.Credentials && wildcard {
		c.errf(p+".credentials", `cannot be true with origin "*": browsers refuse it; list the origins instead`)
	}
	for i, m := range cors.Methods {
		if !isToken(m) || strings.ToUpper(m) != m {
			c.errf(fmt.Sprintf("%s.methods[%d]", p, i), "not a valid upper-case method")
		}
	}
	for i, h := range cors.Headers {
		if !isToken(h) {
			c.errf(fmt.Sprintf("%s.headers[%d]", p, i), "not a valid header name")
		}
	}
	for i, h := range cors.ExposeHeaders {
		if !isToken(h) {
			c.errf(fmt.Sprintf("%s.expose_headers[%d]", p, i), "not a valid header name")
		}
	}
}

// checkOrigin checks one CORS origin: scheme://host[:port], lower-case, as
// a browser sends it in the Origin header.
func checkOrigin(o string) error {
	const form = `must be "*" or scheme://host[:port] with nothing after it, e.g. https://app.example.com`
	if strings.ToLower(o) != o {
		return errors.New("must be lower-case (browsers send the Origin header lower-case)")
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.Opaque != "" ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(o, "#") ||
		u.Scheme+"://"+u.Host != o {
		return errors.New(form)
	}
	return nil
}

// PathParams returns the parameter names of a route path template, in
// order ("/users/{userId}/orders/{orderId:[0-9]+}" gives userId, orderId).
func PathParams(template string) []string {
	var names []string
	for seg := range strings.SplitSeq(template, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name, _, _ := strings.Cut(seg[1:len(seg)-1], ":")
			names = append(names, name)
		}
	}
	return names
}
