// Package exchange holds the request-scoped record that every stage of the
// chain reads and writes: who the client is, which route matched, what was
// decided and what the upstream answered. It is created once per request by
// the outermost handler and carried in the request context.
package exchange

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// Route is what the record knows about the matched route. It is built once
// per route when the config is compiled and shared read-only by requests.
type Route struct {
	// Name is the configured route name (a bounded metric label).
	Name string
	// Upstream is the configured upstream name.
	Upstream string
	// Mode is the route's effective mode (route, else top level).
	Mode config.Mode
	// StageModes holds per-stage overrides of Mode, keyed by stage name;
	// nil when no stage section sets a mode.
	StageModes map[string]config.Mode
}

// ModeFor returns the effective mode of stage on this route: the stage's own
// section wins over the route, which wins over the top level.
func (rt *Route) ModeFor(stage string) config.Mode {
	if m, ok := rt.StageModes[stage]; ok && m != config.ModeInherit {
		return m
	}
	if rt.Mode == config.ModeInherit {
		return config.ModeEnforce
	}
	return rt.Mode
}

// Decision is the outcome of one stage that denied (or would have denied,
// in report mode).
type Decision struct {
	Stage  string
	Reason string
	Rule   string
	Status int
	// OWASP is the OWASP API Security 2023 id of the threat (API2:2023);
	// NIST the NIST SP 800-53 controls. Empty when no threat row applies.
	OWASP string
	NIST  []string
	Mode  config.Mode
}

// Record is the per-request record. Its fields are written by the stages of
// one request, which run one after another on the request's goroutine, so
// they need no lock; the decisions are the exception (a body limit can be
// crossed on the proxy transport's goroutine) and are reached only through
// Decide and Decisions.
type Record struct {
	// RequestID is the id returned in X-Request-Id and sent upstream.
	RequestID string
	// TraceID is the W3C trace id of the request, 32 lower-case hex
	// digits: the one of a valid incoming traceparent header, else a new
	// one the edge started. "" only before the edge ran.
	TraceID string
	// ClientIP is the client address: the socket peer, or the right-most
	// untrusted X-Forwarded-For hop when the peer is a trusted proxy.
	ClientIP netip.Addr
	// Start is when the gateway began handling the request.
	Start time.Time
	// TLS reports whether the request arrived over TLS.
	TLS bool
	// Route is the matched route; nil until routing matched one.
	Route *Route
	// Principal is who the authentication stage verified; nil on a public
	// route, before authentication, or when report mode let an
	// unauthenticated request through.
	Principal *Principal
	mu        sync.Mutex
	denied    *Decision  // the first enforced denial
	wouldDeny []Decision // the denials that report mode let through
	// Body is the request's JSON body, decoded once under the JSON limits
	// (validate.DecodeJSON: maps, slices, strings, bools, nil and
	// json.Number, which object-level rules convert in place to int64 or
	// float64) by the first stage that needs it; valid when BodyRead.
	// BodyRead false means no stage decoded it (no JSON body, or none
	// needed it).
	Body     any
	BodyRead bool
	// UpstreamStatus is the upstream's status code; 0 when the upstream
	// was not reached.
	UpstreamStatus int
	// Filtered is what response filtering did to the body (or would have
	// done, in report mode); nil when the route does not filter or the
	// response had no body to filter.
	Filtered *Filtered
	// Lockout is what the rate-limit stages and the authentication stage
	// pass each other about the auth-failure lockout, so that each lock
	// is read in the same store call as the limits of one rate-limit
	// stage (internal/ratelimit).
	Lockout Lockout
}

// Lockout is the auth-failure lockout state of one request.
type Lockout struct {
	// IPRead reports that the rate-limit stage before routing read the
	// lock of ClientIP: IPLocked, for IPLeft more.
	IPRead   bool
	IPLocked bool
	IPLeft   time.Duration
	// Credential is a credential the authentication stage verified, whose
	// lock the rate-limit stage after authentication reads; "" for none.
	Credential string
}

// Filtered records what response filtering removed, masked and found:
// paths with array indices written [*], never values.
type Filtered struct {
	Removed  []string
	Masked   []string
	Detected []Finding
}

// Finding is a sensitive-looking value found in a response: its kind
// (card_number, jwt, private_key, secret) and path.
type Finding struct {
	Kind string
	Path string
}

// Decide records d: as the request's denial when d.Mode is enforce (the
// first one wins), else as a would-deny. Safe for concurrent use.
func (r *Record) Decide(d Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.Mode == config.ModeReport {
		r.wouldDeny = append(r.wouldDeny, d)
		return
	}
	if r.denied == nil {
		r.denied = &d
	}
}

// Decisions returns the enforced denial (nil when none) and the report-mode
// would-denies. Safe for concurrent use; the slice must not be modified.
func (r *Record) Decisions() (denied *Decision, wouldDeny []Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.denied, r.wouldDeny
}

type ctxKey struct{}

// Key returns the context key under which a Record is stored, for a context
// type of the gateway's own that carries the record without an extra
// context.WithValue layer. Use With everywhere else.
func Key() any { return ctxKey{} }

// With returns a context carrying rec.
func With(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, ctxKey{}, rec)
}

// From returns the record of the request whose context is ctx, or nil when
// the request did not pass the gateway's outermost handler (only in tests).
func From(ctx context.Context) *Record {
	rec, _ := ctx.Value(ctxKey{}).(*Record)
	return rec
}

// RouteName returns the matched route's name, or Unmatched.
func (r *Record) RouteName() string {
	if r == nil || r.Route == nil {
		return Unmatched
	}
	return r.Route.Name
}

// Unmatched is the route label of requests that matched no route.
const Unmatched = "_unmatched"
