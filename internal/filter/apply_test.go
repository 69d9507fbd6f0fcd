package filter

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// testKey is a 32-byte HMAC key for the hash strategy.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// mustCompile compiles r with testKey or fails the test.
func mustCompile(tb testing.TB, r Rules) *Program {
	tb.Helper()
	p, err := Compile(r, testKey)
	if err != nil {
		tb.Fatalf("Compile(%+v) = %v", r, err)
	}
	return p
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		rules   Rules
		in      string
		want    string
		removed []string
		masked  []string
	}{
		{
			name: "no rules copies the document",
			in:   " { \"a\" : [ 1 , 2 ] ,\n \"b\" : { } } ",
			want: "{ \"a\" : [ 1 , 2 ] ,\n \"b\" : { } }",
		},
		{
			name:  "walked containers are compacted",
			rules: Rules{Deny: []string{"$.x", "$.b.y"}},
			in:    "{ \"a\" : [ 1 , 2 ] ,\n \"b\" : { \"c\": { \"d\" : 1 } } }",
			want:  `{"a":[ 1 , 2 ],"b":{"c":{ "d" : 1 }}}`,
		},
		{
			name:    "allow members",
			rules:   Rules{Allow: []string{"$.id", "$.name"}},
			in:      `{"id":1,"name":"n","secret":"s","nested":{"id":2}}`,
			want:    `{"id":1,"name":"n"}`,
			removed: []string{"$.secret", "$.nested"},
		},
		{
			name:    "allow keeps the whole subtree",
			rules:   Rules{Allow: []string{"$.user"}},
			in:      `{"user":{"a":{"b":[1,{"c":null}]}},"x":1}`,
			want:    `{"user":{"a":{"b":[1,{"c":null}]}}}`,
			removed: []string{"$.x"},
		},
		{
			name:    "allow through arrays",
			rules:   Rules{Allow: []string{"$.items[*].id"}},
			in:      `{"items":[{"id":1,"x":2},{"id":3},{"x":4},5,[6]],"total":2}`,
			want:    `{"items":[{"id":1},{"id":3},{}]}`,
			removed: []string{"$.items[*].x", "$.items[*]", "$.total"},
		},
		{
			name:    "allow a scalar where a container is expected",
			rules:   Rules{Allow: []string{"$.a.b"}},
			in:      `{"a":"text","c":{"b":1}}`,
			want:    `{}`,
			removed: []string{"$.a", "$.c"},
		},
		{
			name:    "allow index",
			rules:   Rules{Allow: []string{"$.items[1]"}},
			in:      `{"items":["a","b","c"]}`,
			want:    `{"items":["b"]}`,
			removed: []string{"$.items[*]"},
		},
		{
			name:    "allow descendant",
			rules:   Rules{Allow: []string{"$..name"}},
			in:      `{"name":"top","a":{"name":"x","b":[{"name":"y","z":1}]},"c":3,"d":{"e":1}}`,
			want:    `{"name":"top","a":{"name":"x","b":[{"name":"y"}]},"d":{}}`,
			removed: []string{"$.a.b[*].z", "$.c", "$.d.e"},
		},
		{
			name:    "allow every member",
			rules:   Rules{Allow: []string{"$.a.*.id"}},
			in:      `{"a":{"x":{"id":1,"k":2},"y":{"id":3}},"b":1}`,
			want:    `{"a":{"x":{"id":1},"y":{"id":3}}}`,
			removed: []string{"$.a.x.k", "$.b"},
		},
		{
			name:    "allow on a top-level array",
			rules:   Rules{Allow: []string{"$[*].id"}},
			in:      `[{"id":1,"pw":"x"},{"id":2}]`,
			want:    `[{"id":1},{"id":2}]`,
			removed: []string{"$[*].pw"},
		},
		{
			name:    "allow on a top-level scalar",
			rules:   Rules{Allow: []string{"$.id"}},
			in:      `42`,
			want:    `null`,
			removed: []string{"$"},
		},
		{
			name: "top-level scalar without allow-list",
			in:   ` "x" `,
			want: `"x"`,
		},
		{
			name:    "deny member",
			rules:   Rules{Deny: []string{"$.a.b"}},
			in:      `{"a":{"b":1,"c":2},"b":3}`,
			want:    `{"a":{"c":2},"b":3}`,
			removed: []string{"$.a.b"},
		},
		{
			name:    "deny the first member keeps commas right",
			rules:   Rules{Deny: []string{"$.a", "$.c"}},
			in:      `{"a":1,"b":2,"c":3}`,
			want:    `{"b":2}`,
			removed: []string{"$.a", "$.c"},
		},
		{
			name:    "deny array elements",
			rules:   Rules{Deny: []string{"$.items[0]", "$.items[*].secret"}},
			in:      `{"items":[{"secret":1},{"secret":2,"id":2},{"id":3}]}`,
			want:    `{"items":[{"id":2},{"id":3}]}`,
			removed: []string{"$.items[*]", "$.items[*].secret"},
		},
		{
			name:    "deny descendant at every depth",
			rules:   Rules{Deny: []string{"$..password"}},
			in:      `{"password":1,"a":[{"password":2,"b":{"password":{"password":3}}}],"ok":true}`,
			want:    `{"a":[{"b":{}}],"ok":true}`,
			removed: []string{"$.password", "$.a[*].password", "$.a[*].b.password"},
		},
		{
			name:    "deny every member",
			rules:   Rules{Deny: []string{"$.a.*"}},
			in:      `{"a":{"x":1,"y":[2]},"b":{"x":1}}`,
			want:    `{"a":{},"b":{"x":1}}`,
			removed: []string{"$.a.x", "$.a.y"},
		},
		{
			name:    "deny wins over allow",
			rules:   Rules{Allow: []string{"$.user"}, Deny: []string{"$.user.password", "$.user"}},
			in:      `{"user":{"name":"n","password":"p"}}`,
			want:    `{}`,
			removed: []string{"$.user"},
		},
		{
			name:    "deny inside an allowed subtree",
			rules:   Rules{Allow: []string{"$.user"}, Deny: []string{"$.user.password"}},
			in:      `{"user":{"name":"n","password":"p"},"x":1}`,
			want:    `{"user":{"name":"n"}}`,
			removed: []string{"$.user.password", "$.x"},
		},
		{
			name:    "deny wins over mask",
			rules:   Rules{Deny: []string{"$.card"}, Mask: map[string]string{"$.card": "redact"}},
			in:      `{"card":"4111"}`,
			want:    `{}`,
			removed: []string{"$.card"},
		},
		{
			name:   "unicode member names",
			rules:  Rules{Deny: []string{"$['prénom']", "$.名前"}, Mask: map[string]string{`$["a b"]`: "redact"}},
			in:     `{"prénom":"Ada","名前":"エイダ","a b":1,"nom":"L"}`,
			want:   `{"a b":"***","nom":"L"}`,
			masked: []string{"$['a b']"},
			removed: []string{
				"$.prénom", "$.名前",
			},
		},
		{
			name:    "escaped member names match unescaped",
			rules:   Rules{Deny: []string{"$.é", `$['q"\'']`}},
			in:      `{"\u00e9":1,"q\"'":2,"k":"v\"\u00e9"}`,
			want:    `{"k":"v\"\u00e9"}`,
			removed: []string{"$.é", `$['q"\'']`},
		},
		{
			name:    "numbers keep their text",
			rules:   Rules{Deny: []string{"$.x"}},
			in:      `{"big":12345678901234567890123,"exp":-1.5E+300,"small":1e-7,"frac":0.10,"x":0}`,
			want:    `{"big":12345678901234567890123,"exp":-1.5E+300,"small":1e-7,"frac":0.10}`,
			removed: []string{"$.x"},
		},
		{
			name:  "empty containers and nulls",
			rules: Rules{Deny: []string{"$.x"}},
			in:    `{"o":{},"a":[],"n":null,"t":true,"f":false,"nested":[[],{}]}`,
			want:  `{"o":{},"a":[],"n":null,"t":true,"f":false,"nested":[[],{}]}`,
		},
		{
			name:   "redact an object",
			rules:  Rules{Mask: map[string]string{"$.card": "redact"}},
			in:     `{"card":{"number":"4111111111111111","exp":"12/29"},"id":1}`,
			want:   `{"card":"***","id":1}`,
			masked: []string{"$.card"},
		},
		{
			name:   "last4",
			rules:  Rules{Mask: map[string]string{"$.n": "last4", "$.s": "last4", "$.short": "last4", "$.u": "last4", "$.o": "last4", "$.b": "last4"}},
			in:     `{"n":12345678901234567890123,"s":"4111111111111234","short":"1234","u":"caf\u00e9s\u00e9\"","o":[1],"b":true}`,
			want:   `{"n":"***0123","s":"***1234","short":"***","u":"***ésé\"","o":"***","b":"***"}`,
			masked: []string{"$.n", "$.s", "$.short", "$.u", "$.o", "$.b"},
		},
		{
			name:   "mask every element",
			rules:  Rules{Mask: map[string]string{"$.cards[*].number": "last4"}},
			in:     `{"cards":[{"number":"4111111111111111"},{"number":"5500000000000004"}]}`,
			want:   `{"cards":[{"number":"***1111"},{"number":"***0004"}]}`,
			masked: []string{"$.cards[*].number"},
		},
		{
			name:   "strongest mask wins",
			rules:  Rules{Mask: map[string]string{"$.a": "last4", "$..a": "redact"}},
			in:     `{"a":"123456789"}`,
			want:   `{"a":"***"}`,
			masked: []string{"$.a"},
		},
		{
			name:    "mask applies only to what allow keeps",
			rules:   Rules{Allow: []string{"$.id"}, Mask: map[string]string{"$.card": "redact"}},
			in:      `{"id":1,"card":"4111"}`,
			want:    `{"id":1}`,
			removed: []string{"$.card"},
		},
		{
			name:   "mask a container on the way to an allowed path",
			rules:  Rules{Allow: []string{"$.user.name"}, Mask: map[string]string{"$.user": "redact"}},
			in:     `{"user":{"name":"n"}}`,
			want:   `{"user":"***"}`,
			masked: []string{"$.user"},
		},
		{
			name:    "preset alone",
			rules:   Rules{Preset: "sensitive"},
			in:      `{"user":{"Password":"p","api_key":"k","Access-Token":"t","name":"n"},"list":[{"ssn":"1","CVV":1}],"tokens":2}`,
			want:    `{"user":{"name":"n"},"list":[{}],"tokens":2}`,
			removed: []string{"$.user.Password", "$.user.api_key", "$.user.Access-Token", "$.list[*].ssn", "$.list[*].CVV"},
		},
		{
			name:    "preset with allow",
			rules:   Rules{Preset: "sensitive", Allow: []string{"$.user"}},
			in:      `{"user":{"name":"n","password":"p"},"token":"t"}`,
			want:    `{"user":{"name":"n"}}`,
			removed: []string{"$.user.password", "$.token"},
		},
		{
			name:    "allow and deny on the same path",
			rules:   Rules{Allow: []string{"$.a", "$.b"}, Deny: []string{"$.a"}},
			in:      `{"a":1,"b":2}`,
			want:    `{"b":2}`,
			removed: []string{"$.a"},
		},
		{
			name:    "report names are escaped",
			rules:   Rules{Deny: []string{"$..x"}},
			in:      `{"it's":{"x":1},"a\nb":{"x":2},"":{"x":3}}`,
			want:    `{"it's":{},"a\nb":{},"":{}}`,
			removed: []string{`$['it\'s'].x`, `$['a\u000ab'].x`, "$[''].x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.rules)
			got, rep, err := p.Apply(nil, []byte(tt.in))
			if err != nil {
				t.Fatalf("Apply(%s) error = %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("Apply(%s) = %s, want %s", tt.in, got, tt.want)
			}
			if !slices.Equal(rep.Removed, tt.removed) {
				t.Errorf("Removed = %q, want %q", rep.Removed, tt.removed)
			}
			if !slices.Equal(rep.Masked, tt.masked) {
				t.Errorf("Masked = %q, want %q", rep.Masked, tt.masked)
			}
		})
	}
}

