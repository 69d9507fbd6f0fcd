// Package gateway assembles Bulwark from a loaded config: it compiles the
// edge, the router and one chain per route into a Handler, and runs the
// listeners (public, redirect, admin), certificate reloading, config reload
// and graceful shutdown around it.
//
// A Handler is built completely before it serves: a config that fails to
// compile never replaces the running one. Reload swaps Handlers atomically;
// requests in flight finish on the Handler they started on.
package gateway

import (
	"fmt"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/authn"
	"github.com/bulwark-gateway/bulwark/internal/authz"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/edge"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/inventory"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/proxy"
	"github.com/bulwark-gateway/bulwark/internal/ratelimit"
	"github.com/bulwark-gateway/bulwark/internal/tracing"
)

// Deps is what building a Handler needs besides the config. The same Deps
// serve every reload, so metrics keep counting into the same series.
type Deps struct {
	Log      *zap.Logger
	Metrics  *metrics.Metrics
	Problems *problem.Writer
	// Authn keeps authenticators across reloads; nil builds them afresh
	// (bulwark validate, tests).
	Authn *authn.Registry
	// RateStore counts rate limits across reloads; nil gives the Handler
	// a local store of its own (bulwark validate, tests).
	RateStore ratelimit.Store
	// Inventory counts the requests of spec operations across reloads;
	// nil gives the Handler a registry of its own (bulwark validate,
	// tests).
	Inventory *inventory.Registry
	// Undocumented records requests to a spec-validated upstream that
	// match no operation (routes_from_spec); nil means Inventory.
	Undocumented interface{ Undocumented(upstream, path string) }
	// Enumeration holds the enumeration detection state (counts and
	// blocks) across reloads; nil gives the Handler one of its own
	// (bulwark validate, tests).
	Enumeration *authz.Detector
	// Tracer records the stage spans of every route's chain; nil (tracing
	// off) builds chains without span wrappers.
	Tracer *tracing.Tracer

	// catalog is the inventory catalog of the config being built: routes
	// attach to its operations (set by Build).
	catalog *inventory.Catalog
	// policies are the clients of the config's policy decision points
	// (set by Build).
	policies map[string]*authz.Policy
}

// Handler is one compiled config: edge, router and route chains. It is safe
// for concurrent use and immutable once built.
type Handler struct {
	cfg       *config.Config
	root      http.Handler
	upstreams map[string]*proxy.Upstream
	authn     *authn.Set
	ownStore  ratelimit.Store // closed with the Handler; nil when shared
	policies  map[string]*authz.Policy
	catalog   *inventory.Catalog
}

var _ http.Handler = (*Handler)(nil)

