package validate

import (
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// Strict mode closes object schemas that leave additionalProperties unset, against mass
// assignment. The loaded document is shared by strict and non-strict routes, so it is
// never changed: the first strict Compile builds closed copies of every schema the
// operations reach, once per Spec, and later ones look them up.
//
// Rules of the transformation:
//   - An object schema (type object, or no type with properties or mergeable allOf)
//     that does not set additionalProperties (true, false or a schema) gets
//     additionalProperties: false. Schemas that set it are left as written.
//   - allOf: closing each member would reject the other members' properties. So the
//     members stay open at their top level, and the parent is closed with the union of
//     its own and all members' properties (nested allOf included). When a member cannot
//     be merged statically (it allows extra properties explicitly, or uses
//     oneOf/anyOf/not, or is not an object), the parent stays open too.
//   - oneOf/anyOf alternatives are closed individually. When the parent itself declares
//     properties next to oneOf/anyOf, the alternatives stay open (closing them would
//     reject the parent's properties) and so does the parent.
//   - Property, items, additionalProperties and prefixItems subschemas are transformed
//     recursively (and closed, being values of their own). `not`, if/then/else,
//     patternProperties and unevaluatedProperties are left alone: closing inside `not`
//     would widen what it accepts.
type strictCache struct {
	once   sync.Once
	closed map[*openapi3.Schema]*openapi3.Schema
}

// strictSchema returns the closed copy of a schema the document's operations reach.
func (s *Spec) strictSchema(orig *openapi3.Schema) *openapi3.Schema {
	s.strict.once.Do(s.buildStrict)
	if c, ok := s.strict.closed[orig]; ok {
		return c
	}
	// Not reached from an operation (cannot happen for schemas Compile asks for);
	// transform it on its own rather than return it open.
	t := newStrictifier()
	return t.copy(orig, true)
}

func (s *Spec) buildStrict() {
	t := newStrictifier()
	visit := func(ref *openapi3.SchemaRef) {
		if ref != nil && ref.Value != nil {
			t.copy(ref.Value, true)
		}
	}
	content := func(c openapi3.Content) {
		for _, mt := range c {
			if mt != nil {
				visit(mt.Schema)
			}
		}
	}
	for _, op := range s.opRefs {
		if rb := op.RequestBody; rb != nil && rb.Value != nil {
			content(rb.Value.Content)
		}
		if op.Responses != nil {
			for _, r := range op.Responses.Map() {
				if r != nil && r.Value != nil {
					content(r.Value.Content)
				}
			}
		}
	}
	s.strict.closed = t.closed
}

type strictifier struct {
	closed map[*openapi3.Schema]*openapi3.Schema // copies closed at the top (when object-like)
	open   map[*openapi3.Schema]*openapi3.Schema // copies open at the top (allOf members)
}

func newStrictifier() *strictifier {
	return &strictifier{
		closed: make(map[*openapi3.Schema]*openapi3.Schema),
		open:   make(map[*openapi3.Schema]*openapi3.Schema),
	}
}

func (t *strictifier) copy(s *openapi3.Schema, closeTop bool) *openapi3.Schema {
	if s == nil {
		return nil
	}
	memo := t.open
	if closeTop {
		memo = t.closed
	}
	if c, ok := memo[s]; ok {
		return c
	}
	c := new(openapi3.Schema)
	*c = *s
	memo[s] = c // before recursing: schemas may be cyclic

	if len(s.Properties) > 0 {
		c.Properties = make(openapi3.Schemas, len(s.Properties))
		for k, r := range s.Properties {
			c.Properties[k] = t.ref(r, true)
		}
	}
	c.Items = t.ref(s.Items, true)
	c.AdditionalProperties.Schema = t.ref(s.AdditionalProperties.Schema, true)
	c.PrefixItems = t.refs(s.PrefixItems, true)
	closeAlternatives := len(s.Properties) == 0
	c.OneOf = t.refs(s.OneOf, closeAlternatives)
	c.AnyOf = t.refs(s.AnyOf, closeAlternatives)
	c.AllOf = t.refs(s.AllOf, false)

	if closeTop && closable(s) {
		if len(c.AllOf) > 0 {
			props := make(openapi3.Schemas)
			mergeProperties(props, c, make(map[*openapi3.Schema]bool))
			c.Properties = props
		}
		no := false
		c.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
	}
	return c
}

func (t *strictifier) ref(r *openapi3.SchemaRef, closeTop bool) *openapi3.SchemaRef {
	if r == nil || r.Value == nil {
		return r
	}
	out := *r
	out.Value = t.copy(r.Value, closeTop)
	return &out
}

func (t *strictifier) refs(rs openapi3.SchemaRefs, closeTop bool) openapi3.SchemaRefs {
	if len(rs) == 0 {
		return rs
	}
	out := make(openapi3.SchemaRefs, len(rs))
	for i, r := range rs {
		out[i] = t.ref(r, closeTop)
	}
	return out
}

// closable reports whether strict mode closes s: an object schema that does not decide
// about additional properties itself and whose allOf members can be merged.
func closable(s *openapi3.Schema) bool {
	if s.AdditionalProperties.Has != nil || s.AdditionalProperties.Schema != nil {
		return false
	}
	if len(s.PatternProperties) > 0 || s.UnevaluatedProperties.Has != nil || s.UnevaluatedProperties.Schema != nil {
		return false
	}
	if len(s.OneOf) > 0 || len(s.AnyOf) > 0 || s.Not != nil {
		return false
	}
	objectLike := s.Type.Is(openapi3.TypeObject) || (s.Type == nil && len(s.Properties) > 0)
	if len(s.AllOf) > 0 {
		if s.Type != nil && !s.Type.Is(openapi3.TypeObject) {
			return false
		}
		for _, m := range s.AllOf {
			if m == nil || m.Value == nil || !mergeable(m.Value, make(map[*openapi3.Schema]bool)) {
				return false
			}
		}
		objectLike = true
	}
	return objectLike
}

// mergeable reports whether an allOf member's properties can be listed statically.
func mergeable(s *openapi3.Schema, seen map[*openapi3.Schema]bool) bool {
	if seen[s] {
		return true
	}
	seen[s] = true
	if s.Type != nil && !s.Type.Is(openapi3.TypeObject) {
		return false
	}
	if (s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has) || s.AdditionalProperties.Schema != nil {
		return false
	}
	if len(s.OneOf) > 0 || len(s.AnyOf) > 0 || s.Not != nil || len(s.PatternProperties) > 0 {
		return false
	}
	for _, m := range s.AllOf {
		if m == nil || m.Value == nil || !mergeable(m.Value, seen) {
			return false
		}
	}
	return true
}

// mergeProperties adds the properties of s and of its allOf members (recursively) to
// dst; the first declaration of a name wins (all of them are checked anyway, each by
// the schema that declares it).
func mergeProperties(dst openapi3.Schemas, s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	for k, r := range s.Properties {
		if _, ok := dst[k]; !ok {
			dst[k] = r
		}
	}
	for _, m := range s.AllOf {
		if m != nil {
			mergeProperties(dst, m.Value, seen)
		}
	}
}
