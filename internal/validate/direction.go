package validate

import (
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// kin-openapi checks readOnly (in requests) and writeOnly (in responses) in its
// request and response modes (VisitAsRequest, VisitAsResponse). In those modes
// it sorts the property names of the schema of every object it visits, on top
// of the sort of the object's own names that it always does, and looks each of
// them up in the object: about a quarter of the cost of a visit. So a body is
// visited without them, against a directed copy of its schema that says the
// same thing in plain schema terms:
//
//   - a property that is readOnly (requests) or writeOnly (responses) is left
//     out of `required`, as kin-openapi's modes do;
//   - with the check enforced, such a property's schema is replaced by one that
//     refuses every value but null, and null only where the property's own
//     schema accepts it (the modes refuse a present, non-null value).
//
// The copy accepts exactly the values the schema accepts in its mode. Which
// violation comes first can differ when a body has several (the modes check
// readOnly before anything else in an object), so a refusal is visited again
// in the mode, and that error is the one reported: a valid body costs one
// fast visit, an invalid one a second, exact visit. TestCheckSameAsMode and
// FuzzMediaCheck hold the copies to the modes.
//
// Where the direction's flags meet composition (allOf, oneOf, anyOf, not),
// the modes also read the flags of sibling and parent schemas, which a copy
// cannot say in plain terms: such schemas keep the mode.

// direction is what a body is: a request's or a response's.
type direction uint8

const (
	dirRequest direction = iota
	dirResponse
)

// flagged reports whether the property schema p carries the flag of dir.
func (dir direction) flagged(p *openapi3.Schema) bool {
	if dir == dirRequest {
		return p.ReadOnly
	}
	return p.WriteOnly
}

// directedKey names one directed copy: of which schema, for which direction,
// and whether the flag is enforced (strict) or only exempts from `required`.
type directedKey struct {
	schema  *openapi3.Schema
	dir     direction
	enforce bool
}

// directedResult is a directed copy, see Spec.directed.
type directedResult struct {
	visit *openapi3.Schema // nil: keep the mode
	exact bool
}

// directedCache holds the directed copies a Spec compiled, shared by the
// operations compiled from it.
type directedCache struct {
	mu     sync.Mutex
	copies map[directedKey]directedResult
}

// directed returns the schema to visit for s without kin-openapi's request or
// response mode, and whether its errors are exactly those of s in the mode
// (then a refusal needs no second visit). visit is nil where the mode must
// stay (see above). opts are the options of the mode, used once per flagged
// property to learn whether its schema accepts null.
func (s *Spec) directed(root *openapi3.Schema, dir direction, enforce bool, opts []openapi3.SchemaValidationOption) (visit *openapi3.Schema, exact bool) {
	key := directedKey{schema: root, dir: dir, enforce: enforce}
	s.dirs.mu.Lock()
	defer s.dirs.mu.Unlock()
	if r, ok := s.dirs.copies[key]; ok {
		return r.visit, r.exact
	}
	var r directedResult
	flags, composed, resolved := surveySchemas(root, dir)
	switch {
	case !resolved:
		// An unresolved reference: let the mode report it as it always did.
	case !flags:
		// Nothing is flagged: the modes would check and exempt nothing.
		r = directedResult{visit: root, exact: true}
	case !composed:
		d := &director{dir: dir, enforce: enforce, opts: opts, copies: make(map[*openapi3.Schema]*openapi3.Schema)}
		// Without markers (enforce off) the copy only drops names from
		// `required`, which the modes skip at the same place: the errors
		// are the same, in the same order.
		r = directedResult{visit: d.copy(root), exact: !enforce}
	}
	if s.dirs.copies == nil {
		s.dirs.copies = make(map[directedKey]directedResult)
	}
	s.dirs.copies[key] = r
	return r.visit, r.exact
}

// surveySchemas walks every schema kin-openapi can visit from root and reports
// whether one carries dir's flag, whether one uses composition, and whether
// every reference on the way is resolved.
func surveySchemas(root *openapi3.Schema, dir direction) (flags, composed, resolved bool) {
	seen := make(map[*openapi3.Schema]bool)
	resolved = true
	var walk func(s *openapi3.Schema)
	walk = func(s *openapi3.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		if dir.flagged(s) {
			flags = true
		}
		if len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.Not != nil {
			composed = true
		}
		refs := []*openapi3.SchemaRef{s.Items, s.Not, s.AdditionalProperties.Schema}
		refs = append(refs, s.AllOf...)
		refs = append(refs, s.AnyOf...)
		refs = append(refs, s.OneOf...)
		refs = append(refs, s.PrefixItems...)
		for _, p := range s.Properties {
			if p == nil {
				resolved = false // the modes would fail on it: let them
				continue
			}
			refs = append(refs, p)
		}
		for _, r := range refs {
			switch {
			case r == nil:
			case r.Value == nil:
				resolved = false
			default:
				walk(r.Value)
			}
		}
	}
	walk(root)
	return flags, composed, resolved
}

// director makes the directed copy of a schema without composition.
type director struct {
	dir     direction
	enforce bool
	opts    []openapi3.SchemaValidationOption
	copies  map[*openapi3.Schema]*openapi3.Schema
}

func (d *director) copy(s *openapi3.Schema) *openapi3.Schema {
	if c, ok := d.copies[s]; ok {
		return c
	}
	c := new(openapi3.Schema)
	*c = *s
	d.copies[s] = c // before recursing: schemas may be cyclic

	c.Items = d.ref(s.Items)
	c.AdditionalProperties.Schema = d.ref(s.AdditionalProperties.Schema)
	if len(s.PrefixItems) > 0 {
		c.PrefixItems = make(openapi3.SchemaRefs, len(s.PrefixItems))
		for i, r := range s.PrefixItems {
			c.PrefixItems[i] = d.ref(r)
		}
	}
	if len(s.Properties) == 0 {
		return c
	}
	c.Properties = make(openapi3.Schemas, len(s.Properties))
	for k, r := range s.Properties {
		if d.enforce && r != nil && r.Value != nil && d.dir.flagged(r.Value) {
			c.Properties[k] = &openapi3.SchemaRef{Value: d.refusal(r.Value)}
			continue
		}
		c.Properties[k] = d.ref(r)
	}
	if len(s.Required) > 0 {
		c.Required = make([]string, 0, len(s.Required))
		for _, k := range s.Required {
			if p := s.Properties[k]; p != nil && p.Value != nil && d.dir.flagged(p.Value) {
				continue // the modes do not require it in this direction
			}
			c.Required = append(c.Required, k)
		}
	}
	return c
}

func (d *director) ref(r *openapi3.SchemaRef) *openapi3.SchemaRef {
	if r == nil || r.Value == nil {
		return r
	}
	out := *r
	out.Value = d.copy(r.Value)
	return &out
}

// refusal is the schema of a flagged property: it refuses every value but
// null, and null only where p refuses it too (the modes let a null member
// through to p's own check).
func (d *director) refusal(p *openapi3.Schema) *openapi3.Schema {
	never := false
	return &openapi3.Schema{
		Always:   &never,
		Nullable: p.VisitJSON(nil, d.opts...) == nil,
	}
}
