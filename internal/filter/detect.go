package filter

import (
	"bytes"

	"github.com/go-json-experiment/json/jsontext"
)

// What detection found in one value, as bits.
const (
	foundCard uint8 = 1 << iota
	foundJWT
	foundPrivateKey
	foundSecret
)

// Salts that keep findings of different kinds at one path apart.
const (
	saltCard uint64 = iota + 1
	saltJWT
	saltPrivateKey
	saltSecret
)

// detect reports what looks sensitive in the scalar v, a value that is
// going to the output unmasked.
func (w *walker) detect(v jsontext.Value) {
	var found uint8
	switch c := v[0]; {
	case c == '"':
		found = scanText(w.unquoteTo(&w.text, v))
	case '0' <= c && c <= '9':
		if isCardNumber(v) {
			found = foundCard
		}
	}
	if found == 0 {
		return
	}
	if found&foundCard != 0 {
		w.find(KindCardNumber, saltCard)
	}
	if found&foundJWT != 0 {
		w.find(KindJWT, saltJWT)
	}
	if found&foundPrivateKey != 0 {
		w.find(KindPrivateKey, saltPrivateKey)
	}
	if found&foundSecret != 0 {
		w.find(KindSecret, saltSecret)
	}
}

// isCardNumber reports whether a JSON number's text is 13 to 19 digits
// that pass the Luhn check.
func isCardNumber(v []byte) bool {
	if len(v) < 13 || len(v) > 19 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return luhn(v)
}

// luhn reports whether the digits pass the Luhn check.
func luhn(digits []byte) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// scanText looks for card numbers, JWTs, private keys and well-known
// credential prefixes in the unescaped text of a string, in one pass.
// Candidates start at a word boundary, which keeps the scan cheap and
// false positives rare.
func scanText(s []byte) uint8 {
	var found uint8
	if bytes.Contains(s, []byte("-----BEGIN")) && bytes.Contains(s, []byte("PRIVATE KEY-----")) {
		found |= foundPrivateKey
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i > 0 && isAlnum(s[i-1]) {
			continue
		}
		switch {
		case '0' <= c && c <= '9':
			end, ok := cardAt(s, i)
			if ok {
				found |= foundCard
			}
			i = end - 1
		case c == 'e':
			if jwtAt(s, i) {
				found |= foundJWT
			}
		case c == 'A' || c == 'g' || c == 'x' || c == 's' || c == 'r':
			if secretAt(s, i) {
				found |= foundSecret
			}
		}
	}
	return found
}

// cardAt reads the run of digits at s[i:], with single spaces or dashes
// between digit groups, and reports where it ends and whether it is 13 to
// 19 digits, not followed by a letter or digit, that pass the Luhn check.
func cardAt(s []byte, i int) (end int, ok bool) {
	var digits [19]byte
	n := 0
	j := i
	for j < len(s) {
		c := s[j]
		switch {
		case '0' <= c && c <= '9':
			if n < len(digits) {
				digits[n] = c
			}
			n++
			j++
			continue
		case (c == ' ' || c == '-') && j+1 < len(s) && '0' <= s[j+1] && s[j+1] <= '9':
			j++
			continue
		}
		break
	}
	if n < 13 || n > 19 || (j < len(s) && isAlnum(s[j])) {
		return j, false
	}
	return j, luhn(digits[:n])
}

// jwtAt reports whether s[i:] starts a JWT: "eyJ" (the base64url of
// `{"`), then base64url characters with exactly two dots, both of the
// first two segments non-empty.
func jwtAt(s []byte, i int) bool {
	if !bytes.HasPrefix(s[i:], []byte("eyJ")) || (i > 0 && (s[i-1] == '.' || s[i-1] == '-' || s[i-1] == '_')) {
		return false
	}
	dots, seg := 0, 0
	j := i
	for ; j < len(s); j++ {
		c := s[j]
		if c == '.' {
			if seg == 0 {
				return false
			}
			dots++
			seg = 0
			continue
		}
		if !isAlnum(c) && c != '-' && c != '_' {
			break
		}
		seg++
	}
	return dots == 2 && (j == len(s) || s[j] != '=')
}

// secretAt reports whether s[i:] starts a well-known credential: an AWS
// access key id, a GitHub, Slack or Stripe token, or a Google API key.
func secretAt(s []byte, i int) bool {
	t := s[i:]
	switch {
	case bytes.HasPrefix(t, []byte("AKIA")) || bytes.HasPrefix(t, []byte("ASIA")):
		n := run(t[4:], isUpperAlnum)
		return n == 16
	case bytes.HasPrefix(t, []byte("AIza")):
		return run(t[4:], isURLChar) >= 35
	case bytes.HasPrefix(t, []byte("github_pat_")):
		return run(t[11:], isWordChar) >= 22
	case len(t) > 4 && t[0] == 'g' && t[1] == 'h' && t[3] == '_' &&
		(t[2] == 'p' || t[2] == 'o' || t[2] == 's' || t[2] == 'u' || t[2] == 'r'):
		return run(t[4:], isAlnum) >= 36
	case len(t) > 5 && bytes.HasPrefix(t, []byte("xox")) && t[4] == '-' &&
		(t[3] == 'a' || t[3] == 'b' || t[3] == 'p' || t[3] == 'r'):
		return run(t[5:], func(c byte) bool { return isAlnum(c) || c == '-' }) >= 10
	case bytes.HasPrefix(t, []byte("sk_live_")) || bytes.HasPrefix(t, []byte("rk_live_")):
		return run(t[8:], isAlnum) >= 16
	}
	return false
}

// run counts the leading bytes of s for which ok holds.
func run(s []byte, ok func(byte) bool) int {
	n := 0
	for n < len(s) && ok(s[n]) {
		n++
	}
	return n
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isUpperAlnum(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' }

func isWordChar(c byte) bool { return isAlnum(c) || c == '_' }

func isURLChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }
