//go:build !race

// Benchmarks and allocation budgets: under the race detector allocations differ.

package validate

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// benchOrder is a realistic order of about 1 KB.
const benchOrder = `{"customer":{"email":"ann.example@example.com","name":"Ann Example","ip":"192.0.2.10"},` +
	`"currency":"EUR","reference":"ORD-123456","placedAt":"2026-11-23T10:00:00Z","deliverOn":"2026-12-01",` +
	`"note":"Leave the parcel with the neighbour at number 12 if nobody answers the door.",` +
	`"items":[` +
	`{"sku":"ABC-1234","qty":2,"price":19.99},{"sku":"DEF-5678","qty":1,"price":249.5},` +
	`{"sku":"GHI-9012","qty":12,"price":3.25},{"sku":"JKL-3456","qty":3,"price":15},` +
	`{"sku":"MNO-7890","qty":1,"price":1200},{"sku":"PQR-1357","qty":4,"price":7.8},` +
	`{"sku":"STU-2468","qty":6,"price":2.1},{"sku":"VWX-3690","qty":2,"price":44.4},` +
	`{"sku":"YZA-1470","qty":1,"price":99.99},{"sku":"BCD-2580","qty":8,"price":0.5},` +
	`{"sku":"EFG-3691","qty":5,"price":12.75},{"sku":"HIJ-4702","qty":1,"price":18}],` +
	`"metadata":{"channel":"web","campaign":"winter-sale-2026","device":"mobile","locale":"de-DE",` +
	`"affiliate":"partner-0042","session":"9b2f7c1e4d","ab":"checkout-v3","utm_source":"newsletter"}}`

func benchRequest() *Request {
	return &Request{
		Method:      http.MethodPost,
		Query:       url.Values{"dry_run": {"false"}, "tags": {"gift,rush"}},
		Header:      http.Header{"X-Request-Id": {"6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f"}, "Content-Type": {"application/json"}},
		ContentType: "application/json",
		Body:        []byte(benchOrder),
	}
}

// BenchmarkValidateRequest1KB measures what the stage pays per request: one decode
// and the validation of parameters and body.
func BenchmarkValidateRequest1KB(b *testing.B) {
	for _, opts := range []struct {
		name string
		opts Options
	}{{"open", Options{}}, {"strict", Options{Strict: true, StrictQuery: true}}} {
		b.Run(opts.name, func(b *testing.B) {
			op := compileOp(b, "orders.yaml", "createOrder", "/orders", opts.opts)
			req := benchRequest()
			b.SetBytes(int64(len(req.Body)))
			b.ReportAllocs()
			for b.Loop() {
				v, err := DecodeJSON(req.Body)
				if err != nil {
					b.Fatal(err)
				}
				req.BodyValue = v
				if err := op.ValidateRequest(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenAPI3FilterValidateRequest1KB is the same request through kin-openapi's
// own entry point, with the route found once outside the loop.
func BenchmarkOpenAPI3FilterValidateRequest1KB(b *testing.B) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("testdata/orders.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		b.Fatal(err)
	}
	doc.Servers = nil // match the plain path
	router, err := legacy.NewRouter(doc)
	if err != nil {
		b.Fatal(err)
	}
	hr := httptest.NewRequest(http.MethodPost, "/orders?dry_run=false&tags=gift,rush", nil)
	route, pathParams, err := router.FindRoute(hr)
	if err != nil {
		b.Fatal(err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	body := []byte(benchOrder)
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		hr.Body = http.NoBody
		r := hr.Clone(ctx)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Request-Id", "6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f")
		r.Body = readCloser{bytes.NewReader(body)}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidateRequestAllocs holds the per-request allocation budget: one decode and
// one validation of the 1 KB order (152 allocations when written, 91 since the quick
// check of valid bodies).
func TestValidateRequestAllocs(t *testing.T) {
	const budget = 110
	op := compileOp(t, "orders.yaml", "createOrder", "/orders", Options{Strict: true, StrictQuery: true})
	req := benchRequest()
	got := testing.AllocsPerRun(100, func() {
		v, err := DecodeJSON(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		req.BodyValue = v
		if err := op.ValidateRequest(req); err != nil {
			t.Fatal(err)
		}
	})
	if got > budget {
		t.Errorf("allocations per request = %.0f, want <= %d", got, budget)
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func BenchmarkDecodeJSON1KB(b *testing.B) {
	body := []byte(benchOrder)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadJSONBody1KB is what the validation stage pays to read the 1 KB
// order: the JSON limits, the bytes kept for the upstream, and the decode; with
// its length declared (read whole, one pass) and without (scanned while read).
func BenchmarkReadJSONBody1KB(b *testing.B) {
	body := []byte(benchOrder)
	for _, bc := range []struct {
		name   string
		length int64
	}{{"declared", int64(len(body))}, {"chunked", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var rd bytes.Reader
			r := httptest.NewRequest(http.MethodPost, "/orders", nil)
			for b.Loop() {
				rd.Reset(body)
				r.Body, r.ContentLength = io.NopCloser(&rd), bc.length
				if _, _, err := ReadJSONBody(r, Limits{}, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
