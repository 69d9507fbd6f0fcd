package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// secret marks submitted values: no violation may echo it.
const secret = "ZZSECRETZZ"

const validOrder = `{"customer":{"email":"ann@example.com","name":"Ann"},"currency":"EUR",` +
	`"reference":"ORD-123456","placedAt":"2026-11-23T10:00:00Z","deliverOn":"2026-12-01",` +
	`"items":[{"sku":"ABC-1234","qty":2,"price":9.5}],"metadata":{"channel":"web"}}`

func compileOp(t testing.TB, file, id, route string, opts Options) *Operation {
	t.Helper()
	s := loadSpec(t, file)
	info, ok := s.FindByID(id)
	if !ok {
		t.Fatalf("FindByID(%q) not found", id)
	}
	op, err := s.Compile(info, route, opts)
	if err != nil {
		t.Fatalf("Compile(%q, %q) error = %v", id, route, err)
	}
	return op
}

// patch returns validOrder with top-level or nested fields changed: keys are dotted
// paths, a nil value deletes.
func patch(t testing.TB, changes map[string]any) string {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(validOrder))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for path, v := range changes {
		keys := strings.Split(path, ".")
		var cur any = doc
		for _, k := range keys[:len(keys)-1] {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[k]
			case []any:
				cur = c[0]
			}
		}
		m := cur.(map[string]any)
		if v == nil {
			delete(m, keys[len(keys)-1])
		} else {
			m[keys[len(keys)-1]] = v
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonRequest(t testing.TB, body string) *Request {
	t.Helper()
	r := &Request{
		Method:      http.MethodPost,
		Query:       url.Values{},
		Header:      http.Header{"X-Request-Id": {"6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f"}},
		ContentType: "application/json; charset=utf-8",
		Body:        []byte(body),
	}
	v, err := DecodeJSON(r.Body)
	if err == nil {
		r.BodyValue = v
	}
	return r
}

type violationWant struct {
	status                  int
	reason, in, field, rule string
}

func checkViolation(t *testing.T, err error, want *violationWant) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("error = %v, want nil", err)
		}
		return
	}
	var v *Violation
	if !errors.As(err, &v) {
		t.Fatalf("error = %v, want a *Violation", err)
	}
	got := violationWant{status: v.Status, reason: v.Reason, in: v.In, field: v.Field, rule: v.Rule}
	if got != *want {
		t.Errorf("violation = %+v, want %+v (detail %q)", got, *want, v.Detail)
	}
	if v.Detail == "" || strings.Contains(v.Detail, secret) || strings.Contains(v.Error(), secret) || strings.Contains(v.Field, secret) {
		t.Errorf("violation %+v echoes the submitted value or has no detail", v)
	}
}

func TestValidateRequestCreateOrder(t *testing.T) {
	strict := Options{Strict: true}
	tests := []struct {
		name string
		opts Options
		req  func(t testing.TB) *Request
		want *violationWant
	}{
		{name: "valid", req: func(t testing.TB) *Request { return jsonRequest(t, validOrder) }},
		{name: "valid strict", opts: strict, req: func(t testing.TB) *Request { return jsonRequest(t, validOrder) }},
		{name: "valid with declared query", opts: Options{StrictQuery: true}, req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set("dry_run", "true")
			r.Query.Set("tags", "gift,rush")
			return r
		}},
		{name: "wrong type", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"items.0.qty": secret}))
		}, want: &violationWant{400, "body_schema", "body", "/items/0/qty", "type"}},
		{name: "integer minimum", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"items.0.qty": 0}))
		}, want: &violationWant{400, "body_schema", "body", "/items/0/qty", "minimum"}},
		{name: "pattern", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"reference": secret}))
		}, want: &violationWant{400, "body_schema", "body", "/reference", "pattern"}},
		{name: "nested pattern", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"items.0.sku": secret}))
		}, want: &violationWant{400, "body_schema", "body", "/items/0/sku", "pattern"}},
		{name: "enum", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"currency": secret}))
		}, want: &violationWant{400, "body_schema", "body", "/currency", "enum"}},
		{name: "missing required", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"currency": nil}))
		}, want: &violationWant{400, "body_schema", "body", "/currency", "required"}},
		{name: "maxLength", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"note": strings.Repeat(secret, 30)}))
		}, want: &violationWant{400, "body_schema", "body", "/note", "maxLength"}},
		{name: "email format", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"customer.email": secret}))
		}, want: &violationWant{400, "body_schema", "body", "/customer/email", "format"}},
		{name: "date-time format", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"placedAt": secret}))
		}, want: &violationWant{400, "body_schema", "body", "/placedAt", "format"}},
		{name: "date format", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"deliverOn": "2026-13-45"}))
		}, want: &violationWant{400, "body_schema", "body", "/deliverOn", "format"}},
		{name: "ipv4 format", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"customer.ip": "::1"}))
		}, want: &violationWant{400, "body_schema", "body", "/customer/ip", "format"}},
		{name: "int64 maximum exactly", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"externalId": json.Number("9223372036854775807")}))
		}},
		// 2^63 rounds to float64(MaxInt64): kin-openapi alone would accept it.
		{name: "int64 overflow by one", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"externalId": json.Number("9223372036854775808")}))
		}, want: &violationWant{400, "body_schema", "body", "/externalId", "format"}},
		{name: "int64 overflow far", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"externalId": json.Number("-99999999999999999999")}))
		}, want: &violationWant{400, "body_schema", "body", "/externalId", "format"}},
		{name: "extra property accepted when not strict", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"isAdmin": secret, "customer.role": secret}))
		}},
		{name: "extra property refused when strict", opts: strict, req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"isAdmin": secret}))
		}, want: &violationWant{400, "additional_property", "body", "/isAdmin", "additionalProperties"}},
		{name: "nested extra property refused when strict", opts: strict, req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"customer.role": secret}))
		}, want: &violationWant{400, "additional_property", "body", "/customer/role", "additionalProperties"}},
		{name: "extra property in array item refused when strict", opts: strict, req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"items.0.discount": secret}))
		}, want: &violationWant{400, "additional_property", "body", "/items/0/discount", "additionalProperties"}},
		{name: "explicit additionalProperties schema stays open when strict", opts: strict, req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"metadata": map[string]any{"any": secret}}))
		}},
		{name: "readOnly accepted when not strict", req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"id": "6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f"}))
		}},
		{name: "readOnly refused when strict", opts: strict, req: func(t testing.TB) *Request {
			return jsonRequest(t, patch(t, map[string]any{"id": "6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f"}))
		}, want: &violationWant{400, "read_only", "body", "/id", "readOnly"}},
		{name: "wrong content type", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.ContentType = "text/plain"
			return r
		}, want: &violationWant{415, "content_type", "header", "Content-Type", "content"}},
		{name: "missing content type", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.ContentType = ""
			return r
		}, want: &violationWant{415, "content_type", "header", "Content-Type", "content"}},
		{name: "missing body", req: func(t testing.TB) *Request {
			r := jsonRequest(t, "")
			r.Body, r.BodyValue = nil, nil
			return r
		}, want: &violationWant{400, "missing_body", "body", "", "required"}},
		{name: "invalid json decoded here", req: func(t testing.TB) *Request {
			return jsonRequest(t, `{"customer":`+secret)
		}, want: &violationWant{400, "invalid_json", "body", "", "json"}},
		{name: "header format", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Header.Set("X-Request-Id", secret)
			return r
		}, want: &violationWant{400, "parameter", "header", "X-Request-Id", "format"}},
		{name: "missing required header", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Header.Del("X-Request-Id")
			return r
		}, want: &violationWant{400, "missing_parameter", "header", "X-Request-Id", "required"}},
		{name: "query boolean type", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set("dry_run", secret)
			return r
		}, want: &violationWant{400, "parameter", "query", "dry_run", "type"}},
		{name: "query array item enum", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set("tags", "gift,"+secret)
			return r
		}, want: &violationWant{400, "parameter", "query", "tags", "enum"}},
		{name: "query array too long", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set("tags", "gift,rush,fragile,gift")
			return r
		}, want: &violationWant{400, "parameter", "query", "tags", "maxItems"}},
		{name: "unknown query accepted", req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set("debug", secret)
			return r
		}},
		{name: "long unknown query name clipped", opts: Options{StrictQuery: true}, req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set(strings.Repeat("é", 40), "1")
			return r
		}, want: &violationWant{400, "unknown_query", "query", strings.Repeat("é", 32) + "...", "declared"}},
		{name: "declared query accepted with StrictQuery", opts: Options{StrictQuery: true}, req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set("tags", "gift")
			return r
		}},
		{name: "unknown query refused with StrictQuery", opts: Options{StrictQuery: true}, req: func(t testing.TB) *Request {
			r := jsonRequest(t, validOrder)
			r.Query.Set("debug", secret)
			return r
		}, want: &violationWant{400, "unknown_query", "query", "debug", "declared"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := compileOp(t, "orders.yaml", "createOrder", "/orders", tt.opts)
			checkViolation(t, op.ValidateRequest(tt.req(t)), tt.want)
		})
	}
}

