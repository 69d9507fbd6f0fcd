package validate

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Limits bounds a JSON document. Zero (or negative) fields take the defaults of
// DefaultLimits.
type Limits struct {
	MaxDepth    int   // nesting of objects/arrays; default 32, at most 10000 (jsontext's own ceiling)
	MaxMembers  int   // members in one object; default 1000
	MaxElements int   // elements in one array; default 10000
	MaxString   int   // bytes of one string or member name as encoded (escapes count as written); default 65536 (64 KiB)
	MaxSize     int64 // bytes of the whole document; default 1 MiB
}

// DefaultLimits returns the limits used for every zero field of a Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:    32,
		MaxMembers:  1000,
		MaxElements: 10000,
		MaxString:   64 << 10,
		MaxSize:     1 << 20,
	}
}

// limitMaxDepth is jsontext's own nesting ceiling. A deeper configured limit is
// lowered to it: past it the refusal would be the decoder's (an unexported
// "exceeded max depth" error), not ours.
const limitMaxDepth = 10000

// withDefaults fills the zero (or negative) fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, limitMaxDepth)
	if l.MaxMembers <= 0 {
		l.MaxMembers = d.MaxMembers
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxString <= 0 {
		l.MaxString = d.MaxString
	}
	if l.MaxSize <= 0 {
		l.MaxSize = d.MaxSize
	}
	return l
}

// The rules a LimitError names. The set is closed so that it can label metrics.
const (
	limitRuleDepth           = "depth"
	limitRuleMembers         = "members"
	limitRuleElements        = "elements"
	limitRuleStringLength    = "string_length"
	limitRuleSize            = "size"
	limitRuleDuplicateMember = "duplicate_member"
	limitRuleInvalidUTF8     = "invalid_utf8"
	limitRuleSyntax          = "syntax"
	limitRuleTrailingData    = "trailing_data"
	limitRuleEmpty           = "empty"
)

// limitMaxPointer bounds LimitError.Pointer in bytes.
const limitMaxPointer = 256

// LimitError is the refusal of a JSON document by ScanJSON or CheckJSON.
//
// Rule is a bounded snake_case label, fit for a metric label and a problem
// detail: "depth", "members", "elements", "string_length", "size",
// "duplicate_member", "invalid_utf8" (also a lone UTF-16 surrogate escape such
// as "\ud800"), "syntax", "trailing_data" or "empty".
//
// Pointer is the RFC 6901 JSON pointer of where it happened ("/items/3/name"),
// at most 256 bytes (a longer one is cut in the middle, marked with "…") and
// always valid UTF-8; "" for the root or when unknown. It holds member names
// and array indices from the document, never a string value. For "members"
// and "elements" it names the object or array that has too many; for
// "duplicate_member" it ends with the repeated name.
//
// Limit is the configured limit that was crossed, 0 for the rules that have
// none (duplicate_member, invalid_utf8, syntax, trailing_data, empty).
type LimitError struct {
	Rule    string
	Pointer string
	Limit   int64
}

// Error reads like `json: depth above 32 at /a/b/c`. It never quotes a value; a
// pointer with unprintable characters is quoted.
func (e *LimitError) Error() string {
	var b strings.Builder
	b.WriteString("json: ")
	b.WriteString(e.Rule)
	if e.Limit > 0 {
		b.WriteString(" above ")
		b.WriteString(strconv.FormatInt(e.Limit, 10))
	}
	if e.Pointer != "" {
		b.WriteString(" at ")
		if strings.ContainsFunc(e.Pointer, func(r rune) bool { return !unicode.IsPrint(r) }) {
			b.WriteString(strconv.Quote(e.Pointer))
		} else {
			b.WriteString(e.Pointer)
		}
	}
	return b.String()
}

// scanRefuse builds a LimitError, bounding the pointer.
func scanRefuse(rule string, ptr jsontext.Pointer, limit int64) *LimitError {
	return &LimitError{Rule: rule, Pointer: scanBoundPointer(string(ptr)), Limit: limit}
}

