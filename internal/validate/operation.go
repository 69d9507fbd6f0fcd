package validate

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// Operation is one operation compiled for one gateway route. It is immutable and safe
// for concurrent use.
type Operation struct {
	info        OperationInfo
	strictQuery bool

	path   []param // path parameters, pos = index into Request.PathParams
	query  []param
	header []param
	cookie []param
	// complex holds parameters kin-openapi's decoders handle (arrays, objects,
	// content-encoded); they are validated through openapi3filter.ValidateParameter.
	complex []*openapi3.Parameter

	pathPos       map[string]int // path parameter name -> index into Request.PathParams
	declaredQuery map[string]struct{}
	deepObjects   []string // query parameter names with style deepObject ("filter[...]")

	body      *body
	responses map[int]*mediaSet
	ranges    [6]*mediaSet // "1XX".."5XX"
	dflt      *mediaSet

	paramOpts     []openapi3.SchemaValidationOption
	stringFormats map[string]openapi3.StringFormatValidator // of paramOpts
	filterOpts    *openapi3filter.Options
}

// primitive is how a parameter's raw string becomes a JSON value.
type primitive uint8

const (
	primString primitive = iota
	primInteger
	primNumber
	primBoolean
)

type param struct {
	name       string // header parameters: canonical form
	label      string // the name as the spec writes it, for violations
	in         string
	required   bool
	allowEmpty bool
	prim       primitive // of the value, or of the items of an array
	array      bool
	sep        string // array items separator in one value ("," for form and simple)
	repeated   bool   // array items as repeated query keys (form, explode)
	schema     *openapi3.Schema
	fast       *fastSchema // schema's quick check (fastcheck.go), nil where it has none
	pos        int
}

type body struct {
	required bool
	media    mediaSet
}

// mediaSet is the content of a request body or response, by media range.
type mediaSet struct {
	exact    map[string]*media // "application/json"
	wildcard map[string]*media // "application/*" keyed by "application"
	any      *media            // "*/*"
	empty    bool              // no content declared
}

type media struct {
	ref    *openapi3.SchemaRef
	schema *openapi3.Schema
	mt     *openapi3.MediaType
	opts   []openapi3.SchemaValidationOption
	// visit is the schema a body is visited against first, with visitOpts:
	// the directed copy of schema, which needs no request or response mode
	// (direction.go). When exact is false, a refusal is visited again
	// against schema with opts, for the error the mode reports first.
	visit     *openapi3.Schema
	visitOpts []openapi3.SchemaValidationOption
	exact     bool
	// fast is visit compiled for a valid body's quick check (fastcheck.go), nil
	// where it uses keywords the quick check does not know.
	fast *fastSchema
	// ints is the walk to the schemas from which an integer schema is reachable (nil
	// when none is): kin-openapi checks integers on a float64, which cannot tell 2^63
	// from 2^63-1, so they are checked again on the exact text.
	ints *intPlan
}

// Info returns the operation this was compiled from.
func (o *Operation) Info() OperationInfo { return o.info }

