package filter

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// stepKind is what one step of a path matches.
type stepKind uint8

const (
	stepMember    stepKind = iota // .name or ['name']: one member
	stepAnyMember                 // .*: every member of an object
	stepAnyIndex                  // [*]: every element of an array
	stepIndex                     // [N]: one element
	stepDesc                      // ..name: the member name at any depth below
)

// step is one parsed step of a path.
type step struct {
	kind  stepKind
	name  string // stepMember, stepDesc
	index int    // stepIndex
}

// maxIndex bounds [N] so that an index never overflows an int on any
// platform; no real document has an array that long.
const maxIndex = 1<<31 - 1

// syntaxError is a path that does not parse; offset is the byte offset in
// the path where the parser stopped (-1 when it is the whole path).
type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string {
	if e.offset < 0 {
		return e.msg
	}
	return fmt.Sprintf("%s at offset %d", e.msg, e.offset)
}

// parsePath parses one path of the grammar in docs/response-filtering.md.
func parsePath(s string) ([]step, error) {
	if s == "" {
		return nil, &syntaxError{-1, "empty path"}
	}
	if s[0] != '$' {
		return nil, &syntaxError{0, `path must start with "$"`}
	}
	var steps []step
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			if i+1 < len(s) && s[i+1] == '.' {
				st, n, err := parseDesc(s, i+2)
				if err != nil {
					return nil, err
				}
				steps, i = append(steps, st), n
				continue
			}
			i++
			if i < len(s) && s[i] == '*' {
				steps, i = append(steps, step{kind: stepAnyMember}), i+1
				continue
			}
			name, n, err := parseIdent(s, i)
			if err != nil {
				return nil, err
			}
			steps, i = append(steps, step{kind: stepMember, name: name}), n
		case '[':
			st, n, err := parseBracket(s, i)
			if err != nil {
				return nil, err
			}
			steps, i = append(steps, st), n
		default:
			return nil, &syntaxError{i, fmt.Sprintf("unexpected %q", s[i])}
		}
	}
	if len(steps) == 0 {
		return nil, &syntaxError{-1, "path has no steps"}
	}
	return steps, nil
}

// parseDesc parses what follows "..": a name or a quoted name in brackets.
func parseDesc(s string, i int) (step, int, error) {
	if i < len(s) && s[i] == '[' {
		if i+1 >= len(s) || (s[i+1] != '\'' && s[i+1] != '"') {
			return step{}, 0, &syntaxError{i, `".." needs a member name`}
		}
		st, n, err := parseBracket(s, i)
		if err != nil {
			return step{}, 0, err
		}
		return step{kind: stepDesc, name: st.name}, n, nil
	}
	if i < len(s) && s[i] == '*' {
		return step{}, 0, &syntaxError{i, `".." needs a member name`}
	}
	name, n, err := parseIdent(s, i)
	if err != nil {
		return step{}, 0, err
	}
	return step{kind: stepDesc, name: name}, n, nil
}

// parseIdent parses a non-empty run of identifier characters at s[i:].
func parseIdent(s string, i int) (string, int, error) {
	start := i
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "", 0, &syntaxError{i, "invalid UTF-8"}
		}
		if !isIdentRune(r) {
			break
		}
		i += size
	}
	if i == start {
		if i == len(s) {
			return "", 0, &syntaxError{i, "missing member name"}
		}
		return "", 0, &syntaxError{i, fmt.Sprintf("unexpected %q", s[i])}
	}
	return s[start:i], i, nil
}

// isIdentRune reports whether r may appear in a .name step: ASCII letters,
// digits, '_', '-', and any non-ASCII letter.
func isIdentRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '-':
		return true
	case r < utf8.RuneSelf:
		return false
	default:
		return unicode.IsLetter(r)
	}
}

// parseBracket parses [*], [N], ['name'] or ["name"] starting at the '['.
func parseBracket(s string, i int) (step, int, error) {
	i++
	if i >= len(s) {
		return step{}, 0, &syntaxError{i, "unterminated bracket"}
	}
	switch c := s[i]; {
	case c == '*':
		i++
		if i >= len(s) {
			return step{}, 0, &syntaxError{i, "unterminated bracket"}
		}
		if s[i] != ']' {
			return step{}, 0, &syntaxError{i, `expected "]"`}
		}
		return step{kind: stepAnyIndex}, i + 1, nil
	case '0' <= c && c <= '9':
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		n, err := strconv.Atoi(s[start:i])
		if err != nil || n > maxIndex {
			return step{}, 0, &syntaxError{start, "index out of range"}
		}
		if i >= len(s) {
			return step{}, 0, &syntaxError{i, "unterminated bracket"}
		}
		if s[i] != ']' {
			return step{}, 0, &syntaxError{i, `expected "]"`}
		}
		return step{kind: stepIndex, index: n}, i + 1, nil
	case c == '\'' || c == '"':
		name, n, err := parseQuoted(s, i)
		if err != nil {
			return step{}, 0, err
		}
		if n >= len(s) {
			return step{}, 0, &syntaxError{n, "unterminated bracket"}
		}
		if s[n] != ']' {
			return step{}, 0, &syntaxError{n, `expected "]"`}
		}
		return step{kind: stepMember, name: name}, n + 1, nil
	case c == '-':
		return step{}, 0, &syntaxError{i, "negative index"}
	default:
		return step{}, 0, &syntaxError{i, fmt.Sprintf("unexpected %q", c)}
	}
}

// parseQuoted parses a quoted name at s[i] (the quote) and returns the
// name and the offset after the closing quote. Escapes: \' \" \\ and
// \uXXXX (which report paths use for control characters).
func parseQuoted(s string, i int) (string, int, error) {
	q := s[i]
	i++
	var b []byte
	for {
		if i >= len(s) {
			return "", 0, &syntaxError{i, "unterminated string"}
		}
		c := s[i]
		switch {
		case c == q:
			return string(b), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, &syntaxError{i + 1, "unterminated string"}
			}
			switch e := s[i+1]; e {
			case '\'', '"', '\\':
				b = append(b, e)
				i += 2
			case 'u':
				if i+6 > len(s) {
					return "", 0, &syntaxError{i, `bad \u escape`}
				}
				v, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
				if err != nil || !utf8.ValidRune(rune(v)) {
					return "", 0, &syntaxError{i, `bad \u escape`}
				}
				b = utf8.AppendRune(b, rune(v))
				i += 6
			default:
				return "", 0, &syntaxError{i, fmt.Sprintf("unknown escape %q", `\`+string(e))}
			}
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "", 0, &syntaxError{i, "invalid UTF-8"}
			}
			b = append(b, s[i:i+size]...)
			i += size
		}
	}
}

// appendMemberStep appends the report form of member name: .name when
// every rune is an identifier rune, else ['name'] with ', \ and control
// characters escaped, so that the result parses back to the same name.
func appendMemberStep(dst, name []byte) []byte {
	simple := len(name) > 0
	for i := 0; i < len(name) && simple; {
		c := name[i]
		if c < utf8.RuneSelf {
			simple = isIdentRune(rune(c))
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		simple = isIdentRune(r)
		i += size
	}
	if simple {
		return append(append(dst, '.'), name...)
	}
	dst = append(dst, "['"...)
	for _, c := range name {
		switch {
		case c == '\'' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f:
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, "']"...)
}
