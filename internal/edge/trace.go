package edge

import (
	"crypto/rand"
	mrand "math/rand/v2"
	"sync"
)

// W3C Trace Context (Level 1, https://www.w3.org/TR/trace-context-1/).
//
// The gateway is one hop of the trace: it keeps the trace id (and flags) of
// a valid incoming traceparent and sends the upstream a traceparent with a
// span id of its own; a request without a valid one starts a new trace. The
// trace id is taken from any client, not only from trusted proxies: it
// correlates, it grants nothing (docs/operations.md "Tracing").

const (
	traceparentLen      = 55 // version 00: 2+1+32+1+16+1+2
	maxTracestateLen    = 512
	maxTracestateMember = 32
	flagSampled         = 0x01
)

// traceContext is what the edge decided about the request's trace context.
type traceContext struct {
	// id is the trace id (32 lower-case hex digits), never "".
	id string
	// parent is the traceparent to send upstream: version 00, the trace
	// id, the gateway's span id and the flags.
	parent string
	// keepState reports whether the request's tracestate header lines go
	// upstream unchanged; when false they are removed.
	keepState bool
}

// newTraceContext reads the traceparent and tracestate header lines of a
// request. A valid traceparent keeps its trace id and flags; a missing or
// invalid one (or more than one line) starts a new trace, not sampled, and
// its tracestate is dropped. A tracestate is kept only beside a valid
// traceparent, and only when it is well formed and within the limits of
// 32 list members and 512 characters. One allocation: the traceparent
// string, of which id is a slice.
func newTraceContext(traceparent, tracestate []string) traceContext {
	var buf [traceparentLen]byte
	copy(buf[:], "00-")
	buf[35], buf[52] = '-', '-'
	src := sources.Get().(*mrand.ChaCha8)
	defer sources.Put(src)
	if len(traceparent) == 1 {
		if id, flags, ok := parseTraceparent(traceparent[0]); ok {
			copy(buf[3:35], id)
			fillSpanID(buf[36:52], src)
			putHex8(buf[53:55], flags)
			tp := string(buf[:])
			return traceContext{id: tp[3:35], parent: tp, keepState: validTracestate(tracestate)}
		}
	}
	fillTraceID(buf[3:35], src)
	fillSpanID(buf[36:52], src)
	buf[53], buf[54] = '0', '0' // not sampled: the gateway records nothing yet
	tp := string(buf[:])
	return traceContext{id: tp[3:35], parent: tp}
}

// parseTraceparent returns the trace id and the flags to propagate of a
// traceparent value, or ok false when the value is invalid: the version is
// not two lower-case hex digits or is ff; a field is not lower-case hex of
// its length; the trace id or parent id is all zeros; version 00 has
// anything after the flags. A higher version is parsed as the spec's
// forward-compatibility rule says (its first four fields as in 00, then
// the end of the value or a '-'), and only its sampled flag is kept, since
// the traceparent sent upstream is version 00.
func parseTraceparent(v string) (id string, flags byte, ok bool) {
	if len(v) < traceparentLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", 0, false
	}
	version, ok := hexByte(v[0], v[1])
	if !ok || version == 0xff {
		return "", 0, false
	}
	if len(v) > traceparentLen && (version == 0 || v[traceparentLen] != '-') {
		return "", 0, false
	}
	if flags, ok = hexByte(v[53], v[54]); !ok {
		return "", 0, false
	}
	if !nonZeroHex(v[3:35]) || !nonZeroHex(v[36:52]) {
		return "", 0, false
	}
	if version != 0 {
		flags &= flagSampled
	}
	return v[3:35], flags, true
}

// nonZeroHex reports whether s is lower-case hex digits, not all zeros.
func nonZeroHex(s string) bool {
	var or byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !lowerHexDigit[c] {
			return false
		}
		or |= c - '0'
	}
	return or != 0
}

