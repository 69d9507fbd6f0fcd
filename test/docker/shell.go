package docker

import (
	"fmt"
	"strings"
)

// SimpleCommand is a shell command made of variable assignments and words,
// such as `CGO_ENABLED=0 go build -o /out/x ./cmd/x`.
type SimpleCommand struct {
	Env  []string // NAME=value assignments before the command
	Argv []string
}

// SplitCommand splits a RUN command in shell form into assignments and
// words: single and double quotes, backslash escapes, and ${NAME} / $NAME
// expanded from vars (not inside single quotes). It refuses anything that
// is not one simple command (&&, ;, |, redirections, $(...), backquotes)
// and a variable that vars does not define, so what the test runs is
// exactly what the Dockerfile says.
func SplitCommand(s string, vars map[string]string) (SimpleCommand, error) {
	words, err := splitWords(s, vars)
	if err != nil {
		return SimpleCommand{}, err
	}
	var cmd SimpleCommand
	for i, w := range words {
		name, _, ok := strings.Cut(w, "=")
		if ok && isName(name) && len(cmd.Argv) == 0 {
			cmd.Env = append(cmd.Env, w)
			continue
		}
		cmd.Argv = words[i:]
		break
	}
	if len(cmd.Argv) == 0 {
		return SimpleCommand{}, fmt.Errorf("%q: no command", s)
	}
	return cmd, nil
}

func splitWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.IndexByte("&;|<>`()", c) >= 0:
			return nil, fmt.Errorf("%q: not one simple command (found %q)", s, c)
		case c == '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%q: unterminated single quote", s)
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				switch {
				case s[j] == '\\' && j+1 < len(s) && strings.IndexByte(`"\$`+"`", s[j+1]) >= 0:
					j++
					w.WriteByte(s[j])
				case s[j] == '`':
					return nil, fmt.Errorf("%q: command substitution not supported", s)
				case s[j] == '$':
					n, err := expandAt(s, j, vars, &w)
					if err != nil {
						return nil, err
					}
					j += n - 1
				default:
					w.WriteByte(s[j])
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%q: unterminated double quote", s)
			}
			i = j
			inWord = true
		case c == '$':
			n, err := expandAt(s, i, vars, &w)
			if err != nil {
				return nil, err
			}
			i += n - 1
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// expandAt expands the variable reference starting with the '$' at s[i]
// into w and returns how many bytes it took.
func expandAt(s string, i int, vars map[string]string, w *strings.Builder) (int, error) {
	rest := s[i+1:]
	var name string
	var n int
	switch {
	case strings.HasPrefix(rest, "("):
		return 0, fmt.Errorf("%q: command substitution not supported", s)
	case strings.HasPrefix(rest, "{"):
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return 0, fmt.Errorf("%q: unterminated ${", s)
		}
		name, n = rest[1:end], end+2
	default:
		end := 0
		for end < len(rest) && (rest[end] == '_' || isAlnum(rest[end])) {
			end++
		}
		name, n = rest[:end], end+1
	}
	if !isName(name) {
		return 0, fmt.Errorf("%q: unsupported reference at byte %d", s, i)
	}
	v, ok := vars[name]
	if !ok {
		return 0, fmt.Errorf("%q: variable %s is not defined", s, name)
	}
	w.WriteString(v)
	return n, nil
}

func isName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '_' && !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
