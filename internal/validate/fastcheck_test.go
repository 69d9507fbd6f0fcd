package validate

import (
	"reflect"
	"strings"
	"testing"
)

// compiledMedia is one body or response media of a compiled operation.
type compiledMedia struct {
	name string
	m    *media
}

// allMedia compiles every operation of the test specs, strict and open, and
// returns the media of their request bodies and responses.
func allMedia(t testing.TB) []compiledMedia {
	t.Helper()
	var out []compiledMedia
	for _, file := range []string{"quick.yaml", "orders.yaml", "strict.yaml", "localref.yaml", "openapi31.yaml"} {
		s := loadSpec(t, file)
		for _, info := range s.Operations() {
			for _, strict := range []bool{false, true} {
				op, err := s.Compile(info, info.Path, Options{Strict: strict})
				if err != nil {
					t.Fatalf("Compile(%s %s) error = %v", info.Method, info.Path, err)
				}
				name := file + " " + info.Method + " " + info.Path
				if strict {
					name += " strict"
				}
				add := func(kind string, ms *mediaSet) {
					if ms == nil {
						return
					}
					for key, m := range ms.exact {
						if m.schema != nil && isJSON(key) {
							out = append(out, compiledMedia{name: name + " " + kind + " " + key, m: m})
						}
					}
				}
				if op.body != nil {
					add("request", &op.body.media)
				}
				for code, ms := range op.responses {
					add("response "+itoa(code), ms)
				}
			}
		}
	}
	return out
}

func itoa(n int) string {
	return string(rune('0'+n/100)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10))
}

// checkSameAsMode fails when the media's check (the quick check, then the
// directed copy, then the mode) and kin-openapi's visit of the schema in its
// request or response mode disagree on v: on whether it is valid, and on the
// violation reported.
func checkSameAsMode(t *testing.T, cm compiledMedia, doc string, v any) {
	t.Helper()
	m := cm.m
	got := m.check(v)
	want := m.schema.VisitJSON(v, m.opts...)
	if m.fast != nil && m.fast.accepts(v, 0) && want != nil {
		t.Fatalf("%s: the quick check accepts %s, kin-openapi refuses it: %v", cm.name, doc, want)
	}
	if (got == nil) != (want == nil) {
		t.Fatalf("%s: check(%s) = %v, kin-openapi in its mode = %v", cm.name, doc, got, want)
	}
	if got == nil {
		return
	}
	gv, wv := schemaViolation(got, "body", ReasonBodySchema), schemaViolation(want, "body", ReasonBodySchema)
	if !reflect.DeepEqual(gv, wv) {
		t.Fatalf("%s: check(%s) violation = %+v, kin-openapi in its mode = %+v", cm.name, doc, gv, wv)
	}
}

