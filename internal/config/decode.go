package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes caps the values one file may decode to, counting every use of an
// alias again, so that a small file of nested aliases (a "billion laughs")
// cannot make the loader build a huge config.
const maxNodes = 100_000

// defaulter is implemented by the config structs that have defaults. The
// decoder calls setDefaults on every struct value it allocates (a present
// pointer key, a new map or list element) before decoding the file's keys
// over it, so an explicit zero in the file survives.
type defaulter interface{ setDefaults() }

// parseYAML parses data as exactly one YAML document and returns its root
// node; on failure, the problems as Errors.
func parseYAML(file string, data []byte) (root *yaml.Node, errs Errors) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a config loader
		// that sees operator files (and fuzz input) must not crash on it.
		if v := recover(); v != nil {
			root, errs = nil, Errors{{File: file, Msg: "invalid YAML: the parser could not read this file"}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{emptyFile(file)}
		}
		return nil, Errors{syntaxError(file, err)}
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return nil, Errors{emptyFile(file)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, Errors{{File: file, Line: next.Line, Col: next.Column,
			Msg: "more than one YAML document: a config file holds exactly one (remove the second ---)"}}
	case !errors.Is(err, io.EOF):
		return nil, Errors{syntaxError(file, err)}
	}
	return doc.Content[0], nil
}

func emptyFile(file string) Error {
	return Error{File: file, Msg: "the config is empty: it needs at least the upstreams and routes sections"}
}

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: did not find
// expected key") into an Error with that line.
func syntaxError(file string, err error) Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				line, msg = n, text
			}
		}
	}
	return Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// decoder decodes a yaml.Node tree into the config types by reflection,
// recording every problem with its position and YAML path rather than
// stopping at the first. It never decodes into a field it does not know:
// an unknown key is an error, not ignored.
type decoder struct {
	report
	dir    string
	lookup func(string) (string, bool)
	pos    positions // path -> value position
	keys   positions // path -> key position
	bad    map[string]bool
	nodes  int
	tooBig bool
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.add(Pos{n.Line, n.Column}, path, format, args...)
}

// decode decodes n into v (settable), v's defaults already in place.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = d.visit(n)
	if n == nil {
		return
	}
	d.pos[path] = Pos{n.Line, n.Column}
	switch v.Type() {
	case reflect.TypeFor[Duration]():
		if s, ok := d.scalar(n, path, "a duration such as 30s"); ok {
			dur, err := parseDuration(s)
			d.set(n, path, v, reflect.ValueOf(dur), err)
		}
		return
	case reflect.TypeFor[Size]():
		if s, ok := d.scalar(n, path, "a size such as 1MiB"); ok {
			size, err := parseSize(s)
			d.set(n, path, v, reflect.ValueOf(size), err)
		}
		return
	case reflect.TypeFor[Path]():
		if s, ok := d.scalar(n, path, "a file path"); ok {
			if s != "" && !filepath.IsAbs(s) {
				s = filepath.Join(d.dir, s)
			}
			v.SetString(s)
		}
		return
	case reflect.TypeFor[Mode]():
		if s, ok := d.scalar(n, path, "enforce or report"); ok {
			if s != string(ModeEnforce) && s != string(ModeReport) {
				d.fail(n, path, "must be enforce or report")
				return
			}
			v.SetString(s)
		}
		return
	case reflect.TypeFor[netip.Prefix]():
		if s, ok := d.scalar(n, path, "a CIDR such as 10.0.0.0/8, or an IP address"); ok {
			p, err := parsePrefix(s)
			d.set(n, path, v, reflect.ValueOf(p), err)
		}
		return
	case reflect.TypeFor[AuthList]():
		d.decodeAuth(n, v, path)
		return
	case reflect.TypeFor[RouteLimits]():
		// One limit as a mapping, or a list of them.
		if n.Kind == yaml.MappingNode {
			var one RouteLimit
			d.decode(n, reflect.ValueOf(&one).Elem(), path)
			v.Set(reflect.ValueOf(RouteLimits{one}))
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a limit ({ key: ..., limit: ..., per: ... }) or a list of limits, got %s", kindName(n))
			return
		}
		d.decodeSlice(n, v, path)
		return
	case reflect.TypeFor[Time]():
		if s, ok := d.scalar(n, path, "a time such as 2027-01-31 or 2027-01-31T12:00:00Z"); ok {
			t, err := parseTime(s)
			d.set(n, path, v, reflect.ValueOf(t), err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if def, ok := p.Interface().(defaulter); ok {
			def.setDefaults()
		}
		v.Set(p)
		if n.ShortTag() != "!!null" { // a present key allocates, even when empty
			d.decode(n, p.Elem(), path)
		}
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		if s, ok := d.scalar(n, path, "an integer"); ok {
			i, err := strconv.Atoi(s)
			if err != nil {
				err = errors.New("expected an integer")
			}
			d.set(n, path, v, reflect.ValueOf(i), err)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path, "true or false"); ok {
			var err error
			b := false
			switch s {
			case "true", "True", "TRUE":
				b = true
			case "false", "False", "FALSE":
			default:
				err = errors.New("expected true or false")
			}
			d.set(n, path, v, reflect.ValueOf(b), err)
		}
	default:
		// Every type in config.go is handled above; a new field of another
		// type must be taught to the decoder (and the schema), not ignored.
		d.fail(n, path, "internal error: the loader cannot decode a %s", v.Type())
	}
}

// set stores x in v, or records err.
func (d *decoder) set(n *yaml.Node, path string, v, x reflect.Value, err error) {
	if err != nil {
		d.fail(n, path, "%s", err.Error())
		return
	}
	v.Set(x.Convert(v.Type()))
}

// visit follows aliases and counts the node against maxNodes; it returns
// nil when the cap is reached.
func (d *decoder) visit(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if d.tooBig {
		return nil
	}
	d.nodes++
	if d.nodes > maxNodes {
		d.tooBig = true
		d.add(Pos{n.Line, n.Column}, "", "the config is too large: more than %d values once aliases are expanded", maxNodes)
		return nil
	}
	return n
}

// scalar returns the text of a scalar node with ${VAR} expanded; want
// names the expected type for the error when n is not a scalar.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	if n.ShortTag() == "!!null" {
		d.fail(n, path, "expected %s, got null (leave the key out to use the default)", want)
		return "", false
	}
	s, err := expand(n.Value, d.lookup)
	if err != nil {
		d.fail(n, path, "%s", err.Error())
		return "", false
	}
	return s, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean"
	case "!!int", "!!float":
		return "a number"
	}
	return "a string"
}

