package authz

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-gateway/bulwark/internal/authz/rules"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/proxy"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// ResponseRules is a route's compiled authorize.response_rules: the
// response stage that checks the upstream's 2xx JSON answers
// (docs/authorization.md, "Response rules"). It is immutable and safe
// for concurrent use.
type ResponseRules struct {
	rules      []responseRule
	params     []string
	denyStatus int
	mode       config.Mode
	problems   *problem.Writer
}

type responseRule struct {
	name string
	set  *rules.Set
	// items is the path to the array whose elements the rule checks, its
	// member names in order ([] for $); nil for a rule over the body.
	items []string
	// counts are the allow, deny, error and dropped counters.
	counts [4]prometheus.Counter
}

// The result the response rules add to bulwark_authz_decisions_total: an
// element an item rule dropped.
const resultDropped = resultError + 1

var _ proxy.ResponseStage = (*ResponseRules)(nil)

// errNoArray is an item rule's path that does not lead to an array.
var errNoArray = errors.New("the items path does not lead to an array")

// Respond compiles the route's response rules; nil, nil when it has none.
func Respond(rt config.Route, deps Deps) (*ResponseRules, error) {
	a := rt.Authorize
	if a == nil || len(a.ResponseRules) == 0 {
		return nil, nil
	}
	s := &ResponseRules{params: config.PathParams(rt.Path), denyStatus: a.DenyStatus, mode: a.Mode, problems: deps.Problems}
	for _, r := range a.ResponseRules {
		set, err := rules.CompileResponse([]rules.Rule{{Name: r.Name, Expr: r.Expr}})
		if err != nil {
			return nil, fmt.Errorf("authorize: response_rules: %w", err)
		}
		rr := responseRule{name: r.Name, set: set}
		if r.Items != "" {
			rr.items = []string{}
			if rest, ok := strings.CutPrefix(r.Items, "$."); ok {
				rr.items = strings.Split(rest, ".")
			}
		}
		for i, result := range []string{"allow", "deny", "error", "dropped"} {
			rr.counts[i] = deps.Decisions.WithLabelValues(rt.Name, r.Name, result)
		}
		s.rules = append(s.rules, rr)
	}
	return s, nil
}

// Respond checks a 2xx response: a rule over the body that does not hold
// (or cannot be evaluated) replaces it with the denial; an item rule
// drops the elements that do not hold. A 2xx body that is not JSON fails
// closed. In report mode the response passes unchanged and the audit
// event records the denial that enforcing would have made.
func (s *ResponseRules) Respond(r *http.Request, resp *proxy.Response) error {
	if resp.Status < 200 || resp.Status > 299 || len(resp.Body) == 0 {
		return nil
	}
	// Who asked decides what comes back: a shared cache must not hand one
	// principal's answer to another.
	proxy.Private(resp.Header)
	if !validate.IsJSON(resp.Header.Get("Content-Type")) {
		return s.unchecked(r, "non_json")
	}
	body, err := validate.DecodeJSON(resp.Body)
	if err != nil {
		return s.unchecked(r, "invalid_json")
	}
	rec := exchange.From(r.Context())
	if rec == nil {
		rec = &exchange.Record{}
	}
	report := s.mode == config.ModeReport ||
		s.mode == config.ModeInherit && rec.Route != nil && rec.Route.ModeFor(problem.StageAuthz) == config.ModeReport
	in := requestInput(r, rec, s.params)
	in.Response = &rules.Response{Status: resp.Status, Body: rules.Numbers(body), HasBody: true}
	for i := range s.rules {
		rule := &s.rules[i]
		if rule.items == nil {
			res, err := rule.set.Evaluate(&in)
			switch {
			case err != nil || res.Err != nil:
				rule.counts[resultError].Inc()
			case !res.Allowed():
				rule.counts[resultDeny].Inc()
			default:
				rule.counts[resultAllow].Inc()
				continue
			}
			if err := s.deny(r, rule.name); err != nil {
				return err
			}
			continue
		}
		out, dropped, err := keepItems(resp.Body, rule.items, func(raw []byte) bool {
			item, err := validate.DecodeJSON(raw)
			if err != nil {
				return false
			}
			in.Response.Item, in.Response.HasItem = rules.Numbers(item), true
			res, err := rule.set.Evaluate(&in)
			return err == nil && res.Allowed()
		})
		in.Response.Item, in.Response.HasItem = nil, false
		if err != nil {
			rule.counts[resultError].Inc()
			if err := s.deny(r, rule.name); err != nil {
				return err
			}
			continue
		}
		if dropped == 0 {
			rule.counts[resultAllow].Inc()
			continue
		}
		rule.counts[resultDropped].Add(float64(dropped))
		if report {
			// The elements stay; the audit event records what enforcing
			// would have done. Enforced, dropping is no denial: the
			// request was answered, with fewer elements.
			s.problems.Decide(r, s.forbidden(rule.name))
			continue
		}
		resp.SetBody(out)
	}
	return nil
}

// forbidden is the denial that names rule.
func (s *ResponseRules) forbidden(rule string) problem.Problem {
	p := problem.ObjectForbidden(rule, s.denyStatus)
	p.Mode = s.mode
	return p
}

// deny decides the denial of rule; enforced, it returns the refusal that
// replaces the response (the upstream's body never reaches the client).
func (s *ResponseRules) deny(r *http.Request, rule string) error {
	p := s.forbidden(rule)
	if !s.problems.Decide(r, p) {
		return nil
	}
	return &proxy.Refusal{Problem: p}
}

// unchecked fails closed on a 2xx body the rules cannot read.
func (s *ResponseRules) unchecked(r *http.Request, reason string) error {
	p := problem.ResponseNotFiltered(reason)
	p.Stage, p.OWASP, p.NIST, p.Mode = problem.StageAuthz, "API1:2023", []string{"AC-3", "AC-6"}, s.mode
	if !s.problems.Decide(r, p) {
		return nil
	}
	return &proxy.Refusal{Problem: p}
}

// keepItems walks body (valid JSON) to the array at path and calls keep
// on each element's raw value in order. It returns body with the elements
// keep refused cut out, and how many there were; everything else, key
// order and number text included, is copied through byte for byte.
func keepItems(body []byte, path []string, keep func(raw []byte) bool) ([]byte, int, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	for _, name := range path {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, 0, err
		}
		if tok.Kind() != '{' {
			return nil, 0, errNoArray
		}
		for {
			if dec.PeekKind() == '}' {
				return nil, 0, errNoArray
			}
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, 0, err
			}
			if tok.String() == name {
				break
			}
			if err := dec.SkipValue(); err != nil {
				return nil, 0, err
			}
		}
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, 0, err
	}
	if tok.Kind() != '[' {
		return nil, 0, errNoArray
	}
	start := dec.InputOffset()
	out := append(make([]byte, 0, len(body)), body[:start]...)
	last, kept, dropped := start, 0, 0
	for dec.PeekKind() != ']' {
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, 0, err
		}
		if keep(raw) {
			if kept > 0 {
				out = append(out, ',')
			}
			out = append(out, raw...)
			kept++
		} else {
			dropped++
		}
		last = dec.InputOffset()
	}
	return append(out, body[last:]...), dropped, nil
}