// quickDocs are bodies for the schemas of the test specs: valid ones, and
// ones that break each keyword the quick check knows, alone or together.
var quickDocs = []string{
	`{"name":"ab","kind":"a","secret":"abcd"}`,                // valid request (id is readOnly)
	`{"id":"x","name":"ab","kind":"a","secret":"abcd"}`,       // readOnly in a request, valid response
	`{"id":null,"name":"ab","kind":"a","secret":"abcd"}`,      // readOnly null: its schema refuses null
	`{"version":null,"name":"ab","kind":"a","secret":"abcd"}`, // readOnly null: its schema accepts null
	`{"version":3,"name":"ab","kind":"a","secret":"abcd"}`,    // readOnly value
	`{"id":"x","name":"ab","kind":"a"}`,                       // writeOnly missing (fine in a response)
	`{"id":"x","name":"ab","kind":"a","secret":"ab","zz":1}`,  // readOnly, writeOnly too short, extra
	`{"id":"x","name":"abcdef","kind":"a","secret":"abcd"}`,   // readOnly and too long: which comes first
	`{"name":"a","kind":"c","secret":"abcd"}`,                 // too short, not in the enum
	`{"name":"ééé","kind":"1","secret":"abcd"}`,               // length in characters
	`{"name":"ab","kind":1,"secret":"abcd"}`,                  // a number where the enum has "1"
	`{"name":"ab","kind":"a","secret":"abcd","code":"A12"}`,   // pattern with \u0041
	`{"name":"ab","kind":"a","secret":"abcd","code":"B12"}`,   // pattern broken
	`{"name":"ab","kind":"a","secret":"abcd","when":"2026-11-23T10:00:00Z","day":"2026-11-23"}`,
	`{"name":"ab","kind":"a","secret":"abcd","when":"2026-11-23","day":"2026-11-23T10:00:00Z"}`,
	`{"name":"ab","kind":"a","secret":"abcd","mail":"a@b.c","uid":"6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f"}`,
	`{"name":"ab","kind":"a","secret":"abcd","mail":"ab.c","uid":"6f1c2a4e"}`,
	`{"name":"ab","kind":"a","secret":"abcd","v4":"192.0.2.1","v6":"2001:db8::1"}`,
	`{"name":"ab","kind":"a","secret":"abcd","v4":"2001:db8::1","v6":"192.0.2.1"}`,
	`{"name":"ab","kind":"a","secret":"abcd","blob":"aGVsbG8=","link":"not a uri"}`,
	`{"name":"ab","kind":"a","secret":"abcd","blob":"***"}`,
	`{"name":"ab","kind":"a","secret":"abcd","small":4,"big":9223372036854775807}`,
	`{"name":"ab","kind":"a","secret":"abcd","small":5}`,                   // exclusive maximum
	`{"name":"ab","kind":"a","secret":"abcd","small":-6}`,                  // minimum
	`{"name":"ab","kind":"a","secret":"abcd","small":1.5}`,                 // not an integer
	`{"name":"ab","kind":"a","secret":"abcd","small":1e0}`,                 // an integer, written as a number
	`{"name":"ab","kind":"a","secret":"abcd","big":9223372036854775808}`,   // 2^63: MaxInt64 for kin-openapi
	`{"name":"ab","kind":"a","secret":"abcd","big":1e19}`,                  // beyond int64
	`{"name":"ab","kind":"a","secret":"abcd","big":1e400}`,                 // beyond float64
	`{"name":"ab","kind":"a","secret":"abcd","ratio":0}`,                   // exclusive minimum
	`{"name":"ab","kind":"a","secret":"abcd","ratio":1,"flag":null}`,       // maximum, nullable
	`{"name":"ab","kind":"a","secret":"abcd","flag":"true"}`,               // a string for a boolean
	`{"name":"ab","kind":"a","secret":"abcd","list":[1,2.5]}`,              // items
	`{"name":"ab","kind":"a","secret":"abcd","list":[]}`,                   // minItems
	`{"name":"ab","kind":"a","secret":"abcd","list":[1,2,3,4]}`,            // maxItems
	`{"name":"ab","kind":"a","secret":"abcd","list":[1,null]}`,             // null item
	`{"name":"ab","kind":"a","secret":"abcd","bag":{"x":1,"y":2}}`,         // additionalProperties schema
	`{"name":"ab","kind":"a","secret":"abcd","bag":{"x":"1"}}`,             // breaks it
	`{"name":"ab","kind":"a","secret":"abcd","loose":{"n":1,"x":[{}]}}`,    // open object
	`{"name":"ab","kind":"a","secret":"abcd","loose":{"n":"1"}}`,           // open object, declared breaks
	`{"name":"ab","kind":"a","secret":"abcd","anything":[1,{"a":null}]}`,   // empty schema
	`{"name":"ab","kind":"a","secret":"abcd","anything":null}`,             // empty schema, null
	`{"name":"ab","kind":"a","secret":"abcd","node":{"next":{"next":{}}}}`, // recursion
	`{"name":"ab","kind":"a","secret":"abcd","node":{"next":{"value":1}}}`, // readOnly deep down
	`{"name":"ab","kind":"a","secret":"abcd","node":{"next":{"x":1}}}`,     // extra deep down
	`{"name":"ab"}`, `{}`, `[]`, `null`, `"x"`, `1`, // wrong shapes, missing members
	`{"name":"ab","kind":"a","secret":"abcd","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10}`, // maxProperties
	// Mixed: readOnly under oneOf keeps the mode.
	`{"choice":{"id":"x"}}`, `{"choice":"x"}`, `{"id":"x","choice":"x"}`,
	`{"unique":[1,2],"multiple":1.5}`, `{"unique":[1,1]}`, `{"multiple":0.3}`,
	// Orders.
	validOrder,
	`{"id":"6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f","customer":{"email":"a@b.c","password":"x"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":1}]}`,
	`{"customer":{"email":"a@b.c"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":1000.00000000000000001}]}`,
	`{"customer":{"email":"a@b.c"},"currency":"EUR","items":[{"sku":"ABC-1234","qty":0}],"metadata":{"a":1}}`,
	// Strict cases.
	`{"pet":{"name":"x","legs":4},"payment":{"number":"1"},"node":{"value":1,"next":{"value":2}}}`,
	`{"pet":{"name":"x","wings":2},"payment":{"number":"1","iban":"x"}}`,
	`{"mixed":{"name":"x","any":1},"deep":{"name":"x","legs":1,"chip":"c"},"notAdmin":{"admin":true}}`,
	`{"kind":"thing","size":1}`, `{"kind":"thing","size":0}`, `{"kind":"other","size":null}`,
}

