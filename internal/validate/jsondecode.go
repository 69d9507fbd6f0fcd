package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// ErrInvalidJSON is the cause (errors.Is) of every DecodeJSON error.
var ErrInvalidJSON = errors.New("invalid json")

// maxJSONDepth bounds nesting for DecodeJSON's recursion when it runs without the JSON
// limits in front of it; the limits stage normally refuses deep bodies first.
const maxJSONDepth = 512

// DecodeJSON decodes a JSON body once for ValidateRequest, into the types kin-openapi
// visits: map[string]any, []any, string, bool, nil and json.Number. Numbers stay
// json.Number so nothing is rounded on decode (kin-openapi compares them as float64, so
// bounds on integers beyond 2^53 are checked after rounding). It reads with jsontext,
// which is stricter than encoding/json, against parser differentials with the
// upstream: duplicate object names, invalid UTF-8, and data after the value are
// errors. Errors wrap ErrInvalidJSON and name an offset, never the content.
func DecodeJSON(body []byte) (any, error) {
	return decodeJSON(body, nil)
}

// decodeWithin is DecodeJSON that also refuses a document that breaks l (which
// must have its defaults): a document it decodes passes CheckJSON(body, l) too
// (FuzzDecodeWithin holds it to that). It says only that the document was
// refused, not why: CheckJSON or ScanJSON name the breach. It may refuse a
// document that is within l at the edge of a limit; the caller then scans it.
func decodeWithin(body []byte, l Limits) (any, bool) {
	if int64(len(body)) > l.MaxSize {
		return nil, false
	}
	v, err := decodeJSON(body, &l)
	return v, err == nil
}

// decodeJSON is DecodeJSON, within l unless l is nil.
func decodeJSON(body []byte, l *Limits) (any, error) {
	dec := jsonDecoders.Get().(*jsontext.Decoder)
	defer func() {
		dec.Reset(bytes.NewReader(nil))
		jsonDecoders.Put(dec)
	}()
	dec.Reset(bytes.NewReader(body))
	// One copy of the body: plain strings, names and numbers are
	// substrings of it, which saves an allocation for each of them.
	d := jsonBuilder{dec: dec, src: string(body), keys: make([]string, 0, 32), vals: make([]any, 0, 32),
		maxDepth: maxJSONDepth}
	if l != nil {
		d.limits, d.limited = *l, true
		d.maxDepth = min(l.MaxDepth, maxJSONDepth)
	}
	v, err := d.value(0)
	if err == nil {
		if _, err = dec.ReadToken(); err == io.EOF {
			return v, nil
		} else if err == nil {
			err = errors.New("data after the value")
		}
	}
	return nil, fmt.Errorf("decode json: offset %d: %w", dec.InputOffset(), ErrInvalidJSON)
}

// jsonDecoders recycles the decoders of DecodeJSON.
var jsonDecoders = sync.Pool{New: func() any { return jsontext.NewDecoder(bytes.NewReader(nil)) }}

// errOverLimit is a document that breaks the limits decodeJSON was given.
var errOverLimit = errors.New("over a limit")

// jsonBuilder builds the value of a document from the tokens jsontext reads.
// Members and elements are gathered on two stacks first, so that every map
// and slice is made once at its final size instead of growing. With limits,
// it also refuses what breaks them: nesting, members, elements and string
// lengths, counted as ScanJSON counts them.
type jsonBuilder struct {
	dec      *jsontext.Decoder
	src      string
	keys     []string
	vals     []any
	maxDepth int
	limits   Limits
	limited  bool
}

// text returns the text of the raw scalar v that the decoder just read:
// the unescaped string of a JSON string, else the raw text.
func (d *jsonBuilder) text(v jsontext.Value) (string, error) {
	end := int(d.dec.InputOffset())
	start := end - len(v)
	if v[0] != '"' {
		return d.src[start:end], nil
	}
	if d.limited && len(v)-2 > d.limits.MaxString {
		return "", errOverLimit
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return d.src[start+1 : end-1], nil
	}
	b, err := jsontext.AppendUnquote(nil, v)
	return string(b), err
}

// value builds the next value; depth is the nesting of the containers
// around it.
func (d *jsonBuilder) value(depth int) (any, error) {
	switch d.dec.PeekKind() {
	case '{':
		if depth+1 > d.maxDepth {
			return nil, errOverLimit
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, err
		}
		base := len(d.keys)
		for d.dec.PeekKind() != '}' {
			if d.limited && len(d.keys)-base >= d.limits.MaxMembers {
				return nil, errOverLimit
			}
			raw, err := d.dec.ReadValue()
			if err != nil {
				return nil, err
			}
			name, err := d.text(raw)
			if err != nil {
				return nil, err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			d.keys = append(d.keys, name)
			d.vals = append(d.vals, v)
		}
		m := make(map[string]any, len(d.keys)-base)
		for i := base; i < len(d.keys); i++ {
			m[d.keys[i]] = d.vals[i]
		}
		clear(d.vals[base:])
		d.keys, d.vals = d.keys[:base], d.vals[:base]
		_, err := d.dec.ReadToken()
		return m, err
	case '[':
		if depth+1 > d.maxDepth {
			return nil, errOverLimit
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, err
		}
		base := len(d.vals)
		for d.dec.PeekKind() != ']' {
			if d.limited && len(d.vals)-base >= d.limits.MaxElements {
				return nil, errOverLimit
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			d.vals = append(d.vals, v)
			d.keys = append(d.keys, "") // keeps the two stacks level
		}
		a := make([]any, len(d.vals)-base)
		copy(a, d.vals[base:])
		clear(d.vals[base:])
		d.keys, d.vals = d.keys[:base], d.vals[:base]
		_, err := d.dec.ReadToken()
		return a, err
	}
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	switch raw[0] {
	case '"':
		return d.text(raw)
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	s, err := d.text(raw)
	return json.Number(s), err
}