// Build compiles cfg into a Handler. Everything that can fail (TLS files of
// upstreams, CORS policies, route patterns) fails here, never per request.
func Build(cfg *config.Config, deps Deps) (*Handler, error) {
	h := &Handler{cfg: cfg, upstreams: make(map[string]*proxy.Upstream, len(cfg.Upstreams))}
	if deps.Authn == nil {
		deps.Authn = authn.NewRegistry(deps.Log.Named("authn"), deps.Metrics.JWKSRefresh)
	}
	if deps.RateStore == nil {
		h.ownStore = ratelimit.NewLocal(cfg.RateLimits.MaxKeys, nil)
		deps.RateStore = h.ownStore
	}
	if deps.Inventory == nil {
		deps.Inventory = inventory.New(inventory.Options{Undocumented: deps.Metrics.Undocumented})
	}
	if deps.Undocumented == nil {
		deps.Undocumented = deps.Inventory
	}
	if deps.Enumeration == nil {
		deps.Enumeration = authz.NewDetector(authz.DefaultEnumerationKeys)
	}
	h.catalog = deps.Inventory.Catalog(cfg)
	deps.catalog = h.catalog
	edgeMode := cfg.RateLimits.Mode
	if edgeMode == config.ModeInherit {
		edgeMode = cfg.Mode
	}
	limiter, err := ratelimit.New(cfg.RateLimits, ratelimit.Deps{
		EdgeMode:  edgeMode,
		Log:       deps.Log.Named("ratelimit"),
		Problems:  deps.Problems,
		Store:     deps.RateStore,
		Decisions: deps.Metrics.RateLimitDecisions,
		Lockouts:  deps.Metrics.Lockouts,
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	opts := authn.Options{Problems: deps.Problems, Attempts: deps.Metrics.AuthAttempts}
	if lo := limiter.Lockout(); lo != nil {
		opts.Lockout = lo
	}
	set, err := deps.Authn.Build(cfg, opts)
	if err != nil {
		h.Close()
		return nil, err
	}
	h.authn = set
	for _, name := range sortedKeys(cfg.Upstreams) {
		u, err := proxy.NewUpstream(name, cfg.Upstreams[name], proxy.Deps{
			Log:      deps.Log.Named("proxy"),
			Problems: deps.Problems,
			Duration: deps.Metrics.UpstreamDuration,
			// The span of the upstream call is the upstream's parent.
			Traceparent: upstreamTraceparent(deps.Tracer),
		})
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("upstream %q: %w", name, err)
		}
		h.upstreams[name] = u
	}
	h.policies = make(map[string]*authz.Policy, len(cfg.Policies))
	for _, name := range sortedKeys(cfg.Policies) {
		p, err := authz.NewPolicy(name, cfg.Policies[name], authz.PolicyMetrics{Duration: deps.Metrics.PolicyDuration,
			Errors: deps.Metrics.PolicyErrors, CacheHits: deps.Metrics.PolicyCacheHits}, deps.Log.Named("authz"))
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("policy %q: %w", name, err)
		}
		h.policies[name] = p
	}
	deps.policies = h.policies
	table, err := newRouteTable(cfg, h.upstreams, set, limiter, deps)
	if err != nil {
		h.Close()
		return nil, err
	}
	edgeMW, err := edge.New(cfg.Server, edge.Deps{Log: deps.Log.Named("edge"), Problems: deps.Problems})
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	h.root = edgeMW(afterEdge(deps.Tracer, limiter.Edge, table))
	return h, nil
}

// ServeHTTP runs the request through the edge, the router and the matched
// route's chain. The request must carry an exchange.Record (see observe).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.root.ServeHTTP(w, r)
}

// Config returns the config the Handler was built from.
func (h *Handler) Config() *config.Config { return h.cfg }

// Catalog returns the Handler's inventory catalog: its specs' operations
// and the routes that validate against them.
func (h *Handler) Catalog() *inventory.Catalog { return h.catalog }

// Ready returns "" when the Handler can decide every request (its
// authenticators have loaded their keys), else why not.
func (h *Handler) Ready() string { return h.authn.Ready() }

// Close releases the idle upstream connections and the authenticators of a
// Handler that no longer serves. Requests still in flight on it keep
// working.
func (h *Handler) Close() {
	for _, u := range h.upstreams {
		u.Close()
	}
	for _, p := range h.policies {
		p.Close()
	}
	h.authn.Close()
	if h.ownStore != nil {
		_ = h.ownStore.Close() // a local store: nothing can fail
	}
}

// routeInfo builds the request record's view of a configured route.
func routeInfo(cfg *config.Config, rt config.Route) *exchange.Route {
	mode := rt.Mode
	if mode == config.ModeInherit {
		mode = cfg.Mode
	}
	info := &exchange.Route{Name: rt.Name, Upstream: rt.Upstream, Mode: mode}
	if rt.Authn != nil && rt.Authn.Mode != config.ModeInherit {
		info.StageModes = map[string]config.Mode{problem.StageAuthn: rt.Authn.Mode}
	}
	if m := cfg.RateLimits.Mode; m != config.ModeInherit {
		if info.StageModes == nil {
			info.StageModes = map[string]config.Mode{}
		}
		info.StageModes[problem.StageRateLimit] = m
	}
	return info
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
