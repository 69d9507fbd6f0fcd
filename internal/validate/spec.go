package validate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

// LoadSpec reads an OpenAPI 3.0 document (YAML or JSON; 3.1 as far as kin-openapi
// supports it) from path and validates it.
//
// $refs are resolved from local files only. A remote ref (http:, https:, or any URL with
// a host) is refused with a *RemoteRefError naming it: nothing is ever fetched. Errors are
// *SpecError values naming the file and, where it could be found, line:col.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &SpecError{File: path, Err: err}
	}
	// Our own parse gives positions: kin-openapi's errors rarely carry them.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &SpecError{File: path, Line: yamlErrorLine(err), Err: err}
	}

	var refused *RemoteRefError
	loader := &openapi3.Loader{
		Context: context.Background(),
		// A custom ReadFromURIFunc owns the access policy: it reads local files and
		// refuses everything else, so a spec cannot make the gateway fetch a URL (SSRF).
		IsExternalRefsAllowed: true,
		IncludeOrigin:         true,
		ReadFromURIFunc: func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
			if u.Host != "" || u.Opaque != "" || (u.Scheme != "" && u.Scheme != "file") {
				if refused == nil {
					refused = &RemoteRefError{Ref: u.String()}
				}
				return nil, refused
			}
			return os.ReadFile(filepath.FromSlash(u.Path))
		},
	}
	doc, err := loader.LoadFromFile(path)
	if refused != nil {
		line, col := refPosition(&root, refused.Ref)
		return nil, &SpecError{File: path, Line: line, Column: col, Err: refused}
	}
	if err != nil {
		return nil, locate(path, &root, err)
	}
	// Examples are documentation: a wrong one should not keep the gateway from starting.
	if err := doc.Validate(loader.Context, openapi3.EnableSchemaPatternValidation(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, locate(path, &root, err)
	}
	s, err := newSpec(path, doc)
	if err != nil {
		return nil, &SpecError{File: path, Err: err}
	}
	return s, nil
}

func newSpec(path string, doc *openapi3.T) (*Spec, error) {
	s := &Spec{
		path:    path,
		doc:     doc,
		is31:    doc.IsOpenAPI31OrLater(),
		byID:    make(map[string]int),
		schemes: make(map[string]SchemeInfo),
	}
	if doc.Components != nil {
		for name, ref := range doc.Components.SecuritySchemes {
			if ref == nil || ref.Value == nil {
				continue
			}
			v := ref.Value
			s.schemes[name] = SchemeInfo{
				Type:         v.Type,
				Scheme:       strings.ToLower(v.Scheme),
				BearerFormat: v.BearerFormat,
				In:           v.In,
				Name:         v.Name,
				OpenIDURL:    v.OpenIdConnectUrl,
			}
		}
	}
	for _, srv := range doc.Servers {
		if p := serverPrefix(srv); p != "" && !slices.Contains(s.prefixes, p) {
			s.prefixes = append(s.prefixes, p)
		}
	}
	if doc.Paths == nil {
		return s, nil
	}
	paths := doc.Paths.Map()
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, p := range keys {
		item := paths[p]
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			op := ops[m]
			info := OperationInfo{
				Method:     strings.ToUpper(m),
				Path:       p,
				ID:         op.OperationID,
				Deprecated: op.Deprecated,
			}
			switch {
			case op.Security != nil:
				info.Security = securityOf(*op.Security)
			case doc.Security != nil:
				info.Security = securityOf(doc.Security)
			}
			info.Scopes = scopesOf(info.Security)
			if info.ID != "" {
				if _, dup := s.byID[info.ID]; dup {
					return nil, fmt.Errorf("duplicate operationId %q", info.ID)
				}
				s.byID[info.ID] = len(s.ops)
			}
			s.ops = append(s.ops, info)
			s.opRefs = append(s.opRefs, op)
		}
	}
	return s, nil
}

func securityOf(reqs openapi3.SecurityRequirements) []SecurityRequirement {
	out := make([]SecurityRequirement, 0, len(reqs))
	for _, r := range reqs {
		sr := make(SecurityRequirement, len(r))
		for name, scopes := range r {
			sr[name] = slices.Clone(scopes)
		}
		out = append(out, sr)
	}
	return out
}

