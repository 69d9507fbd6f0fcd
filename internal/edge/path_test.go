package edge

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		name    string
		escaped string
		want    string
		wantErr error
	}{
		// accepted
		{name: "root", escaped: "/", want: "/"},
		{name: "plain path", escaped: "/orders/1", want: "/orders/1"},
		{name: "trailing slash kept", escaped: "/orders/", want: "/orders/"},
		{name: "%41 decodes to A", escaped: "/%41", want: "/A"},
		{name: "lower-case escape decodes", escaped: "/caf%c3%a9", want: "/café"},
		{name: "plus kept", escaped: "/a+b", want: "/a+b"},
		{name: "semicolon in a normal segment kept", escaped: "/a;v=1/b", want: "/a;v=1/b"},
		{name: "three dots are a name", escaped: "/a/.../b", want: "/a/.../b"},
		{name: "dot-prefixed name", escaped: "/.well-known/jwks.json", want: "/.well-known/jwks.json"},
		{name: "dots inside a name", escaped: "/a/..b/c..", want: "/a/..b/c.."},
		{name: "valid unicode raw", escaped: "/café/日本", want: "/café/日本"},
		{name: "valid unicode encoded", escaped: "/%E6%97%A5%E6%9C%AC", want: "/日本"},
		{name: "encoded question mark", escaped: "/a%3Fb", want: "/a?b"},
		{name: "encoded percent alone", escaped: "/100%25", want: "/100%"},
		{name: "encoded percent before non-hex", escaped: "/%25zz", want: "/%zz"},
		{name: "sub-delims and colon", escaped: "/a~b!$&'()*,=:@", want: "/a~b!$&'()*,=:@"},

		// refused: not a path
		{name: "empty", escaped: "", wantErr: ErrNotAbsolute},
		{name: "asterisk form", escaped: "*", wantErr: ErrNotAbsolute},
		{name: "relative", escaped: "orders/1", wantErr: ErrNotAbsolute},
		// refused: dot segments
		{name: "dot-dot segment", escaped: "/orders/1/../2", wantErr: ErrDotSegment},
		{name: "encoded dot-dot", escaped: "/orders/%2e%2e/2", wantErr: ErrDotSegment},
		{name: "upper-case encoded dot-dot", escaped: "/orders/%2E%2E/2", wantErr: ErrDotSegment},
		{name: "half-encoded dot-dot", escaped: "/a/.%2e/b", wantErr: ErrDotSegment},
		{name: "single dot segment", escaped: "/a/./b", wantErr: ErrDotSegment},
		{name: "encoded single dot", escaped: "/a/%2e/b", wantErr: ErrDotSegment},
		{name: "trailing dot", escaped: "/a/.", wantErr: ErrDotSegment},
		{name: "trailing dot-dot", escaped: "/a/..", wantErr: ErrDotSegment},
		{name: "leading dot-dot", escaped: "/../etc/passwd", wantErr: ErrDotSegment},
		{name: "tomcat dot-dot with parameter", escaped: "/a/..;/admin", wantErr: ErrDotSegment},
		{name: "tomcat dot-dot with named parameter", escaped: "/a/..;jsessionid=1/admin", wantErr: ErrDotSegment},
		{name: "tomcat dot with parameter", escaped: "/a/.;x/b", wantErr: ErrDotSegment},
		// refused: encoded separators and NUL
		{name: "encoded slash", escaped: "/orders%2f1", wantErr: ErrEncodedSlash},
		{name: "upper-case encoded slash", escaped: "/orders%2F1", wantErr: ErrEncodedSlash},
		{name: "encoded backslash", escaped: "/orders%5c1", wantErr: ErrEncodedBackslash},
		{name: "upper-case encoded backslash", escaped: "/orders%5C1", wantErr: ErrEncodedBackslash},
		{name: "encoded NUL", escaped: "/orders/1%00.json", wantErr: ErrEncodedNUL},
		{name: "literal backslash", escaped: `/a\..\b`, wantErr: ErrBackslash},
		// refused: empty segments
		{name: "double slash inside", escaped: "/a//b", wantErr: ErrEmptySegment},
		{name: "double slash leading", escaped: "//evil.example/a", wantErr: ErrEmptySegment},
		{name: "double slash trailing", escaped: "/a//", wantErr: ErrEmptySegment},
		// refused: double encoding
		{name: "double-encoded dot", escaped: "/a/%252e%252e/b", wantErr: ErrDoubleEncoding},
		{name: "double-encoded slash", escaped: "/a%252fb", wantErr: ErrDoubleEncoding},
		{name: "percent and hex encoded separately", escaped: "/a%25%32%65", wantErr: ErrDoubleEncoding},
		// refused: invalid UTF-8
		{name: "overlong dot", escaped: "/%c0%ae%c0%ae/etc", wantErr: ErrInvalidUTF8},
		{name: "overlong slash", escaped: "/a%c0%afb", wantErr: ErrInvalidUTF8},
		{name: "surrogate", escaped: "/%ed%a0%80", wantErr: ErrInvalidUTF8},
		{name: "raw invalid byte", escaped: "/a\xffb", wantErr: ErrInvalidUTF8},
		{name: "truncated sequence", escaped: "/%e6%97", wantErr: ErrInvalidUTF8},
		// refused: control characters and space
		{name: "encoded newline", escaped: "/a%0d%0aX-Injected:1", wantErr: ErrControl},
		{name: "encoded tab", escaped: "/a%09", wantErr: ErrControl},
		{name: "encoded space", escaped: "/a%20b", wantErr: ErrControl},
		{name: "encoded DEL", escaped: "/a%7f", wantErr: ErrControl},
		{name: "raw control", escaped: "/a\x01", wantErr: ErrControl},
		// refused: malformed escapes
		{name: "escape with non-hex", escaped: "/%zz", wantErr: ErrBadEscape},
		{name: "truncated escape", escaped: "/%4", wantErr: ErrBadEscape},
		{name: "lone percent", escaped: "/%", wantErr: ErrBadEscape},
		// refused: characters NFKC turns into separators or dots
		{name: "fullwidth solidus", escaped: "/a%EF%BC%8Fb", wantErr: ErrConfusable},
		{name: "fullwidth full stops", escaped: "/．．/admin", wantErr: ErrConfusable},
		{name: "fullwidth percent", escaped: "/％2e", wantErr: ErrConfusable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalPath(tt.escaped)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CanonicalPath(%q) error = %v, want %v", tt.escaped, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("CanonicalPath(%q) = %q, want %q", tt.escaped, got, tt.want)
			}
		})
	}
}

