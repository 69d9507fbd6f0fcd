package rules

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/validate"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want string
	}{
		{name: "syntax", expr: "request.path.userId ==", want: `rule "r": 1:23: Syntax error: mismatched input '<EOF>'`},
		{name: "undeclared", expr: "principal.name == 'x'", want: `rule "r": 1:10: undeclared reference to 'principal.name'`},
		{name: "second line", expr: "true &&\n  nope", want: `rule "r": 2:3: undeclared reference to 'nope'`},
		{name: "path param is a string", expr: "request.path.userId == 5", want: `rule "r": 1:21: found no matching overload for '_==_' applied to '(string, int)'`},
		{name: "not bool", expr: "principal.sub", want: `rule "r": 1:1: must evaluate to bool, not string`},
		{name: "upper-case header", expr: `request.headers["X-Tenant"] == "a"`, want: `rule "r": 1:8: header names are lower-case in request.headers: write "x-tenant"`},
		{name: "bad constant regex", expr: `principal.sub.matches("(")`, want: `rule "r": 1:1: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]Rule{{Name: "r", Expr: tt.expr}})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile(%q) error = %v, want a *CompileError", tt.expr, err)
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("Compile(%q) error = %q, want prefix %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestCompileReads(t *testing.T) {
	tests := []struct {
		name               string
		expr               string
		principal, body    bool
		query, headers     []string
		allQuery, allHeads bool
	}{
		{name: "path and sub", expr: "request.path.userId == principal.sub", principal: true},
		{name: "query select", expr: "request.query.tenant == 'a'", query: []string{"tenant"}},
		{name: "query index and has", expr: "has(request.query.a) && request.query['b'] == 'x' && 'c' in request.query", query: []string{"a", "b", "c"}},
		{name: "query iterated", expr: "request.query.all(k, k != 'x')", allQuery: true},
		{name: "header index", expr: `request.headers["x-tenant"] == principal.claims.tenant`, principal: true, headers: []string{"x-tenant"}},
		{name: "header computed key", expr: `request.headers[principal.sub] == "a"`, principal: true, allHeads: true},
		{name: "body", expr: "request.body.owner == 'a'", body: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile([]Rule{{Name: "r", Expr: tt.expr}})
			if err != nil {
				t.Fatal(err)
			}
			if s.ReadsPrincipal() != tt.principal || s.ReadsBody() != tt.body {
				t.Errorf("reads principal, body = %v, %v, want %v, %v", s.ReadsPrincipal(), s.ReadsBody(), tt.principal, tt.body)
			}
			if s.query.all != tt.allQuery || strings.Join(s.query.names, ",") != strings.Join(tt.query, ",") {
				t.Errorf("query = %+v, want %v (all %v)", s.query, tt.query, tt.allQuery)
			}
			if s.headers.all != tt.allHeads || strings.Join(s.headers.names, ",") != strings.Join(tt.headers, ",") {
				t.Errorf("headers = %+v, want %v (all %v)", s.headers, tt.headers, tt.allHeads)
			}
		})
	}
}

// input is a request of alice (role user, tenant acme) for
// /tenants/acme/users/alice/orders/7?view=full with a JSON body.
func input(t testing.TB, body string) *Input {
	t.Helper()
	in := &Input{
		Principal: &Principal{Sub: "alice", Consumer: "web", Scopes: []string{"orders:read"}, Roles: []string{"user"},
			Claims: map[string]any{"tenant": "acme", "level": float64(3), "org": map[string]any{"id": "o1"}}},
		Method: http.MethodPost,
		Path:   map[string]string{"tenant": "acme", "userId": "alice", "orderId": "7"},
		Query:  url.Values{"view": {"full"}, "twice": {"a", "b"}},
		Header: http.Header{"X-Tenant": {"acme"}, "X-Twice": {"a", "b"}},
	}
	if body != "" {
		v, err := validate.DecodeJSON([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		in.Body, in.HasBody = v, true
	}
	return in
}

func TestEvaluate(t *testing.T) {
	const body = `{"owner":"alice","count":2,"price":2.5,"big":12345678901234567890,"items":[{"id":"a","qty":1},{"id":"b","qty":5}],"meta":{"tenant":"acme","tags":["x","y"]},"none":null}`
	tests := []struct {
		name    string
		expr    string
		body    string
		allowed bool
		err     bool // could not be evaluated (denies)
	}{
		{name: "path owner", expr: "request.path.userId == principal.sub", allowed: true},
		{name: "path other user", expr: "request.path.orderId == principal.sub"},
		{name: "admin role", expr: `"admin" in principal.roles`},
		{name: "role held", expr: `"user" in principal.roles`, allowed: true},
		{name: "scope held", expr: `principal.scopes.exists(s, s == "orders:read")`, allowed: true},
		{name: "consumer", expr: `principal.consumer == "web"`, allowed: true},
		{name: "claim tenant", expr: "request.path.tenant == principal.claims.tenant", allowed: true},
		{name: "nested claim", expr: `principal.claims.org.id == "o1"`, allowed: true},
		{name: "numeric claim", expr: "principal.claims.level >= 3", allowed: true},
		{name: "missing claim", expr: `principal.claims.region == "eu"`, err: true},
		{name: "has missing claim", expr: `!has(principal.claims.region)`, allowed: true},
		{name: "method", expr: `request.method == "POST"`, allowed: true},
		{name: "query", expr: `request.query.view == "full"`, allowed: true},
		{name: "missing query", expr: `request.query.page == "1"`, err: true},
		{name: "header", expr: `request.headers["x-tenant"] == "acme"`, allowed: true},
		{name: "missing header", expr: `request.headers["x-other"] == "acme"`, err: true},
		{name: "body owner", expr: "request.body.owner == principal.sub", body: body, allowed: true},
		{name: "body int", expr: "request.body.count == 2 && request.body.count + 1 == 3", body: body, allowed: true},
		{name: "body int as double", expr: "request.body.count == 2.0", body: body, allowed: true},
		{name: "body double", expr: "request.body.price > 2.0 && request.body.price < 3", body: body, allowed: true},
		{name: "body beyond int64", expr: "request.body.big > 1e19", body: body, allowed: true},
		{name: "body nested", expr: `request.body.meta.tenant == principal.claims.tenant && "y" in request.body.meta.tags`, body: body, allowed: true},
		{name: "body array", expr: `request.body.items.all(i, i.qty <= 5) && request.body.items[1].id == "b"`, body: body, allowed: true},
		{name: "body array too much", expr: `request.body.items.all(i, i.qty < 5)`, body: body},
		{name: "body null", expr: `request.body.none == null`, body: body, allowed: true},
		{name: "body missing field", expr: `request.body.tenant == "acme"`, body: body, err: true},
		{name: "body wrong type", expr: `request.body.owner > 3`, body: body, err: true},
		{name: "body index out of range", expr: `request.body.items[5].id == "x"`, body: body, err: true},
		{name: "no body", expr: `request.body.owner == "alice"`, err: true},
		{name: "body not an object", expr: `request.body.owner == "alice"`, body: `[1]`, err: true},
		{name: "regex", expr: `request.path.orderId.matches("^[0-9]+$")`, allowed: true},
		{name: "cost limit", expr: `request.body.items.all(i, [1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0)))))`, body: body, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile([]Rule{{Name: "first", Expr: "true"}, {Name: "r", Expr: tt.expr}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Evaluate(input(t, tt.body))
			if err != nil {
				t.Fatalf("Evaluate() error = %v", err)
			}
			if res.Allowed() != tt.allowed || (res.Err != nil) != tt.err {
				t.Errorf("Evaluate(%q) = allowed %v, err %v; want allowed %v, err %v", tt.expr, res.Allowed(), res.Err, tt.allowed, tt.err)
			}
			if !tt.allowed && res.Failed != 1 {
				t.Errorf("Failed = %d, want 1", res.Failed)
			}
		})
	}
}

func TestEvaluateNoPrincipal(t *testing.T) {
	s, err := Compile([]Rule{{Name: "r", Expr: `principal.sub == "" || principal.roles.size() == 0`}})
	if err != nil {
		t.Fatal(err)
	}
	in := input(t, "")
	in.Principal = nil
	res, err := s.Evaluate(in)
	if err != nil || res.Allowed() || res.Err == nil {
		t.Errorf("Evaluate() = %+v, %v; want a denial with an evaluation error", res, err)
	}
}

func TestEvaluatePollution(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want *PollutionError // nil: evaluated
	}{
		{name: "repeated query read", expr: `request.query.twice == "a"`, want: &PollutionError{Kind: "query", Name: "twice"}},
		{name: "repeated header read", expr: `request.headers["x-twice"] == "a"`, want: &PollutionError{Kind: "header", Name: "x-twice"}},
		{name: "repeated query not read", expr: `request.query.view == "full"`},
		{name: "repeated header not read", expr: `request.headers["x-tenant"] == "acme"`},
		{name: "all headers", expr: `request.headers.exists(h, h == "x")`, want: &PollutionError{Kind: "header", Name: "x-twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile([]Rule{{Name: "r", Expr: tt.expr}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Evaluate(input(t, ""))
			var pe *PollutionError
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Evaluate() error = %v, want none", err)
			case tt.want != nil && (!errors.As(err, &pe) || *pe != *tt.want):
				t.Errorf("Evaluate() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNumbers(t *testing.T) {
	v := Numbers(map[string]any{"i": json.Number("-7"), "f": json.Number("1.5"), "e": json.Number("1e2"), "a": []any{json.Number("1")}})
	m := v.(map[string]any)
	if m["i"] != int64(-7) || m["f"] != 1.5 || m["e"] != 100.0 || m["a"].([]any)[0] != int64(1) {
		t.Errorf("Numbers() = %#v", m)
	}
}

// BenchmarkRuleEval is one decision of a typical route: ownership by path
// or an admin role, and tenant isolation by a claim and a header.
func BenchmarkRuleEval(b *testing.B) {
	s, err := Compile([]Rule{
		{Name: "owner", Expr: `request.path.userId == principal.sub || "admin" in principal.roles`},
		{Name: "tenant", Expr: `request.headers["x-tenant"] == principal.claims.tenant`},
	})
	if err != nil {
		b.Fatal(err)
	}
	in := input(b, "")
	b.ReportAllocs()
	for b.Loop() {
		if res, err := s.Evaluate(in); err != nil || !res.Allowed() {
			b.Fatalf("Evaluate() = %+v, %v", res, err)
		}
	}
}

// BenchmarkRuleEvalBody is a body rule over a decoded body.
func BenchmarkRuleEvalBody(b *testing.B) {
	s, err := Compile([]Rule{{Name: "owner", Expr: `request.body.owner == principal.sub && request.body.count < 10`}})
	if err != nil {
		b.Fatal(err)
	}
	in := input(b, `{"owner":"alice","count":2,"items":[1,2,3]}`)
	b.ReportAllocs()
	for b.Loop() {
		if res, err := s.Evaluate(in); err != nil || !res.Allowed() {
			b.Fatalf("Evaluate() = %+v, %v", res, err)
		}
	}
}

func TestCompileResponse(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		resp    *Response
		allowed bool
		err     bool
	}{
		{name: "body owner", expr: "response.body.owner_id == principal.sub", resp: &Response{Status: 200, Body: map[string]any{"owner_id": "alice"}, HasBody: true}, allowed: true},
		{name: "body other owner", expr: "response.body.owner_id == principal.sub", resp: &Response{Status: 200, Body: map[string]any{"owner_id": "bob"}, HasBody: true}},
		{name: "item", expr: "response.item.owner_id == principal.sub && request.path.userId == 'alice'", resp: &Response{Item: map[string]any{"owner_id": "alice"}, HasItem: true}, allowed: true},
		{name: "no item", expr: "response.item.owner_id == principal.sub", resp: &Response{}, err: true},
		{name: "status", expr: "response.status == 200", resp: &Response{Status: 200}, allowed: true},
		{name: "no response", expr: "response.status == 200", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := CompileResponse([]Rule{{Name: "r", Expr: tt.expr}})
			if err != nil {
				t.Fatal(err)
			}
			in := input(t, "")
			in.Response = tt.resp
			res, err := s.Evaluate(in)
			if err != nil {
				t.Fatalf("Evaluate() error = %v", err)
			}
			if res.Allowed() != tt.allowed || (res.Err != nil) != tt.err {
				t.Errorf("Evaluate(%q) = allowed %v, err %v; want allowed %v, err %v", tt.expr, res.Allowed(), res.Err, tt.allowed, tt.err)
			}
		})
	}
	s, err := CompileResponse([]Rule{{Name: "r", Expr: "response.item.a == response.body.b"}})
	if err != nil || !s.ReadsItem() || !s.ReadsResponseBody() {
		t.Errorf("CompileResponse() = reads item %v, body %v, %v; want both", s.ReadsItem(), s.ReadsResponseBody(), err)
	}
}
