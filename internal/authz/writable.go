package authz

import (
	"slices"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// writable is one field of authorize.writable_fields: its path split at
// the dots, and who may set it.
type writable struct {
	path          string
	segs          []string
	roles, scopes []string
}

// compileWritable sorts the fields by path, so that the field a denial
// names does not depend on map order.
func compileWritable(fields map[string]config.WritableField) []writable {
	out := make([]writable, 0, len(fields))
	for path, f := range fields {
		out = append(out, writable{path: path, segs: strings.Split(path, "."), roles: f.Roles, scopes: f.Scopes})
	}
	slices.SortFunc(out, func(a, b writable) int { return strings.Compare(a.path, b.path) })
	return out
}

// notWritable returns the path of the first field that body sets and p
// may not write; "" when there is none. A nil principal holds nothing.
func notWritable(fields []writable, body any, p *exchange.Principal) string {
	for i := range fields {
		f := &fields[i]
		if present(body, f.segs) && !f.grants(p) {
			return f.path
		}
	}
	return ""
}

// grants: any one of the roles or any one of the scopes.
func (f *writable) grants(p *exchange.Principal) bool {
	if p == nil {
		return false
	}
	for _, r := range f.roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	for _, s := range f.scopes {
		if slices.Contains(p.Scopes, s) {
			return true
		}
	}
	return false
}

// present reports whether v sets the field at segs, with any value (null
// included). An array on the way stands for each of its elements: items.
// price is set when any element of items has a price.
func present(v any, segs []string) bool {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if present(e, segs) {
				return true
			}
		}
	case map[string]any:
		e, ok := v[segs[0]]
		if !ok {
			return false
		}
		if len(segs) == 1 {
			return true
		}
		return present(e, segs[1:])
	}
	return false
}
