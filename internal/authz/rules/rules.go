// Package rules compiles and evaluates object-level authorization rules:
// named CEL expressions (cel.dev/cel-go) over the principal and the
// request, every one of which must hold (docs/authorization.md, "Object
// rules"), and response rules, which also read the upstream's answer
// ("Response rules"). It knows nothing of the config or the request record, so the
// config loader can compile rules at load and report a bad expression
// where it is written.
package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/interpreter"
)

// Variables are the names a rule can read, with their CEL types
// (docs/authorization.md, "CEL variables").
const (
	VarSub      = "principal.sub"      // string
	VarConsumer = "principal.consumer" // string
	VarScopes   = "principal.scopes"   // list(string)
	VarRoles    = "principal.roles"    // list(string)
	VarClaims   = "principal.claims"   // map(string, dyn)
	VarMethod   = "request.method"     // string
	VarPath     = "request.path"       // map(string, string)
	VarQuery    = "request.query"      // map(string, string)
	VarHeaders  = "request.headers"    // map(string, string), lower-case names
	VarBody     = "request.body"       // dyn: the JSON body

	// Response rules (CompileResponse) also read these.
	VarResponseStatus = "response.status" // int
	VarResponseBody   = "response.body"   // dyn: the upstream's JSON body
	VarResponseItem   = "response.item"   // dyn: one element of the rule's array
)

// CostLimit is the most a rule may cost in one evaluation (CEL's runtime
// cost units: about one per operation, plus the size of the strings and
// lists it walks). Over it, the evaluation stops with an error, which
// denies: a rule cannot be made expensive by a large body or header.
const CostLimit = 10_000

// maxExpr is the longest expression accepted, in code points.
const maxExpr = 4096

// Rule is one named expression.
type Rule struct {
	Name string
	Expr string
}

// CompileError is an expression that does not parse, type-check or
// evaluate to bool. Line and Col (1-based) are within the expression.
type CompileError struct {
	Rule      string
	Line, Col int
	Msg       string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("rule %q: %d:%d: %s", e.Rule, e.Line, e.Col, e.Msg)
}

// Set is a compiled rule list. It is safe for concurrent use.
type Set struct {
	rules []compiled
	// What the rules read, found in the checked expressions, so that a
	// request only builds what some rule needs.
	principal, body bool
	responseBody    bool
	item            bool
	query, headers  refs
}

type compiled struct {
	name string
	prg  cel.Program
}

// refs is the query parameters or headers the rules read: by name, or all
// of them when a rule reads the map as a whole (iterates it, indexes it
// with a computed key).
type refs struct {
	used  bool
	all   bool
	names []string
}

func (r *refs) add(name string) {
	r.used = true
	if !slices.Contains(r.names, name) {
		r.names = append(r.names, name)
	}
}

// newEnv declares the variables, with response.* for response rules.
// Dotted names are CEL qualified identifiers: request.path.userId
// type-checks as a string.
func newEnv(response bool) (*cel.Env, error) {
	strs := cel.ListType(cel.StringType)
	sm := cel.MapType(cel.StringType, cel.StringType)
	var opts []cel.EnvOption
	if response {
		opts = append(opts,
			cel.Variable(VarResponseStatus, cel.IntType),
			cel.Variable(VarResponseBody, cel.DynType),
			cel.Variable(VarResponseItem, cel.DynType),
		)
	}
	return cel.NewEnv(append(opts,
		cel.Variable(VarSub, cel.StringType),
		cel.Variable(VarConsumer, cel.StringType),
		cel.Variable(VarScopes, strs),
		cel.Variable(VarRoles, strs),
		cel.Variable(VarClaims, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(VarMethod, cel.StringType),
		cel.Variable(VarPath, sm),
		cel.Variable(VarQuery, sm),
		cel.Variable(VarHeaders, sm),
		cel.Variable(VarBody, cel.DynType),
		cel.ParserExpressionSizeLimit(maxExpr),
	)...)
}

// Compile parses and type-checks every rule. The error is a
// *CompileError for the first rule that fails.
func Compile(rules []Rule) (*Set, error) {
	return compileSet(rules, false)
}

// CompileResponse is Compile for response rules, which also read
// response.status, response.body and response.item (docs/
// authorization.md, "Response rules").
func CompileResponse(rules []Rule) (*Set, error) {
	return compileSet(rules, true)
}

func compileSet(rules []Rule, response bool) (*Set, error) {
	if len(rules) == 0 {
		return nil, errors.New("no rules")
	}
	env, err := newEnv(response)
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	s := &Set{}
	for _, r := range rules {
		c, err := s.compile(env, r)
		if err != nil {
			return nil, err
		}
		s.rules = append(s.rules, c)
	}
	return s, nil
}

func (s *Set) compile(env *cel.Env, r Rule) (compiled, error) {
	checked, iss := env.Compile(r.Expr)
	if iss.Err() != nil {
		e := &CompileError{Rule: r.Name, Line: 1, Col: 1, Msg: "invalid expression"}
		if errs := iss.Errors(); len(errs) > 0 {
			loc := errs[0].Location
			e.Line, e.Col, e.Msg = loc.Line(), loc.Column()+1, errs[0].Message
		}
		return compiled{}, e
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return compiled{}, &CompileError{Rule: r.Name, Line: 1, Col: 1,
			Msg: fmt.Sprintf("must evaluate to bool, not %s", checked.OutputType())}
	}
	if err := s.collect(r.Name, checked.NativeRep()); err != nil {
		return compiled{}, err
	}
	prg, err := env.Program(checked,
		cel.EvalOptions(cel.OptOptimize),
		cel.OptimizeRegex(interpreter.MatchesRegexOptimization),
		cel.CostLimit(CostLimit),
	)
	if err != nil {
		// A constant regular expression that does not compile, say.
		return compiled{}, &CompileError{Rule: r.Name, Line: 1, Col: 1, Msg: err.Error()}
	}
	return compiled{name: r.Name, prg: prg}, nil
}

// collect records what the checked expression reads: the principal, the
// body, and which query parameters and headers (a constant name in
// request.query.x, request.headers["x"], has(...) or "x" in ...; any
// other use of the map reads all of it).
func (s *Set) collect(rule string, a *ast.AST) error {
	refsByID := a.ReferenceMap()
	var bad error
	var visit func(e ast.NavigableExpr)
	visit = func(e ast.NavigableExpr) {
		if ref, ok := refsByID[e.ID()]; ok && ref.Value == nil && (e.Kind() == ast.IdentKind || e.Kind() == ast.SelectKind) {
			switch {
			case strings.HasPrefix(ref.Name, "principal."):
				s.principal = true
			case ref.Name == VarBody:
				s.body = true
			case ref.Name == VarResponseBody:
				s.responseBody = true
			case ref.Name == VarResponseItem:
				s.item = true
			case ref.Name == VarQuery:
				s.query.used = true
				if name, ok := constantKey(e); ok {
					s.query.add(name)
				} else {
					s.query.all = true
				}
			case ref.Name == VarHeaders:
				s.headers.used = true
				if name, ok := constantKey(e); ok {
					if name != strings.ToLower(name) && bad == nil {
						loc := a.SourceInfo().GetStartLocation(e.ID())
						bad = &CompileError{Rule: rule, Line: loc.Line(), Col: loc.Column() + 1,
							Msg: fmt.Sprintf("header names are lower-case in request.headers: write %q", strings.ToLower(name))}
					}
					s.headers.add(strings.ToLower(name))
				} else {
					s.headers.all = true
				}
			}
			return // a resolved name has no children to visit
		}
		for _, c := range e.Children() {
			visit(c)
		}
	}
	visit(ast.NavigateAST(a))
	return bad
}

// constantKey returns the constant key under which the map e is read by
// its parent: a field selection (also inside has()), an index with a
// string literal, or a string literal tested with in.
func constantKey(e ast.NavigableExpr) (string, bool) {
	p, ok := e.Parent()
	if !ok {
		return "", false
	}
	switch p.Kind() {
	case ast.SelectKind:
		return p.AsSelect().FieldName(), true
	case ast.CallKind:
		call := p.AsCall()
		args := call.Args()
		switch {
		case call.FunctionName() == "_[_]" && len(args) == 2 && args[0].ID() == e.ID():
			return stringLiteral(args[1])
		case call.FunctionName() == "@in" && len(args) == 2 && args[1].ID() == e.ID():
			return stringLiteral(args[0])
		}
	}
	return "", false
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().Value().(string)
	return s, ok
}

// ReadsPrincipal reports whether a rule reads principal.*.
func (s *Set) ReadsPrincipal() bool { return s.principal }

// ReadsBody reports whether a rule reads request.body.
func (s *Set) ReadsBody() bool { return s.body }

// ReadsResponseBody reports whether a rule reads response.body.
func (s *Set) ReadsResponseBody() bool { return s.responseBody }

// ReadsItem reports whether a rule reads response.item.
func (s *Set) ReadsItem() bool { return s.item }

// Names returns the rule names in order.
func (s *Set) Names() []string {
	names := make([]string, len(s.rules))
	for i, r := range s.rules {
		names[i] = r.name
	}
	return names
}
