package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// ValidateRequest checks the parameters, the Content-Type and the body of req. It
// returns nil or the first *Violation found.
func (o *Operation) ValidateRequest(req *Request) error {
	for i := range o.path {
		p := &o.path[i]
		if p.pos >= len(req.PathParams) {
			return missing(p)
		}
		if v := o.checkParam(p, req.PathParams[p.pos]); v != nil {
			return v
		}
	}
	if o.strictQuery {
		if v := o.unknownQuery(req.Query); v != nil {
			return v
		}
	}
	for i := range o.query {
		p := &o.query[i]
		vals := req.Query[p.name]
		if len(vals) == 0 {
			if p.required {
				return missing(p)
			}
			continue
		}
		if !p.repeated && len(vals) > 1 {
			// Parameter pollution: the upstream may read another copy
			// than the one checked here.
			return paramViolation(p, "repeated")
		}
		if v := o.checkParam(p, vals...); v != nil {
			return v
		}
	}
	for i := range o.header {
		p := &o.header[i]
		vals := req.Header[p.name]
		if len(vals) == 0 {
			if p.required {
				return missing(p)
			}
			continue
		}
		raw := vals[0]
		switch {
		case p.array && len(vals) > 1:
			raw = strings.Join(vals, ",") // repeated field lines are one list (RFC 9110 5.3)
		case len(vals) > 1:
			return paramViolation(p, "repeated") // which one would the upstream read?
		}
		if v := o.checkParam(p, raw); v != nil {
			return v
		}
	}
	if len(o.cookie) > 0 {
		if v := o.checkCookies(req.Header); v != nil {
			return v
		}
	}
	if len(o.complex) > 0 {
		if v := o.checkComplex(req); v != nil {
			return v
		}
	}
	if o.body == nil {
		return nil
	}
	if v := o.checkBody(req); v != nil {
		return v
	}
	return nil // not a nil *Violation: callers test err != nil
}

func missing(p *param) *Violation {
	return &Violation{
		Status: http.StatusBadRequest,
		Reason: ReasonMissingParameter,
		In:     p.in,
		Field:  p.label,
		Rule:   "required",
		Detail: p.in + " parameter " + strconv.Quote(p.label) + " is required",
	}
}

func paramViolation(p *param, rule string) *Violation {
	return &Violation{
		Status: http.StatusBadRequest,
		Reason: ReasonParameter,
		In:     p.in,
		Field:  p.label,
		Rule:   rule,
		Detail: describe(p.in, p.label, rule),
	}
}

// checkParam converts raw parameter values to their JSON types and visits the schema.
// raw holds one value, or for repeated query arrays all of them.
func (o *Operation) checkParam(p *param, raw ...string) *Violation {
	if p.schema == nil {
		return nil
	}
	if len(raw) == 1 && raw[0] == "" && p.allowEmpty {
		return nil
	}
	var value any
	if p.array {
		parts := raw
		if p.sep != "" {
			parts = nil
			if raw[0] != "" {
				parts = strings.Split(raw[0], p.sep)
			}
		}
		items := make([]any, len(parts))
		for i, s := range parts {
			v, ok := convert(p.prim, s)
			if !ok {
				return paramViolation(p, "type")
			}
			items[i] = v
		}
		value = items
	} else {
		v, ok := convert(p.prim, raw[0])
		if !ok {
			return paramViolation(p, "type")
		}
		value = v
	}
	if p.fast != nil && p.fast.accepts(value, 0) {
		return nil
	}
	if err := p.schema.VisitJSON(value, o.paramOpts...); err != nil {
		rule := "schema"
		if se := leafSchemaError(err); se != nil && se.SchemaField != "" {
			rule = se.SchemaField
		}
		return paramViolation(p, rule)
	}
	return nil
}