// scanBoundPointer makes p valid UTF-8 and at most limitMaxPointer bytes, by
// cutting out its middle: both ends say where (the head from the root, the
// tail the place itself).
func scanBoundPointer(p string) string {
	if !utf8.ValidString(p) {
		p = strings.ToValidUTF8(p, "\uFFFD")
	}
	if len(p) <= limitMaxPointer {
		return p
	}
	const mark = "…"
	half := (limitMaxPointer - len(mark)) / 2
	head, tail := half, len(p)-half
	for head > 0 && !utf8.RuneStart(p[head]) {
		head--
	}
	for tail < len(p) && !utf8.RuneStart(p[tail]) {
		tail++
	}
	return p[:head] + mark + p[tail:]
}

// ScanJSON reads one JSON document from r while checking l, appends every byte
// read from r to buf (so that the caller can forward the body unchanged, byte
// for byte) and returns buf. buf may be nil; bytes already in it are kept and
// are not part of the document.
//
// It stops at the first violation, reading no more than needed: the decoder
// reads ahead at most a few KiB past the offending token, except inside one
// string, which is read up to about l.MaxString bytes before it is refused,
// and never more than l.MaxSize+1 bytes in all. A violation is returned as a
// *LimitError. An error from r (other than io.EOF) is returned wrapped, so
// that *http.MaxBytesError stays reachable with errors.As. With an error, buf
// still holds every byte read so far. r must not be nil; it is read until
// each of the decoder's reads is full or r fails (so bytes that trickle in
// cost no more than bytes that arrive at once).
//
// ScanJSON is safe for concurrent use.
func ScanJSON(r io.Reader, l Limits, buf []byte) ([]byte, error) {
	l = l.withDefaults()
	s := scanStreams.Get().(*scanStream)
	s.in = scanReader{r: r, buf: buf, base: len(buf), max: l.MaxSize, maxString: l.MaxString, dec: &s.dec}
	s.dec.Reset(&s.in, jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	s.scan = scanner{dec: &s.dec, l: l, in: &s.in}
	err := s.scan.document()
	buf, biggest := s.in.buf, s.in.biggest
	// Drop every reference to the caller's reader and bytes before pooling,
	// and keep no decoder whose buffer grew for a long string.
	s.in, s.scan = scanReader{}, scanner{}
	s.dec.Reset(&s.in)
	if biggest <= scanPoolMaxBuffer {
		scanStreams.Put(s)
	}
	return buf, err
}

// CheckJSON is ScanJSON over a document already in memory: data is read in
// place, never copied nor modified. A document longer than l.MaxSize is
// refused ("size") before anything else is looked at.
//
// CheckJSON is safe for concurrent use.
func CheckJSON(data []byte, l Limits) error {
	l = l.withDefaults()
	if int64(len(data)) > l.MaxSize {
		return &LimitError{Rule: limitRuleSize, Limit: l.MaxSize}
	}
	s := scanBuffers.Get().(*scanBuffer)
	// A *bytes.Buffer is the one reader jsontext parses in place, without
	// copying into its own buffer (documented), and it never writes into it:
	// its "invalidate the previous read" scribbling skips a *bytes.Buffer
	// (observed in decode.go, pinned by TestCheckJSONLeavesDataAlone).
	s.src = *bytes.NewBuffer(data)
	s.dec.Reset(&s.src, jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	s.scan = scanner{dec: &s.dec, l: l, data: data}
	err := s.scan.document()
	s.src, s.scan = bytes.Buffer{}, scanner{}
	s.dec.Reset(&s.src) // forget data
	scanBuffers.Put(s)
	return err
}

// scanPoolMaxBuffer is the largest decoder read buffer worth pooling; one that
// grew past it (for a long string) is left to the garbage collector.
const scanPoolMaxBuffer = 64 << 10

// scanStreams and scanBuffers pool decoders: a jsontext.Decoder with its
// stacks costs a handful of allocations, which would otherwise be most of the
// cost of a small body. They hold no state between calls.
var (
	scanStreams = sync.Pool{New: func() any { return new(scanStream) }}
	scanBuffers = sync.Pool{New: func() any { return new(scanBuffer) }}
)

// scanStream is the pooled state of ScanJSON.
type scanStream struct {
	dec  jsontext.Decoder
	in   scanReader
	scan scanner
}

// scanBuffer is the pooled state of CheckJSON.
type scanBuffer struct {
	dec  jsontext.Decoder
	src  bytes.Buffer
	scan scanner
}

// scanReader is what the decoder reads from in ScanJSON: it copies every byte
// read into buf, counts them against max, and refuses a string that has
// grown past maxString before the decoder reads the rest of it.
type scanReader struct {
	r         io.Reader
	buf       []byte
	base      int   // len(buf) before the document
	n         int64 // bytes read from r
	max       int64 // MaxSize
	maxString int
	dec       *jsontext.Decoder
	err       error // the last error from r other than io.EOF
	refused   *LimitError
	biggest   int   // the largest read asked for: about the size of the decoder's buffer
	pendingAt int64 // the decoder's InputOffset when skipped was counted
	skipped   int   // leading bytes of the unread buffer known to precede the next token
}

func (s *scanReader) Read(p []byte) (int, error) {
	if s.refused != nil {
		return 0, s.refused
	}
	s.biggest = max(s.biggest, len(p))
	// The decoder wants more only when its buffer ends inside a token (or
	// inside whitespace). Without this check a string with no end would be
	// read up to MaxSize; with it, reading stops about MaxString in.
	if s.longString() {
		s.refused = &LimitError{Rule: limitRuleStringLength, Limit: int64(s.maxString)}
		return 0, s.refused
	}
	// Read at most one byte past the limit: enough to know it was crossed.
	if room := s.max - s.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.fill(p)
	s.buf = append(s.buf, p[:n]...)
	s.n += int64(n)
	if s.n > s.max {
		s.refused = &LimitError{Rule: limitRuleSize, Limit: s.max}
		// Hand on the bytes up to the limit, never past it (cf. edge.BodyLimit).
		return n - int(s.n-s.max), s.refused
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// fill reads from r until p is full or r fails. Each read of the decoder
// costs time in what it already holds (it moves it to the front of its
// buffer and, under -race, checks all of it), so a body dribbled in one-byte
// reads would cost time quadratic in its length; filled reads keep the
// decoder's reads few, about one per buffer.
func (s *scanReader) fill(p []byte) (int, error) {
	n, empty := 0, 0
	for n < len(p) {
		m, err := s.r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m > 0 {
			empty = 0
			continue
		}
		// jsontext would retry (0, nil) forever; bufio gives up after 100.
		if empty++; empty >= 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// longString reports whether the bytes the decoder holds but has not yet
// returned as tokens are an unterminated string with more than maxString
// bytes after its opening quote. It only looks when there are that many
// pending bytes, so the common read costs one comparison.
//
// UnreadBuffer is documented as the read-but-unreturned input. That the
// decoder reads only when it cannot finish the token (or whitespace run) at
// the end of that buffer, so that a string found there is not closed yet, is
// how jsontext's fetch works, not a documented promise: TestScanJSONReadsLittle
// and FuzzJSONLimits (ScanJSON agrees with CheckJSON wherever the reads end)
// pin it.
func (s *scanReader) longString() bool {
	pending := s.dec.UnreadBuffer()
	if len(pending) <= s.maxString+1 {
		return false
	}
	// Skip the whitespace and delimiter before the token, once: a long run
	// of whitespace arriving in small reads must not be rescanned per read.
	if at := s.dec.InputOffset(); at != s.pendingAt {
		s.pendingAt, s.skipped = at, 0
	}
	token := bytes.TrimLeft(pending[s.skipped:], " \t\r\n,:")
	s.skipped = len(pending) - len(token)
	return len(token) > 0 && token[0] == '"' && len(token)-1 > s.maxString
}

// scanner checks one document read by dec against l.
type scanner struct {
	dec  *jsontext.Decoder
	l    Limits
	in   *scanReader // ScanJSON's reader; nil for CheckJSON
	data []byte      // CheckJSON's document
}

// doc is the document bytes read so far.
func (s *scanner) doc() []byte {
	if s.in != nil {
		return s.in.buf[s.in.base:]
	}
	return s.data
}

// document reads one JSON document token by token. Scalars are read with
// ReadValue so that no token allocates (a string Token's String would); the
// decoder keeps the nesting stack and the counts, checked after each token.
func (s *scanner) document() error {
	d, l := s.dec, s.l
	for {
		kind := d.PeekKind()
		switch kind {
		case '{', '[':
			// Refused before it is read, so that jsontext's own ceiling
			// (10000, an unexported error) is never reached first. Where a
			// name is due, ReadToken reports the syntax error instead.
			if d.StackDepth() >= l.MaxDepth && !scanWantName(d) {
				return scanRefuse(limitRuleDepth, scanNextPointer(d), int64(l.MaxDepth))
			}
			if _, err := d.ReadToken(); err != nil {
				return s.fail(err, kind, limitRuleSyntax)
			}
			if err := s.count(d.StackDepth() - 1); err != nil {
				return err
			}
		case '}', ']':
			if _, err := d.ReadToken(); err != nil {
				return s.fail(err, kind, limitRuleSyntax)
			}
		case '"', '0', 'n', 't', 'f':
			v, err := d.ReadValue()
			if err != nil {
				return s.fail(err, kind, limitRuleSyntax)
			}
			if kind == '"' && len(v)-2 > l.MaxString {
				ptr := d.StackPointer()
				if k, n := d.StackIndex(d.StackDepth()); k == '{' && n%2 == 1 {
					ptr = ptr.Parent() // a member name: the object, not the long name
				}
				return scanRefuse(limitRuleStringLength, ptr, int64(l.MaxString))
			}
			if err := s.count(d.StackDepth()); err != nil {
				return err
			}
		default: // an error, cached by PeekKind for ReadToken to return
			_, err := d.ReadToken()
			if err == nil {
				// Not reachable: PeekKind names the kind of every valid token.
				return &LimitError{Rule: limitRuleSyntax}
			}
			return s.fail(err, kind, limitRuleEmpty)
		}
		if d.StackDepth() == 0 {
			break
		}
	}
	// One document, then only whitespace.
	if kind := d.PeekKind(); kind != 0 {
		return &LimitError{Rule: limitRuleTrailingData}
	}
	_, err := d.ReadToken()
	if err == io.EOF {
		return nil
	}
	return s.fail(err, 0, limitRuleTrailingData)
}

// count checks the member or element count of the object or array at depth,
// after a token was read into it.
func (s *scanner) count(depth int) error {
	d := s.dec
	switch k, n := d.StackIndex(depth); k {
	case '{':
		// A name and its value count separately: a name makes n odd.
		if (n+1)/2 > int64(s.l.MaxMembers) {
			return scanRefuse(limitRuleMembers, d.StackPointer().Parent(), int64(s.l.MaxMembers))
		}
	case '[':
		if n > int64(s.l.MaxElements) {
			return scanRefuse(limitRuleElements, d.StackPointer().Parent(), int64(s.l.MaxElements))
		}
	}
	return nil
}

// fail maps an error of the decoder, met while reading a token of kind (0
// when unknown). atEOF is the rule for a clean end of input where a value
// should start: "empty" at the start, "trailing_data" after the document
// (where a syntax error is trailing data too).
func (s *scanner) fail(err error, kind jsontext.Kind, atEOF string) error {
	if err == io.EOF {
		return &LimitError{Rule: atEOF}
	}
	se, ok := err.(*jsontext.SyntacticError)
	if !ok {
		return s.readFailed(err)
	}
	switch {
	case atEOF == limitRuleTrailingData:
		return &LimitError{Rule: limitRuleTrailingData}
	case se.Err == jsontext.ErrDuplicateName:
		return scanRefuse(limitRuleDuplicateMember, se.JSONPointer, 0)
	case kind == '"' && se.Err != io.ErrUnexpectedEOF && scanBadUnicode(s.doc(), se.ByteOffset):
		return scanRefuse(limitRuleInvalidUTF8, se.JSONPointer, 0)
	}
	return scanRefuse(limitRuleSyntax, se.JSONPointer, 0)
}

// readFailed maps an I/O error of the decoder: a refusal of scanReader
// (size, string_length) or an error of the caller's reader. The decoder
// hands on only errors its reader returned, so CheckJSON never gets here.
func (s *scanner) readFailed(err error) error {
	if s.in == nil {
		return fmt.Errorf("read json: %w", err)
	}
	if le := s.in.refused; le != nil {
		if le.Rule == limitRuleStringLength {
			le.Pointer = scanBoundPointer(string(scanNextPointer(s.dec)))
		}
		return le
	}
	if s.in.err != nil {
		return fmt.Errorf("read json: %w", s.in.err)
	}
	return fmt.Errorf("read json: %w", err)
}

// scanBadUnicode reports whether the decoder, refusing a string at offset
// off of doc, met invalid Unicode: a byte that does not start valid UTF-8,
// or a \u escape of a UTF-16 surrogate outside a valid pair (jsontext
// refuses those too while AllowInvalidUTF8 is false: they have no UTF-8
// form). jsontext's invalid-UTF-8 error is internal, so the bytes decide;
// anything else there (a control character, a bad escape) is syntax.
func scanBadUnicode(doc []byte, off int64) bool {
	if off < 0 || off >= int64(len(doc)) {
		return false
	}
	b := doc[off:]
	if b[0] >= utf8.RuneSelf {
		r, n := utf8.DecodeRune(b)
		return r == utf8.RuneError && n <= 1
	}
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return false
	}
	v, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	return err == nil && utf16.IsSurrogate(rune(v))
}

// scanWantName reports whether the next token must be a member name.
func scanWantName(d *jsontext.Decoder) bool {
	k, n := d.StackIndex(d.StackDepth())
	return k == '{' && n%2 == 0
}

// scanNextPointer is the pointer of the value the decoder is about to read:
// for a member name, the object; for a member value, the member; for an array
// element, its index.
func scanNextPointer(d *jsontext.Decoder) jsontext.Pointer {
	depth := d.StackDepth()
	if depth == 0 {
		return ""
	}
	ptr := d.StackPointer() // the container itself, or its last-read child
	k, n := d.StackIndex(depth)
	switch {
	case k == '{' && n%2 == 1:
		return ptr // after a name: the member
	case n > 0:
		ptr = ptr.Parent()
	}
	if k == '[' {
		return ptr.AppendToken(strconv.FormatInt(n, 10))
	}
	return ptr
}

// Detail is the client's sentence for the refusal: the rule and where,
// never a value.
func (e *LimitError) Detail() string {
	at := ""
	if e.Pointer != "" {
		at = fmt.Sprintf(" at %q", e.Pointer)
	}
	switch e.Rule {
	case "depth":
		return fmt.Sprintf("The JSON body nests deeper than %d levels%s.", e.Limit, at)
	case "members":
		return fmt.Sprintf("A JSON object in the body has more than %d members%s.", e.Limit, at)
	case "elements":
		return fmt.Sprintf("A JSON array in the body has more than %d elements%s.", e.Limit, at)
	case "string_length":
		return fmt.Sprintf("A JSON string in the body is longer than %d bytes%s.", e.Limit, at)
	case "size":
		return fmt.Sprintf("The JSON body is larger than %d bytes.", e.Limit)
	case "duplicate_member":
		return fmt.Sprintf("The JSON body repeats a member name%s.", at)
	case "invalid_utf8":
		return fmt.Sprintf("The JSON body is not valid UTF-8%s.", at)
	case "empty":
		return "The JSON body is empty."
	}
	return fmt.Sprintf("The request body is not valid JSON%s.", at)
}
