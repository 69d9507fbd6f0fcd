package validate

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
)

// kin-openapi's Schema.VisitJSON builds a validation context per call, sorts the
// names of every object it visits and prepares an error for each failed keyword:
// most of the cost of a valid body. A fastSchema answers only "valid" for the
// schemas most bodies use (typed values, closed or open objects, arrays, enums
// of strings, patterns, string formats, bounds), and "don't know" for
// everything else; kin-openapi then decides, and words the error. So a fastSchema
// must never accept a value that kin-openapi refuses: it checks each keyword it
// knows exactly as kin-openapi's validator for OpenAPI 3.0 schemas does (without
// request or response mode), and a schema with any other keyword that can refuse
// a value is not compiled at all. TestCheckSameAsMode, TestParamQuickCheck and
// FuzzMediaCheck hold it to that.

// fastKind is the one type a fastSchema accepts.
type fastKind uint8

const (
	fastAny     fastKind = iota // the empty schema: any value but null
	fastNever                   // the false schema
	fastString                  //
	fastNumber                  //
	fastInteger                 //
	fastBoolean                 //
	fastObject                  //
	fastArray                   //
)

// fastSchema is one schema compiled for its quick check, accepts.
type fastSchema struct {
	kind     fastKind
	nullable bool

	// strings
	enum           []string // nil: no enum
	minLen, maxLen int64    // in characters, as kin-openapi counts them; maxLen -1: none
	pattern        *regexp.Regexp
	format         openapi3.StringFormatValidator

	// numbers
	min, max         float64 // -Inf, +Inf: none
	exclMin, exclMax bool
	intFormat        openapi3.IntegerFormatValidator // of an integer
	numFormat        openapi3.NumberFormatValidator  // of a number

	// objects
	props              map[string]*fastSchema
	required           []string
	closed             bool        // additionalProperties: false
	others             *fastSchema // additionalProperties' schema, nil: any
	minProps, maxProps int64       // maxProps -1: none

	// arrays
	items              *fastSchema // nil: any
	minItems, maxItems int64       // maxItems -1: none
}

// compileFast compiles s and every schema it reaches, or returns nil when one of
// them uses a keyword the quick check does not know. formats are the string formats
// the visits use (stringFormats).
func compileFast(s *openapi3.Schema, formats map[string]openapi3.StringFormatValidator) *fastSchema {
	c := fastCompiler{formats: formats, done: make(map[*openapi3.Schema]*fastSchema)}
	f := c.compile(s)
	if c.failed {
		return nil
	}
	return f
}

type fastCompiler struct {
	formats map[string]openapi3.StringFormatValidator
	done    map[*openapi3.Schema]*fastSchema
	failed  bool
}

func (c *fastCompiler) compile(s *openapi3.Schema) *fastSchema {
	if s == nil {
		c.failed = true
		return nil
	}
	if f, ok := c.done[s]; ok {
		return f
	}
	f := &fastSchema{nullable: s.Nullable, maxLen: -1, maxProps: -1, maxItems: -1, min: math.Inf(-1), max: math.Inf(1)}
	c.done[s] = f // before recursing: schemas may be cyclic
	if !fastSupported(s) {
		c.failed = true
		return f
	}
	if s.Always != nil {
		f.kind = fastNever
		if *s.Always {
			f.kind, f.nullable = fastAny, true
		}
		return f
	}
	if s.IsEmpty() {
		f.kind = fastAny
		return f
	}
	if s.Type == nil || len(s.Type.Slice()) != 1 {
		c.failed = true // several types, or none with other keywords
		return f
	}
	switch t := s.Type.Slice()[0]; t {
	case openapi3.TypeString:
		f.kind = fastString
		c.compileString(s, f)
	case openapi3.TypeNumber, openapi3.TypeInteger:
		f.kind = fastNumber
		if t == openapi3.TypeInteger {
			f.kind = fastInteger
		}
		c.compileNumber(s, f)
	case openapi3.TypeBoolean:
		f.kind = fastBoolean
	case openapi3.TypeObject:
		f.kind = fastObject
		c.compileObject(s, f)
	case openapi3.TypeArray:
		f.kind = fastArray
		f.minItems = int64(s.MinItems)
		if s.MaxItems != nil {
			f.maxItems = int64(*s.MaxItems)
		}
		if s.Items != nil {
			f.items = c.compile(s.Items.Value)
		}
	default:
		c.failed = true
	}
	if len(s.Enum) > 0 && f.kind != fastString {
		c.failed = true
	}
	if f.minLen < 0 || f.minItems < 0 || f.minProps < 0 || f.maxLen < -1 || f.maxItems < -1 || f.maxProps < -1 ||
		s.MaxLength != nil && *s.MaxLength > math.MaxInt64 || s.MaxItems != nil && *s.MaxItems > math.MaxInt64 ||
		s.MaxProps != nil && *s.MaxProps > math.MaxInt64 {
		c.failed = true // a bound beyond int64
	}
	return f
}

