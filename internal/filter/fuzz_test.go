package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// fuzzDeny is the deny list of every fuzzed rule set but the first; the
// fuzz target checks that none of these members survives.
var fuzzDeny = []string{"$..password", "$.a.b", "$.items[*].secret"}

// fuzzRules are the rule sets FuzzApply picks from with its selector.
func fuzzRules() []Rules {
	return []Rules{
		{},
		{Deny: fuzzDeny},
		{Deny: fuzzDeny, Allow: []string{"$.a", "$.items[*].id", "$..name", "$[1]"}},
		{Deny: fuzzDeny, Preset: "sensitive", Detect: true, Mask: map[string]string{"$..card": "last4", "$.items[0]": "redact", "$.a.*": "hash"}},
	}
}

func FuzzApply(f *testing.F) {
	seeds := []struct {
		sel byte
		doc string
	}{
		{0, `{"a":{"b":1,"c":[1,2.5e10,"x"]},"items":[{"id":1,"secret":"s"}]}`},                // every deny path present
		{1, `{"password":"p","x":[{"password":{"password":1}}],"a":{"b":{"b":2}}}`},            // nested deny matches
		{2, `[{"name":"n"},{"id":2,"name":"m","password":"p"}]`},                               // top-level array with [1]
		{3, `{"a":{"b":"x","c":"4111111111111111"},"card":"4111 1111 1111 1111","items":[1]}`}, // masks and detection
		{1, `{"\u0070assword":1,"a":{"\u0062":2}}`},                                            // escaped deny names
		{2, `{"a":1,"a":2}`},                   // duplicate names
		{3, "{\"a\":\"\xff\"}"},                // invalid UTF-8
		{0, `12345678901234567890123`},         // top-level big number
		{1, `{"a":[[[[[[[[]]]]]]]]} trailing`}, // trailing data
		{2, `{"items":[{"id":1,"secret":{"x":1}},{"secret":2}],"name":{"name":"x"}}`}, // allow and deny together
	}
	for _, s := range seeds {
		f.Add(s.sel, []byte(s.doc))
	}
	rules := fuzzRules()
	progs := make([]*Program, len(rules))
	for i, r := range rules {
		progs[i] = mustCompile(f, r)
	}
	f.Fuzz(func(t *testing.T, sel byte, doc []byte) {
		i := int(sel) % len(progs)
		p := progs[i]
		out, _, err := p.Apply(nil, doc)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("Apply error %v matches neither ErrInvalidJSON nor ErrTooDeep", err)
			}
			return
		}
		if !json.Valid(doc) {
			t.Fatalf("Apply accepted %q, which encoding/json refuses", doc)
		}
		if !jsontext.Value(out).IsValid() {
			t.Fatalf("Apply(%q) = %q, not valid JSON", doc, out)
		}
		var got, in any
		decode(t, out, &got)
		decode(t, doc, &in)
		if i == 0 && !reflect.DeepEqual(got, in) {
			t.Fatalf("Apply without rules changed %q into %q", doc, out)
		}
		if i > 0 {
			if path := deniedMember(got); path != "" {
				t.Fatalf("Apply(%q) = %q, still has %s", doc, out, path)
			}
		}
		// Filtering the output again changes nothing.
		again, _, err := p.Apply(nil, out)
		if err != nil {
			t.Fatalf("Apply of its own output %q = %v", out, err)
		}
		if i < 2 && !bytes.Equal(again, out) {
			// (Not for the others: [N] picks another element the second
			// time, and a hash of a hash differs.)
			t.Fatalf("Apply(Apply(%q)) = %q, want %q", doc, again, out)
		}
	})
}

// decode decodes b with encoding/json, numbers as json.Number.
func decode(t *testing.T, b []byte, v *any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("encoding/json cannot decode %q: %v", b, err)
	}
}

// deniedMember returns a path of fuzzDeny still present in v, or "".
func deniedMember(v any) string {
	if hasDescendant(v, "password") {
		return "$..password"
	}
	root, _ := v.(map[string]any)
	if a, ok := root["a"].(map[string]any); ok {
		if _, ok := a["b"]; ok {
			return "$.a.b"
		}
	}
	if items, ok := root["items"].([]any); ok {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				if _, ok := m["secret"]; ok {
					return "$.items[*].secret"
				}
			}
		}
	}
	return ""
}

// hasDescendant reports whether any object in v has a member name.
func hasDescendant(v any, name string) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if k == name || hasDescendant(c, name) {
				return true
			}
		}
	case []any:
		for _, c := range v {
			if hasDescendant(c, name) {
				return true
			}
		}
	}
	return false
}

func FuzzCompile(f *testing.F) {
	for _, p := range []string{
		"$.a.b",                   // members
		"$..password",             // descendant
		"$.items[*].card[0]",      // wildcard and index
		`$['it\'s']["q\"\\"]`,     // quoted names and escapes
		`$['a\u000ab'].*`,         // \u escape, every member
		"$.items[",                // unterminated
		"$.名前..['prénom']",        // unicode
		"$[99999999999999999999]", // index out of range
	} {
		f.Add(p)
	}
	doc := []byte(`{"a":{"b":[1,{"c":"d"}]},"items":[{"card":[1,2]}],"名前":{"x":{"prénom":1}}}`)
	f.Fuzz(func(t *testing.T, path string) {
		steps, perr := parsePath(path)
		for _, r := range []Rules{{Deny: []string{path}}, {Allow: []string{path}}, {Mask: map[string]string{path: "redact"}}} {
			p, err := Compile(r, nil)
			if (err == nil) != (perr == nil) {
				t.Fatalf("Compile(%+v) = %v, but parsePath = %v", r, err, perr)
			}
			if err != nil {
				var rerr *RuleError
				if !errors.As(err, &rerr) {
					t.Fatalf("Compile(%+v) error %T, want *RuleError", r, err)
				}
				continue
			}
			out, _, err := p.Apply(nil, doc)
			if err != nil || !jsontext.Value(out).IsValid() {
				t.Fatalf("Apply with %+v = %q, %v", r, out, err)
			}
		}
		// Member steps print back to a path that parses to the same name.
		for _, st := range steps {
			if st.kind != stepMember {
				continue
			}
			back, err := parsePath("$" + string(appendMemberStep(nil, []byte(st.name))))
			if err != nil || len(back) != 1 || back[0].name != st.name {
				t.Fatalf("member %q prints as a path that parses to %v, %v", st.name, back, err)
			}
		}
	})
}
