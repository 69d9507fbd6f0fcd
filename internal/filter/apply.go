package filter

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// maxScratch is the largest scratch buffer a pooled walker keeps.
const maxScratch = 64 << 10

// walker is the scratch state of one Apply call; Programs pool them.
type walker struct {
	p   *Program
	dec jsontext.Decoder
	// src wraps the document: a Decoder reading a bytes.Buffer parses
	// the buffer in place, without copying it and without writing to it,
	// so every slice ReadValue returns stays valid for the whole call.
	src bytes.Buffer
	out []byte

	// frames are the containers around the current node; frames[0] is
	// the root. They hold raw names (slices of the document), so a path
	// is only formatted when a report needs it.
	frames []frame
	// child is the current node below the innermost frame.
	child     []byte // raw quoted name; nil for an array element
	childKind childKind

	name    []byte // unescaped name scratch
	scratch []byte // path and mask scratch
	text    []byte // detection scratch
	mac     hash.Hash
	sum     [sha256.Size]byte

	rep Report
	// memos are the removed members of the last object walked at each
	// depth (see removedMember).
	memos []memo
	// removed, masked and found identify the report's entries, for
	// deduplication without formatting paths.
	removed, masked, found seenList
}

// frame is one container on the way from the root to the current node.
type frame struct {
	name   []byte // raw quoted member name; nil for an array element and the root
	hash   uint64
	hashed bool
}

// childKind says where the current node is.
type childKind uint8

const (
	childRoot childKind = iota
	childMember
	childElement
)

// Apply filters the JSON document src, appends the result to dst and
// returns it with a Report of what it did. The output is valid JSON:
// whitespace between the tokens Apply walks is dropped, subtrees copied
// whole keep theirs; numbers, strings and names are copied byte for byte
// unless masked, and members keep their order.
//
// An error means the caller must fail closed; the returned bytes are then
// meaningless. Errors match ErrInvalidJSON (bad syntax, trailing data,
// invalid UTF-8, duplicate member names, the latter also ErrDuplicateName)
// or ErrTooDeep. Apply is safe for concurrent use.
func (p *Program) Apply(dst, src []byte) ([]byte, Report, error) {
	w := p.pool.Get().(*walker)
	w.src = *bytes.NewBuffer(src)
	w.dec.Reset(&w.src)
	w.out = dst
	w.frames = append(w.frames[:0], frame{hashed: true})
	w.child, w.childKind = nil, childRoot

	err := w.document()
	out, rep := w.out, w.rep

	// Do not pin the document or the output in the pool.
	clear(w.removed[:len(rep.Removed)])
	clear(w.masked[:len(rep.Masked)])
	clear(w.found[:len(rep.Findings)])
	w.out, w.rep, w.child = nil, Report{}, nil
	clear(w.frames)
	clear(w.memos)
	w.src = bytes.Buffer{}
	w.dec.Reset(&w.src)
	// A huge masked or scanned string grows the scratch buffers: do not
	// keep such buffers in the pool.
	for _, b := range []*[]byte{&w.name, &w.scratch, &w.text} {
		if cap(*b) > maxScratch {
			*b = nil
		}
	}
	p.pool.Put(w)

	if err != nil {
		return dst, Report{}, classify(err)
	}
	return out, rep, nil
}

// classify maps a walk error to the package's sentinels.
func classify(err error) error {
	if errors.Is(err, ErrTooDeep) {
		return err
	}
	var serr *jsontext.SyntacticError
	if errors.As(err, &serr) && strings.Count(string(serr.JSONPointer), "/") > MaxDepth {
		// jsontext gives up at its own depth limit (10000) inside a
		// value read whole; any error that deep is past ours anyway.
		return fmt.Errorf("%w: at offset %d", ErrTooDeep, serr.ByteOffset)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // an empty document
	}
	return fmt.Errorf("%w: %w", ErrInvalidJSON, err)
}

var errTrailing = errors.New("data after the top-level value")

// document filters the top-level value and checks that nothing follows.
func (w *walker) document() error {
	st := &w.p.states[0]
	// PeekKind, not peek: the decoder has not fetched the buffer yet.
	switch kind := w.dec.PeekKind(); {
	case kind == '{' || kind == '[' || st.keep:
		// The root container is always kept, if only as {} or [].
		if err := w.value(st, kind, 0); err != nil {
			return err
		}
	default:
		// A scalar document where the allow-list wants a container.
		if _, err := w.dec.ReadValue(); err != nil {
			return err
		}
		w.out = append(w.out, "null"...)
		w.rep.Removals++
		w.report(&w.rep.Removed, &w.removed)
	}
	switch _, err := w.dec.ReadToken(); err {
	case io.EOF:
		return nil
	case nil:
		return errTrailing
	default:
		return err
	}
}

// value handles the next value, whose node is in state st and of the
// peeked kind (0 if the decoder is in error); depth is the number of
// containers around it.
func (w *walker) value(st *state, kind jsontext.Kind, depth int) error {
	if st.mask != 0 {
		return w.mask(st.mask, kind, depth)
	}
	switch kind {
	case '{', '[':
		if st.copy && !w.p.deep {
			// Nothing can match below: copy the subtree whole. This
			// is where the speed comes from.
			v, err := w.readValue(depth)
			if err != nil {
				return err
			}
			w.out = append(w.out, v...)
			return nil
		}
		if depth+1 > MaxDepth {
			return ErrTooDeep
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return err
		}
		if depth > 0 {
			w.frames = append(w.frames, frame{name: w.child})
			defer func() { w.frames = w.frames[:len(w.frames)-1] }()
		}
		if kind == '{' {
			return w.object(st, depth+1)
		}
		return w.array(st, depth+1)
	default:
		v, err := w.dec.ReadValue()
		if err != nil {
			return err
		}
		if w.p.detect {
			w.detect(v)
		}
		w.out = append(w.out, v...)
		return nil
	}
}

