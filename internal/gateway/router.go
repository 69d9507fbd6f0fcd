package gateway

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/bulwark-gateway/bulwark/internal/authn"
	"github.com/bulwark-gateway/bulwark/internal/authz"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/edge"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/proxy"
	"github.com/bulwark-gateway/bulwark/internal/ratelimit"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// routeTable dispatches a request to its route: routes with a host first,
// then host-less routes (documented precedence). Within one host, chi's
// rules apply: a static segment beats a {param}, which beats a * catch-all.
// A path that matches no route is a 404, a path whose routes take other
// methods a 405 with Allow; neither reaches an upstream.
type routeTable struct {
	byHost   map[string]*chi.Mux
	anyHost  *chi.Mux
	methods  []string // every method some route serves, for Allow
	problems *problem.Writer
	// undocumented are the catch-alls of routes_from_spec, longest prefix
	// first; recorder counts their requests (nil: only the 404).
	undocumented []catchAll
	recorder     interface{ Undocumented(upstream, path string) }
}

// catchAll answers the requests under a spec's path prefix that no route
// takes: they are undocumented for the spec.
type catchAll struct {
	prefix   string // "" covers every path
	upstream string
	route    *exchange.Route
}

var _ http.Handler = (*routeTable)(nil)

func newRouteTable(cfg *config.Config, upstreams map[string]*proxy.Upstream, set *authn.Set, limiter *ratelimit.Limiter, deps Deps) (t *routeTable, err error) {
	t = &routeTable{byHost: map[string]*chi.Mux{}, anyHost: chi.NewMux(), problems: deps.Problems}
	// chi panics on patterns it cannot parse; the loader validates paths,
	// so a panic here is a bug, but it must still not take the process down
	// on reload.
	defer func() {
		if v := recover(); v != nil {
			t, err = nil, fmt.Errorf("routes: %v", v)
		}
	}()
	// Preflights are keyed by host and route pattern: /a/{x} and /a/{y}
	// are one router node, so their policies share one OPTIONS handler.
	type pathKey struct{ host, pattern string }
	type preflight struct {
		path     string
		byMethod map[string]*edge.CORS
	}
	preflights := map[pathKey]*preflight{}
	pathMethods := map[pathKey][]string{} // every method each path serves, for Allow
	for i, rt := range cfg.Routes {
		up, ok := upstreams[rt.Upstream]
		if !ok { // the loader checks this; keep Build total anyway
			return nil, fmt.Errorf("routes[%d] %q: unknown upstream %q", i, rt.Name, rt.Upstream)
		}
		chain, cors, err := buildChain(cfg, rt, up, set, limiter, deps)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] %q: %w", i, rt.Name, err)
		}
		t.mux(rt.Host).Method(rt.Method, rt.Path, chain)
		if !slices.Contains(t.methods, rt.Method) {
			t.methods = append(t.methods, rt.Method)
		}
		pattern, err := config.RoutePattern(rt.Path)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] %q: path: %w", i, rt.Name, err)
		}
		k := pathKey{rt.Host, pattern}
		pathMethods[k] = append(pathMethods[k], rt.Method)
		if cors != nil {
			if preflights[k] == nil {
				preflights[k] = &preflight{path: rt.Path, byMethod: map[string]*edge.CORS{}}
			}
			preflights[k].byMethod[rt.Method] = cors
		}
	}
	for k, p := range preflights {
		allow := append(pathMethods[k], http.MethodOptions)
		t.mux(k.host).Method(http.MethodOptions, p.path, edge.Preflight(p.byMethod, allow, deps.Problems))
		if !slices.Contains(t.methods, http.MethodOptions) {
			t.methods = append(t.methods, http.MethodOptions)
		}
	}
	slices.Sort(t.methods)
	for _, u := range cfg.Undocumented() {
		t.undocumented = append(t.undocumented, catchAll{prefix: u.Prefix, upstream: u.Upstream,
			route: &exchange.Route{Name: u.Name, Upstream: u.Upstream, Mode: config.ModeEnforce}})
	}
	slices.SortStableFunc(t.undocumented, func(a, b catchAll) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	t.recorder = deps.Undocumented
	t.anyHost.NotFound(t.unmatched)
	t.anyHost.MethodNotAllowed(t.unmatched)
	return t, nil
}

func (t *routeTable) mux(host string) *chi.Mux {
	if host == "" {
		return t.anyHost
	}
	m, ok := t.byHost[host]
	if !ok {
		m = chi.NewMux()
		t.byHost[host] = m
	}
	return m
}

func (t *routeTable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(t.byHost) > 0 {
		if m, ok := t.byHost[requestHost(r)]; ok && m.Match(chi.NewRouteContext(), r.Method, r.URL.Path) {
			m.ServeHTTP(w, r)
			return
		}
	}
	// The host-less mux answers unmatched requests through t.unmatched.
	t.anyHost.ServeHTTP(w, r)
}

// unmatched answers a request that no route takes: 405 with Allow when some
// route serves the path with another method, else 404; under the prefix
// of a spec that drives routes, that 404 is an undocumented request,
// recorded and bound to the spec's catch-all (never proxied).
func (t *routeTable) unmatched(w http.ResponseWriter, r *http.Request) {
	if allow := t.allowed(r, r.URL.Path); allow != "" {
		t.problems.Deny(w, r, problem.MethodNotAllowed(allow))
		return
	}
	if ca := t.catchAll(r.URL.Path); ca != nil {
		if rec := exchange.From(r.Context()); rec != nil {
			rec.Route = ca.route
		}
		if t.recorder != nil {
			t.recorder.Undocumented(ca.upstream, r.URL.Path)
		}
		t.problems.Deny(w, r, problem.Undocumented())
		return
	}
	t.problems.Deny(w, r, problem.NotFound())
}

// catchAll returns the catch-all with the longest prefix that covers path
// ("/v1" covers /v1 and /v1/..., not /v1x); nil when none does.
func (t *routeTable) catchAll(path string) *catchAll {
	for i := range t.undocumented {
		ca := &t.undocumented[i]
		if rest, ok := strings.CutPrefix(path, ca.prefix); ok && (rest == "" || rest[0] == '/') {
			return ca
		}
	}
	return nil
}

// allowed lists the methods some route serves for this host and path; ""
// when the path matches no route at all.
func (t *routeTable) allowed(r *http.Request, path string) string {
	muxes := []*chi.Mux{t.anyHost}
	if m, ok := t.byHost[requestHost(r)]; ok {
		muxes = append(muxes, m)
	}
	var allow []string
	for _, method := range t.methods {
		for _, m := range muxes {
			if m.Match(chi.NewRouteContext(), method, path) {
				allow = append(allow, method)
				break
			}
		}
	}
	return strings.Join(allow, ", ")
}

// requestHost is the request's host, lower-cased and without port.
func requestHost(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(host)
}

