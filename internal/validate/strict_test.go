package validate

import "testing"

func TestStrictTransform(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		openRefuses  bool   // the spec itself refuses the body, strict or not
		strictReason string // "" = strict accepts
		strictField  string
	}{
		{name: "allOf members merged", body: `{"pet":{"name":"rex","legs":4}}`},
		{name: "allOf unknown refused", body: `{"pet":{"name":"rex","legs":4,"owner":"x"}}`,
			strictReason: "additional_property", strictField: "/pet/owner"},
		{name: "allOf member's nested objects closed", body: `{"pet":{"name":"rex","tags":[{"k":"a","v":"b"}]}}`,
			strictReason: "additional_property", strictField: "/pet/tags/0/v"},
		{name: "nested allOf merged", body: `{"deep":{"name":"rex","legs":4,"chip":"c1"}}`},
		{name: "nested allOf unknown refused", body: `{"deep":{"name":"rex","legs":4,"chip":"c1","x":1}}`,
			strictReason: "additional_property", strictField: "/deep/x"},
		{name: "allOf member allowing extras keeps parent open", body: `{"mixed":{"name":"a","whatever":1}}`},
		{name: "oneOf alternative matches", body: `{"payment":{"number":"4111"}}`},
		{name: "oneOf matching both refused", body: `{"payment":{"number":"4111","iban":"DE00"}}`, openRefuses: true,
			strictReason: "body_schema", strictField: "/payment"},
		{name: "oneOf alternative with extra refused", body: `{"payment":{"number":"4111","cvv":"123"}}`,
			strictReason: "body_schema", strictField: "/payment"},
		{name: "explicit true left open", body: `{"open":{"a":"x","b":"y"}}`},
		{name: "explicit false still closed", body: `{"shut":{"a":"x","b":"y"}}`, openRefuses: true,
			strictReason: "additional_property", strictField: "/shut/b"},
		{name: "recursive schema closed at depth", body: `{"node":{"value":1,"next":{"value":2,"next":{"value":3,"x":0}}}}`,
			strictReason: "additional_property", strictField: "/node/next/next/x"},
		// Closing inside "not" would widen it: {"admin":true,"x":1} would then pass.
		{name: "not is left alone", body: `{"notAdmin":{"admin":true,"x":1}}`, openRefuses: true,
			strictReason: "body_schema", strictField: "/notAdmin"},
		{name: "top level closed", body: `{"zzz":1}`,
			strictReason: "additional_property", strictField: "/zzz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := compileOp(t, "strict.yaml", "cases", "/cases", Options{})
			strict := compileOp(t, "strict.yaml", "cases", "/cases", Options{Strict: true})
			if err := open.ValidateRequest(jsonRequest(t, tt.body)); (err != nil) != tt.openRefuses {
				t.Errorf("non-strict ValidateRequest(%s) = %v, want refused %v", tt.body, err, tt.openRefuses)
			}
			err := strict.ValidateRequest(jsonRequest(t, tt.body))
			if tt.strictReason == "" {
				if err != nil {
					t.Errorf("strict ValidateRequest(%s) = %v, want nil", tt.body, err)
				}
				return
			}
			v, ok := err.(*Violation)
			if !ok || v.Reason != tt.strictReason || v.Field != tt.strictField {
				t.Errorf("strict ValidateRequest(%s) = %+v, want reason %q field %q", tt.body, err, tt.strictReason, tt.strictField)
			}
		})
	}
}

// TestStrictAllOf: closing each allOf member would refuse the other members'
// properties; the parent is closed with their union instead.
func TestStrictAllOf(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		body string
		want *violationWant
	}{
		{name: "base and extra", opts: Options{Strict: true}, body: `{"name":"rex","extra":"x"}`},
		{name: "third property refused", opts: Options{Strict: true}, body: `{"name":"rex","extra":"x","owner":"` + secret + `"}`,
			want: &violationWant{400, "additional_property", "body", "/owner", "additionalProperties"}},
		{name: "third property accepted when not strict", body: `{"name":"rex","extra":"x","owner":"x"}`},
		{name: "base required still checked", opts: Options{Strict: true}, body: `{"extra":"x"}`,
			want: &violationWant{400, "body_schema", "body", "/name", "required"}},
		{name: "member type still checked", opts: Options{Strict: true}, body: `{"name":"rex","extra":7}`,
			want: &violationWant{400, "body_schema", "body", "/extra", "type"}},
		{name: "optional body may be absent", opts: Options{Strict: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := compileOp(t, "orders.yaml", "createPet", "/pets", tt.opts)
			req := jsonRequest(t, tt.body)
			if tt.body == "" {
				req.Body, req.BodyValue, req.ContentType = nil, nil, ""
			}
			checkViolation(t, op.ValidateRequest(req), tt.want)
		})
	}
}

// TestStrictDoesNotChangeSharedSpec: a strict Compile must leave non-strict
// operations of the same Spec open.
func TestStrictDoesNotChangeSharedSpec(t *testing.T) {
	s := loadSpec(t, "orders.yaml")
	info, _ := s.FindByID("createOrder")
	strictOp, err := s.Compile(info, "/orders", Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	openOp, err := s.Compile(info, "/orders", Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := patch(t, map[string]any{"isAdmin": true})
	if err := openOp.ValidateRequest(jsonRequest(t, body)); err != nil {
		t.Errorf("non-strict ValidateRequest(extra property) = %v, want nil", err)
	}
	if err := strictOp.ValidateRequest(jsonRequest(t, body)); err == nil {
		t.Errorf("strict ValidateRequest(extra property) = nil, want a violation")
	}
}
