package validate

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// limitNested returns n arrays or objects (member "a") nested in each other
// around inner.
func limitNested(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// limitMembers returns an object of n members "k0".."k<n-1>".
func limitMembers(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i))
	}
	b.WriteByte('}')
	return b.String()
}

// limitElements returns an array of n small numbers.
func limitElements(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat("7,", n), ",") + "]"
}

// limitString returns a JSON string with n bytes between its quotes.
func limitString(n int) string {
	return `"` + strings.Repeat("x", n) + `"`
}

func TestCheckJSONAccepts(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{name: "empty object", doc: `{}`},
		{name: "empty array", doc: `[]`},
		{name: "object", doc: `{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-0.5e-3}`},
		{name: "array of objects", doc: `[{"id":1,"tags":["a","b"]},{"id":2,"tags":[]}]`},
		{name: "string", doc: `"hello"`},
		{name: "number", doc: `42`},
		{name: "null", doc: `null`},
		{name: "true", doc: `true`},
		{name: "surrounding whitespace", doc: " \t\r\n{\"a\" : [ 1 , 2 ] }\n\n"},
		{name: "unicode", doc: `{"名前":"héllo wörld 😀","ключ":"значение"}`},
		{name: "escapes", doc: `["a\"b\\c\/d\b\f\n\r\t","\u00e9\u4e2d","\ud83d\ude00"]`},
		{name: "big numbers", doc: `[123456789012345678901234567890,1e400,-1.7976931348623157e308,0.000000000000000000001]`},
		{name: "same name in different objects", doc: `{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}`},
		{name: "names differ only by case", doc: `{"a":1,"A":2}`},
		{name: "depth exactly 32", doc: limitNested("[", "]", 32, "")},
		{name: "object depth exactly 32", doc: limitNested(`{"a":`, "}", 31, "{}")},
		{name: "members exactly 1000", doc: limitMembers(1000)},
		{name: "elements exactly 10000", doc: limitElements(10000)},
		{name: "string exactly 64 KiB", doc: "[" + limitString(65536) + "]"},
		{name: "name exactly 64 KiB", doc: `{` + limitString(65536) + `:1}`},
		{name: "nested arrays of 10000 each", doc: "[" + limitElements(10000) + "," + limitElements(10000) + "]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckJSON([]byte(tt.doc), Limits{}); err != nil {
				t.Errorf("CheckJSON(%.40q) = %v, want nil", tt.doc, err)
			}
			got, err := ScanJSON(strings.NewReader(tt.doc), Limits{}, nil)
			if err != nil {
				t.Errorf("ScanJSON(%.40q) = %v, want nil", tt.doc, err)
			}
			if !bytes.Equal(got, []byte(tt.doc)) {
				t.Errorf("ScanJSON(%.40q) buf = %.40q, want the input byte for byte", tt.doc, got)
			}
		})
	}
}

func TestCheckJSONRefuses(t *testing.T) {
	longName := strings.Repeat("n", 65537)
	tests := []struct {
		name string
		doc  string
		l    Limits
		want LimitError
	}{
		{name: "depth 33", doc: limitNested("[", "]", 33, ""),
			want: LimitError{Rule: "depth", Pointer: strings.Repeat("/0", 32), Limit: 32}},
		{name: "object depth 33", doc: limitNested(`{"a":`, "}", 32, "{}"),
			want: LimitError{Rule: "depth", Pointer: strings.Repeat("/a", 32), Limit: 32}},
		{name: "depth 3 of 2", doc: `{"a":{"b":{"c":1}}}`, l: Limits{MaxDepth: 2},
			want: LimitError{Rule: "depth", Pointer: "/a/b", Limit: 2}},
		{name: "1001 members", doc: `{"o":` + limitMembers(1001) + `}`,
			want: LimitError{Rule: "members", Pointer: "/o", Limit: 1000}},
		{name: "10001 elements", doc: `{"items":` + limitElements(10001) + `}`,
			want: LimitError{Rule: "elements", Pointer: "/items", Limit: 10000}},
		{name: "10001st element is an array", doc: `[` + strings.Repeat("[],", 10000) + `[]]`,
			want: LimitError{Rule: "elements", Pointer: "", Limit: 10000}},
		{name: "65537-byte string", doc: `{"a":[` + limitString(65537) + `]}`,
			want: LimitError{Rule: "string_length", Pointer: "/a/0", Limit: 65536}},
		{name: "escapes count as written", doc: `{"s":"` + strings.Repeat(`\n`, 32769) + `"}`,
			want: LimitError{Rule: "string_length", Pointer: "/s", Limit: 65536}},
		{name: "long member name", doc: `{"x":{"` + longName + `":1}}`,
			want: LimitError{Rule: "string_length", Pointer: "/x", Limit: 65536}},
		{name: "size over MaxSize", doc: `[1,2,3,4,5,6]`, l: Limits{MaxSize: 10},
			want: LimitError{Rule: "size", Limit: 10}},
		{name: "duplicate member", doc: `{"a":1,"a":2}`,
			want: LimitError{Rule: "duplicate_member", Pointer: "/a"}},
		{name: "nested duplicate member", doc: `{"x":[{"b":1,"c":{},"b":2}]}`,
			want: LimitError{Rule: "duplicate_member", Pointer: "/x/0/b"}},
		{name: "duplicate member spelled with an escape", doc: `{"ab":1,"\u0061b":2}`,
			want: LimitError{Rule: "duplicate_member", Pointer: "/ab"}},
		{name: "invalid UTF-8 in a string", doc: "{\"a\":\"ok\xffok\"}",
			want: LimitError{Rule: "invalid_utf8", Pointer: "/a"}},
		{name: "invalid UTF-8 in a name", doc: "{\"k\":{\"n\xff\":1}}",
			want: LimitError{Rule: "invalid_utf8", Pointer: "/k"}},
		{name: "truncated UTF-8 sequence in a string", doc: "[\"\xe2\x82\"]",
			want: LimitError{Rule: "invalid_utf8", Pointer: "/0"}},
		{name: "lone high surrogate", doc: `["\ud800"]`,
			want: LimitError{Rule: "invalid_utf8", Pointer: "/0"}},
		{name: "lone low surrogate in a name", doc: `{"\udc00":1}`,
			want: LimitError{Rule: "invalid_utf8", Pointer: ""}},
		{name: "reversed surrogate pair", doc: `{"s":"\ude00\ud83d"}`,
			want: LimitError{Rule: "invalid_utf8", Pointer: "/s"}},
		{name: "invalid byte outside a string", doc: "[\xff]",
			want: LimitError{Rule: "syntax", Pointer: "/0"}},
		{name: "control character in a string", doc: "[\"a\x01\"]",
			want: LimitError{Rule: "syntax", Pointer: "/0"}},
		{name: "bad escape", doc: `["\x41"]`,
			want: LimitError{Rule: "syntax", Pointer: "/0"}},
		{name: "bad unicode escape", doc: `["\uZZZZ"]`,
			want: LimitError{Rule: "syntax", Pointer: "/0"}},
		{name: "truncated object", doc: `{"a":1`,
			want: LimitError{Rule: "syntax"}},
		{name: "truncated string", doc: `["abc`,
			want: LimitError{Rule: "syntax", Pointer: "/0"}},
		{name: "truncated literal", doc: `tru`,
			want: LimitError{Rule: "syntax"}},
		{name: "missing value", doc: `{"a":}`,
			want: LimitError{Rule: "syntax", Pointer: "/a"}},
		{name: "trailing comma", doc: `[1,]`,
			want: LimitError{Rule: "syntax"}},
		{name: "name not a string", doc: `{1:2}`,
			want: LimitError{Rule: "syntax"}},
		{name: "mismatched close", doc: `[}`,
			want: LimitError{Rule: "syntax", Pointer: "/0"}},
		{name: "object where a name is due at the depth limit", doc: `{"a":{{}}}`, l: Limits{MaxDepth: 2},
			want: LimitError{Rule: "syntax", Pointer: "/a"}},
		{name: "second document", doc: `{} {}`,
			want: LimitError{Rule: "trailing_data"}},
		{name: "trailing garbage", doc: `{}x`,
			want: LimitError{Rule: "trailing_data"}},
		{name: "trailing number", doc: `1 2`,
			want: LimitError{Rule: "trailing_data"}},
		{name: "trailing close", doc: `[]]`,
			want: LimitError{Rule: "trailing_data"}},
		{name: "trailing invalid UTF-8", doc: "{}\xff",
			want: LimitError{Rule: "trailing_data"}},
		{name: "empty body", doc: ``,
			want: LimitError{Rule: "empty"}},
		{name: "whitespace-only body", doc: " \r\n\t ",
			want: LimitError{Rule: "empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckJSON([]byte(tt.doc), tt.l)
			limitWantError(t, "CheckJSON", err, tt.want)

			readers := map[string]io.Reader{
				"whole":    strings.NewReader(tt.doc),
				"one byte": iotest.OneByteReader(strings.NewReader(tt.doc)),
			}
			for name, r := range readers {
				got, err := ScanJSON(r, tt.l, nil)
				limitWantError(t, "ScanJSON("+name+")", err, tt.want)
				if !strings.HasPrefix(tt.doc, string(got)) {
					t.Errorf("ScanJSON(%s) buf = %.40q, want a prefix of the input", name, got)
				}
			}
		})
	}
}