// fastSupported reports whether s uses only keywords the quick check knows (or that
// kin-openapi's 3.0 validator ignores).
func fastSupported(s *openapi3.Schema) bool {
	return len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) == 0 && s.Not == nil &&
		s.MultipleOf == nil && !s.UniqueItems && len(s.PrefixItems) == 0 &&
		s.Contains == nil && s.MinContains == nil && s.MaxContains == nil &&
		len(s.PatternProperties) == 0 && len(s.DependentSchemas) == 0 && len(s.DependentRequired) == 0 &&
		s.PropertyNames == nil && s.UnevaluatedItems.Has == nil && s.UnevaluatedItems.Schema == nil &&
		s.UnevaluatedProperties.Has == nil && s.UnevaluatedProperties.Schema == nil &&
		s.If == nil && s.Then == nil && s.Else == nil && s.Const == nil && s.Discriminator == nil
}

func (c *fastCompiler) compileString(s *openapi3.Schema, f *fastSchema) {
	if len(s.Enum) > 0 {
		f.enum = make([]string, 0, len(s.Enum))
		for _, v := range s.Enum {
			str, ok := v.(string)
			if !ok {
				c.failed = true
				return
			}
			f.enum = append(f.enum, str)
		}
	}
	f.minLen = int64(s.MinLength)
	if s.MaxLength != nil {
		f.maxLen = int64(*s.MaxLength)
	}
	if s.Pattern != "" {
		// As kin-openapi compiles it (schema_pattern.go, without a custom
		// compiler): \uXXXX rewritten for Go's syntax.
		re, err := regexp.Compile(fastPatternCodepoints.ReplaceAllString(s.Pattern, `\x{${code}}`))
		if err != nil {
			c.failed = true
			return
		}
		f.pattern = re
	}
	if s.Format != "" {
		// The visit's own formats first, then the process-wide ones, as
		// kin-openapi looks them up; a format in neither accepts any string.
		if v, ok := c.formats[s.Format]; ok {
			f.format = v
		} else if v, ok := openapi3.SchemaStringFormats[s.Format]; ok {
			f.format = v
		}
	}
}

// fastPatternCodepoints is kin-openapi's patRewriteCodepoints.
var fastPatternCodepoints = regexp.MustCompile(`(?P<replaced_with_slash_x>\\u)(?P<code>[0-9A-F]{4})`)

func (c *fastCompiler) compileNumber(s *openapi3.Schema, f *fastSchema) {
	if s.Format != "" {
		// kin-openapi checks number and integer formats through the validators
		// registered process-wide (int32 and int64 by default); a format
		// without one accepts any number.
		if f.kind == fastInteger {
			f.intFormat = openapi3.SchemaIntegerFormats[s.Format]
		} else {
			f.numFormat = openapi3.SchemaNumberFormats[s.Format]
		}
	}
	if s.Min != nil {
		f.min = *s.Min
	}
	if s.Max != nil {
		f.max = *s.Max
	}
	// OpenAPI 3.1: the bound itself; 3.0: minimum and maximum become exclusive.
	switch eb := s.ExclusiveMin; {
	case eb.Value != nil:
		f.min, f.exclMin = max(f.min, *eb.Value), true
		if s.Min != nil && *s.Min > *eb.Value {
			c.failed = true // both bounds, of different kinds: left to kin-openapi
		}
	case eb.Bool != nil && *eb.Bool && s.Min != nil:
		f.exclMin = true
	}
	switch eb := s.ExclusiveMax; {
	case eb.Value != nil:
		f.max, f.exclMax = min(f.max, *eb.Value), true
		if s.Max != nil && *s.Max < *eb.Value {
			c.failed = true
		}
	case eb.Bool != nil && *eb.Bool && s.Max != nil:
		f.exclMax = true
	}
	if math.IsNaN(f.min) || math.IsNaN(f.max) {
		c.failed = true
	}
}

