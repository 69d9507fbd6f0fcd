package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// Principal is what a rule sees of the caller.
type Principal struct {
	Sub, Consumer string
	Scopes, Roles []string
	Claims        map[string]any
}

// Input is what one evaluation reads. Path holds the route's path
// parameters (decoded); Query and Header are the request's own. Body is
// the JSON body as validate.DecodeJSON returns it, valid when HasBody;
// Evaluate converts its json.Number values in place (see Numbers).
type Input struct {
	// Principal is nil when the request has none (a public route, or
	// authentication in report mode let it through): a rule that reads
	// principal.* then cannot be evaluated, and denies.
	Principal *Principal
	Method    string
	Path      map[string]string
	Query     url.Values
	Header    http.Header
	Body      any
	HasBody   bool
	// Response is what a response rule reads; nil for request rules.
	Response *Response
}

// Response is the upstream's answer as a response rule sees it: the
// status, the JSON body (as validate.DecodeJSON returns it, converted
// with Numbers) and, for a rule over an array, the element at hand.
type Response struct {
	Status  int
	Body    any
	HasBody bool
	Item    any
	HasItem bool
}

// Result is the outcome of one evaluation. Failed is the index of the
// rule that did not hold (-1 when all held); Err is set when that rule
// could not be evaluated (a missing field, a wrong type, over the cost
// limit), which denies too.
type Result struct {
	Failed int
	Err    error
}

// Allowed reports whether every rule held.
func (r Result) Allowed() bool { return r.Failed < 0 }

// PollutionError is a query parameter or header that a rule reads and
// that the request carries more than once: the rule and the upstream
// could read different values.
type PollutionError struct {
	Kind string // "query" or "header"
	Name string
}

func (e *PollutionError) Error() string {
	return fmt.Sprintf("%s %q is repeated", e.Kind, e.Name)
}

// ErrNoBody is the evaluation error of a rule that reads request.body on
// a request without a JSON body.
var ErrNoBody = errors.New("rules: the request has no JSON body")

// Evaluate runs the rules in order and stops at the first that does not
// hold. It returns a *PollutionError, before any rule runs, when a
// parameter or header the rules read is repeated. Safe for concurrent use.
func (s *Set) Evaluate(in *Input) (Result, error) {
	act := &activation{in: in}
	var err error
	if s.query.used {
		if act.query, err = pick("query", in.Query, s.query, same); err != nil {
			return Result{}, err
		}
	}
	if s.headers.used {
		if act.headers, err = pick("header", url.Values(in.Header), s.headers, http.CanonicalHeaderKey); err != nil {
			return Result{}, err
		}
	}
	if s.body && in.HasBody {
		in.Body = Numbers(in.Body)
	}
	for i, r := range s.rules {
		out, _, err := r.prg.Eval(act)
		if err != nil {
			return Result{Failed: i, Err: err}, nil
		}
		if b, ok := out.(types.Bool); !ok || !bool(b) {
			if !ok {
				return Result{Failed: i, Err: fmt.Errorf("rule %q did not evaluate to bool", r.name)}, nil
			}
			return Result{Failed: i}, nil
		}
	}
	return Result{Failed: -1}, nil
}

// pick builds the map a rule reads: the named entries only, or all of
// them, each of which must appear once. key maps a rule's name to the
// name in values (headers are stored canonical, read lower-case).
func pick(kind string, values url.Values, r refs, key func(string) string) (map[string]string, error) {
	if r.all {
		m := make(map[string]string, len(values))
		for name, vs := range values {
			if len(vs) > 1 {
				return nil, &PollutionError{Kind: kind, Name: strings.ToLower(name)}
			}
			if kind == "header" {
				name = strings.ToLower(name)
			}
			if len(vs) == 1 {
				m[name] = vs[0]
			}
		}
		return m, nil
	}
	m := make(map[string]string, len(r.names))
	for _, name := range r.names {
		vs := values[key(name)]
		if len(vs) > 1 {
			return nil, &PollutionError{Kind: kind, Name: name}
		}
		if len(vs) == 1 {
			m[name] = vs[0]
		}
	}
	return m, nil
}

func same(s string) string { return s }

// activation resolves the variables from the Input without building
// anything a rule does not read.
type activation struct {
	in             *Input
	query, headers map[string]string
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	in := a.in
	switch name {
	case VarMethod:
		return in.Method, true
	case VarPath:
		return in.Path, true
	case VarQuery:
		return a.query, a.query != nil
	case VarHeaders:
		return a.headers, a.headers != nil
	case VarBody:
		return in.Body, in.HasBody
	case VarResponseStatus:
		if in.Response == nil {
			return nil, false
		}
		return int64(in.Response.Status), true
	case VarResponseBody:
		if in.Response == nil {
			return nil, false
		}
		return in.Response.Body, in.Response.HasBody
	case VarResponseItem:
		if in.Response == nil {
			return nil, false
		}
		return in.Response.Item, in.Response.HasItem
	}
	p := in.Principal
	if p == nil {
		return nil, false
	}
	switch name {
	case VarSub:
		return p.Sub, true
	case VarConsumer:
		return p.Consumer, true
	case VarScopes:
		return strs(p.Scopes), true
	case VarRoles:
		return strs(p.Roles), true
	case VarClaims:
		if p.Claims == nil {
			return map[string]any{}, true
		}
		return p.Claims, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// strs gives a rule an empty list rather than null for a nil slice.
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Numbers converts the json.Number values of a decoded JSON value in
// place, so that CEL compares them as numbers: an integer that fits in
// int64 becomes int, any other number double (CEL compares int and double
// by value, so 2 == 2.0 holds). It returns the converted value.
func Numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		// Out of double's range, ParseFloat gives ±Inf with ErrRange: it
		// then compares as infinite, never as some other number.
		f, _ := strconv.ParseFloat(string(v), 64)
		return f
	case map[string]any:
		for k, e := range v {
			switch e.(type) {
			case json.Number, map[string]any, []any:
				v[k] = Numbers(e)
			}
		}
	case []any:
		for i, e := range v {
			switch e.(type) {
			case json.Number, map[string]any, []any:
				v[i] = Numbers(e)
			}
		}
	}
	return v
}
