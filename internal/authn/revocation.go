package authn

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// maxRevocationFile caps a revocation file: about a million token ids.
const maxRevocationFile = 64 << 20

// revocationList is a set of revoked token ids (jti) and subjects (sub),
// read once from a file and read-only afterwards: safe for concurrent use.
// A nil list revokes nothing.
type revocationList struct {
	jti map[string]struct{}
	sub map[string]struct{}
}

// loadRevocation reads a revocation file: one entry per line, `jti <token
// id>` or `sub <subject>`, the two words separated by spaces or tabs (so a
// value holds no whitespace); `#` at the start of a line or after
// whitespace starts a comment; blank lines are ignored, and so are a UTF-8
// byte order mark and CRLF line ends. Errors name the file and line, and
// never show more of the line than its first word (and that only when it
// is short: a pasted token must not end up in a log). An empty path
// returns an empty list.
func loadRevocation(path string) (*revocationList, error) {
	l := &revocationList{jti: map[string]struct{}{}, sub: map[string]struct{}{}}
	if path == "" {
		return l, nil
	}
	data, err := readRevocationFile(path)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if err := l.add(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return l, nil
}

// readRevocationFile reads the whole file, refusing one over the cap before
// reading it when it is a regular file, and while reading otherwise.
func readRevocationFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > maxRevocationFile {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxRevocationFile>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRevocationFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxRevocationFile {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxRevocationFile>>20)
	}
	return data, nil
}

// add parses one line into l.
func (l *revocationList) add(line []byte) error {
	var words [2][]byte
	n := 0
	for rest := line; ; n++ {
		rest = bytes.TrimLeft(rest, " \t\r")
		if len(rest) == 0 || rest[0] == '#' {
			break
		}
		end := bytes.IndexAny(rest, " \t\r")
		if end < 0 {
			end = len(rest)
		}
		if n < len(words) {
			words[n] = rest[:end]
		}
		rest = rest[end:]
	}
	switch {
	case n == 0:
		return nil // blank or comment
	case string(words[0]) != "jti" && string(words[0]) != "sub":
		return fmt.Errorf("%s is not an entry: want `jti <token id>` or `sub <subject>`", describeWord(words[0]))
	case n > 2:
		return fmt.Errorf("%s takes one value, without spaces", words[0])
	case n == 1:
		return fmt.Errorf("%s needs a value", words[0])
	case !utf8.Valid(words[1]):
		return fmt.Errorf("%s value is not valid UTF-8", words[0])
	case string(words[0]) == "jti":
		l.jti[string(words[1])] = struct{}{}
	default:
		l.sub[string(words[1])] = struct{}{}
	}
	return nil
}

// describeWord names a line's first word in an error: quoted when short and
// printable, else only by its length (it may be a token pasted by mistake).
func describeWord(w []byte) string {
	if len(w) <= 16 && utf8.Valid(w) {
		printable := true
		for _, r := range string(w) {
			if r < 0x20 || r == 0x7f || r == '`' || r == '"' || r == '\\' {
				printable = false
				break
			}
		}
		if printable {
			return fmt.Sprintf("%q", w)
		}
	}
	return fmt.Sprintf("a word of %d bytes", len(w))
}

// revoked reports whether p's TokenID or Subject is listed. A nil list or
// nil principal revokes nothing; an empty TokenID or Subject never matches.
// It allocates nothing.
func (l *revocationList) revoked(p *exchange.Principal) bool {
	if l == nil || p == nil {
		return false
	}
	if p.TokenID != "" {
		if _, ok := l.jti[p.TokenID]; ok {
			return true
		}
	}
	if p.Subject != "" {
		if _, ok := l.sub[p.Subject]; ok {
			return true
		}
	}
	return false
}

// len returns the number of distinct entries (token ids plus subjects).
func (l *revocationList) len() int {
	if l == nil {
		return 0
	}
	return len(l.jti) + len(l.sub)
}