func TestCheckSameAsMode(t *testing.T) {
	media := allMedia(t)
	for _, doc := range quickDocs {
		v, err := DecodeJSON([]byte(doc))
		if err != nil {
			t.Fatalf("DecodeJSON(%s) error = %v", doc, err)
		}
		for _, cm := range media {
			checkSameAsMode(t, cm, doc, v)
		}
	}
}

// TestQuickCheckUsed pins where the quick check and the directed copies apply:
// a strict order body (readOnly id, formats, patterns, enums) takes the quick
// path; schemas with composition under readOnly keep kin-openapi's mode.
func TestQuickCheckUsed(t *testing.T) {
	op := compileOp(t, "orders.yaml", "createOrder", "/orders", Options{Strict: true, StrictQuery: true})
	m := op.body.media.exact["application/json"]
	if m.fast == nil || m.visit == m.schema {
		t.Fatalf("createOrder strict: quick check %v, directed copy %v, want both", m.fast != nil, m.visit != m.schema)
	}
	v, err := DecodeJSON([]byte(benchOrderDoc))
	if err != nil {
		t.Fatal(err)
	}
	if !m.fast.accepts(v, 0) {
		t.Errorf("createOrder strict: the quick check does not accept the benchmark order")
	}
	mixed := compileOp(t, "quick.yaml", "mixed", "/mixed", Options{Strict: true})
	if mm := mixed.body.media.exact["application/json"]; mm.fast != nil || mm.visit != mm.schema {
		t.Errorf("mixed strict: quick check %v, directed copy %v, want neither (readOnly under oneOf)", mm.fast != nil, mm.visit != mm.schema)
	}
}

// benchOrderDoc is a valid order with every kind of member the Order schema has.
const benchOrderDoc = `{"customer":{"email":"ann@example.com","name":"Ann","ip":"192.0.2.10"},"currency":"EUR",` +
	`"reference":"ORD-123456","placedAt":"2026-11-23T10:00:00Z","deliverOn":"2026-12-01","note":"n",` +
	`"externalId":42,"items":[{"sku":"ABC-1234","qty":2,"price":19.99}],"metadata":{"channel":"web"}}`

// FuzzMediaCheck holds the quick check and the directed copies to kin-openapi's
// request and response modes on every body and response schema of the test
// specs: the same documents are valid, and the same violation is reported.
func FuzzMediaCheck(f *testing.F) {
	for _, doc := range quickDocs {
		f.Add([]byte(doc))
	}
	media := allMedia(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeJSON(data)
		if err != nil {
			return
		}
		for _, cm := range media {
			checkSameAsMode(t, cm, string(data), v)
		}
	})
}

