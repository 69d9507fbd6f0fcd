package authz

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/authz/rules"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// Deps is what the object-level stage needs besides its route.
type Deps struct {
	Problems *problem.Writer
	// Decisions counts rule evaluations (labels route, rule, result).
	Decisions *prometheus.CounterVec
	// Limits are the JSON limits under which the stage reads a body that
	// no earlier stage decoded (a route without a validate section).
	Limits validate.Limits
	// Detector holds enumeration state across reloads; Log, Enumerations
	// and EnumerationBlocks (label route) serve enumeration detection
	// (Enumerate) only.
	Detector *Detector
	// Policies are the clients of the config's policies: section, by
	// name (authorize.policy).
	Policies          map[string]*Policy
	Log               *zap.Logger
	Enumerations      *prometheus.CounterVec
	EnumerationBlocks *prometheus.CounterVec
}

// ObjectRules is a route's compiled authorize section. It is immutable
// and safe for concurrent use.
type ObjectRules struct {
	set        *rules.Set // nil: writable fields only
	names      []string
	params     []string // the route's path parameter names
	denyStatus int
	mode       config.Mode // ModeInherit: the route's mode for authz
	limits     validate.Limits
	problems   *problem.Writer
	// counts[i] are rule i's allow, deny and error counters.
	counts [][3]prometheus.Counter
	// fields are the writable fields, by path; none: no check.
	fields []writable
	// policy is the route's policy decision point (nil: none), asked
	// last; policyRule ("policy:<name>") names it in denials and metrics,
	// policyCounts are its allow, deny and error counters.
	policy       *Policy
	policyRule   string
	policyCounts [3]prometheus.Counter
	route        policyRoute
	sortedParams []string // params, sorted, for the input document
}

// The results of bulwark_authz_decisions_total.
const (
	resultAllow = iota
	resultDeny
	resultError
)

// Authorize compiles the route's request side: its object-level rules
// (authorize.rules) and writable fields; nil, nil when the route has
// neither (response rules alone are a response stage, see Respond). The
// loader compiled the rules already, so an error here means a config that
// did not come through it.
func Authorize(rt config.Route, deps Deps) (*ObjectRules, error) {
	a := rt.Authorize
	if a == nil || len(a.Rules) == 0 && len(a.WritableFields) == 0 && a.Policy == "" {
		return nil, nil
	}
	o := &ObjectRules{params: config.PathParams(rt.Path), denyStatus: a.DenyStatus,
		mode: a.Mode, limits: deps.Limits, problems: deps.Problems, fields: compileWritable(a.WritableFields)}
	if a.Policy != "" {
		o.policy = deps.Policies[a.Policy]
		if o.policy == nil {
			return nil, fmt.Errorf("authorize: unknown policy %q", a.Policy)
		}
		o.policyRule = "policy:" + a.Policy
		o.route = policyRoute{Name: rt.Name, Path: rt.Path, Upstream: rt.Upstream}
		o.sortedParams = slices.Sorted(slices.Values(o.params))
		for i, result := range []string{"allow", "deny", "error"} {
			o.policyCounts[i] = deps.Decisions.WithLabelValues(rt.Name, o.policyRule, result)
		}
	}
	if len(a.Rules) > 0 {
		list := make([]rules.Rule, len(a.Rules))
		for i, r := range a.Rules {
			list[i] = rules.Rule{Name: r.Name, Expr: r.Expr}
		}
		set, err := rules.Compile(list)
		if err != nil {
			return nil, fmt.Errorf("authorize: %w", err)
		}
		o.set, o.names = set, set.Names()
	}
	for _, name := range o.names {
		o.counts = append(o.counts, [3]prometheus.Counter{
			deps.Decisions.WithLabelValues(rt.Name, name, "allow"),
			deps.Decisions.WithLabelValues(rt.Name, name, "deny"),
			deps.Decisions.WithLabelValues(rt.Name, name, "error"),
		})
	}
	return o, nil
}

// ReadsBody reports whether a rule reads request.body, the route has
// writable fields or its policy's input carries the body, so that request
// validation decodes the body.
func (o *ObjectRules) ReadsBody() bool {
	return o != nil && (len(o.fields) > 0 || o.set != nil && o.set.ReadsBody() || o.policy != nil && o.policy.input.Body)
}

// Middleware returns the stage around next.
func (o *ObjectRules) Middleware(next http.Handler) http.Handler {
	return &objectStage{ObjectRules: o, next: next}
}