func limitWantError(t testing.TB, call string, err error, want LimitError) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("%s = %v, want %+v", call, err, want)
	}
	if *le != want {
		t.Errorf("%s = %+v, want %+v", call, *le, want)
	}
}

func TestLimitErrorError(t *testing.T) {
	tests := []struct {
		err  LimitError
		want string
	}{
		{err: LimitError{Rule: "depth", Pointer: "/a/b/c", Limit: 32}, want: `json: depth above 32 at /a/b/c`},
		{err: LimitError{Rule: "size", Limit: 1048576}, want: `json: size above 1048576`},
		{err: LimitError{Rule: "duplicate_member", Pointer: "/a"}, want: `json: duplicate_member at /a`},
		{err: LimitError{Rule: "empty"}, want: `json: empty`},
		{err: LimitError{Rule: "syntax", Pointer: "/a\nb"}, want: `json: syntax at "/a\nb"`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("(%+v).Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestLimitErrorNeverHoldsValues(t *testing.T) {
	const secret = "s3cr3t-value"
	docs := []string{
		`{"a":"` + secret + "\xff" + `"}`,
		`{"a":"` + secret + "\x01" + `"}`,
		`{"a":"` + secret + `\q"}`,
		`{"a":"` + secret + `\ud800"}`,
		`{"a":"` + secret + `"`,
		`{"a":"` + secret + `"} "` + secret + `"`,
		`["` + secret + `"` + secret + `]`,
	}
	for _, doc := range docs {
		err := CheckJSON([]byte(doc), Limits{})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("CheckJSON(%q) = %v, want an error without the value", doc, err)
		}
	}
}

func TestLimitPointerBounded(t *testing.T) {
	name := strings.Repeat("é", 60) // 120 bytes
	doc := limitNested(`{"`+name+`":`, "}", 5, "{}")
	err := CheckJSON([]byte(doc), Limits{MaxDepth: 3})
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("CheckJSON = %v, want a *LimitError", err)
	}
	full := strings.Repeat("/"+name, 3)
	switch p := le.Pointer; {
	case len(p) > 256, !utf8.ValidString(p), !strings.Contains(p, "…"):
		t.Errorf("Pointer = %q (%d bytes), want at most 256 bytes of valid UTF-8 cut with …", p, len(p))
	case !strings.HasPrefix(full, p[:strings.Index(p, "…")]), !strings.HasSuffix(full, p[strings.Index(p, "…")+len("…"):]):
		t.Errorf("Pointer = %q, want the head and tail of %q", p, full)
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Limits
		want Limits
	}{
		{name: "zero", in: Limits{}, want: DefaultLimits()},
		{name: "negative", in: Limits{MaxDepth: -1, MaxMembers: -1, MaxElements: -1, MaxString: -1, MaxSize: -1}, want: DefaultLimits()},
		{name: "set", in: Limits{MaxDepth: 4, MaxMembers: 5, MaxElements: 6, MaxString: 7, MaxSize: 8},
			want: Limits{MaxDepth: 4, MaxMembers: 5, MaxElements: 6, MaxString: 7, MaxSize: 8}},
		{name: "depth above jsontext's", in: Limits{MaxDepth: 1 << 20},
			want: Limits{MaxDepth: 10000, MaxMembers: 1000, MaxElements: 10000, MaxString: 65536, MaxSize: 1 << 20}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); got != tt.want {
			t.Errorf("%s: (%+v).withDefaults() = %+v, want %+v", tt.name, tt.in, got, tt.want)
		}
	}
}

// jsontext refuses nesting past 10000 itself, with an unexported error; a
// larger configured limit must still end in our "depth".
func TestCheckJSONDepthCeiling(t *testing.T) {
	doc := limitNested("[", "]", 10001, "")
	err := CheckJSON([]byte(doc), Limits{MaxDepth: 1 << 20})
	limitWantError(t, "CheckJSON", err, LimitError{Rule: "depth", Pointer: scanBoundPointer(strings.Repeat("/0", 10000)), Limit: 10000})
	if err := CheckJSON([]byte(limitNested("[", "]", 10000, "")), Limits{MaxDepth: 1 << 20}); err != nil {
		t.Errorf("CheckJSON(depth 10000) = %v, want nil", err)
	}
}

// limitCountingReader counts the bytes read from r.
type limitCountingReader struct {
	r io.Reader
	n int64
}

func (c *limitCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Hostile documents of 10 MB, with MaxSize raised past them so that only the
// rule under test can stop them, are refused after reading the first chunk.
func TestScanJSONReadsLittle(t *testing.T) {
	const tenMB = 10 << 20
	tests := []struct {
		name string
		doc  string
		want LimitError
	}{
		{name: "depth bomb", doc: strings.Repeat("[", tenMB),
			want: LimitError{Rule: "depth", Pointer: strings.Repeat("/0", 32), Limit: 32}},
		{name: "object depth bomb", doc: strings.Repeat(`{"a":`, tenMB/5),
			want: LimitError{Rule: "depth", Pointer: strings.Repeat("/a", 32), Limit: 32}},
		{name: "2M elements", doc: "[" + strings.Repeat("1234,", 2_000_000) + "1]",
			want: LimitError{Rule: "elements", Limit: 10000}},
		{name: "1M members", doc: limitMembers(1_000_000),
			want: LimitError{Rule: "members", Limit: 1000}},
		{name: "endless string", doc: `{"a":[1,"` + strings.Repeat("x", tenMB),
			want: LimitError{Rule: "string_length", Pointer: "/a/1", Limit: 65536}},
		{name: "endless name", doc: `{"a":{"b":1,"` + strings.Repeat("x", tenMB),
			want: LimitError{Rule: "string_length", Pointer: "/a", Limit: 65536}},
		{name: "endless member value", doc: `{"a":"` + strings.Repeat("x", tenMB),
			want: LimitError{Rule: "string_length", Pointer: "/a", Limit: 65536}},
		{name: "endless top-level string", doc: `"` + strings.Repeat("x", tenMB),
			want: LimitError{Rule: "string_length", Limit: 65536}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &limitCountingReader{r: strings.NewReader(tt.doc)}
			got, err := ScanJSON(r, Limits{MaxSize: 64 << 20}, nil)
			limitWantError(t, "ScanJSON", err, tt.want)
			if r.n >= 1<<20 {
				t.Errorf("ScanJSON read %d bytes, want < 1 MiB", r.n)
			}
			if int64(len(got)) != r.n || !strings.HasPrefix(tt.doc, string(got)) {
				t.Errorf("ScanJSON buf holds %d bytes, want the %d bytes read", len(got), r.n)
			}
		})
	}
}

// A body that arrives one byte per read costs time linear in its length:
// nothing is rescanned per read (a quadratic scan of 256 KiB would take
// minutes; the budget is generous for loaded machines).
func TestScanJSONDribble(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		rule string
	}{
		{name: "whitespace run", doc: "[" + strings.Repeat(" ", 256<<10) + "1]"},
		{name: "whitespace then long string", doc: "[" + strings.Repeat("\n", 128<<10) + limitString(100_000) + "]", rule: "string_length"},
		{name: "string at the limit", doc: "[" + limitString(65536) + "]"},
		{name: "long number", doc: "[" + strings.Repeat("9", 256<<10) + "]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := ScanJSON(iotest.OneByteReader(strings.NewReader(tt.doc)), Limits{}, nil)
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("ScanJSON took %v for %d bytes in one-byte reads", elapsed, len(tt.doc))
			}
			var le *LimitError
			switch {
			case tt.rule == "" && err != nil:
				t.Errorf("ScanJSON = %v, want nil", err)
			case tt.rule != "" && (!errors.As(err, &le) || le.Rule != tt.rule):
				t.Errorf("ScanJSON = %v, want rule %q", err, tt.rule)
			}
		})
	}
}

