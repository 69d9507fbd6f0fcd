package validate

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// ReadJSONBody reads r's JSON body under l, checking the limits while it
// reads, puts the exact bytes back as r.Body for the upstream, and, when
// decode is true, decodes them once (DecodeJSON). It returns the bytes and
// the decoded value (nil without decode). Errors: the edge's
// *http.MaxBytesError, a *LimitError, ErrInvalidJSON (a decode failure
// after a clean scan: a bug, refused all the same), or the read error of a
// client that went away.
//
// A body to decode that declares a Content-Length of at most 64 KiB (and
// within l.MaxSize) is read whole first and checked and decoded in one pass
// (the scan is about half the cost of a small body otherwise); any other
// body is scanned while it is read, so that a long one is refused at its
// first breach. Both ways return the same bytes, value and error.
func ReadJSONBody(r *http.Request, l Limits, decode bool) ([]byte, any, error) {
	l = l.withDefaults()
	var body []byte
	var err error
	if decode && r.ContentLength >= 0 && r.ContentLength <= min(l.MaxSize, oneReadMax) {
		var v any
		if body, v, err = readSmallJSON(r.Body, l, r.ContentLength); err != nil {
			return nil, nil, err
		}
		if v != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			return body, v, nil
		}
	} else {
		// A fresh buffer per request: the transport may still be sending it
		// upstream after the handler returned, so it cannot be pooled.
		body, err = ScanJSON(r.Body, l, make([]byte, 0, max(min(r.ContentLength, l.MaxSize), 512)))
		if err != nil {
			return nil, nil, err
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if !decode {
		return body, nil, nil
	}
	v, err := DecodeJSON(body)
	if err != nil {
		return nil, nil, fmt.Errorf("json body: %w", err)
	}
	return body, v, nil
}

// oneReadMax is the largest declared body ReadJSONBody reads whole before
// checking it: reading that much costs little even when its first bytes
// already break a limit.
const oneReadMax = 64 << 10

// readSmallJSON reads a body of about size bytes whole, then checks and
// decodes it in one pass (decodeWithin). Where that pass refuses the body, or
// reading it failed, ScanJSON reads the same bytes, followed by the same
// read error, and says why, as it would have while the body was read. It
// returns the bytes and the decoded value; a nil value with a nil error means
// the bytes passed ScanJSON and are still to be decoded.
func readSmallJSON(r io.Reader, l Limits, size int64) ([]byte, any, error) {
	// size+1: room for the read that reports the end. A fresh buffer per
	// request, as in ReadJSONBody.
	buf, rerr := readUpTo(r, make([]byte, 0, max(size+1, 512)), l.MaxSize+1)
	if rerr == nil && int64(len(buf)) <= l.MaxSize {
		if v, ok := decodeWithin(buf, l); ok {
			return buf, v, nil
		}
	}
	var src io.Reader = bytes.NewReader(buf)
	if rerr != nil {
		src = io.MultiReader(src, errorReader{rerr})
	}
	if _, err := ScanJSON(src, l, nil); err != nil {
		return nil, nil, err
	}
	return buf, nil, nil
}

// readUpTo appends what r holds to buf, up to limit bytes in all, until r
// ends (io.EOF, not an error) or fails. Like ScanJSON's reader it gives up on
// a reader that returns nothing 100 times in a row.
func readUpTo(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	empty := 0
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):int(min(int64(cap(buf)), limit))])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if n > 0 {
			empty = 0
		} else if empty++; empty >= 100 {
			return buf, io.ErrNoProgress
		}
	}
	return buf, nil
}

// errorReader is a reader that fails with err.
type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }
