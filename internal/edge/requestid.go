package edge

import (
	"crypto/rand"
	"encoding/hex"
)

// maxRequestIDLen bounds a request id taken from a trusted proxy.
const maxRequestIDLen = 128

// requestID returns the id of a request whose X-Request-Id header lines are
// sent. A proxy in front of the gateway (fromProxy) may set it, so one id
// follows the request across hops; it is kept when it is one line of 1 to
// 128 characters of [A-Za-z0-9._:-], safe in a log line, a header and a
// URN. Anything else, and any id from a client, is replaced with a new
// one: 128 random bits from crypto/rand as 32 hex digits.
func requestID(sent []string, fromProxy bool) string {
	if fromProxy && len(sent) == 1 && validRequestID(sent[0]) {
		return sent[0]
	}
	return NewRequestID()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh request id: 128 random bits as 32 hex
// characters. Safe for concurrent use.
func NewRequestID() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (it crashes the program instead)
	var buf [32]byte
	hex.Encode(buf[:], raw[:])
	return string(buf[:])
}
