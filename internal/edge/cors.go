package edge

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// CORS is one route's cross-origin policy, compiled by NewCORS. It is
// read-only and safe for concurrent use.
type CORS struct {
	origins     map[string]struct{} // lower-case scheme://host[:port]
	anyOrigin   bool                // "*"
	credentials bool
	methods     map[string]struct{}
	headers     map[string]struct{} // lower-case
	anyHeader   bool                // "*"
	problems    *problem.Writer

	// Response header values, built once (cap == len, see edge).
	allowMethods []string
	allowHeaders []string // nil: none
	expose       []string // nil: none
	maxAge       []string // nil: not sent
	allowCreds   []string // nil: not sent
}

// NewCORS compiles a route's cors section. routeMethod is the route's
// method, the default of cfg.Methods. It fails on an origin that is not
// "*" or scheme://host[:port], on "null", on "*" (origins or headers)
// together with credentials, on an invalid method or header name, on no
// origins and on a negative max_age. pw must not be nil.
func NewCORS(cfg config.CORS, routeMethod string, pw *problem.Writer) (*CORS, error) {
	c := &CORS{
		origins:     map[string]struct{}{},
		credentials: cfg.Credentials,
		methods:     map[string]struct{}{},
		headers:     map[string]struct{}{},
		problems:    pw,
	}
	if len(cfg.Origins) == 0 {
		return nil, errors.New("origins: at least one origin is required")
	}
	for _, o := range cfg.Origins {
		if o == "*" {
			c.anyOrigin = true
			continue
		}
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("origins: %w", err)
		}
		c.origins[norm] = struct{}{}
	}
	if c.anyOrigin && c.credentials {
		return nil, errors.New(`origins: "*" cannot be used with credentials`)
	}

	methods := cfg.Methods
	if len(methods) == 0 {
		methods = []string{routeMethod}
	}
	for _, m := range methods {
		if !httpguts.ValidHeaderFieldName(m) { // a method is a token, like a header name
			return nil, fmt.Errorf("methods: invalid method %q", m)
		}
		c.methods[m] = struct{}{}
	}
	c.allowMethods = []string{strings.Join(methods, ", ")}

	for _, h := range cfg.Headers {
		if h == "*" {
			c.anyHeader = true
			continue
		}
		if !httpguts.ValidHeaderFieldName(h) {
			return nil, fmt.Errorf("headers: invalid header name %q", h)
		}
		c.headers[strings.ToLower(h)] = struct{}{}
	}
	if c.anyHeader && c.credentials {
		return nil, errors.New(`headers: "*" cannot be used with credentials`)
	}
	switch {
	case c.anyHeader:
		c.allowHeaders = []string{"*"}
	case len(cfg.Headers) > 0:
		c.allowHeaders = []string{strings.Join(cfg.Headers, ", ")}
	}
	for _, h := range cfg.ExposeHeaders {
		if !httpguts.ValidHeaderFieldName(h) {
			return nil, fmt.Errorf("expose_headers: invalid header name %q", h)
		}
	}
	if len(cfg.ExposeHeaders) > 0 {
		c.expose = []string{strings.Join(cfg.ExposeHeaders, ", ")}
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("max_age: must not be negative, got %s", cfg.MaxAge.D())
	}
	if secs := int64(cfg.MaxAge.D() / time.Second); secs > 0 {
		c.maxAge = []string{strconv.FormatInt(secs, 10)}
	}
	if c.credentials {
		c.allowCreds = []string{"true"}
	}
	return c, nil
}

// normalizeOrigin checks that o is a serialised origin, scheme://host with
// an optional port and nothing else, and lower-cases it as browsers send
// it.
func normalizeOrigin(o string) (string, error) {
	if o == "null" {
		return "", errors.New(`"null" is not allowed: sandboxed frames and local files send it`)
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(rest, "/?#@ \\") {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", o)
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", fmt.Errorf("%q is not an origin: bad scheme", o)
		}
	}
	return strings.ToLower(o), nil
}

func (c *CORS) allowOrigin(origin string) bool {
	if c.anyOrigin {
		return true
	}
	_, ok := c.origins[origin]
	return ok
}

// allowHeaderList reports whether every header named in the
// Access-Control-Request-Headers lines is allowed.
func (c *CORS) allowHeaderList(lines []string) bool {
	if c.anyHeader {
		return true
	}
	for _, line := range lines {
		for line != "" {
			var name string
			name, line, _ = strings.Cut(line, ",")
			name = trimOWS(name)
			if name == "" {
				continue
			}
			if _, ok := c.headers[strings.ToLower(name)]; !ok {
				return false
			}
		}
	}
	return true
}

// grantOrigin sets Access-Control-Allow-Origin (and credentials) for an
// allowed origin: the origin itself, or "*" for a wildcard policy without
// credentials.
func (c *CORS) grantOrigin(h http.Header, origin string) {
	if c.anyOrigin {
		h["Access-Control-Allow-Origin"] = []string{"*"}
	} else {
		h["Access-Control-Allow-Origin"] = []string{origin}
	}
	if c.allowCreds != nil {
		h["Access-Control-Allow-Credentials"] = c.allowCreds
	}
}