// With the default MaxSize, a 10 MB body of any shape stops at 1 MiB.
func TestScanJSONSize(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		l    Limits
	}{
		{name: "long number", doc: "[" + strings.Repeat("1", 10<<20) + "]"},
		{name: "whitespace", doc: "[" + strings.Repeat(" ", 10<<20) + "]"},
		{name: "many small arrays", doc: "[" + strings.Repeat("[1,2],", 2<<20) + "[]]", l: Limits{MaxElements: 1 << 30}},
		{name: "trailing whitespace", doc: "{}" + strings.Repeat(" ", 10<<20)},
		{name: "string with MaxString raised", doc: `"` + strings.Repeat("x", 10<<20) + `"`, l: Limits{MaxString: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &limitCountingReader{r: strings.NewReader(tt.doc)}
			_, err := ScanJSON(r, tt.l, nil)
			limitWantError(t, "ScanJSON", err, LimitError{Rule: "size", Limit: 1 << 20})
			if r.n > 1<<20+1 {
				t.Errorf("ScanJSON read %d bytes, want at most MaxSize+1", r.n)
			}
			limitWantError(t, "CheckJSON", CheckJSON([]byte(tt.doc), tt.l), LimitError{Rule: "size", Limit: 1 << 20})
		})
	}
}

func TestScanJSONSizeBoundary(t *testing.T) {
	doc := `{"a":[1,2,3]}`
	for _, size := range []int64{int64(len(doc)), int64(len(doc)) - 1} {
		_, err := ScanJSON(iotest.HalfReader(strings.NewReader(doc)), Limits{MaxSize: size}, nil)
		errCheck := CheckJSON([]byte(doc), Limits{MaxSize: size})
		if fits := size >= int64(len(doc)); fits != (err == nil) || fits != (errCheck == nil) {
			t.Errorf("MaxSize %d for %d bytes: ScanJSON = %v, CheckJSON = %v", size, len(doc), err, errCheck)
		}
	}
}