// convert turns one raw value into the JSON value of its primitive type.
func convert(prim primitive, raw string) (any, bool) {
	switch prim {
	case primInteger:
		n, err := strconv.ParseInt(raw, 10, 64)
		switch {
		case err == nil:
			return n, true
		case errors.Is(err, strconv.ErrRange):
			return json.Number(raw), true // an integer, only too big for int64
		}
		return nil, false
	case primNumber:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return f, true
	case primBoolean:
		switch raw {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		return nil, false
	}
	return raw, true
}

func (o *Operation) unknownQuery(q url.Values) *Violation {
	if len(q) == 0 {
		return nil
	}
	var unknown []string
	for k := range q {
		if _, ok := o.declaredQuery[k]; ok {
			continue
		}
		if slices.ContainsFunc(o.deepObjects, func(name string) bool { return strings.HasPrefix(k, name+"[") }) {
			continue
		}
		unknown = append(unknown, k)
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown) // the same request always reports the same name
	name := clip(unknown[0])
	return &Violation{
		Status: http.StatusBadRequest,
		Reason: ReasonUnknownQuery,
		In:     "query",
		Field:  name,
		Rule:   "declared",
		Detail: "query parameter " + strconv.Quote(name) + " is not declared",
	}
}

func (o *Operation) checkCookies(h http.Header) *Violation {
	var cookies []*http.Cookie
	for _, line := range h["Cookie"] {
		cs, err := http.ParseCookie(line)
		if err != nil {
			continue // a malformed line counts as absent, as net/http's Request.Cookie does
		}
		cookies = append(cookies, cs...)
	}
	for i := range o.cookie {
		p := &o.cookie[i]
		idx := slices.IndexFunc(cookies, func(c *http.Cookie) bool { return c.Name == p.name })
		if idx < 0 {
			if p.required {
				return missing(p)
			}
			continue
		}
		if v := o.checkParam(p, cookies[idx].Value); v != nil {
			return v
		}
	}
	return nil
}

// checkComplex validates arrays, objects and content-encoded parameters with
// kin-openapi's decoders, through a synthetic request (path values are by name there).
// ValidateParameter takes a context but does not block or call out.
func (o *Operation) checkComplex(req *Request) *Violation {
	hr := &http.Request{Method: req.Method, URL: &url.URL{RawQuery: req.Query.Encode()}, Header: req.Header}
	if hr.Header == nil {
		hr.Header = http.Header{}
	}
	in := &openapi3filter.RequestValidationInput{
		Request:     hr,
		QueryParams: req.Query,
		PathParams:  make(map[string]string),
		Options:     o.filterOpts,
	}
	for name, i := range o.pathPos {
		if i < len(req.PathParams) {
			in.PathParams[name] = req.PathParams[i]
		}
	}
	for _, p := range o.complex {
		err := openapi3filter.ValidateParameter(context.Background(), in, p)
		if err == nil {
			continue
		}
		pp := &param{label: p.Name, in: p.In}
		if errors.Is(err, openapi3filter.ErrInvalidRequired) {
			return missing(pp)
		}
		rule := "type" // a value the style decoder could not parse
		if se := leafSchemaError(err); se != nil && se.SchemaField != "" {
			rule = se.SchemaField
		}
		return paramViolation(pp, rule)
	}
	return nil
}

func (o *Operation) checkBody(req *Request) *Violation {
	b := o.body
	if len(req.Body) == 0 && req.BodyValue == nil {
		if b.required {
			return &Violation{
				Status: http.StatusBadRequest,
				Reason: ReasonMissingBody,
				In:     "body",
				Rule:   "required",
				Detail: "request body is required",
			}
		}
		return nil
	}
	m := b.media.match(req.ContentType)
	if m == nil {
		return &Violation{
			Status: http.StatusUnsupportedMediaType,
			Reason: ReasonContentType,
			In:     "header",
			Field:  "Content-Type",
			Rule:   "content",
			Detail: "the request's Content-Type is not one this operation accepts",
		}
	}
	if m.schema == nil {
		return nil
	}
	value, skip, v := decodeBody(m, req.ContentType, req.Body, req.BodyValue, req.Header, "body")
	if v != nil {
		v.Status = http.StatusBadRequest
		return v
	}
	if skip {
		return nil
	}
	if err := m.check(value); err != nil {
		v := schemaViolation(err, "body", ReasonBodySchema)
		v.Status = http.StatusBadRequest
		return v
	}
	if m.ints != nil {
		if tokens, rule, bad := inexactInt(m.ints, value, make([]string, 0, 16), 0); bad {
			field := pointer(tokens)
			return &Violation{Status: http.StatusBadRequest, Reason: ReasonBodySchema, In: "body", Field: field,
				Rule: rule, Detail: describe("body", field, rule)}
		}
	}
	return nil
}

// decodeBody returns the JSON value of a body: the value the stage decoded, or JSON
// decoded now, or another media type through kin-openapi's registered body decoders
// (form, multipart, text, ...). skip is true for a media type no decoder knows (an
// image, say): the operation declares it, so it passes with its schema unchecked.
func decodeBody(m *media, contentType string, raw []byte, decoded any, h http.Header, in string) (value any, skip bool, v *Violation) {
	mt := mediaKey(contentType)
	if isJSON(mt) {
		if decoded != nil {
			return decoded, false, nil
		}
		value, err := DecodeJSON(raw)
		if err != nil {
			return nil, false, &Violation{Reason: ReasonInvalidJSON, In: in, Rule: "json", Detail: in + " is not valid JSON"}
		}
		return value, false, nil
	}
	dec := openapi3filter.RegisteredBodyDecoder(mt)
	if dec == nil {
		return nil, true, nil
	}
	if h == nil {
		h = http.Header{}
	}
	encFn := func(name string) *openapi3.Encoding { return m.mt.Encoding[name] }
	value, err := dec(bytes.NewReader(raw), h, m.ref, encFn)
	if err != nil {
		return nil, false, &Violation{Reason: ReasonBodySchema, In: in, Rule: "type", Detail: in + " cannot be decoded as its Content-Type says"}
	}
	return value, false, nil
}

// leafSchemaError returns the most precise schema error of err: allOf failures are
// reported through the member's error, which names the field.
func leafSchemaError(err error) *openapi3.SchemaError {
	var se *openapi3.SchemaError
	if !errors.As(err, &se) {
		return nil
	}
	for depth := 0; se.SchemaField == "allOf" && se.Origin != nil && depth < 16; depth++ {
		var inner *openapi3.SchemaError
		if !errors.As(se.Origin, &inner) {
			break
		}
		se = inner
	}
	return se
}

// schemaViolation turns a body schema error into a Violation that names the JSON
// pointer and the keyword, never the value (kin-openapi's messages include it).
func schemaViolation(err error, in, reason string) *Violation {
	se := leafSchemaError(err)
	if se == nil {
		return &Violation{Reason: reason, In: in, Rule: "schema", Detail: describe(in, "", "schema")}
	}
	tokens := se.JSONPointer()
	rule := se.SchemaField
	switch rule {
	case "readOnly":
		reason = ReasonReadOnly
	case "writeOnly":
		reason = ReasonWriteOnly
	case "properties":
		// The only "properties" failure is a property the schema does not allow.
		reason, rule = ReasonAdditionalProperty, "additionalProperties"
		if k, ok := extraProperty(se); ok {
			tokens = append(tokens, clip(k))
		}
	case "":
		rule = "schema"
	}
	field := pointer(tokens)
	return &Violation{Reason: reason, In: in, Field: field, Rule: rule, Detail: describe(in, field, rule)}
}

// extraProperty finds the property kin-openapi refused: the first name, in sorted order
// as kin-openapi visits them, that the schema does not declare.
func extraProperty(se *openapi3.SchemaError) (string, bool) {
	obj, ok := se.Value.(map[string]any)
	if !ok || se.Schema == nil {
		return "", false
	}
	var extra []string
	for k := range obj {
		if _, ok := se.Schema.Properties[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return "", false
	}
	sort.Strings(extra)
	return extra[0], true
}

// stringFormats returns the string formats validated per call (kin-openapi's
// WithStringFormatValidators), so that no package global of kin-openapi is changed.
func stringFormats() map[string]openapi3.StringFormatValidator {
	return map[string]openapi3.StringFormatValidator{
		"date": openapi3.NewCallbackValidator(func(s string) error {
			_, err := time.Parse(time.DateOnly, s)
			return err
		}),
		"date-time": openapi3.NewCallbackValidator(func(s string) error {
			_, err := time.Parse(time.RFC3339Nano, s)
			return err
		}),
		"email": openapi3.NewCallbackValidator(validEmail),
		"uuid":  openapi3.NewCallbackValidator(validUUID),
		"ipv4": openapi3.NewCallbackValidator(func(s string) error {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				return errors.New("not an IPv4 address")
			}
			return nil
		}),
		"ipv6": openapi3.NewCallbackValidator(func(s string) error {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is6() || a.Is4In6() && strings.Count(s, ":") < 2 {
				return errors.New("not an IPv6 address")
			}
			return nil
		}),
	}
}

// validEmail is kin-openapi's own loose check (^[^@]+@[^@<>",\s]+$) without a regexp:
// one "@", a non-empty local part, and a domain free of <>", and white space.
func validEmail(s string) error {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s[at+1:], "@<>\", \t\r\n\f\v") {
		return errors.New("not an email address")
	}
	return nil
}