var lowerHexDigit = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true,
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := lowerHex(hi)
	l, ok2 := lowerHex(lo)
	return h<<4 | l, ok1 && ok2
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// validTracestate reports whether the tracestate header lines, combined as
// one list (RFC 9110 §5.3), are a valid tracestate: every non-empty member
// a key=value of the spec's grammar, keys unique, at most 32 members and
// at most 512 characters (members and the commas between them, without
// optional whitespace and empty members). No lines is valid: nothing to
// forward.
func validTracestate(lines []string) bool {
	var keys [maxTracestateMember]string
	n, size := 0, 0
	for _, line := range lines {
		for line != "" {
			member := line
			if i := indexComma(line); i >= 0 {
				member, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			member = trimOWS(member)
			if member == "" {
				continue // empty members are allowed
			}
			if n == maxTracestateMember {
				return false
			}
			key, ok := tracestateMember(member)
			if !ok {
				return false
			}
			for _, k := range keys[:n] {
				if k == key {
					return false
				}
			}
			keys[n] = key
			if n > 0 {
				size++ // the comma
			}
			n++
			if size += len(member); size > maxTracestateLen {
				return false
			}
		}
	}
	return true
}

func indexComma(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return i
		}
	}
	return -1
}

// tracestateMember checks one list member, OWS trimmed, and returns its
// key:
//
//	key   = lcalpha 0*255( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//	key   =/ ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//	         "@" lcalpha 0*13( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//	value = 0*255( %x20 / nblk-chr ) nblk-chr
//	nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
func tracestateMember(m string) (string, bool) {
	eq := -1
	for i := 0; i < len(m); i++ {
		if m[i] == '=' {
			eq = i
			break
		}
	}
	if eq <= 0 {
		return "", false
	}
	key, value := m[:eq], m[eq+1:]
	if !validTracestateKey(key) {
		return "", false
	}
	// The value: 1 to 256 characters, the last not a space (trimOWS left
	// none at the end; a tab is not a chr anyway).
	if value == "" || len(value) > 256 || value[len(value)-1] == ' ' {
		return "", false
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return "", false
		}
	}
	return key, true
}

func validTracestateKey(k string) bool {
	at := -1
	for i := 0; i < len(k); i++ {
		if k[i] == '@' {
			at = i
			break
		}
	}
	if at < 0 {
		return len(k) <= 256 && lcalpha(k[0]) && keyChars(k[1:])
	}
	tenant, system := k[:at], k[at+1:]
	return tenant != "" && len(tenant) <= 241 && (lcalpha(tenant[0]) || isDigit(tenant[0])) && keyChars(tenant[1:]) &&
		system != "" && len(system) <= 14 && lcalpha(system[0]) && keyChars(system[1:])
}

func keyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !lcalpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '*' && c != '/' {
			return false
		}
	}
	return true
}

func lcalpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Random ids come from ChaCha8 generators (math/rand/v2: "cryptographically
// strong"), each seeded with 32 bytes from crypto/rand and kept in a pool:
// about 30 ns for a new trace on any kernel, where crypto/rand.Read itself
// is a getrandom system call (around 500 ns) on Linux before 6.11.
var sources = sync.Pool{New: func() any {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return mrand.NewChaCha8(seed)
}}

// fillTraceID writes a random, not all-zero trace id as 32 hex digits.
func fillTraceID(dst []byte, src *mrand.ChaCha8) {
	hi, lo := src.Uint64(), src.Uint64()
	for hi == 0 && lo == 0 {
		hi, lo = src.Uint64(), src.Uint64()
	}
	putHex64(dst[:16], hi)
	putHex64(dst[16:32], lo)
}

// fillSpanID writes a random, not all-zero span id as 16 hex digits.
func fillSpanID(dst []byte, src *mrand.ChaCha8) {
	v := src.Uint64()
	for v == 0 {
		v = src.Uint64()
	}
	putHex64(dst[:16], v)
}

const hexDigits = "0123456789abcdef"

func putHex64(dst []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func putHex8(dst []byte, v byte) {
	dst[0], dst[1] = hexDigits[v>>4], hexDigits[v&0xf]
}