func TestValidateRequestParameters(t *testing.T) {
	const id = "6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f"
	tests := []struct {
		name   string
		opID   string
		route  string
		opts   Options
		path   []string
		query  url.Values
		header http.Header
		want   *violationWant
	}{
		{name: "valid", opID: "getOrder", route: "/orders/{orderId}", path: []string{id}, query: url.Values{"limit": {"10"}}},
		{name: "valid through server prefix", opID: "getOrder", route: "/api/v1/orders/{orderId}", path: []string{id}},
		{name: "path uuid format", opID: "getOrder", route: "/orders/{orderId}", path: []string{secret},
			want: &violationWant{400, "parameter", "path", "id", "format"}},
		{name: "path missing", opID: "getOrder", route: "/orders/{orderId}",
			want: &violationWant{400, "missing_parameter", "path", "id", "required"}},
		{name: "limit type", opID: "getOrder", route: "/orders/{orderId}", path: []string{id}, query: url.Values{"limit": {secret}},
			want: &violationWant{400, "parameter", "query", "limit", "type"}},
		{name: "limit fraction", opID: "getOrder", route: "/orders/{orderId}", path: []string{id}, query: url.Values{"limit": {"1.5"}},
			want: &violationWant{400, "parameter", "query", "limit", "type"}},
		{name: "limit minimum", opID: "getOrder", route: "/orders/{orderId}", path: []string{id}, query: url.Values{"limit": {"0"}},
			want: &violationWant{400, "parameter", "query", "limit", "minimum"}},
		{name: "limit maximum", opID: "getOrder", route: "/orders/{orderId}", path: []string{id}, query: url.Values{"limit": {"101"}},
			want: &violationWant{400, "parameter", "query", "limit", "maximum"}},
		{name: "limit beyond int64", opID: "getOrder", route: "/orders/{orderId}", path: []string{id}, query: url.Values{"limit": {"99999999999999999999"}},
			want: &violationWant{400, "parameter", "query", "limit", "maximum"}},
		{name: "date-time query", opID: "listOrders", route: "/orders", query: url.Values{"since": {secret}},
			want: &violationWant{400, "parameter", "query", "since", "format"}},
		{name: "valid date-time query and cookie", opID: "listOrders", route: "/orders",
			query: url.Values{"since": {"2026-11-23T10:00:00+01:00"}}, header: http.Header{"Cookie": {"a=b; session=abcd1234"}}},
		{name: "repeated query array", opID: "listOrders", route: "/orders", query: url.Values{"status": {"open", "shipped"}}},
		{name: "repeated query array item enum", opID: "listOrders", route: "/orders", query: url.Values{"status": {"open", secret}},
			want: &violationWant{400, "parameter", "query", "status", "enum"}},
		{name: "deepObject valid", opID: "listOrders", route: "/orders", query: url.Values{"filter[minTotal]": {"10"}}},
		{name: "deepObject keys declared for StrictQuery", opID: "listOrders", route: "/orders", opts: Options{StrictQuery: true},
			query: url.Values{"filter[minTotal]": {"10"}, "status": {"open"}}},
		{name: "unknown key refused by StrictQuery", opID: "listOrders", route: "/orders", opts: Options{StrictQuery: true},
			query: url.Values{"filterx": {"10"}},
			want:  &violationWant{400, "unknown_query", "query", "filterx", "declared"}},
		{name: "deepObject minimum", opID: "listOrders", route: "/orders", query: url.Values{"filter[minTotal]": {"-1"}},
			want: &violationWant{400, "parameter", "query", "filter", "minimum"}},
		{name: "deepObject type", opID: "listOrders", route: "/orders", query: url.Values{"filter[minTotal]": {secret}},
			want: &violationWant{400, "parameter", "query", "filter", "type"}},
		{name: "cookie pattern", opID: "listOrders", route: "/orders", header: http.Header{"Cookie": {"session=" + secret}},
			want: &violationWant{400, "parameter", "cookie", "session", "pattern"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := compileOp(t, "orders.yaml", tt.opID, tt.route, tt.opts)
			req := &Request{Method: http.MethodGet, PathParams: tt.path, Query: tt.query, Header: tt.header}
			checkViolation(t, op.ValidateRequest(req), tt.want)
		})
	}
}