func TestApplyAppends(t *testing.T) {
	p := mustCompile(t, Rules{Deny: []string{"$.b"}})
	got, _, err := p.Apply([]byte("prefix:"), []byte(`{"a":1,"b":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `prefix:{"a":1}`; string(got) != want {
		t.Errorf("Apply = %s, want %s", got, want)
	}
}

func TestHash(t *testing.T) {
	r := Rules{Mask: map[string]string{"$.e": "hash", "$.n": "hash", "$.o": "hash"}}
	p := mustCompile(t, r)
	apply := func(p *Program, in string) string {
		t.Helper()
		out, _, err := p.Apply(nil, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// The same value, escaped or not, hashes the same; so does an object
	// however it is formatted.
	a := apply(p, `{"e":"ada@example.com","n":1.50,"o":{"a": [1, 2]}}`)
	b := apply(p, `{"e":"ad\u0061@example.com","n":1.50,"o":{"a":[1,2]}}`)
	if a != b {
		t.Errorf("hash of equal values differ: %s and %s", a, b)
	}
	const want = `{"e":"hmac-sha256:`
	if !strings.HasPrefix(a, want) || len(a) != len(`{"e":"hmac-sha256:","n":"hmac-sha256:","o":"hmac-sha256:"}`)+3*32 {
		t.Errorf("Apply = %s, want three hmac-sha256: values of 32 hex digits", a)
	}
	// Known answer: HMAC-SHA256(testKey, "ada@example.com"), first 16 bytes.
	if got, want := a[len(`{"e":"`):len(`{"e":"hmac-sha256:`)+32], "hmac-sha256:"+hmacHex(testKey, "ada@example.com"); got != want {
		t.Errorf("hash = %s, want %s", got, want)
	}
	other, err := Compile(r, []byte("another key of at least 32 bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	if c := apply(other, `{"e":"ada@example.com","n":1.50,"o":{"a":[1,2]}}`); c == a {
		t.Errorf("hash with another key = %s, want a different value", c)
	}
}

func TestApplyErrors(t *testing.T) {
	deep := strings.Repeat("[", 100000)
	tests := []struct {
		name  string
		rules Rules
		in    string
		want  error
	}{
		{name: "empty", in: ``, want: ErrInvalidJSON},
		{name: "syntax", in: `{"a":}`, want: ErrInvalidJSON},
		{name: "trailing garbage", in: `{"a":1} x`, want: ErrInvalidJSON},
		{name: "two values", in: `{} {}`, want: ErrInvalidJSON},
		{name: "duplicate names", in: `{"a":1,"a":2}`, want: ErrDuplicateName},
		{name: "duplicate names escaped", in: `{"a":1,"\u0061":2}`, want: ErrDuplicateName},
		{name: "duplicate names in a dropped subtree", rules: Rules{Allow: []string{"$.x"}}, in: `{"d":{"a":1,"a":2}}`, want: ErrDuplicateName},
		{name: "duplicate names in a copied subtree", in: `{"d":{"a":1,"a":2}}`, want: ErrInvalidJSON},
		{name: "invalid UTF-8", in: "{\"a\":\"\xff\"}", want: ErrInvalidJSON},
		{name: "invalid UTF-8 in a name", rules: Rules{Deny: []string{"$.x"}}, in: "{\"\xff\":1}", want: ErrInvalidJSON},
		{name: "too deep walked", rules: Rules{Deny: []string{"$..x"}}, in: deep, want: ErrTooDeep},
		{name: "too deep copied", in: deep, want: ErrTooDeep},
		{name: "too deep dropped", rules: Rules{Allow: []string{"$.x"}}, in: `{"y":` + deep, want: ErrTooDeep},
		{name: "too deep masked", rules: Rules{Mask: map[string]string{"$.y": "redact"}}, in: `{"y":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, want: ErrTooDeep},
		{name: "one over the limit", in: strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), want: ErrTooDeep},
		{name: "one over the limit walked", rules: Rules{Preset: "sensitive"}, in: strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), want: ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.rules)
			start := time.Now()
			_, rep, err := p.Apply(nil, []byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("Apply(%.40q) error = %v, want %v", tt.in, err, tt.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Apply took %v", d)
			}
			if rep.Removed != nil || rep.Masked != nil {
				t.Errorf("Report = %+v on error, want empty", rep)
			}
		})
	}
}

func TestApplyDepthLimit(t *testing.T) {
	doc := strings.Repeat(`{"a":`, MaxDepth-1) + `[]` + strings.Repeat(`}`, MaxDepth-1)
	for _, r := range []Rules{{}, {Deny: []string{"$..b"}}, {Allow: []string{"$..a"}}} {
		p := mustCompile(t, r)
		got, _, err := p.Apply(nil, []byte(doc))
		if err != nil {
			t.Fatalf("Apply(%d deep) with %+v error = %v", MaxDepth, r, err)
		}
		if string(got) != doc {
			t.Errorf("Apply(%d deep) with %+v changed the document", MaxDepth, r)
		}
	}
}

func TestApplyConcurrent(t *testing.T) {
	p := mustCompile(t, Rules{Deny: []string{"$..secret"}, Mask: map[string]string{"$.e": "hash"}, Detect: true})
	in := []byte(`{"e":"x","a":[{"secret":1,"k":"AKIAIOSFODNN7EXAMPLE"}]}`)
	want, _, err := p.Apply(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, rep, err := p.Apply(nil, in)
				if err != nil || string(got) != string(want) || len(rep.Findings) != 1 {
					t.Errorf("concurrent Apply = %s, %+v, %v", got, rep, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestApplyOutputIsValid(t *testing.T) {
	p := mustCompile(t, Rules{Deny: []string{"$.a[0]", "$.b"}, Allow: []string{"$.a", "$.c"}})
	got, _, err := p.Apply(nil, []byte(`{"b":1,"a":[1,2,3],"c":{"d":"e"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !jsontext.Value(got).IsValid() {
		t.Errorf("Apply = %s, not valid JSON", got)
	}
}