// field is one YAML key of a struct.
type field struct {
	name    string
	index   int
	unbuilt string // the `unbuilt` tag: the stage this key needs
}

// fieldsOf lists the YAML keys of struct type t, in declaration order.
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		fs = append(fs, field{name: name, index: i, unbuilt: sf.Tag.Get("unbuilt")})
	}
	return fs
}

// mappingPairs checks the keys of a mapping node (strings, no merge keys,
// no duplicates) and calls fn for each good pair.
func (d *decoder) mappingPairs(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.visit(n.Content[i]), n.Content[i+1]
		if k == nil {
			return
		}
		if k.Tag == "!!merge" {
			d.fail(k, joinPath(path, "<<"), "merge keys (<<) are not supported: write the keys out, or alias the whole value (key: *anchor)")
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a key must be a string, got %s", kindName(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.add(Pos{k.Line, k.Column}, joinPath(path, k.Value), "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.ShortTag() == "!!null" {
		return // an empty section keeps its defaults
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	d.mappingPairs(n, path, func(key string, k, val *yaml.Node) {
		sub := joinPath(path, key)
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == key })
		if i < 0 {
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.name
			}
			d.fail(k, sub, "unknown key %q (known keys here: %s)", key, strings.Join(names, ", "))
			return
		}
		d.keys[sub] = Pos{k.Line, k.Column}
		if f := fields[i]; f.unbuilt != "" {
			d.pos[sub] = Pos{k.Line, k.Column}
			d.fail(k, sub, "not supported yet: this build of Bulwark has no %s stage; remove the key (ignoring it would fail open)", f.unbuilt)
			return
		}
		d.decode(val, v.Field(fields[i].index), sub)
	})
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of names, got %s", kindName(n))
		return
	}
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(n.Content)/2))
	}
	d.mappingPairs(n, path, func(key string, k, val *yaml.Node) {
		sub := joinPath(path, key)
		d.keys[sub] = Pos{k.Line, k.Column}
		e := newElem(t.Elem())
		d.decode(val, e.Elem(), sub)
		v.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e.Elem())
	})
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		e := newElem(v.Type().Elem())
		d.decode(item, e.Elem(), fmt.Sprintf("%s[%d]", path, i))
		s = reflect.Append(s, e.Elem())
	}
	v.Set(s)
}

// newElem allocates a new map or list element with its defaults.
func newElem(t reflect.Type) reflect.Value {
	e := reflect.New(t)
	if def, ok := e.Interface().(defaulter); ok {
		def.setDefaults()
	}
	return e
}

// decodeAuth decodes a route's auth: the scalar none, or a non-empty list
// of authenticator names (DESIGN.md "Deny by default").
func (d *decoder) decodeAuth(n *yaml.Node, v reflect.Value, path string) {
	const want = "none, or a list of authenticator names"
	var a AuthList
	switch n.Kind {
	case yaml.ScalarNode:
		s, ok := d.scalar(n, path, want)
		if !ok {
			return
		}
		if s != "none" {
			d.fail(n, path, "expected %s: write auth: none for a public route, or auth: [name] for one authenticator", want)
			return
		}
		a.None = true
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			d.fail(n, path, "auth: [] names no authenticator: write auth: none for a public route, or list the authenticators")
			return
		}
		good := true
		for i, item := range n.Content {
			sub := fmt.Sprintf("%s[%d]", path, i)
			item = d.visit(item)
			if item == nil {
				return
			}
			d.pos[sub] = Pos{item.Line, item.Column}
			s, ok := d.scalar(item, sub, "an authenticator name")
			switch {
			case !ok:
			case s == "":
				d.fail(item, sub, "empty authenticator name")
			case s == "none":
				d.fail(item, sub, "none cannot be listed with authenticators: write auth: none alone for a public route")
			default:
				a.Names = append(a.Names, s)
				continue
			}
			good = false
		}
		if !good {
			// Names[j] must stay the j-th item of the list for later
			// errors, and the route is refused anyway.
			d.bad[path] = true
			return
		}
	default:
		d.fail(n, path, "expected %s, got %s", want, kindName(n))
		return
	}
	v.Set(reflect.ValueOf(a))
}

// parsePrefix reads a CIDR; a bare address means that one address (/32 or
// /128). Host bits are cleared, so 10.1.2.3/8 is 10.0.0.0/8.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR: write e.g. 10.0.0.0/8 or 2001:db8::/32")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("not an IP address or CIDR: write e.g. 10.0.0.0/8 or 192.0.2.1")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