func TestScanJSONKeepsBuf(t *testing.T) {
	doc := `{"order":{"id":"A-1","lines":[{"sku":"x","qty":2}]}}`
	prefix := []byte("already here|")
	got, err := ScanJSON(iotest.DataErrReader(strings.NewReader(doc)), Limits{}, prefix)
	if err != nil {
		t.Fatalf("ScanJSON = %v, want nil", err)
	}
	if want := "already here|" + doc; string(got) != want {
		t.Errorf("ScanJSON buf = %q, want %q", got, want)
	}
}

func TestScanJSONReaderErrors(t *testing.T) {
	t.Run("MaxBytesReader", func(t *testing.T) {
		doc := limitElements(500)
		body := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(doc)), 100)
		got, err := ScanJSON(body, Limits{}, nil)
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) || mbe.Limit != 100 {
			t.Fatalf("ScanJSON = %v, want a *http.MaxBytesError with limit 100", err)
		}
		var le *LimitError
		if errors.As(err, &le) {
			t.Errorf("ScanJSON = %v, want no *LimitError", err)
		}
		if len(got) != 100 {
			t.Errorf("ScanJSON buf holds %d bytes, want the 100 read", len(got))
		}
	})
	t.Run("other error", func(t *testing.T) {
		boom := errors.New("connection reset")
		r := io.MultiReader(strings.NewReader(`{"a":`), iotest.ErrReader(boom))
		if _, err := ScanJSON(r, Limits{}, nil); !errors.Is(err, boom) {
			t.Errorf("ScanJSON = %v, want %v wrapped", err, boom)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader(`{"a":`), limitStuckReader{})
		if _, err := ScanJSON(r, Limits{}, nil); !errors.Is(err, io.ErrNoProgress) {
			t.Errorf("ScanJSON = %v, want %v wrapped", err, io.ErrNoProgress)
		}
	})
	t.Run("error after the document", func(t *testing.T) {
		boom := errors.New("connection reset")
		r := io.MultiReader(strings.NewReader(`{"a":1}`), iotest.ErrReader(boom))
		if _, err := ScanJSON(r, Limits{}, nil); !errors.Is(err, boom) {
			t.Errorf("ScanJSON = %v, want %v wrapped", err, boom)
		}
	})
}