// Middleware returns the policy for the route's actual (non-preflight)
// requests. A request without Origin, or from the request's own origin,
// passes untouched. An allowed origin passes with
// Access-Control-Allow-Origin, credentials and Expose-Headers added. Any
// other Origin is refused with 403 before the upstream sees it: a
// cross-origin request the policy does not allow is a CSRF attempt, not
// something to forward and let the browser hide. Refusal is reportable.
func (c *CORS) Middleware(next http.Handler) http.Handler {
	return &corsActual{cors: c, next: next}
}

type corsActual struct {
	cors *CORS
	next http.Handler
}

var _ http.Handler = (*corsActual)(nil)

func (a *corsActual) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origins := r.Header["Origin"]
	cw := &corsWriter{ResponseWriter: w, cors: a.cors}
	switch {
	case len(origins) == 0:
	case len(origins) == 1 && sameOrigin(origins[0], r):
	case len(origins) == 1 && a.cors.allowOrigin(origins[0]):
		cw.granted = origins[0]
	default:
		if a.cors.problems.Deny(cw, r, problem.CORSRefused()) {
			return
		}
	}
	a.next.ServeHTTP(cw, r)
}

// corsWriter makes the route's policy the only source of CORS headers on
// the response: when the header is written it removes every
// Access-Control-* header the upstream sent (a permissive upstream, or a
// second Access-Control-Allow-Origin, would undo the policy) and adds the
// policy's own. It keeps Flush and, through Unwrap, Hijack working.
type corsWriter struct {
	http.ResponseWriter
	cors    *CORS
	granted string // the allowed Origin; "" when the policy grants nothing
	done    bool
}

func (c *corsWriter) WriteHeader(code int) {
	c.apply()
	c.ResponseWriter.WriteHeader(code)
}

func (c *corsWriter) Write(p []byte) (int, error) {
	c.apply()
	return c.ResponseWriter.Write(p)
}

// Flush sends buffered data to the client; a no-op when the underlying
// writer cannot flush.
func (c *corsWriter) Flush() {
	c.apply()
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *corsWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *corsWriter) apply() {
	if c.done {
		return
	}
	c.done = true
	h := c.Header()
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	h.Add("Vary", "Origin") // the answer depends on Origin, also when it is absent
	if c.granted != "" {
		c.cors.grantOrigin(h, c.granted)
		if c.cors.expose != nil {
			h["Access-Control-Expose-Headers"] = c.cors.expose
		}
	}
}

// sameOrigin reports whether origin is the request's own: the scheme of
// the connection and the Host. Without TLS on the connection both schemes
// are taken, since a TLS-terminating proxy may stand in front.
func sameOrigin(origin string, r *http.Request) bool {
	rest, ok := strings.CutPrefix(origin, "https://")
	if !ok {
		if r.TLS != nil {
			return false
		}
		if rest, ok = strings.CutPrefix(origin, "http://"); !ok {
			return false
		}
	}
	return rest != "" && strings.EqualFold(rest, r.Host)
}

// Preflight returns the OPTIONS handler of one path, whose routes with a
// CORS policy are byMethod (keyed by route method). A preflight (Origin
// and Access-Control-Request-Method) is answered by the policy of the
// route for the requested method: when it allows the origin, the method
// and every requested header, 204 with the Access-Control-Allow-* headers;
// otherwise 403. Refusal is reportable; in report mode the answer is 204
// without any Access-Control-Allow-* header, so the browser still refuses:
// report mode never grants access the policy does not. An OPTIONS that is
// not a preflight is a 405 whose Allow lists allow: every method the path
// serves (the methods of byMethod when allow is empty).
func Preflight(byMethod map[string]*CORS, allow []string, pw *problem.Writer) http.Handler {
	methods := slices.Clone(allow)
	if len(methods) == 0 {
		methods = slices.Collect(maps.Keys(byMethod))
	}
	slices.Sort(methods)
	return &preflight{
		byMethod: maps.Clone(byMethod),
		allow:    strings.Join(slices.Compact(methods), ", "),
		problems: pw,
		vary:     []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
	}
}

type preflight struct {
	byMethod map[string]*CORS
	allow    string
	problems *problem.Writer
	vary     []string
}

var _ http.Handler = (*preflight)(nil)

func (p *preflight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origins := r.Header["Origin"]
	reqMethods := r.Header["Access-Control-Request-Method"]
	if len(origins) == 0 || len(reqMethods) == 0 {
		p.problems.Deny(w, r, problem.MethodNotAllowed(p.allow))
		return
	}
	h := w.Header()
	h["Vary"] = p.vary
	c := p.byMethod[reqMethods[0]]
	if len(origins) != 1 || len(reqMethods) != 1 || c == nil || !c.allowOrigin(origins[0]) ||
		!c.allowMethod(reqMethods[0]) || !c.allowHeaderList(r.Header["Access-Control-Request-Headers"]) {
		if p.problems.Deny(w, r, problem.CORSRefused()) {
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	c.grantOrigin(h, origins[0])
	h["Access-Control-Allow-Methods"] = c.allowMethods
	if c.allowHeaders != nil {
		h["Access-Control-Allow-Headers"] = c.allowHeaders
	}
	if c.maxAge != nil {
		h["Access-Control-Max-Age"] = c.maxAge
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *CORS) allowMethod(m string) bool {
	_, ok := c.methods[m]
	return ok
}