func TestValidateRequestOtherMediaTypes(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		want                    *violationWant
	}{
		{name: "form valid", contentType: "application/x-www-form-urlencoded", body: "name=ann&age=30"},
		{name: "form missing field", contentType: "application/x-www-form-urlencoded", body: "age=30",
			want: &violationWant{400, "body_schema", "body", "/name", "required"}},
		{name: "form minimum", contentType: "application/x-www-form-urlencoded", body: "name=ann&age=-1",
			want: &violationWant{400, "body_schema", "body", "/age", "minimum"}},
		{name: "declared type without decoder passes", contentType: "image/png", body: "\x89PNG"},
		{name: "undeclared type", contentType: "image/gif", body: "GIF89a",
			want: &violationWant{415, "content_type", "header", "Content-Type", "content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := compileOp(t, "orders.yaml", "updateProfile", "/profile", Options{Strict: true})
			req := &Request{Method: http.MethodPut, ContentType: tt.contentType, Body: []byte(tt.body),
				Header: http.Header{"Content-Type": {tt.contentType}}}
			checkViolation(t, op.ValidateRequest(req), tt.want)
		})
	}
}

func TestValidateRequestOtherSpecs(t *testing.T) {
	tests := []struct {
		name, file, id, route, body string
		want                        *violationWant
	}{
		{name: "local ref valid", file: "localref.yaml", id: "pay", route: "/payments", body: `{"amount":10,"currency":"EUR"}`},
		{name: "local ref minimum", file: "localref.yaml", id: "pay", route: "/payments", body: `{"amount":-1,"currency":"EUR"}`,
			want: &violationWant{400, "body_schema", "body", "/amount", "minimum"}},
		{name: "3.1 valid", file: "openapi31.yaml", id: "createThing", route: "/things", body: `{"kind":"thing","size":null}`},
		{name: "3.1 const", file: "openapi31.yaml", id: "createThing", route: "/things", body: `{"kind":"` + secret + `"}`,
			want: &violationWant{400, "body_schema", "body", "/kind", "const"}},
		{name: "3.1 exclusiveMinimum number", file: "openapi31.yaml", id: "createThing", route: "/things", body: `{"kind":"thing","size":0}`,
			want: &violationWant{400, "body_schema", "body", "/size", "exclusiveMinimum"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := compileOp(t, tt.file, tt.id, tt.route, Options{})
			checkViolation(t, op.ValidateRequest(jsonRequest(t, tt.body)), tt.want)
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "object", in: `{"a":1}`},
		{name: "trailing whitespace", in: "{\"a\":1}\n "},
		{name: "trailing value", in: `{"a":1} {}`, wantErr: true},
		{name: "truncated", in: `{"a":`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeJSON([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Errorf("DecodeJSON(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
		})
	}
	// Big integers stay exact in the decoded value.
	v, err := DecodeJSON([]byte(`{"n":9007199254740993}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(map[string]any)["n"]; got != json.Number("9007199254740993") {
		t.Errorf("DecodeJSON big integer = %#v, want json.Number(%q)", got, "9007199254740993")
	}
}

// FuzzDecodeJSON checks DecodeJSON against encoding/json: whatever it accepts,
// encoding/json accepts too and decodes to the same value (UseNumber). It refuses more
// (duplicate names, invalid UTF-8, lone surrogates), never less.
func FuzzDecodeJSON(f *testing.F) {
	seeds := []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, // every kind of value
		`[1,2.5e3,-0,1E+2,0.001]`,                     // number grammar
		`"\ud83d\ude00 \u00e9 \n\t\"\\\/"`,            // escapes and a surrogate pair
		`"\ud83d"`,                                    // lone surrogate: refused
		`{"a":1,"a":2}`,                               // duplicate name: refused
		"\"\xff\"",                                    // invalid UTF-8: refused
		`[`, `01`, `1.`, `-`, `{"a" 1}`, `[1,]`,       // malformed
		" \n null \t",                // white space around a literal
		`{"a":1} x`,                  // trailing data: refused
		"\"\x01\"",                   // raw control character: refused
		`99999999999999999999999999`, // beyond float64 precision, kept exact
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeJSON(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("DecodeJSON(%q) error = %v, want it to wrap ErrInvalidJSON", data, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("DecodeJSON(%q) accepted what encoding/json refuses", data)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json Decode(%q) = %v after Valid", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeJSON(%q) = %#v, want %#v", data, got, want)
		}
	})
}

// TestConcurrentUse runs strict and open compiles and validations of one Spec at once;
// run with -race.
func TestConcurrentUse(t *testing.T) {
	s := loadSpec(t, "orders.yaml")
	info, _ := s.FindByID("createOrder")
	done := make(chan error, 8)
	for i := range 8 {
		go func() {
			op, err := s.Compile(info, "/orders", Options{Strict: i%2 == 0})
			if err != nil {
				done <- err
				return
			}
			for range 50 {
				if err := op.ValidateRequest(jsonRequest(t, validOrder)); err != nil {
					done <- err
					return
				}
				if err := op.ValidateResponse(201, http.Header{"Content-Type": {"application/json"}}, []byte(validOrderResponse)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Errorf("concurrent validation error = %v, want nil", err)
		}
	}
}