// limitStuckReader returns (0, nil) forever.
type limitStuckReader struct{}

func (limitStuckReader) Read([]byte) (int, error) { return 0, nil }

func TestCheckJSONLeavesDataAlone(t *testing.T) {
	docs := []string{
		`{"a":{"b":[1,"two",{"c":null}]},"d":"e"}`,
		`{"a":1,"a":2}`,
		"{\"a\":\"\xff\"}",
		`[1,2,`,
	}
	for _, doc := range docs {
		data := []byte(doc)
		_ = CheckJSON(data, Limits{})
		if string(data) != doc {
			t.Errorf("CheckJSON changed %q into %q", doc, data)
		}
	}
}

// Decoders are pooled; interleaved calls from many goroutines must not see
// each other's state (run with -race).
func TestCheckJSONConcurrent(t *testing.T) {
	docs := []struct {
		doc  string
		rule string
	}{
		{doc: `{"a":[1,2,{"b":"c"}]}`},
		{doc: `{"a":1,"a":2}`, rule: "duplicate_member"},
		{doc: limitNested("[", "]", 40, ""), rule: "depth"},
		{doc: `"` + strings.Repeat("x", 70000) + `"`, rule: "string_length"},
		{doc: `{} x`, rule: "trailing_data"},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tt := docs[(g+i)%len(docs)]
				var err error
				if i%2 == 0 {
					err = CheckJSON([]byte(tt.doc), Limits{})
				} else {
					var got []byte
					got, err = ScanJSON(iotest.HalfReader(strings.NewReader(tt.doc)), Limits{}, nil)
					if !strings.HasPrefix(tt.doc, string(got)) {
						t.Errorf("ScanJSON buf = %.40q, want a prefix of %.40q", got, tt.doc)
					}
				}
				var le *LimitError
				switch {
				case tt.rule == "" && err != nil:
					t.Errorf("check(%.40q) = %v, want nil", tt.doc, err)
				case tt.rule != "" && (!errors.As(err, &le) || le.Rule != tt.rule):
					t.Errorf("check(%.40q) = %v, want rule %q", tt.doc, err, tt.rule)
				}
			}
		})
	}
	wg.Wait()
}