// validUUID accepts the 8-4-4-4-12 hex form (any version, RFC 9562).
func validUUID(s string) error {
	if len(s) != 36 {
		return errors.New("not a uuid")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return errors.New("not a uuid")
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return errors.New("not a uuid")
			}
		}
	}
	return nil
}

// hasIntFormat reports whether an integer schema is reachable from s through
// properties, items, additionalProperties or allOf, and records the answer for every
// schema on the way in memo. A schema met again while its answer is being computed (a
// cycle) counts as reachable, to stay on the safe side.
func hasIntFormat(s *openapi3.Schema, memo map[*openapi3.Schema]bool) bool {
	if s == nil {
		return false
	}
	if v, ok := memo[s]; ok {
		return v
	}
	memo[s] = true // in progress
	found := s.Type.Is(openapi3.TypeInteger)
	for _, p := range s.Properties {
		if p != nil && hasIntFormat(p.Value, memo) {
			found = true
		}
	}
	for _, r := range append(openapi3.SchemaRefs{s.Items, s.AdditionalProperties.Schema}, s.AllOf...) {
		if r != nil && hasIntFormat(r.Value, memo) {
			found = true
		}
	}
	memo[s] = found
	return found
}

// intPlan is what inexactInt follows from one schema from which an integer schema
// is reachable (hasIntFormat): only the properties, items, additionalProperties
// and allOf members that lead to one, so that a body is walked where it can hold
// an integer and nowhere else.
type intPlan struct {
	schema  *openapi3.Schema
	integer bool       // schema is of type integer
	allOf   []*intPlan // members that lead to an integer
	props   []intProp  // properties that lead to an integer
	others  *intPlan   // additionalProperties, when it leads to an integer
	items   *intPlan
}

