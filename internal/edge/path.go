package edge

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// PathError is why CanonicalPath refused a path. Its value is a bounded
// snake_case reason, used as the denial's reason label; compare with
// errors.Is against the constants below.
type PathError string

// Error implements error.
func (e PathError) Error() string { return "non-canonical path: " + string(e) }

// The reasons CanonicalPath refuses a path, one per class of attack.
const (
	// ErrNotAbsolute: the request-target is not an absolute path
	// ("*", authority form, an empty path).
	ErrNotAbsolute PathError = "not_absolute"
	// ErrBadEscape: a '%' not followed by two hex digits.
	ErrBadEscape PathError = "bad_escape"
	// ErrEncodedSlash: %2F, a '/' that some hop decodes before splitting
	// segments and another after.
	ErrEncodedSlash PathError = "encoded_slash"
	// ErrEncodedBackslash: %5C, a separator on Windows-style upstreams.
	ErrEncodedBackslash PathError = "encoded_backslash"
	// ErrEncodedNUL: %00, which truncates paths in C-based upstreams.
	ErrEncodedNUL PathError = "encoded_nul"
	// ErrBackslash: a literal '\'.
	ErrBackslash PathError = "backslash"
	// ErrControl: a control character (below 0x20, or 0x7F) or a space
	// after decoding.
	ErrControl PathError = "control_character"
	// ErrEmptySegment: "//", which many upstreams merge into one '/'.
	ErrEmptySegment PathError = "empty_segment"
	// ErrDotSegment: a "." or ".." segment after decoding, also when it
	// is followed by a ';' parameter ("..;x", read as ".." by Tomcat).
	ErrDotSegment PathError = "dot_segment"
	// ErrDoubleEncoding: after decoding, the path still holds an escape
	// ("%252e" decodes to "%2e"), which an upstream that decodes again
	// would read as something else.
	ErrDoubleEncoding PathError = "double_encoding"
	// ErrInvalidUTF8: the decoded path is not valid UTF-8 (including
	// overlong forms such as %C0%AE and surrogates).
	ErrInvalidUTF8 PathError = "invalid_utf8"
	// ErrConfusable: a character that Unicode compatibility normalisation
	// (NFKC) turns into '/', '\', '%' or only dots, such as the fullwidth
	// solidus U+FF0F: an upstream that normalises would see a separator, an
	// escape or a dot segment the gateway did not.
	ErrConfusable PathError = "confusable_character"
)

// detail is the fixed sentence shown to the client; it never echoes the
// path.
func (e PathError) detail() string {
	switch e {
	case ErrNotAbsolute:
		return "The request target is not an absolute path."
	case ErrBadEscape:
		return "The request path has a malformed percent-escape."
	case ErrEncodedSlash, ErrEncodedBackslash, ErrEncodedNUL:
		return "The request path has an encoded slash, backslash or NUL."
	case ErrBackslash:
		return "The request path has a backslash."
	case ErrControl:
		return "The request path has a control character or a space."
	case ErrEmptySegment:
		return "The request path has an empty segment."
	case ErrDotSegment:
		return "The request path has a dot segment."
	case ErrDoubleEncoding:
		return "The request path is percent-encoded twice."
	case ErrInvalidUTF8:
		return "The request path is not valid UTF-8."
	case ErrConfusable:
		return "The request path has a character that normalises to a separator, a dot or a percent sign."
	}
	return "The request path is not in canonical form."
}

// pathProblem maps a CanonicalPath error to the client's answer.
func pathProblem(err error) problem.Problem {
	var pe PathError
	if !errors.As(err, &pe) {
		pe = "invalid"
	}
	return problem.NonCanonicalPath(string(pe), pe.detail())
}