// TestCanonicalizeURLUsesRawPath checks that the client's own escaping is
// judged, not the one net/url would have written: Go decodes %2F into
// URL.Path, and keeps the original only in URL.RawPath.
func TestCanonicalizeURLUsesRawPath(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		wantPath string
		wantErr  error
	}{
		{name: "encoded slash hidden from Path", target: "/a%2Fb", wantErr: ErrEncodedSlash},
		{name: "escape net/url considers invalid", target: "/a\\b", wantErr: ErrBackslash},
		{name: "decoded letter", target: "/%6Frders", wantPath: "/orders"},
		{name: "raw unicode", target: "/café", wantPath: "/café"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatalf("ParseRequestURI(%q): %v", tt.target, err)
			}
			r := &http.Request{URL: u}
			err = canonicalizeURL(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("canonicalizeURL(%q) error = %v, want %v", tt.target, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r.URL.Path != tt.wantPath || r.URL.RawPath != "" {
				t.Errorf("URL after canonicalizeURL(%q) = Path %q RawPath %q, want Path %q RawPath \"\"",
					tt.target, r.URL.Path, r.URL.RawPath, tt.wantPath)
			}
		})
	}
}

// TestPathProblem checks that a refusal names its class and never echoes
// the path.
func TestPathProblem(t *testing.T) {
	const secret = "/a/%2e%2e/secret-token-123"
	_, err := CanonicalPath(secret)
	p := pathProblem(err)
	if p.Status != http.StatusBadRequest || p.Slug != "non-canonical-path" || p.Reason != string(ErrDotSegment) || !p.Protocol {
		t.Errorf("pathProblem = status %d slug %q reason %q protocol %v, want 400 non-canonical-path dot_segment true",
			p.Status, p.Slug, p.Reason, p.Protocol)
	}
	if strings.Contains(p.Detail, "secret") {
		t.Errorf("pathProblem detail %q echoes the path", p.Detail)
	}
}

// TestConfusablesMatchNFKC keeps isConfusable equal to what Unicode's
// tables say, for every code point.
func TestConfusablesMatchNFKC(t *testing.T) {
	if testing.Short() {
		t.Skip("walks every code point")
	}
	for r := rune(0x80); r <= utf8.MaxRune; r++ {
		if 0xD800 <= r && r <= 0xDFFF {
			continue
		}
		n := norm.NFKC.String(string(r))
		want := strings.ContainsAny(n, `/\%`) || strings.Trim(n, ".") == ""
		if got := isConfusable(r); got != want {
			t.Errorf("isConfusable(%U) = %v, want %v (NFKC %q)", r, got, want, n)
		}
	}
}

