package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		key   []byte
		want  string
	}{
		{name: "empty path", rules: Rules{Allow: []string{""}}, want: `allow[0] "": empty path`},
		{name: "no dollar", rules: Rules{Deny: []string{"$.a", "a.b"}}, want: `deny[1] "a.b": path must start with "$" at offset 0`},
		{name: "no steps", rules: Rules{Deny: []string{"$"}}, want: `deny[0] "$": path has no steps`},
		{name: "unterminated bracket", rules: Rules{Deny: []string{"$.a", "$.b", "$.items["}}, want: `deny[2] "$.items[": unterminated bracket at offset 8`},
		{name: "unterminated index", rules: Rules{Deny: []string{"$.items[1"}}, want: `deny[0] "$.items[1": unterminated bracket at offset 9`},
		{name: "unterminated string", rules: Rules{Allow: []string{"$['a"}}, want: `allow[0] "$['a": unterminated string at offset 4`},
		{name: "missing close bracket", rules: Rules{Allow: []string{"$['a'x"}}, want: `allow[0] "$['a'x": expected "]" at offset 5`},
		{name: "negative index", rules: Rules{Allow: []string{"$.a[-1]"}}, want: `allow[0] "$.a[-1]": negative index at offset 4`},
		{name: "index too large", rules: Rules{Allow: []string{"$.a[99999999999]"}}, want: `allow[0] "$.a[99999999999]": index out of range at offset 4`},
		{name: "empty member", rules: Rules{Allow: []string{"$."}}, want: `allow[0] "$.": missing member name at offset 2`},
		{name: "bad member character", rules: Rules{Allow: []string{"$.a b"}}, want: `allow[0] "$.a b": unexpected ' ' at offset 3`},
		{name: "descendant wildcard", rules: Rules{Deny: []string{"$..*"}}, want: `deny[0] "$..*": ".." needs a member name at offset 3`},
		{name: "descendant index", rules: Rules{Deny: []string{"$..[0]"}}, want: `deny[0] "$..[0]": ".." needs a member name at offset 3`},
		{name: "unknown escape", rules: Rules{Deny: []string{`$['a\n']`}}, want: `deny[0] "$['a\\n']": unknown escape "\\n" at offset 4`},
		{name: "bad wildcard", rules: Rules{Deny: []string{"$[*x]"}}, want: `deny[0] "$[*x]": expected "]" at offset 3`},
		{name: "junk after root", rules: Rules{Deny: []string{"$x"}}, want: `deny[0] "$x": unexpected 'x' at offset 1`},
		{name: "unknown strategy", rules: Rules{Mask: map[string]string{"$.card": "rot13"}}, want: `mask["$.card"]: unknown strategy "rot13" (want redact, last4 or hash)`},
		{name: "bad mask path", rules: Rules{Mask: map[string]string{"$.ok": "redact", "card": "redact"}}, want: `mask["card"]: path must start with "$" at offset 0`},
		{name: "hash without key", rules: Rules{Mask: map[string]string{"$.email": "hash"}}, want: `mask["$.email"]: strategy hash needs a key of at least 32 bytes, got 0`},
		{name: "hash with a short key", rules: Rules{Mask: map[string]string{"$.email": "hash"}}, key: []byte("short"), want: `mask["$.email"]: strategy hash needs a key of at least 32 bytes, got 5`},
		{name: "unknown preset", rules: Rules{Preset: "paranoid"}, want: `preset: unknown preset "paranoid" (want "sensitive")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules, tt.key)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Compile(%+v) = %v, %v; want error %s", tt.rules, p, err, tt.want)
			}
			var rerr *RuleError
			if !errors.As(err, &rerr) {
				t.Errorf("Compile error %T, want *RuleError", err)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		key   []byte
	}{
		{name: "zero rules", rules: Rules{}},
		{name: "every step kind", rules: Rules{Allow: []string{`$.a.*[*][3]..b..['c d']['e\'f']["g\"h"]['\\']`, "$.名前", "$['prénom']", "$.a-b_c9"}}},
		{name: "same path in allow and deny", rules: Rules{Allow: []string{"$.a"}, Deny: []string{"$.a"}}},
		{name: "hash with a key", rules: Rules{Mask: map[string]string{"$.e": "hash"}}, key: testKey},
		{name: "key without hash", rules: Rules{Mask: map[string]string{"$.e": "redact"}}, key: []byte("short")},
		{name: "preset and detect", rules: Rules{Preset: "sensitive", Detect: true}},
		{name: "report path escapes", rules: Rules{Deny: []string{`$['a\u000ab']`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.rules, tt.key); err != nil {
				t.Errorf("Compile(%+v) = %v, want nil", tt.rules, err)
			}
		})
	}
}

func TestCompileTooComplex(t *testing.T) {
	// Nested descendants whose sets combine freely: 2^16 states.
	var deny []string
	for i := range 16 {
		deny = append(deny, "$.."+string(rune('a'+i))+"..z"+string(rune('a'+i)))
	}
	_, err := Compile(Rules{Deny: deny}, nil)
	const want = "rules: too complex to compile (over 16384 automaton states, or too many paths)"
	if err == nil || err.Error() != want {
		t.Errorf("Compile(%d nested descendants) = %v, want %s", len(deny), err, want)
	}
}

func TestCompileManyPaths(t *testing.T) {
	// Large rule sets compile, and quickly: the automaton has about one
	// state per step.
	var deny []string
	for i := range 1000 {
		deny = append(deny, fmt.Sprintf("$.a%d.b%d[*].c", i, i))
	}
	start := time.Now()
	p, err := Compile(Rules{Deny: deny}, nil)
	if err != nil {
		t.Fatalf("Compile(%d paths) = %v", len(deny), err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Compile(%d paths) took %v", len(deny), d)
	}
	got, _, err := p.Apply(nil, []byte(`{"a7":{"b7":[{"c":1,"d":2}]},"a8":{"b7":[{"c":1}]}}`))
	if want := `{"a7":{"b7":[{"d":2}]},"a8":{"b7":[{"c":1}]}}`; err != nil || string(got) != want {
		t.Errorf("Apply = %s, %v; want %s", got, err, want)
	}
}

func TestCompileCopiesKey(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	q, err := Compile(Rules{Mask: map[string]string{"$.e": "hash"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := q.Apply(nil, []byte(`{"e":"x"}`))
	key[0] = 'x'
	after, _, _ := q.Apply(nil, []byte(`{"e":"x"}`))
	if string(before) != string(after) {
		t.Errorf("changing the caller's key changed the hash: %s then %s", before, after)
	}
}