type intProp struct {
	name string
	plan *intPlan
}

// newIntPlan returns the plan of s, nil when no integer schema is reachable from
// it (ints, from hasIntFormat, says which are). plans holds the plans made so far:
// schemas may be cyclic.
func newIntPlan(s *openapi3.Schema, ints map[*openapi3.Schema]bool, plans map[*openapi3.Schema]*intPlan) *intPlan {
	if s == nil || !ints[s] {
		return nil
	}
	if p, ok := plans[s]; ok {
		return p
	}
	p := &intPlan{schema: s, integer: s.Type.Is(openapi3.TypeInteger)}
	plans[s] = p
	of := func(r *openapi3.SchemaRef) *intPlan {
		if r == nil {
			return nil
		}
		return newIntPlan(r.Value, ints, plans)
	}
	for _, m := range s.AllOf {
		if mp := of(m); mp != nil {
			p.allOf = append(p.allOf, mp)
		}
	}
	for name, r := range s.Properties {
		if pp := of(r); pp != nil {
			p.props = append(p.props, intProp{name: name, plan: pp})
		}
	}
	p.others = of(s.AdditionalProperties.Schema)
	p.items = of(s.Items)
	return p
}

// inexactInt re-checks integer schemas on the exact json.Number text, after
// kin-openapi accepted the value through float64: there 1000.00000000000000001 rounds
// to 1000 and passes "type: integer" and "maximum: 1000", and 2^63 rounds to MaxInt64
// and passes format int64. It checks that the number is an integer, its minimum and
// maximum, and the int32/int64 range, all exactly. It follows properties, items,
// additionalProperties and allOf; values under oneOf/anyOf keep kin-openapi's float64
// check. It returns the JSON pointer of the first integer that fails, and the rule.
func inexactInt(p *intPlan, v any, path []string, depth int) ([]string, string, bool) {
	if p == nil || depth > maxJSONDepth {
		return nil, "", false
	}
	for _, m := range p.allOf {
		if at, rule, bad := inexactInt(m, v, path, depth+1); bad {
			return at, rule, true
		}
	}
	switch v := v.(type) {
	case json.Number:
		if !p.integer {
			return nil, "", false
		}
		if rule := exactInteger(p.schema, string(v)); rule != "" {
			return slices.Clone(path), rule, true
		}
	case map[string]any:
		for _, prop := range p.props {
			item, ok := v[prop.name]
			if !ok {
				continue
			}
			if at, rule, bad := inexactInt(prop.plan, item, append(path, prop.name), depth+1); bad {
				return at, rule, true
			}
		}
		if p.others == nil {
			return nil, "", false
		}
		for k, item := range v {
			if _, declared := p.schema.Properties[k]; declared {
				continue // checked above, if it can hold an integer
			}
			if at, rule, bad := inexactInt(p.others, item, append(path, k), depth+1); bad {
				return at, rule, true
			}
		}
	case []any:
		if p.items == nil {
			return nil, "", false
		}
		for i, item := range v {
			if at, rule, bad := inexactInt(p.items, item, append(path, strconv.Itoa(i)), depth+1); bad {
				return at, rule, true
			}
		}
	}
	return nil, "", false
}

