package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/go-json-experiment/json/jsontext"
)

// limitFuzzLimits derives small limits from two fuzzed bytes: depth 1–8 and
// members/elements 1–16 from a, string length 1–64 from b; b's top bits
// sometimes set a MaxSize of a few bytes.
func limitFuzzLimits(a, b byte, docLen int) Limits {
	l := Limits{
		MaxDepth:    1 + int(a&7),
		MaxMembers:  1 + int(a>>3&15),
		MaxElements: 1 + int(a>>3&15),
		MaxString:   1 + int(b&63),
	}
	if b&0xc0 == 0xc0 {
		l.MaxSize = 1 + int64(docLen)/2
	}
	return l
}

func FuzzJSONLimits(f *testing.F) {
	seeds := []struct {
		a, b byte
		doc  string
	}{
		{a: 0xff, b: 0x3f, doc: `{"a":[1,2,{"b":"c"}],"d":null}`},     // nested, within every limit
		{a: 0x01, b: 0x3f, doc: `[[[1]]]`},                            // depth 3 against a limit of 2
		{a: 0x07, b: 0x3f, doc: `{"a":1,"b":2}`},                      // 2 members against a limit of 1
		{a: 0x0f, b: 0x3f, doc: `[1,2,3]`},                            // 3 elements against a limit of 2
		{a: 0xff, b: 0x02, doc: `["abc","\u00e9"]`},                   // strings against a length limit of 3
		{a: 0xff, b: 0x3f, doc: `{"a":1,"a":2}`},                      // duplicate member
		{a: 0xff, b: 0x3f, doc: "{\"a\":\"\xff\"}"},                   // invalid UTF-8
		{a: 0xff, b: 0x3f, doc: `["\ud800","\ud83d\ude00"]`},          // lone surrogate, valid pair
		{a: 0xff, b: 0x3f, doc: `{} {}`},                              // trailing data
		{a: 0xff, b: 0x3f, doc: " \n\t"},                              // empty
		{a: 0xff, b: 0xff, doc: `{"long enough to cross":"MaxSize"}`}, // size: MaxSize is half the length
		{a: 0xff, b: 0x3f, doc: `{"a":"b\"c\\d","e":-1.5e10,"f":[]}`}, // escapes, numbers
	}
	for _, s := range seeds {
		f.Add(s.a, s.b, []byte(s.doc))
	}
	f.Fuzz(func(t *testing.T, a, b byte, doc []byte) {
		l := limitFuzzLimits(a, b, len(doc))
		orig := bytes.Clone(doc)
		errCheck := CheckJSON(doc, l)
		if !bytes.Equal(doc, orig) {
			t.Fatalf("CheckJSON modified its input")
		}
		var le *LimitError
		if errCheck != nil && !errors.As(errCheck, &le) {
			t.Fatalf("CheckJSON(%q) = %v, want nil or a *LimitError", doc, errCheck)
		}
		if le != nil && (len(le.Pointer) > limitMaxPointer || le.Rule == "") {
			t.Fatalf("CheckJSON(%q) = %+v, want a rule and a pointer of at most %d bytes", doc, *le, limitMaxPointer)
		}
		if l.MaxSize > 0 && int64(len(doc)) > l.MaxSize && (le == nil || le.Rule != limitRuleSize) {
			t.Fatalf("CheckJSON(%d bytes, MaxSize %d) = %v, want size", len(doc), l.MaxSize, errCheck)
		}

		// ScanJSON agrees, through the smallest reads, and hands back the
		// bytes it read. Leading whitespace (0–63 bytes) moves the token
		// boundaries across the decoder's first 64-byte read. Over MaxSize,
		// CheckJSON refuses before looking, so only the rule is compared.
		padded := append(bytes.Repeat([]byte(" "), int(a^b)&63), doc...)
		errPadded := CheckJSON(padded, l)
		got, errScan := ScanJSON(iotest.OneByteReader(bytes.NewReader(padded)), l, nil)
		if !bytes.HasPrefix(padded, got) || errScan == nil && !bytes.Equal(got, padded) {
			t.Fatalf("ScanJSON(%q) buf = %q, want the bytes read", padded, got)
		}
		var lpad, lscan *LimitError
		if errPadded != nil && !errors.As(errPadded, &lpad) || errScan != nil && !errors.As(errScan, &lscan) {
			t.Fatalf("CheckJSON(%q) = %v, ScanJSON = %v, want nil or a *LimitError", padded, errPadded, errScan)
		}
		if sized := lpad != nil && lpad.Rule == limitRuleSize; !sized && ((le == nil) != (lpad == nil) || le != nil && le.Rule != lpad.Rule) {
			t.Fatalf("CheckJSON(%q) = %v, but %v after leading whitespace", doc, errCheck, errPadded)
		}
		if l.MaxSize == 0 || int64(len(padded)) <= l.MaxSize {
			switch {
			case (lpad == nil) != (lscan == nil):
				t.Fatalf("CheckJSON(%q) = %v, ScanJSON = %v", padded, errPadded, errScan)
			case lpad != nil && lscan.Rule != limitRuleStringLength && *lpad != *lscan:
				// ScanJSON may refuse a long string before reading what
				// follows in it; any other refusal is the same.
				t.Fatalf("CheckJSON(%q) = %+v, ScanJSON = %+v", padded, *lpad, *lscan)
			}
		}
		if errCheck != nil {
			return
		}

		// Accepted: valid JSON that keeps every limit.
		if !json.Valid(doc) {
			t.Fatalf("CheckJSON accepted %q, which encoding/json finds invalid", doc)
		}
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("CheckJSON accepted %q, which encoding/json cannot decode: %v", doc, err)
		}
		limitFuzzWalk(t, v, 0, l.withDefaults())
		limitFuzzNoDuplicates(t, doc)
	})
}