type objectStage struct {
	*ObjectRules
	next http.Handler
}

var _ http.Handler = (*objectStage)(nil)

func (o *objectStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := exchange.From(r.Context())
	if rec == nil {
		rec = &exchange.Record{}
	}
	if o.ReadsBody() && !rec.BodyRead && !o.readBody(w, r, rec) {
		return
	}
	if o.set != nil && !o.evaluate(w, r, rec) {
		return
	}
	if len(o.fields) > 0 && !rec.BodyRead && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// A body that is not JSON cannot be checked field by field, and an
		// upstream that parses it anyway (many ignore the Content-Type)
		// would take a field the principal may not write: refused.
		p := problem.UnsupportedMediaType()
		p.Stage, p.Detail = problem.StageAuthz, "This route only accepts JSON request bodies: their fields are checked."
		p.Mode = o.mode
		if o.problems.Deny(w, r, p) {
			return
		}
	}
	if len(o.fields) > 0 && rec.BodyRead {
		if field := notWritable(o.fields, rec.Body, rec.Principal); field != "" {
			p := problem.FieldNotWritable(field)
			p.Mode = o.mode
			if o.problems.Deny(w, r, p) {
				return
			}
		}
	}
	if o.policy != nil && !o.askPolicy(w, r, rec) {
		return
	}
	o.next.ServeHTTP(w, r)
}

// evaluate runs the rules; false means it answered.
func (o *objectStage) evaluate(w http.ResponseWriter, r *http.Request, rec *exchange.Record) bool {
	in := requestInput(r, rec, o.params)
	res, err := o.set.Evaluate(&in)
	if err != nil {
		// A repeated parameter or header that a rule reads.
		o.problems.Deny(w, r, problem.ParameterPollution())
		return false
	}
	for i := range o.names {
		switch {
		case res.Allowed() || i < res.Failed:
			o.counts[i][resultAllow].Inc()
		case res.Err != nil:
			o.counts[i][resultError].Inc()
		default:
			o.counts[i][resultDeny].Inc()
		}
		if i == res.Failed {
			break
		}
	}
	if !res.Allowed() {
		p := problem.ObjectForbidden(o.names[res.Failed], o.denyStatus)
		p.Mode = o.mode
		if o.problems.Deny(w, r, p) {
			return false
		}
	}
	return true
}

// requestInput is what a rule reads of the request: the method, the
// route's path parameters (percent-decoded), the query, the headers, the
// decoded body and the principal.
func requestInput(r *http.Request, rec *exchange.Record, params []string) rules.Input {
	in := rules.Input{Method: r.Method, Header: r.Header, Body: rec.Body, HasBody: rec.BodyRead}
	if p := rec.Principal; p != nil {
		in.Principal = &rules.Principal{Sub: p.Subject, Consumer: p.Consumer, Scopes: p.Scopes, Roles: p.Roles, Claims: p.Claims}
	}
	in.Path = pathParams(r, params)
	if r.URL.RawQuery != "" {
		// A malformed pair is left out here, as url.Query does; a rule
		// that reads it then denies.
		in.Query, _ = url.ParseQuery(r.URL.RawQuery)
	}
	return in
}

// pathParams returns the values of the route's path parameters; nil when
// the route has none.
func pathParams(r *http.Request, params []string) map[string]string {
	if len(params) == 0 {
		return nil
	}
	values := make(map[string]string, len(params))
	for _, name := range params {
		values[name] = pathParam(r, name)
	}
	return values
}

// pathParam returns the value of the path parameter name, percent-decoded
// (as it is when it does not decode).
func pathParam(r *http.Request, name string) string {
	raw := ""
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		raw = rctx.URLParam(name)
	}
	if s, err := url.PathUnescape(raw); err == nil {
		raw = s
	}
	return raw
}

// readBody reads and decodes a JSON body that no earlier stage decoded,
// under the JSON limits (duplicate member names and invalid UTF-8
// refused), and puts the exact bytes back for the upstream. A request
// without a JSON body leaves rec.BodyRead false. False means it answered.
func (o *objectStage) readBody(w http.ResponseWriter, r *http.Request, rec *exchange.Record) bool {
	if r.Body == nil || r.Body == http.NoBody || !validate.IsJSON(r.Header.Get("Content-Type")) {
		return true
	}
	_, v, err := validate.ReadJSONBody(r, o.limits, true)
	if err != nil {
		o.problems.RefuseBody(w, r, err)
		return false
	}
	rec.Body, rec.BodyRead = v, true
	return true
}
