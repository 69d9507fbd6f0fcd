package validate

import (
	"net/http"
	"testing"
)

const validOrderResponse = `{"id":"6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f","customer":{"email":"ann@example.com"},` +
	`"currency":"EUR","items":[{"sku":"ABC-1234","qty":2}]}`

func TestValidateResponse(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	strict := Options{Strict: true}
	tests := []struct {
		name   string
		opID   string
		opts   Options
		status int
		header http.Header
		body   string
		want   *violationWant
	}{
		{name: "valid", opID: "createOrder", status: 201, header: jsonCT, body: validOrderResponse},
		{name: "valid strict", opID: "createOrder", opts: strict, status: 201, header: jsonCT, body: validOrderResponse},
		{name: "undeclared status", opID: "createOrder", status: 500, header: jsonCT, body: `{}`,
			want: &violationWant{502, "undeclared_status", "response", "status", "responses"}},
		{name: "status range", opID: "createOrder", status: 404, header: http.Header{"Content-Type": {"application/problem+json"}}, body: `{"title":"nope"}`},
		{name: "status range wrong type", opID: "createOrder", status: 409, header: http.Header{"Content-Type": {"application/problem+json"}}, body: `{"title":7}`,
			want: &violationWant{502, "response_schema", "response", "/title", "type"}},
		{name: "default covers any status", opID: "getOrder", status: 503, header: http.Header{"Content-Type": {"text/html"}}, body: `<h1>down</h1>`},
		{name: "wrong type", opID: "createOrder", status: 201, header: jsonCT,
			body: `{"customer":{"email":"ann@example.com"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":"` + secret + `"}]}`,
			want: &violationWant{502, "response_schema", "response", "/items/0/qty", "type"}},
		{name: "wrong content type", opID: "createOrder", status: 201, header: http.Header{"Content-Type": {"text/html"}}, body: validOrderResponse,
			want: &violationWant{502, "response_content_type", "response", "Content-Type", "content"}},
		{name: "invalid json", opID: "createOrder", status: 201, header: jsonCT, body: `{"customer":` + secret,
			want: &violationWant{502, "invalid_json", "response", "", "json"}},
		{name: "extra property accepted when not strict", opID: "createOrder", status: 201, header: jsonCT,
			body: `{"customer":{"email":"ann@example.com","internalScore":"` + secret + `"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":2}]}`},
		{name: "extra property refused when strict", opID: "createOrder", opts: strict, status: 201, header: jsonCT,
			body: `{"customer":{"email":"ann@example.com","internalScore":"` + secret + `"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":2}]}`,
			want: &violationWant{502, "additional_property", "response", "/customer/internalScore", "additionalProperties"}},
		{name: "writeOnly accepted when not strict", opID: "createOrder", status: 201, header: jsonCT,
			body: `{"customer":{"email":"ann@example.com","password":"` + secret + `"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":2}]}`},
		{name: "writeOnly refused when strict", opID: "createOrder", opts: strict, status: 201, header: jsonCT,
			body: `{"customer":{"email":"ann@example.com","password":"` + secret + `"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":2}]}`,
			want: &violationWant{502, "write_only", "response", "/customer/password", "writeOnly"}},
		{name: "array response", opID: "listOrders", status: 200, header: jsonCT, body: `[` + validOrderResponse + `]`},
		{name: "array response item wrong", opID: "listOrders", status: 200, header: jsonCT, body: `[` + validOrderResponse + `,{"currency":"EUR"}]`,
			want: &violationWant{502, "response_schema", "response", "/1/customer", "required"}},
		{name: "no content declared", opID: "createPet", status: 204, header: jsonCT, body: ``},
	}
	routes := map[string]string{"createOrder": "/orders", "getOrder": "/orders/{id}", "listOrders": "/orders", "createPet": "/pets"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := compileOp(t, "orders.yaml", tt.opID, routes[tt.opID], tt.opts)
			checkViolation(t, op.ValidateResponse(tt.status, tt.header, []byte(tt.body)), tt.want)
		})
	}
}
