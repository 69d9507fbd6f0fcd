package validate

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzDecodeWithin holds the one-pass check and decode of ReadJSONBody to
// CheckJSON and DecodeJSON: it decodes exactly the documents within the limits
// that DecodeJSON decodes, to the same value.
func FuzzDecodeWithin(f *testing.F) {
	seeds := []struct {
		a, b byte
		doc  string
	}{
		{a: 0xff, b: 0x3f, doc: `{"a":[1,2,{"b":"c"}],"d":null}`},     // nested, within every limit
		{a: 0x01, b: 0x3f, doc: `[[[1]]]`},                            // depth 3 against a limit of 2
		{a: 0x02, b: 0x3f, doc: `[[[1]]]`},                            // depth 3 against a limit of 3
		{a: 0x07, b: 0x3f, doc: `{"a":1,"b":2}`},                      // 2 members against a limit of 1
		{a: 0x0f, b: 0x3f, doc: `[1,2,3]`},                            // 3 elements against a limit of 2
		{a: 0x17, b: 0x3f, doc: `[1,2,3]`},                            // 3 elements against a limit of 3
		{a: 0xff, b: 0x02, doc: `["abc","\u00e9"]`},                   // strings against a length limit of 3
		{a: 0xff, b: 0x02, doc: `{"abcd":1}`},                         // a long name
		{a: 0xff, b: 0x05, doc: `["\u00e9"]`},                         // an escape counts as written
		{a: 0xff, b: 0x3f, doc: `{"a":1,"a":2}`},                      // duplicate member
		{a: 0xff, b: 0x3f, doc: "{\"a\":\"\xff\"}"},                   // invalid UTF-8
		{a: 0xff, b: 0x3f, doc: `["\ud800","\ud83d\ude00"]`},          // lone surrogate, valid pair
		{a: 0xff, b: 0x3f, doc: `{} {}`},                              // trailing data
		{a: 0xff, b: 0x3f, doc: " \n\t"},                              // empty
		{a: 0xff, b: 0xff, doc: `{"long enough to cross":"MaxSize"}`}, // size: MaxSize is half the length
	}
	for _, s := range seeds {
		f.Add(s.a, s.b, []byte(s.doc))
	}
	f.Fuzz(func(t *testing.T, a, b byte, doc []byte) {
		l := limitFuzzLimits(a, b, len(doc)).withDefaults()
		got, ok := decodeWithin(doc, l)
		want, err := DecodeJSON(doc)
		within := CheckJSON(doc, l) == nil && err == nil
		if ok != within {
			t.Fatalf("decodeWithin(%q, %+v) = %v, want %v (CheckJSON and DecodeJSON)", doc, l, ok, within)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeWithin(%q) = %#v, DecodeJSON %#v", doc, got, want)
		}
	})
}

// TestReadJSONBody checks that a small body read whole and checked in one pass
// gives what the streaming scan gives: the same bytes, value and error.
func TestReadJSONBody(t *testing.T) {
	l := Limits{MaxDepth: 3, MaxMembers: 3, MaxElements: 3, MaxString: 8, MaxSize: 64}
	gone := errors.New("client went away")
	bodies := []struct {
		name string
		doc  string
		fail error // the reader fails with it after doc
	}{
		{name: "valid", doc: `{"a":[1,2,{"b":"c"}],"d":null}`},
		{name: "scalar", doc: ` "x" `},
		{name: "depth", doc: `[[[[1]]]]`},
		{name: "members", doc: `{"a":1,"b":2,"c":3,"d":4}`},
		{name: "elements", doc: `[1,2,3,4]`},
		{name: "string", doc: `["123456789"]`},
		{name: "name", doc: `{"123456789":1}`},
		{name: "duplicate", doc: `{"a":1,"a":2}`},
		{name: "invalid UTF-8", doc: "[\"\xff\"]"},
		{name: "syntax", doc: `{"a":}`},
		{name: "trailing data", doc: `{} x`},
		{name: "empty", doc: ``},
		{name: "size", doc: `["` + strings.Repeat("x", 7) + `",` + strings.Repeat(" ", 60) + `1]`},
		{name: "read error after the document", doc: `{"a":1}`, fail: gone},
		{name: "read error inside it", doc: `{"a":`, fail: gone},
		{name: "read error after a breach", doc: `[[[[`, fail: gone},
	}
	type result struct {
		body  []byte
		value any
		err   string
		limit *LimitError
		read  []byte // what the upstream reads from r.Body
		size  int64
	}
	run := func(doc string, fail error, contentLength int64) result {
		var rd io.Reader = strings.NewReader(doc)
		if fail != nil {
			rd = io.MultiReader(rd, iotest.ErrReader(fail))
		}
		r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(iotest.HalfReader(rd)))
		r.ContentLength = contentLength
		body, v, err := ReadJSONBody(r, l, true)
		res := result{body: body, value: v}
		if err != nil {
			res.err = err.Error()
			errors.As(err, &res.limit)
			return res
		}
		res.read, _ = io.ReadAll(r.Body)
		res.size = r.ContentLength
		return res
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			// -1: unknown length, so the body is scanned while read.
			want := run(tt.doc, tt.fail, -1)
			got := run(tt.doc, tt.fail, int64(len(tt.doc)))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ReadJSONBody read whole = %+v, scanned = %+v", got, want)
			}
			// Declared shorter than it is: read whole all the same.
			if got := run(tt.doc, tt.fail, 1); !reflect.DeepEqual(got, want) {
				t.Errorf("ReadJSONBody read whole, declared 1 byte = %+v, scanned = %+v", got, want)
			}
			if tt.fail != nil && (got.err == "" || !strings.Contains(got.err, gone.Error())) && got.limit == nil {
				t.Errorf("ReadJSONBody error = %q, want the read error or a limit", got.err)
			}
		})
	}
	// A body longer than it declared is not cut at the declared length.
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`[1,   2]`))
	r.ContentLength = 3
	if body, _, err := ReadJSONBody(r, l, true); err != nil || string(body) != `[1,   2]` {
		t.Errorf("ReadJSONBody(longer than declared) = %q, %v, want the whole body", body, err)
	}
}

// TestReadJSONBodyMaxBytes checks that the edge's body limit still surfaces as
// *http.MaxBytesError when a small declared body is read whole.
func TestReadJSONBodyMaxBytes(t *testing.T) {
	doc := `{"a":"` + strings.Repeat("x", 40) + `"}`
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(doc))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
	r.ContentLength = int64(len(doc))
	_, _, err := ReadJSONBody(r, Limits{}, true)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Errorf("ReadJSONBody over the edge's limit = %v, want an *http.MaxBytesError", err)
	}
}

// TestReadJSONBodyOnePass checks the one-pass read of a small body: the bytes,
// the body and length put back, and the decoded value.
func TestReadJSONBodyOnePass(t *testing.T) {
	doc := []byte(`{"a":[1,2,{"b":"c"}],"d":null}`)
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(doc))
	body, v, err := ReadJSONBody(r, Limits{}, true)
	if err != nil || !bytes.Equal(body, doc) || v == nil {
		t.Fatalf("ReadJSONBody = %q, %v, %v", body, v, err)
	}
	if r.ContentLength != int64(len(doc)) {
		t.Errorf("ContentLength = %d, want %d", r.ContentLength, len(doc))
	}
}