func FuzzCanonicalPath(f *testing.F) {
	seeds := []string{
		"/orders/1",                // a plain path
		"/",                        // the root
		"/orders/",                 // a trailing slash
		"/orders/1/../2",           // a dot-dot segment
		"/orders/%2e%2e/2",         // an encoded dot-dot segment
		"/a/.%2E/b",                // a half-encoded dot-dot
		"/a/..;x/b",                // Tomcat's dot-dot with a parameter
		"/orders%2f1",              // an encoded slash
		"/a%5cb",                   // an encoded backslash
		"/a%00b",                   // an encoded NUL
		"/a//b",                    // an empty segment
		"/%c0%ae%c0%ae",            // overlong UTF-8 dots
		"/%252e",                   // a double-encoded dot
		"/%25%32%65",               // a double encoding spelt in three escapes
		"/caf%C3%A9",               // valid encoded UTF-8
		"/日本/%41",                  // raw UTF-8 and an encoded letter
		"/a;b=c/d+e",               // parameters and plus signs
		"/100%25",                  // an encoded percent sign
		"/%ef%bc%8f",               // a fullwidth solidus
		"*",                        // the asterisk form
		"/a%",                      // a truncated escape
		"/a\\b",                    // a literal backslash
		"/a%20b",                   // an encoded space
		"/.well-known/openid.json", // a dot-prefixed name
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		got, err := CanonicalPath(escaped)
		if err != nil {
			var pe PathError
			if !errors.As(err, &pe) {
				t.Fatalf("CanonicalPath(%q) error %v is not a PathError", escaped, err)
			}
			return
		}
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("CanonicalPath(%q) = %q, want a leading /", escaped, got)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("CanonicalPath(%q) = %q, not valid UTF-8", escaped, got)
		}
		clean := path.Clean(got)
		if clean != got && clean+"/" != got {
			t.Fatalf("CanonicalPath(%q) = %q, path.Clean = %q, want the same up to a trailing /", escaped, got, clean)
		}
		if strings.Contains(got, "//") || strings.ContainsAny(got, "\\\x00\x7f") {
			t.Fatalf("CanonicalPath(%q) = %q, has //, \\, NUL or DEL", escaped, got)
		}
		for _, c := range []byte(got) {
			if c < 0x20 {
				t.Fatalf("CanonicalPath(%q) = %q, has control byte %#x", escaped, got, c)
			}
		}
		again, err := CanonicalPath((&url.URL{Path: got}).EscapedPath())
		if err != nil || again != got {
			t.Fatalf("CanonicalPath(EscapedPath(%q)) = %q, %v, want %q, nil (idempotent)", got, again, err, got)
		}
	})
}

// TestPathsOnTheWire sends request-targets by hand, as http.Client would
// never write them, and checks each is refused before the route and the
// upstream.
func TestPathsOnTheWire(t *testing.T) {
	tests := []struct {
		name   string
		target string
		method string
	}{
		{name: "dot-dot segment", target: "/orders/1/../2"},
		{name: "single dot segment", target: "/orders/./2"},
		{name: "trailing dot-dot", target: "/orders/.."},
		{name: "empty segment", target: "/orders//2"},
		{name: "leading double slash", target: "//orders/2"},
		{name: "literal backslash", target: `/orders\..\admin`},
		{name: "tomcat path parameter", target: "/orders/..;/admin"},
		{name: "raw invalid UTF-8", target: "/orders/\xc0\xae"},
		{name: "asterisk form", target: "*", method: http.MethodOptions},
		{name: "absolute form without path", target: "http://gw", method: http.MethodGet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			h := startHarness(t, harnessOptions{cfg: testServerConfig()})
			c := dialRaw(t, hostPort(h.gw))
			resp, body := c.roundTrip(t, method+" "+tt.target+" HTTP/1.1\r\nHost: gw\r\n\r\n")
			checkProblem(t, resp, body, http.StatusBadRequest, "non-canonical-path")
			if n := h.up.hits.Load(); n != 0 {
				t.Errorf("upstream hits = %d, want 0", n)
			}
			if n := h.rec.count(); n != 0 {
				t.Errorf("requests past the edge = %d, want 0", n)
			}
		})
	}
}
