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
func ReadJSONBody(r *http.Request, l Limits, decode bool) ([]byte, any, error) {
	l = l.withDefaults()
	// A fresh buffer per request: the transport may still be sending it
	// upstream after the handler returned, so it cannot be pooled.
	body, err := ScanJSON(r.Body, l, make([]byte, 0, max(min(r.ContentLength, l.MaxSize), 512)))
	if err != nil {
		return nil, nil, err
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