// TestExactIntegers checks integers again on their exact text wherever the body
// walk reaches them: properties, items, additionalProperties, allOf members, and
// recursive schemas.
func TestExactIntegers(t *testing.T) {
	const thing = `{"name":"ab","kind":"a","secret":"abcd",`
	tests := []struct {
		name, file, id, path, body string
		open                       bool // not strict: allOf members stay apart
		want                       *violationWant
	}{
		{name: "property", file: "quick.yaml", id: "createThing", path: "/things",
			body: thing + `"small":4.00000000000000000001}`,
			want: &violationWant{400, "body_schema", "body", "/small", "type"}},
		{name: "items", file: "quick.yaml", id: "createThing", path: "/things",
			body: thing + `"counts":[1,1000.00000000000000001]}`,
			want: &violationWant{400, "body_schema", "body", "/counts/1", "type"}},
		{name: "items maximum", file: "quick.yaml", id: "createThing", path: "/things",
			body: thing + `"counts":[1000,1000.0000000000000000000e0]}`},
		{name: "additionalProperties", file: "quick.yaml", id: "createThing", path: "/things",
			body: thing + `"bag":{"x":1,"y":7.000000000000000000001}}`,
			want: &violationWant{400, "body_schema", "body", "/bag/y", "type"}},
		{name: "allOf merged", file: "strict.yaml", id: "cases", path: "/cases",
			body: `{"pet":{"name":"x","legs":4.000000000000000000001}}`,
			want: &violationWant{400, "body_schema", "body", "/pet/legs", "type"}},
		{name: "allOf member", file: "strict.yaml", id: "cases", path: "/cases", open: true,
			body: `{"pet":{"name":"x","legs":4.000000000000000000001}}`,
			want: &violationWant{400, "body_schema", "body", "/pet/legs", "type"}},
		{name: "recursion", file: "strict.yaml", id: "cases", path: "/cases",
			body: `{"node":{"value":1,"next":{"next":{"value":2.0000000000000000000001}}}}`,
			want: &violationWant{400, "body_schema", "body", "/node/next/next/value", "type"}},
		{name: "all exact", file: "strict.yaml", id: "cases", path: "/cases",
			body: `{"pet":{"name":"x","legs":4},"node":{"value":1,"next":{"value":2}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := compileOp(t, tt.file, tt.id, tt.path, Options{Strict: !tt.open})
			checkViolation(t, op.ValidateRequest(jsonRequest(t, tt.body)), tt.want)
		})
	}
}

// TestParamQuickCheck holds the quick check of parameters to kin-openapi: over
// the parameters of the test specs and a range of raw values, it accepts only
// what kin-openapi accepts.
func TestParamQuickCheck(t *testing.T) {
	raws := []string{"", "0", "-1", "1", "100", "101", "1.5", "1e3", "9223372036854775808", "true", "false",
		"gift", "rush", "gift,rush", "gift,rush,fragile,gift", "open", "2026-11-23T10:00:00Z", "2026-11-23",
		"6f1c2a4e-8d3b-4c1a-9e2f-1a2b3c4d5e6f", "abcdefgh", "abc", "ABCDEFGH", "a,b"}
	for _, file := range []string{"quick.yaml", "orders.yaml", "strict.yaml", "localref.yaml", "openapi31.yaml"} {
		s := loadSpec(t, file)
		for _, info := range s.Operations() {
			op, err := s.Compile(info, info.Path, Options{Strict: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, ps := range [][]param{op.path, op.query, op.header, op.cookie} {
				for i := range ps {
					p := &ps[i]
					if p.fast == nil {
						continue
					}
					for _, raw := range raws {
						var value any
						if p.array {
							var items []any
							for _, part := range strings.Split(raw, ",") {
								v, ok := convert(p.prim, part)
								if !ok {
									items = nil
									break
								}
								items = append(items, v)
							}
							if items == nil {
								continue
							}
							value = items
						} else {
							v, ok := convert(p.prim, raw)
							if !ok {
								continue
							}
							value = v
						}
						if p.fast.accepts(value, 0) && p.schema.VisitJSON(value, op.paramOpts...) != nil {
							t.Errorf("%s %s: parameter %q: the quick check accepts %q, kin-openapi refuses it", info.Method, info.Path, p.name, raw)
						}
					}
				}
			}
		}
	}
}
