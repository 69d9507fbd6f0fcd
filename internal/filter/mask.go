package filter

import (
	"encoding/hex"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// strategy is a mask strategy. When several masks match one node, the
// one that hides most wins: redact over hash over last4.
type strategy uint8

const (
	strategyLast4 strategy = iota + 1
	strategyHash
	strategyRedact
)

// parseStrategy returns the strategy of a config name.
func parseStrategy(name string) (strategy, bool) {
	switch name {
	case "redact":
		return strategyRedact, true
	case "last4":
		return strategyLast4, true
	case "hash":
		return strategyHash, true
	}
	return 0, false
}

// redacted is what redact writes, and what last4 writes for short values
// and for values that are neither strings nor numbers.
const redacted = `"***"`

// hashPrefix starts every hash mask.
const hashPrefix = "hmac-sha256:"

// mask reads the next value (of the peeked kind) and writes its mask.
func (w *walker) mask(s strategy, kind jsontext.Kind, depth int) error {
	v, err := w.readValue(depth)
	if err != nil {
		return err
	}
	w.rep.Masks++
	w.report(&w.rep.Masked, &w.masked)
	switch s {
	case strategyRedact:
		w.out = append(w.out, redacted...)
	case strategyLast4:
		w.out = w.appendLast4(w.out, v, kind)
	case strategyHash:
		w.out = w.appendHash(w.out, v, kind)
	}
	return nil
}

// appendLast4 appends "***" and the last 4 runes of a string (unescaped)
// or the last 4 characters of a number's text; "***" alone for values of
// 4 runes or fewer and for other kinds.
func (w *walker) appendLast4(dst []byte, v jsontext.Value, kind jsontext.Kind) []byte {
	var s []byte
	switch kind {
	case '"':
		s = w.unquoteTo(&w.scratch, v)
	case '0':
		s = v
	default:
		return append(dst, redacted...)
	}
	i := len(s)
	for range 4 {
		if i == 0 {
			return append(dst, redacted...)
		}
		_, size := utf8.DecodeLastRune(s[:i])
		i -= size
	}
	if i == 0 {
		return append(dst, redacted...)
	}
	// The tail may hold quotes or control characters: quote it properly.
	tail := append(append(w.name[:0], "***"...), s[i:]...)
	w.name = tail
	dst, _ = jsontext.AppendQuote(dst, tail)
	return dst
}

// appendHash appends "hmac-sha256:" and the hex of the first 16 bytes of
// HMAC-SHA256(key, value): the unescaped text of a string, the compact
// JSON text of an object or array, the raw text of anything else.
func (w *walker) appendHash(dst []byte, v jsontext.Value, kind jsontext.Kind) []byte {
	var in []byte
	switch kind {
	case '"':
		in = w.unquoteTo(&w.scratch, v)
	case '{', '[':
		// Compact, so that formatting does not change the hash.
		w.scratch, _ = jsontext.AppendFormat(w.scratch[:0], v)
		in = w.scratch
	default:
		in = v
	}
	if w.mac == nil {
		w.mac = w.p.newMAC()
	}
	w.mac.Reset()
	w.mac.Write(in)
	sum := w.mac.Sum(w.sum[:0])
	dst = append(dst, '"')
	dst = append(dst, hashPrefix...)
	dst = hex.AppendEncode(dst, sum[:16])
	return append(dst, '"')
}
