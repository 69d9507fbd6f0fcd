package config

import (
	"fmt"
	"strings"
)

// expand replaces ${VAR} and ${VAR:-default} in one scalar value with the
// variable's value from lookup. It runs on scalars after the YAML is parsed,
// so whatever a variable holds stays one plain string and can never add
// YAML structure.
//
//   - ${VAR} is the value of VAR; an unset VAR is an error (a set but empty
//     VAR gives the empty string).
//   - ${VAR:-default} is default when VAR is unset or empty; default is
//     taken literally (no nested expansion) and ends at the first "}".
//   - $${ is a literal "${".
//   - any other "$" is kept as is, so "$VAR" and "$5" need no escaping.
//
// VAR matches [A-Za-z_][A-Za-z0-9_]*. Errors name the variable, never its
// value.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ (write $${ for a literal ${)")
			}
			ref := s[i+2 : i+2+end]
			i += 2 + end + 1
			name, def, hasDef := strings.Cut(ref, ":-")
			if !isIdentifier(name) {
				return "", fmt.Errorf("invalid reference ${%s}: use ${NAME} or ${NAME:-default}, NAME matching [A-Za-z_][A-Za-z0-9_]* (write $${ for a literal ${)", ref)
			}
			v, ok := lookup(name)
			switch {
			case ok && (v != "" || !hasDef):
				b.WriteString(v)
			case hasDef:
				b.WriteString(def)
			default:
				return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} to give a default)", name, name)
			}
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}