// canonicalizeURL replaces the request's path with its canonical form, so
// that routing and the upstream see only that: r.URL.Path is set and
// r.URL.RawPath cleared, and the upstream receives the canonical path
// re-encoded by net/url.
func canonicalizeURL(r *http.Request) error {
	// RawPath holds the client's own escaping whenever it differs from
	// what net/url would write; EscapedPath would replace an escaping it
	// considers invalid with its own, hiding what the client sent.
	raw := r.URL.RawPath
	if raw == "" {
		raw = r.URL.EscapedPath()
	}
	p, err := CanonicalPath(raw)
	if err != nil {
		return err
	}
	r.URL.Path = p
	r.URL.RawPath = ""
	return nil
}

// CanonicalPath decodes an escaped request path (r.URL.EscapedPath() or
// the path of the raw request-target) and returns it if it is canonical:
// the only spelling of the path that the gateway routes. It returns a
// PathError for a path that is not absolute, has a malformed escape, an
// encoded '/', '\' or NUL, a literal '\', a control character or space, an
// empty segment, a dot segment (also "..;x"), an escape left after
// decoding, invalid UTF-8 or a character that normalises to a separator,
// dot or '%'. A trailing '/' is kept, and so are '+' and ';' parameters of
// ordinary segments.
//
// A path without escapes that is canonical is returned as is, without
// allocating.
func CanonicalPath(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", ErrNotAbsolute
	}
	p := escaped
	if strings.IndexByte(escaped, '%') >= 0 {
		var err error
		if p, err = unescapePath(escaped); err != nil {
			return "", err
		}
	}
	if err := checkDecoded(p); err != nil {
		return "", err
	}
	return p, nil
}

// unescapePath decodes every %XX of s, refusing the escapes of a separator
// or NUL outright: once decoded they could not be told from the real ones.
func unescapePath(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", ErrBadEscape
		}
		v := unhex(s[i+1])<<4 | unhex(s[i+2])
		switch v {
		case '/':
			return "", ErrEncodedSlash
		case '\\':
			return "", ErrEncodedBackslash
		case 0:
			return "", ErrEncodedNUL
		}
		b.WriteByte(v)
		s = s[i+3:]
	}
}

// checkDecoded checks a decoded path that starts with '/'.
func checkDecoded(p string) error {
	nonASCII := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c > ' ' && c < 0x7f && c != '/' && c != '\\' && c != '%' {
			continue // the common case: a plain printable byte
		}
		switch {
		case c == '/':
			rest := p[i+1:]
			if rest != "" && rest[0] == '/' {
				return ErrEmptySegment
			}
			if isDotSegment(rest) {
				return ErrDotSegment
			}
		case c == '\\':
			return ErrBackslash
		case c == '%':
			if i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
				return ErrDoubleEncoding
			}
		case c >= 0x80:
			nonASCII = true
		default: // below 0x20, space, 0x7F
			return ErrControl
		}
	}
	if !nonASCII {
		return nil
	}
	if !utf8.ValidString(p) {
		return ErrInvalidUTF8
	}
	for _, r := range p {
		if isConfusable(r) {
			return ErrConfusable
		}
	}
	return nil
}

// isDotSegment reports whether the segment that starts rest is "." or "..",
// alone or before a ';' parameter.
func isDotSegment(rest string) bool {
	if rest == "" || rest[0] != '.' {
		return false
	}
	n := 1
	if len(rest) > 1 && rest[1] == '.' {
		n = 2
	}
	return len(rest) == n || rest[n] == '/' || rest[n] == ';'
}

// isConfusable reports whether NFKC maps r to a string that contains '/',
// '\' or '%', or that is only dots. The list is computed from Unicode's
// tables by TestConfusablesMatchNFKC.
func isConfusable(r rune) bool {
	switch r {
	case 0x2024, 0x2025, 0x2026, // one and two dot leader, horizontal ellipsis
		0x2100, 0x2101, 0x2105, 0x2106, // account of, addressed to the subject, care of, cada una
		0xFE19, 0xFE30, 0xFE52, // vertical ellipsis, two dot leader, small full stop
		0xFE68, 0xFE6A, // small reverse solidus, small percent sign
		0xFF05, 0xFF0E, 0xFF0F, 0xFF3C: // fullwidth percent, full stop, solidus, reverse solidus
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
