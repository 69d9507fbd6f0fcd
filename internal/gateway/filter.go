package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/filter"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/proxy"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// filterStage is a route's response filtering: the response side
// (Respond) rewrites JSON bodies through the program of the principal's
// view; the request side (ServeHTTP) refuses, before the upstream is
// asked, a principal that no view and no default allow-list covers.
type filterStage struct {
	route    string
	views    []view
	fallback *filter.Program // the route's own rules; nil: views only, none matching is denied
	block    bool            // detect: block
	nonJSON  bool            // non_json: pass
	mode     config.Mode
	problems *problem.Writer
	removed  prometheus.Counter
	masked   prometheus.Counter
	blocked  prometheus.Counter
	failed   prometheus.Counter
	passed   prometheus.Counter
	found    *prometheus.CounterVec // kind, curried with the route
}

type view struct {
	roles, scopes []string
	program       *filter.Program
}

var _ proxy.ResponseStage = (*filterStage)(nil)

// newFilterStage compiles a route's response rules: one program per view,
// each with the route's deny, mask, preset and detect rules, and one for
// the route's own allow-list.
func newFilterStage(cfg *config.Config, rt config.Route, mode config.Mode, pw *problem.Writer, actions, found *prometheus.CounterVec) (*filterStage, error) {
	r := rt.Response
	key := []byte(cfg.Response.HashKey)
	base := filter.Rules{Deny: r.Deny, Mask: r.Mask, Preset: r.Preset, Detect: r.Detect != "off"}
	f := &filterStage{
		route: rt.Name, block: r.Detect == "block", nonJSON: r.NonJSON == "pass", mode: mode, problems: pw,
		removed: actions.WithLabelValues(rt.Name, "removed"),
		masked:  actions.WithLabelValues(rt.Name, "masked"),
		blocked: actions.WithLabelValues(rt.Name, "blocked"),
		failed:  actions.WithLabelValues(rt.Name, "failed"),
		passed:  actions.WithLabelValues(rt.Name, "passed"),
		found:   found.MustCurryWith(prometheus.Labels{"route": rt.Name}),
	}
	for i, v := range r.Views {
		rules := base
		rules.Allow = v.Allow
		p, err := filter.Compile(rules, key)
		if err != nil {
			return nil, fmt.Errorf("response.views[%d]: %w", i, err)
		}
		f.views = append(f.views, view{roles: v.When.Roles, scopes: v.When.Scopes, program: p})
	}
	if len(r.Views) == 0 || len(r.Allow) > 0 {
		rules := base
		rules.Allow = r.Allow
		p, err := filter.Compile(rules, key)
		if err != nil {
			return nil, fmt.Errorf("response: %w", err)
		}
		f.fallback = p
	}
	return f, nil
}

// program returns the program for the request's principal: the first
// view whose roles or scopes it holds, else the route's own rules (nil
// when there are none).
func (f *filterStage) program(r *http.Request) *filter.Program {
	if len(f.views) > 0 {
		if rec := exchange.From(r.Context()); rec != nil && rec.Principal != nil {
			p := rec.Principal
			for _, v := range f.views {
				if v.matches(p) {
					return v.program
				}
			}
		}
	}
	return f.fallback
}

// matches: any one of the roles, and any one of the scopes (a list left
// out of the condition is no constraint).
func (v *view) matches(p *exchange.Principal) bool {
	anyOf := func(want, have []string) bool {
		if len(want) == 0 {
			return true
		}
		for _, w := range want {
			if slices.Contains(have, w) {
				return true
			}
		}
		return false
	}
	return anyOf(v.roles, p.Roles) && anyOf(v.scopes, p.Scopes)
}

// middleware is the request side: with views and no default, a principal
// without a view is refused before the upstream is asked.
func (f *filterStage) middleware(next http.Handler) http.Handler {
	if f.fallback != nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.program(r) == nil && f.problems.Deny(w, r, f.withMode(problem.NoView())) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *filterStage) withMode(p problem.Problem) problem.Problem {
	p.Mode = f.mode
	return p
}

// Respond filters a JSON body in place. A body that cannot be filtered
// (not JSON, invalid JSON, too deep) fails closed unless non_json: pass
// lets a non-JSON one through; in report mode the body passes unchanged
// and the audit event records what filtering would have done.
func (f *filterStage) Respond(r *http.Request, resp *proxy.Response) error {
	prog := f.program(r)
	if prog == nil { // report mode let a principal without a view through
		return nil
	}
	if len(resp.Body) == 0 {
		return nil // nothing to filter, nothing that could leak
	}
	if !validate.IsJSON(resp.Header.Get("Content-Type")) {
		if f.nonJSON {
			f.passed.Inc()
			return nil
		}
		return f.refuse(r, problem.ResponseNotFiltered("non_json"))
	}
	out, rep, err := prog.Apply(make([]byte, 0, len(resp.Body)), resp.Body)
	if err != nil {
		reason := "invalid_json"
		if errors.Is(err, filter.ErrTooDeep) {
			reason = "too_deep"
		}
		return f.refuse(r, problem.ResponseNotFiltered(reason))
	}
	f.removed.Add(float64(rep.Removals))
	f.masked.Add(float64(rep.Masks))
	for _, d := range rep.Findings {
		f.found.WithLabelValues(d.Kind).Inc()
	}
	if len(rep.Removed)+len(rep.Masked)+len(rep.Findings) > 0 {
		if rec := exchange.From(r.Context()); rec != nil {
			facts := &exchange.Filtered{Removed: rep.Removed, Masked: rep.Masked}
			for _, d := range rep.Findings {
				facts.Detected = append(facts.Detected, exchange.Finding{Kind: d.Kind, Path: d.Path})
			}
			rec.Filtered = facts
		}
	}
	if f.block && len(rep.Findings) > 0 {
		if err := f.refuse(r, problem.SensitiveData()); err != nil {
			f.blocked.Inc()
			return err
		}
	}
	if f.mode != config.ModeReport {
		resp.SetBody(out)
		if len(f.views) > 0 {
			proxy.Private(resp.Header)
		}
	}
	return nil
}

// refuse decides p; enforced, it returns the refusal that replaces the
// response.
func (f *filterStage) refuse(r *http.Request, p problem.Problem) error {
	if p.Reason != "sensitive_data" {
		f.failed.Inc()
	}
	if !f.problems.Decide(r, f.withMode(p)) {
		return nil
	}
	return &proxy.Refusal{Problem: p}
}