// Compile prepares one operation for validation with opts. It is called once per route
// at config load; routePath is the route's template, which must have the structure of
// the spec's path (possibly with a server prefix). Path parameters are later passed to
// ValidateRequest by position, in the order they appear in routePath.
func (s *Spec) Compile(info OperationInfo, routePath string, opts Options) (*Operation, error) {
	idx := -1
	for i, op := range s.ops {
		if op.Method == strings.ToUpper(info.Method) && op.Path == info.Path {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("compile %s %s: no such operation in %s", info.Method, info.Path, s.path)
	}
	op := s.opRefs[idx]
	info = s.ops[idx]

	prefix, ok := "", false
	route := shapeOf(routePath)
	for _, p := range append([]string{""}, s.prefixes...) {
		if shapeOf(p+info.Path) == route {
			prefix, ok = p, true
			break
		}
	}
	if !ok {
		return nil, fmt.Errorf("compile %s %s: route %q does not have the path's structure", info.Method, info.Path, routePath)
	}

	stringFormats := stringFormats()
	formats := openapi3.WithStringFormatValidators(stringFormats)
	o := &Operation{
		info:          info,
		strictQuery:   opts.StrictQuery,
		declaredQuery: make(map[string]struct{}),
		responses:     make(map[int]*mediaSet),
		paramOpts:     []openapi3.SchemaValidationOption{formats},
		stringFormats: stringFormats,
		filterOpts: &openapi3filter.Options{
			SkipSettingDefaults:     true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{formats},
		},
	}

	// Route position of each spec path parameter: the k-th "{...}" of the route is the
	// k-th of prefix+path; the prefix's own ones are server variables.
	pos := make(map[string]int)
	skip := len(paramNames(prefix))
	for k, name := range paramNames(info.Path) {
		pos[name] = k + skip
	}
	o.pathPos = pos

	for _, p := range s.parametersOf(info.Path, op) {
		if err := o.addParam(p, pos); err != nil {
			return nil, fmt.Errorf("compile %s %s: %w", info.Method, info.Path, err)
		}
	}

	reqOpts := []openapi3.SchemaValidationOption{openapi3.VisitAsRequest(), formats}
	respOpts := []openapi3.SchemaValidationOption{openapi3.VisitAsResponse(), formats}
	if !opts.Strict {
		reqOpts = append(reqOpts, openapi3.DisableReadOnlyValidation())
		respOpts = append(respOpts, openapi3.DisableWriteOnlyValidation())
	}
	reqDir := directedOpts{dir: dirRequest, enforce: opts.Strict, opts: reqOpts, plain: o.paramOpts, formats: o.stringFormats}
	respDir := directedOpts{dir: dirResponse, enforce: opts.Strict, opts: respOpts, plain: o.paramOpts, formats: o.stringFormats}
	schemaOf := func(ref *openapi3.SchemaRef) *openapi3.Schema {
		if ref == nil || ref.Value == nil {
			return nil
		}
		if opts.Strict {
			return s.strictSchema(ref.Value)
		}
		return ref.Value
	}

	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		o.body = &body{required: rb.Value.Required, media: s.mediaSetOf(rb.Value.Content, schemaOf, reqDir)}
	}
	if op.Responses != nil {
		for code, ref := range op.Responses.Map() {
			if ref == nil || ref.Value == nil {
				continue
			}
			ms := s.mediaSetOf(ref.Value.Content, schemaOf, respDir)
			switch {
			case code == "default":
				o.dflt = &ms
			case len(code) == 3 && (code[1] == 'X' || code[1] == 'x') && (code[2] == 'X' || code[2] == 'x') && code[0] >= '1' && code[0] <= '5':
				o.ranges[code[0]-'0'] = &ms
			default:
				n, err := strconv.Atoi(code)
				if err != nil {
					return nil, fmt.Errorf("compile %s %s: response %q: %w", info.Method, info.Path, code, err)
				}
				o.responses[n] = &ms
			}
		}
	}
	return o, nil
}

// parametersOf merges the path item's parameters with the operation's, which win.
func (s *Spec) parametersOf(path string, op *openapi3.Operation) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	seen := make(map[string]bool)
	add := func(ps openapi3.Parameters) {
		for _, ref := range ps {
			if ref == nil || ref.Value == nil {
				continue
			}
			key := ref.Value.In + " " + ref.Value.Name
			if ref.Value.In == openapi3.ParameterInHeader {
				key = ref.Value.In + " " + http.CanonicalHeaderKey(ref.Value.Name)
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, ref.Value)
		}
	}
	add(op.Parameters)
	if item := s.doc.Paths.Value(path); item != nil {
		add(item.Parameters)
	}
	return out
}