func (c *fastCompiler) compileObject(s *openapi3.Schema, f *fastSchema) {
	if len(s.Properties) > 0 {
		f.props = make(map[string]*fastSchema, len(s.Properties))
		for k, r := range s.Properties {
			if r == nil {
				c.failed = true
				return
			}
			f.props[k] = c.compile(r.Value)
		}
	}
	f.required = s.Required
	f.minProps = int64(s.MinProps)
	if s.MaxProps != nil {
		f.maxProps = int64(*s.MaxProps)
	}
	if has := s.AdditionalProperties.Has; has != nil && !*has {
		f.closed = true
	} else if r := s.AdditionalProperties.Schema; r != nil {
		f.others = c.compile(r.Value)
	}
}

// accepts reports whether v is valid against f; false means "don't know". depth
// is v's nesting in the document.
func (f *fastSchema) accepts(v any, depth int) bool {
	if v == nil {
		return f.nullable
	}
	if depth > maxJSONDepth {
		return false
	}
	switch f.kind {
	case fastAny:
		return true
	case fastString:
		s, ok := v.(string)
		return ok && f.acceptsString(s)
	case fastNumber, fastInteger:
		var x float64
		switch n := v.(type) {
		case json.Number:
			var err error
			if x, err = strconv.ParseFloat(string(n), 64); err != nil {
				return false
			}
		case float64:
			x = n
		case int64:
			x = float64(n)
		default:
			return false
		}
		return f.acceptsNumber(x)
	case fastBoolean:
		_, ok := v.(bool)
		return ok
	case fastObject:
		m, ok := v.(map[string]any)
		return ok && f.acceptsObject(m, depth)
	case fastArray:
		a, ok := v.([]any)
		if !ok || int64(len(a)) < f.minItems || f.maxItems >= 0 && int64(len(a)) > f.maxItems {
			return false
		}
		if f.items == nil {
			return true
		}
		for _, item := range a {
			if !f.items.accepts(item, depth+1) {
				return false
			}
		}
		return true
	}
	return false // fastNever
}

func (f *fastSchema) acceptsString(s string) bool {
	if f.enum != nil {
		found := false
		for _, e := range f.enum {
			if e == s {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.minLen != 0 || f.maxLen >= 0 {
		n := int64(utf8.RuneCountInString(s))
		if n < f.minLen || f.maxLen >= 0 && n > f.maxLen {
			return false
		}
	}
	if f.pattern != nil && !f.pattern.MatchString(s) {
		return false
	}
	return f.format == nil || f.format.Validate(s) == nil
}

func (f *fastSchema) acceptsNumber(x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if f.kind == fastInteger && x != math.Trunc(x) {
		return false
	}
	switch {
	case f.intFormat != nil:
		// As kin-openapi's validateIntegerFormat converts it: 2^63 is
		// MaxInt64, and a value beyond int64 is refused.
		var n int64
		switch {
		case x == float64(math.MaxInt64):
			n = math.MaxInt64
		case x >= float64(math.MinInt64) && x < float64(math.MaxInt64):
			n = int64(x)
		default:
			return false
		}
		if f.intFormat.Validate(n) != nil {
			return false
		}
	case f.numFormat != nil:
		if f.numFormat.Validate(x) != nil {
			return false
		}
	}
	if x < f.min || f.exclMin && x == f.min {
		return false
	}
	return !(x > f.max || f.exclMax && x == f.max)
}

func (f *fastSchema) acceptsObject(m map[string]any, depth int) bool {
	if n := int64(len(m)); n < f.minProps || f.maxProps >= 0 && n > f.maxProps {
		return false
	}
	for _, k := range f.required {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	for k, v := range m {
		p, declared := f.props[k]
		switch {
		case declared:
		case f.closed:
			return false
		case f.others != nil:
			p = f.others
		default:
			continue
		}
		if !p.accepts(v, depth+1) {
			return false
		}
	}
	return true
}