func scopesOf(reqs []SecurityRequirement) []string {
	var out []string
	for _, r := range reqs {
		for _, scopes := range r {
			for _, sc := range scopes {
				if !slices.Contains(out, sc) {
					out = append(out, sc)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// serverPrefix returns the path of a server URL ("/api/v1"), its variables replaced by
// their defaults, or "" for none.
func serverPrefix(srv *openapi3.Server) string {
	if srv == nil {
		return ""
	}
	raw := srv.URL
	for name, v := range srv.Variables {
		if v != nil {
			raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

// Title returns info.title.
func (s *Spec) Title() string {
	if s.doc.Info == nil {
		return ""
	}
	return s.doc.Info.Title
}

// Version returns info.version (the API's version, not the OpenAPI version).
func (s *Spec) Version() string {
	if s.doc.Info == nil {
		return ""
	}
	return s.doc.Info.Version
}

// Operations lists every operation, sorted by path then method. The caller may keep
// the slice; it is a copy.
func (s *Spec) Operations() []OperationInfo {
	return slices.Clone(s.ops)
}

// SecuritySchemes returns components.securitySchemes by name. The map is a copy.
func (s *Spec) SecuritySchemes() map[string]SchemeInfo {
	out := make(map[string]SchemeInfo, len(s.schemes))
	for k, v := range s.schemes {
		out[k] = v
	}
	return out
}

// ServerPrefixes returns the path prefixes of the servers' URLs ("/api/v1"), their
// variables replaced by their defaults, without a trailing slash, in document order and
// without duplicates; a server URL without a path adds none. The slice is a copy.
func (s *Spec) ServerPrefixes() []string {
	return slices.Clone(s.prefixes)
}

// FindByID returns the operation with this operationId.
func (s *Spec) FindByID(operationID string) (OperationInfo, bool) {
	i, ok := s.byID[operationID]
	if !ok {
		return OperationInfo{}, false
	}
	return s.ops[i], true
}

// Find returns the operation for method and a route path template. Templates are
// compared segment by segment with parameter names ignored ("/orders/{orderId}" matches
// the spec's "/orders/{id}"), first as they are, then with each server URL's path
// prefix in front of the spec's paths. ok is false when none matches.
func (s *Spec) Find(method, routePath string) (OperationInfo, bool) {
	i, _, ok := s.find(method, routePath)
	if !ok {
		return OperationInfo{}, false
	}
	return s.ops[i], true
}

// find returns the index of the operation and the server prefix the match needed.
func (s *Spec) find(method, routePath string) (int, string, bool) {
	method = strings.ToUpper(method)
	route := shapeOf(routePath)
	for _, prefix := range append([]string{""}, s.prefixes...) {
		for i, op := range s.ops {
			if op.Method == method && shapeOf(prefix+op.Path) == route {
				return i, prefix, true
			}
		}
	}
	return 0, "", false
}

// shapeOf reduces a path template to its structure: every "{...}" becomes "{}", so
// parameter names (and chi's "{id:[0-9]+}" patterns) do not matter.
func shapeOf(template string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(template); i++ {
		c := template[i]
		switch {
		case c == '{':
			if depth == 0 {
				b.WriteString("{}")
			}
			depth++
		case c == '}' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if len(out) > 1 {
		out = strings.TrimRight(out, "/")
	}
	return out
}

// paramNames lists the parameter names of a template in order ("{id:[0-9]+}" → "id").
func paramNames(template string) []string {
	var names []string
	for {
		i := strings.IndexByte(template, '{')
		if i < 0 {
			return names
		}
		depth, j := 0, i
		for ; j < len(template); j++ {
			if template[j] == '{' {
				depth++
			} else if template[j] == '}' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		name := template[i+1 : min(j, len(template))]
		if k := strings.IndexByte(name, ':'); k >= 0 {
			name = name[:k]
		}
		names = append(names, name)
		if j >= len(template) {
			return names
		}
		template = template[j+1:]
	}
}

// ---- positions for load errors ----

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

func yamlErrorLine(err error) int {
	m := yamlLineRe.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var originType = reflect.TypeFor[*openapi3.Origin]()

// locate wraps a kin-openapi load or validation error in a *SpecError with the best
// position it can find: an Origin recorded on an error in the chain (IncludeOrigin),
// else the document node named by the context wrappers (section, path, operation,
// component), else a "line N" in the message.
func locate(path string, root *yaml.Node, err error) error {
	se := &SpecError{File: path, Err: err}
	if loc := originIn(err, 0); loc != nil && loc.Line > 0 {
		se.Line, se.Column = loc.Line, loc.Column
		if loc.File != "" && filepath.Clean(loc.File) != filepath.Clean(path) {
			se.File = loc.File
		}
		return se
	}
	if n := nodeAt(root, contextPath(err)); n != nil {
		se.Line, se.Column = n.Line, n.Column
		return se
	}
	// kin-openapi reports a dangling local $ref by the missing key alone; find the ref.
	if ref, n := danglingRef(root); n != nil {
		se.Line, se.Column = n.Line, n.Column
		se.Err = fmt.Errorf("unresolved $ref %q: %w", ref, err)
		return se
	}
	se.Line = yamlErrorLine(err)
	return se
}

// originIn returns the innermost Origin key location carried by an error of the chain.
func originIn(err error, depth int) *openapi3.Location {
	if err == nil || depth > 32 {
		return nil
	}
	var found *openapi3.Location
	if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("Origin"); f.IsValid() && f.Type() == originType && !f.IsNil() {
			if o := f.Interface().(*openapi3.Origin); o.Key != nil {
				found = o.Key
				// Point at the offending field itself when the error names it.
				field := ""
				if _, ok := err.(*openapi3.SchemaTypeError); ok {
					field = "type"
				} else if nf := v.Elem().FieldByName("Field"); nf.IsValid() && nf.Kind() == reflect.String {
					field = nf.String()
				}
				if loc, ok := o.Fields.Lookup(field); ok && field != "" && loc.Line > 0 {
					found = &loc
				}
			}
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if loc := originIn(e, depth+1); loc != nil {
				return loc
			}
		}
	case openapi3.MultiError:
		for _, e := range u {
			if loc := originIn(e, depth+1); loc != nil {
				return loc
			}
		}
	default:
		if loc := originIn(errors.Unwrap(err), depth+1); loc != nil {
			return loc
		}
	}
	return found
}

// contextPath turns kin-openapi's context wrappers into a path of document keys.
func contextPath(err error) []string {
	var keys []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch w := e.(type) {
		case *openapi3.SectionValidationError:
			keys = append(keys, w.Section)
		case *openapi3.PathValidationError:
			keys = append(keys, w.Path)
		case *openapi3.OperationValidationError:
			keys = append(keys, strings.ToLower(w.Method))
		case *openapi3.ComponentValidationError:
			keys = append(keys, w.Section+"s", w.Name)
		case *openapi3.ParameterFieldValidationError:
			keys = append(keys, "parameters")
		}
	}
	return keys
}

// nodeAt walks mapping keys from the document root as far as they go and returns the
// key node reached last, nil when not even the first key is there.
func nodeAt(root *yaml.Node, keys []string) *yaml.Node {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	var last *yaml.Node
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				last, next = n.Content[i], n.Content[i+1]
				break
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return last
}

// refPosition finds the value node of a `$ref: ref` anywhere in the document.
func refPosition(root *yaml.Node, ref string) (line, col int) {
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "$ref" && v.Kind == yaml.ScalarNode && refMatches(v.Value, ref) {
					line, col = v.Line, v.Column
					return true
				}
			}
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return false
	}
	walk(root)
	return line, col
}

func refMatches(written, refused string) bool {
	if written == refused {
		return true
	}
	w, err := url.Parse(written)
	if err != nil {
		return false
	}
	w.Fragment = ""
	r, err := url.Parse(refused)
	if err != nil {
		return false
	}
	r.Fragment = ""
	return w.String() == r.String()
}

// danglingRef returns the first same-document $ref ("#/...") that does not resolve in
// the document, and its value node.
func danglingRef(root *yaml.Node) (string, *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	var ref string
	var at *yaml.Node
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "$ref" && v.Kind == yaml.ScalarNode && strings.HasPrefix(v.Value, "#/") && !resolves(doc, v.Value[2:]) {
					ref, at = v.Value, v
					return true
				}
			}
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return false
	}
	walk(doc)
	return ref, at
}

// resolves reports whether a JSON pointer (without its leading "#/") names a node.
func resolves(n *yaml.Node, ptr string) bool {
	if p, err := url.PathUnescape(ptr); err == nil {
		ptr = p
	}
	for tok := range strings.SplitSeq(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					next = n.Content[i+1]
					break
				}
			}
			if next == nil {
				return false
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n.Content) {
				return false
			}
			n = n.Content[i]
		default:
			return false
		}
	}
	return true
}