func (o *Operation) addParam(p *openapi3.Parameter, pos map[string]int) error {
	if p.In == openapi3.ParameterInHeader {
		switch http.CanonicalHeaderKey(p.Name) {
		case "Accept", "Content-Type", "Authorization":
			// OpenAPI: "the parameter definition SHALL be ignored" (requestBody and
			// securitySchemes describe these).
			return nil
		}
	}
	if p.In == openapi3.ParameterInQuery {
		o.declaredQuery[p.Name] = struct{}{}
		if p.Style == openapi3.SerializationDeepObject {
			o.deepObjects = append(o.deepObjects, p.Name)
		}
	}
	prim, simple := primitiveOf(p)
	pp := param{
		name:       p.Name,
		label:      p.Name,
		in:         p.In,
		required:   p.Required || p.In == openapi3.ParameterInPath,
		allowEmpty: p.AllowEmptyValue,
		prim:       prim,
	}
	if !simple {
		if !arrayParam(p, &pp) {
			o.complex = append(o.complex, p)
			return nil
		}
	}
	if p.Schema != nil && p.Schema.Value != nil {
		pp.schema = p.Schema.Value
		pp.fast = compileFast(pp.schema, o.stringFormats)
	}
	switch p.In {
	case openapi3.ParameterInPath:
		i, ok := pos[p.Name]
		if !ok {
			return fmt.Errorf("path parameter %q is not in the path", p.Name)
		}
		pp.pos = i
		o.path = append(o.path, pp)
	case openapi3.ParameterInQuery:
		o.query = append(o.query, pp)
	case openapi3.ParameterInHeader:
		pp.name = http.CanonicalHeaderKey(p.Name)
		o.header = append(o.header, pp)
	case openapi3.ParameterInCookie:
		o.cookie = append(o.cookie, pp)
	default:
		return fmt.Errorf("parameter %q: unknown location %q", p.Name, p.In)
	}
	return nil
}

// primitiveOf reports how to convert the parameter's raw value, and false when the
// parameter needs kin-openapi's style decoders (arrays, objects, content, composition).
func primitiveOf(p *openapi3.Parameter) (primitive, bool) {
	if p.Content != nil || p.Schema == nil || p.Schema.Value == nil {
		return 0, p.Content == nil // no schema at all: only presence is checked
	}
	sc := p.Schema.Value
	if len(sc.AllOf)+len(sc.AnyOf)+len(sc.OneOf) > 0 || sc.Not != nil || sc.Type == nil {
		return 0, false
	}
	types := sc.Type.Slice()
	var prim primitive
	n := 0
	for _, t := range types {
		switch t {
		case openapi3.TypeNull:
			continue
		case openapi3.TypeString:
			prim = primString
		case openapi3.TypeInteger:
			prim = primInteger
		case openapi3.TypeNumber:
			prim = primNumber
		case openapi3.TypeBoolean:
			prim = primBoolean
		default:
			return 0, false
		}
		n++
	}
	if n != 1 {
		return 0, false
	}
	return prim, true
}

// arrayParam fills pp for an array of primitives in a style this package splits itself
// (query form/spaceDelimited/pipeDelimited, path and header simple), false otherwise.
func arrayParam(p *openapi3.Parameter, pp *param) bool {
	if p.Content != nil || p.Schema == nil || p.Schema.Value == nil {
		return false
	}
	sc := p.Schema.Value
	if !sc.Type.Is(openapi3.TypeArray) || sc.Items == nil || sc.Items.Value == nil ||
		len(sc.AllOf)+len(sc.AnyOf)+len(sc.OneOf) > 0 || sc.Not != nil {
		return false
	}
	prim, ok := primitiveOf(&openapi3.Parameter{Schema: sc.Items})
	if !ok || sc.Items.Value.Type == nil {
		return false
	}
	sm, err := p.SerializationMethod()
	if err != nil {
		return false
	}
	switch {
	case p.In == openapi3.ParameterInQuery && sm.Style == openapi3.SerializationForm && sm.Explode:
		pp.repeated = true
	case p.In == openapi3.ParameterInQuery && sm.Style == openapi3.SerializationForm:
		pp.sep = ","
	case p.In == openapi3.ParameterInQuery && sm.Style == openapi3.SerializationSpaceDelimited && !sm.Explode:
		pp.sep = " "
	case p.In == openapi3.ParameterInQuery && sm.Style == openapi3.SerializationPipeDelimited && !sm.Explode:
		pp.sep = "|"
	case (p.In == openapi3.ParameterInPath || p.In == openapi3.ParameterInHeader) && sm.Style == openapi3.SerializationSimple:
		pp.sep = ","
	default:
		return false
	}
	pp.array, pp.prim = true, prim
	return true
}

// directedOpts are the visit options of one direction's bodies: opts in
// kin-openapi's mode for the direction, plain without it.
type directedOpts struct {
	dir     direction
	enforce bool // readOnly or writeOnly is refused (strict)
	opts    []openapi3.SchemaValidationOption
	plain   []openapi3.SchemaValidationOption
	formats map[string]openapi3.StringFormatValidator // the string formats of plain
}

func (s *Spec) mediaSetOf(content openapi3.Content, schemaOf func(*openapi3.SchemaRef) *openapi3.Schema, do directedOpts) mediaSet {
	opts := do.opts
	ms := mediaSet{
		exact:    make(map[string]*media),
		wildcard: make(map[string]*media),
		empty:    len(content) == 0,
	}
	for key, mt := range content {
		if mt == nil {
			continue
		}
		m := &media{ref: mt.Schema, schema: schemaOf(mt.Schema), mt: mt, opts: opts}
		if m.schema != nil {
			ints := make(map[*openapi3.Schema]bool)
			if hasIntFormat(m.schema, ints) {
				m.ints = newIntPlan(m.schema, ints, make(map[*openapi3.Schema]*intPlan))
			}
		}
		if s.is31 && m.schema != nil && uses2020(m.schema) {
			// kin-openapi's built-in validator ignores JSON Schema 2020-12 keywords;
			// its 2020-12 path compiles the schema on every call (slow but correct),
			// so it is used only where such keywords appear.
			m.opts = append(append([]openapi3.SchemaValidationOption(nil), opts...), openapi3.EnableJSONSchema2020())
		}
		// The directed copy, where it can say what the mode checks.
		m.visit, m.visitOpts, m.exact = m.schema, m.opts, true
		if m.schema != nil && !(s.is31 && uses2020(m.schema)) {
			if v, exact := s.directed(m.schema, do.dir, do.enforce, opts); v != nil {
				m.visit, m.visitOpts, m.exact = v, do.plain, exact
				m.fast = compileFast(v, do.formats)
			}
		}
		for r := range strings.SplitSeq(key, ",") {
			r = mediaKey(r)
			switch {
			case r == "*/*":
				ms.any = m
			case strings.HasSuffix(r, "/*"):
				ms.wildcard[strings.TrimSuffix(r, "/*")] = m
			case r != "":
				ms.exact[r] = m
			}
		}
	}
	return ms
}

// match returns the declared media for a Content-Type header value, nil when none.
func (ms *mediaSet) match(contentType string) *media {
	mt := mediaKey(contentType)
	if m := ms.exact[mt]; m != nil {
		return m
	}
	typ, _, ok := strings.Cut(mt, "/")
	if !ok {
		return nil
	}
	if m := ms.wildcard[typ]; m != nil {
		return m
	}
	return ms.any
}

// mediaKey reduces a Content-Type value to its lower-case media type.
func mediaKey(ct string) string {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// uses2020 reports whether a schema (or one it reaches) uses JSON Schema 2020-12
// keywords the built-in validator does not enforce.
func uses2020(root *openapi3.Schema) bool {
	seen := make(map[*openapi3.Schema]bool)
	var walk func(s *openapi3.Schema) bool
	walk = func(s *openapi3.Schema) bool {
		if s == nil || seen[s] {
			return false
		}
		seen[s] = true
		if s.Const != nil || len(s.PrefixItems) != 0 || s.Contains != nil ||
			len(s.PatternProperties) != 0 || len(s.DependentSchemas) != 0 || s.PropertyNames != nil ||
			s.UnevaluatedItems.Has != nil || s.UnevaluatedItems.Schema != nil ||
			s.UnevaluatedProperties.Has != nil || s.UnevaluatedProperties.Schema != nil ||
			s.If != nil || s.Then != nil || s.Else != nil || len(s.DependentRequired) != 0 || s.ContentSchema != nil {
			return true
		}
		refs := []*openapi3.SchemaRef{s.Items, s.Not, s.AdditionalProperties.Schema}
		refs = append(refs, s.AllOf...)
		refs = append(refs, s.AnyOf...)
		refs = append(refs, s.OneOf...)
		for _, p := range s.Properties {
			refs = append(refs, p)
		}
		for _, r := range refs {
			if r != nil && walk(r.Value) {
				return true
			}
		}
		return false
	}
	return walk(root)
}

// check visits a decoded body against the media's schema and returns kin-openapi's
// error, the one its request or response mode would report.
func (m *media) check(value any) error {
	if m.fast != nil && m.fast.accepts(value, 0) {
		return nil
	}
	err := m.visit.VisitJSON(value, m.visitOpts...)
	if err == nil || m.exact {
		return err
	}
	return m.schema.VisitJSON(value, m.opts...)
}