// shortInteger reports whether n is an optional '-' and 1 to 15 digits.
func shortInteger(n string) bool {
	n = strings.TrimPrefix(n, "-")
	if n == "" || len(n) > 15 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// exactInteger checks the number text n against the integer schema s without
// rounding; it returns the rule broken, or "".
func exactInteger(s *openapi3.Schema, n string) string {
	if shortInteger(n) && (s.Format != "int32" || len(n) <= 9) {
		// A plain integer of at most 15 digits is exact as a float64:
		// kin-openapi's own checks were exact. (A longer int32 is checked
		// below: 10 to 15 digits can overflow it.)
		return ""
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return "type"
	}
	if !r.IsInt() {
		return "type"
	}
	if s.Min != nil {
		min := new(big.Rat).SetFloat64(*s.Min)
		if min != nil && (r.Cmp(min) < 0 || r.Cmp(min) == 0 && s.ExclusiveMin.IsTrue()) {
			return "minimum"
		}
	}
	if s.Max != nil {
		max := new(big.Rat).SetFloat64(*s.Max)
		if max != nil && (r.Cmp(max) > 0 || r.Cmp(max) == 0 && s.ExclusiveMax.IsTrue()) {
			return "maximum"
		}
	}
	if b := s.ExclusiveMin.Value; b != nil { // OpenAPI 3.1: the bound itself
		if r.Cmp(new(big.Rat).SetFloat64(*b)) <= 0 {
			return "exclusiveMinimum"
		}
	}
	if b := s.ExclusiveMax.Value; b != nil {
		if r.Cmp(new(big.Rat).SetFloat64(*b)) >= 0 {
			return "exclusiveMaximum"
		}
	}
	bits := 0
	switch s.Format {
	case "int64":
		bits = 64
	case "int32":
		bits = 32
	default:
		return ""
	}
	if !r.Num().IsInt64() || r.Num().Int64() < -(1<<(bits-1)) || r.Num().Int64() > 1<<(bits-1)-1 {
		return "format"
	}
	return ""
}