// buildChain composes one route's chain, outermost first: bind the route to
// the request record, CORS (so that even a 401 carries the route's CORS
// headers and a browser can read it), authentication, the plan and route
// rate limits, scope requirements, the response view check, upgrade
// policy, body limit, request validation (JSON limits, then the OpenAPI
// operation), the object-level rules (after validation, so they read the
// body validation decoded), then the proxy, whose response stages are response
// validation, the response rules (ownership) and then field filtering
// (filtering last, so nothing a rule did not allow leaves). Stages a route
// does not configure are not in its chain at all. It also returns the
// route's CORS policy for the path's preflight handler.
func buildChain(cfg *config.Config, rt config.Route, up *proxy.Upstream, set *authn.Set, limiter *ratelimit.Limiter, deps Deps) (http.Handler, *edge.CORS, error) {
	info := routeInfo(cfg, rt)
	spans := chainSpans{t: deps.Tracer, route: rt.Name}
	limit := int64(cfg.Server.MaxBodySize)
	if rt.MaxBodySize > 0 {
		limit = int64(rt.MaxBodySize)
	}
	resp := proxy.ResponseOptions{
		StripHeaders: stripHeaders(cfg, rt),
		MaskErrors:   cfg.Response.UpstreamErrors == "mask",
		MaxBuffer:    int64(cfg.Server.MaxResponseBuffer),
	}
	objects, err := authz.Authorize(rt, authz.Deps{Problems: deps.Problems, Decisions: deps.Metrics.AuthzDecisions,
		Limits: validate.Limits{MaxSize: limit}, Policies: deps.policies})
	if err != nil {
		return nil, nil, err
	}
	var validateRequest func(http.Handler) http.Handler
	if rt.Validate != nil {
		mw, stage, err := validation(cfg, rt, limit, objects.ReadsBody(), deps)
		if err != nil {
			return nil, nil, err
		}
		validateRequest = mw
		if stage != nil {
			resp.Stages = append(resp.Stages, spans.response("validate.response", stage))
		}
	}
	owner, err := authz.Respond(rt, authz.Deps{Problems: deps.Problems, Decisions: deps.Metrics.AuthzDecisions})
	if err != nil {
		return nil, nil, err
	}
	if owner != nil {
		resp.Stages = append(resp.Stages, spans.response("authz.response", owner))
	}
	var filterView func(http.Handler) http.Handler
	if r := rt.Response; r != nil {
		if r.UpstreamErrors != "" {
			resp.MaskErrors = r.UpstreamErrors == "mask"
		}
		if r.Filters() {
			mode := r.Mode
			if mode == config.ModeInherit {
				mode = info.ModeFor(problem.StageFilter)
			}
			f, err := newFilterStage(cfg, rt, mode, deps.Problems, deps.Metrics.FilterActions, deps.Metrics.SensitiveData)
			if err != nil {
				return nil, nil, err
			}
			resp.Stages = append(resp.Stages, spans.response("filter.response", f))
			filterView = spans.stage("filter.request", f.middleware)
		}
	}
	h := spans.upstream(rt.Method, rt.Upstream, up.Handler(rt.Name, resp))
	if objects != nil {
		h = spans.stage("authz.objects", objects.Middleware)(h)
	}
	if validateRequest != nil {
		h = spans.stage("validate.request", validateRequest)(h)
	}
	// Outside validation and the rules, so that a blocked key is refused
	// before either, and after them all (response rules included) to
	// count the request's denial.
	if e := authz.Enumerate(rt, authz.Deps{Problems: deps.Problems, Detector: deps.Enumeration,
		Log: deps.Log.Named("authz"), Enumerations: deps.Metrics.Enumerations,
		EnumerationBlocks: deps.Metrics.EnumerationBlocks}); e != nil {
		h = spans.stage("authz.enumeration", e.Middleware)(h)
	}
	h = edge.BodyLimit(limit, deps.Problems)(h)
	h = edge.Upgrade(rt.WebSocket, deps.Problems)(h)
	if filterView != nil {
		h = filterView(h)
	}
	h = spans.stage("authz.require", authz.Require(rt, deps.Problems))(h)
	h = spans.stage("ratelimit.route", limiter.Route(rt))(h)
	authenticate, err := set.Stage(rt)
	if err != nil {
		return nil, nil, err
	}
	h = spans.stage("authn", authenticate)(h)
	var cors *edge.CORS
	if rt.CORS != nil {
		if cors, err = edge.NewCORS(*rt.CORS, rt.Method, deps.Problems); err != nil {
			return nil, nil, fmt.Errorf("cors: %w", err)
		}
		h = spans.stage("edge.cors", cors.Middleware)(h)
	}
	return bindRoute(info, h), cors, nil
}

// bindRoute records the matched route on the request record, so every
// later stage, the denial writer, metrics and the audit event see it.
func bindRoute(info *exchange.Route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := exchange.From(r.Context()); rec != nil {
			rec.Route = info
		}
		next.ServeHTTP(w, r)
	})
}

// stripHeaders is the canonical names of the response headers a route
// removes: the fingerprint headers of response.strip_headers and the
// route's own response.headers.remove.
func stripHeaders(cfg *config.Config, rt config.Route) []string {
	var names []string
	for _, h := range cfg.Response.StripHeaders {
		names = append(names, http.CanonicalHeaderKey(h))
	}
	if rt.Response != nil {
		for _, h := range rt.Response.Headers.Remove {
			names = append(names, http.CanonicalHeaderKey(h))
		}
	}
	return names
}