// object walks the members of an object whose '{' was read; depth counts
// the object itself.
func (w *walker) object(st *state, depth int) error {
	w.out = append(w.out, '{')
	n := 0
	for j := 0; ; j++ {
		if w.peek() == '}' {
			if _, err := w.dec.ReadToken(); err != nil {
				return err
			}
			w.out = append(w.out, '}')
			return nil
		}
		raw, err := w.dec.ReadValue() // the name, checked for duplicates
		if err != nil {
			return err
		}
		name := w.unquote(raw)
		cs := &w.p.states[st.child(name)]
		w.child, w.childKind = raw, childMember
		if cs.deny || (w.p.preset && sensitiveName(name)) || cs.dead {
			if _, err := w.readValue(depth); err != nil {
				return err
			}
			w.removedMember(depth, j)
			continue
		}
		if n > 0 {
			w.out = append(w.out, ',')
		}
		if cs.copy && !w.p.deep {
			// Kept whole, nothing to look at below: no need to peek.
			v, err := w.readValue(depth)
			if err != nil {
				return err
			}
			n++
			w.out = append(append(append(w.out, raw...), ':'), v...)
			continue
		}
		kind := w.peek()
		if !kept(cs, kind) {
			if n > 0 {
				w.out = w.out[:len(w.out)-1]
			}
			if _, err := w.readValue(depth); err != nil {
				return err
			}
			w.removedMember(depth, j)
			continue
		}
		n++
		if w.p.detect {
			// Names go out too: a map keyed by card number leaks as
			// much as a value.
			w.detect(raw)
		}
		w.out = append(w.out, raw...)
		w.out = append(w.out, ':')
		if err := w.value(cs, kind, depth); err != nil {
			return err
		}
	}
}

// array walks the elements of an array whose '[' was read; depth counts
// the array itself.
func (w *walker) array(st *state, depth int) error {
	w.out = append(w.out, '[')
	n := 0
	for i := 0; ; i++ {
		kind := w.peek()
		if kind == ']' {
			if _, err := w.dec.ReadToken(); err != nil {
				return err
			}
			w.out = append(w.out, ']')
			return nil
		}
		cid := st.otherIndex
		if st.indexes != nil {
			if id, ok := st.indexes[i]; ok {
				cid = id
			}
		}
		cs := &w.p.states[cid]
		w.child, w.childKind = nil, childElement
		if cs.deny || !kept(cs, kind) {
			if _, err := w.readValue(depth); err != nil {
				return err
			}
			w.rep.Removals++
			w.report(&w.rep.Removed, &w.removed)
			continue
		}
		if n > 0 {
			w.out = append(w.out, ',')
		}
		n++
		if cs.copy && !w.p.deep {
			v, err := w.readValue(depth)
			if err != nil {
				return err
			}
			w.out = append(w.out, v...)
			continue
		}
		if err := w.value(cs, kind, depth); err != nil {
			return err
		}
	}
}

// peek returns the kind of the next token, from the first byte after
// whitespace and a separator, or 0 if it is none of the kinds. It is only
// a hint for choosing between ReadToken and ReadValue, cheaper than
// Decoder.PeekKind: the decoder checks the syntax of whatever comes.
func (w *walker) peek() jsontext.Kind {
	for _, c := range w.dec.UnreadBuffer() {
		switch c {
		case ' ', '\t', '\n', '\r', ',', ':':
			continue
		case '{', '}', '[', ']', '"', 'n', 't', 'f':
			return jsontext.Kind(c)
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return '0'
		}
		return 0
	}
	return 0
}

// kept reports whether a node of state st and kind appears in the output:
// kept by the allow-list, or a container an allow path may match below.
// A scalar where an allow path expects a container is dropped.
func kept(st *state, kind jsontext.Kind) bool {
	return st.keep || (kind == '{' && st.viaObject) || (kind == '[' && st.viaArray)
}

// readValue reads the next value whole and checks that it does not nest
// deeper than MaxDepth counting the depth containers around it.
func (w *walker) readValue(depth int) (jsontext.Value, error) {
	v, err := w.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	// Every level costs two bytes, and one '{' or '['. Short values
	// cannot nest too deep; counting brackets (vectorized) bounds the
	// nesting of the others without looking at the bytes one by one.
	if c := v[0]; (c == '{' || c == '[') && len(v) > 2*(MaxDepth-depth) {
		if depth+bytes.Count(v, []byte{'{'})+bytes.Count(v, []byte{'['}) > MaxDepth &&
			depth+nesting(v) > MaxDepth {
			return nil, ErrTooDeep
		}
	}
	return v, nil
}

// nesting returns the deepest nesting of objects and arrays in the valid
// JSON value v.
func nesting(v []byte) int {
	depth, deepest := 0, 0
	in := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if in {
			switch c {
			case '\\':
				i++
			case '"':
				in = false
			}
			continue
		}
		switch c {
		case '"':
			in = true
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// unquote returns the unescaped text of the raw name raw (valid: the
// decoder checked it), in the walker's name scratch when it has escapes.
func (w *walker) unquote(raw []byte) []byte { return w.unquoteTo(&w.name, raw) }