// limitFuzzWalk checks a decoded value against l. Decoded strings are never
// longer than their encoding, so their length is a lower bound of what l
// limits.
func limitFuzzWalk(t testing.TB, v any, depth int, l Limits) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		depth++
		if depth > l.MaxDepth || len(v) > l.MaxMembers {
			t.Fatalf("accepted an object at depth %d with %d members, limits %+v", depth, len(v), l)
		}
		for k, e := range v {
			if len(k) > l.MaxString {
				t.Fatalf("accepted a %d-byte name, limit %d", len(k), l.MaxString)
			}
			limitFuzzWalk(t, e, depth, l)
		}
	case []any:
		depth++
		if depth > l.MaxDepth || len(v) > l.MaxElements {
			t.Fatalf("accepted an array at depth %d with %d elements, limits %+v", depth, len(v), l)
		}
		for _, e := range v {
			limitFuzzWalk(t, e, depth, l)
		}
	case string:
		if len(v) > l.MaxString {
			t.Fatalf("accepted a %d-byte string, limit %d", len(v), l.MaxString)
		}
	}
}

// limitFuzzNoDuplicates walks doc with duplicates allowed and fails on a
// repeated name (encoding/json keeps the last one silently).
func limitFuzzNoDuplicates(t testing.TB, doc []byte) {
	t.Helper()
	d := jsontext.NewDecoder(bytes.NewReader(doc), jsontext.AllowDuplicateNames(true))
	var objects []map[string]bool // one per open object; nil for an array
	for {
		tok, err := d.ReadToken()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("rereading accepted %q: %v", doc, err)
		}
		switch tok.Kind() {
		case '{':
			objects = append(objects, map[string]bool{})
		case '[':
			objects = append(objects, nil)
		case '}', ']':
			objects = objects[:len(objects)-1]
		case '"':
			depth := d.StackDepth()
			if k, n := d.StackIndex(depth); k != '{' || n%2 == 0 {
				continue // a value, not a name
			}
			names := objects[len(objects)-1]
			if names[tok.String()] {
				t.Fatalf("accepted %q with a duplicate name %q", doc, tok.String())
			}
			names[tok.String()] = true
		}
	}
}
