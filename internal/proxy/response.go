package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// ResponseOptions is what a route does with its upstream's responses.
type ResponseOptions struct {
	// StripHeaders are removed from every response (headers that
	// fingerprint the upstream: Server, X-Powered-By, ...).
	StripHeaders []string
	// MaskErrors replaces the body of an upstream 5xx answer (stack
	// traces, SQL errors) with a generic problem of the same status.
	MaskErrors bool
	// Stages see the buffered, decoded response in order (response
	// validation, the response rules, then filtering). None: responses stream through.
	Stages []ResponseStage
	// MaxBuffer bounds the body the stages see, before and after
	// decoding; a larger response is refused with a 502.
	MaxBuffer int64
}

// ResponseStage is one response-side check of a route. It reads and may
// rewrite resp. An error fails the exchange: a *Refusal is answered with
// its problem, any other error with a 502.
type ResponseStage interface {
	Respond(r *http.Request, resp *Response) error
}

// Response is the upstream response as the response stages see it: one
// buffered, decoded (identity) view, made once per response.
type Response struct {
	// Status is the upstream's status code; Header its headers (the
	// fingerprint headers already removed). Stages may change Header.
	Status int
	Header http.Header
	// Body is the decoded body. Change it with SetBody.
	Body    []byte
	changed bool
}

// SetBody replaces the body that is sent to the client.
func (r *Response) SetBody(b []byte) {
	r.Body = b
	r.changed = true
}

// Refusal is a response stage's answer instead of the upstream's.
type Refusal struct{ Problem problem.Problem }

func (r *Refusal) Error() string { return "response refused: " + r.Problem.Reason }

// errBodyTooLarge reports an upstream body above ResponseOptions.MaxBuffer.
var errBodyTooLarge = errors.New("upstream response above the buffer limit")

// errUnknownEncoding reports a Content-Encoding the gateway cannot decode.
var errUnknownEncoding = errors.New("unknown content encoding")

// respond is the ReverseProxy's ModifyResponse hook. It runs after the
// upstream's headers arrived and before anything is written to the
// client; an error it returns goes to fail, which writes the problem.
func (h *handler) respond(res *http.Response) error {
	for _, name := range h.resp.StripHeaders {
		delete(res.Header, name)
	}
	if res.StatusCode < http.StatusOK { // 101: an upgraded session, nothing to read
		return nil
	}
	if h.resp.MaskErrors && res.StatusCode >= http.StatusInternalServerError {
		// The body is the upstream's business: drain a little of it so the
		// connection can be reused, and answer with a generic problem.
		_, _ = io.CopyN(io.Discard, res.Body, 64<<10)
		_ = res.Body.Close()
		var hdr http.Header
		if ra := res.Header.Get("Retry-After"); ra != "" && res.StatusCode == http.StatusServiceUnavailable {
			hdr = http.Header{"Retry-After": {ra}}
		}
		return &Refusal{Problem: problem.UpstreamFailed(res.StatusCode, hdr)}
	}
	if len(h.resp.Stages) == 0 || !hasBody(res) {
		return nil
	}
	body, decoded, err := readBody(res, h.resp.MaxBuffer)
	_ = res.Body.Close()
	switch {
	case errors.Is(err, errBodyTooLarge):
		return &Refusal{Problem: problem.ResponseTooLarge()}
	case errors.Is(err, errUnknownEncoding):
		return &Refusal{Problem: problem.UnreadableResponse()}
	case err != nil:
		return err // a timeout or a broken connection: fail classifies it
	}
	view := &Response{Status: res.StatusCode, Header: res.Header, Body: body}
	for _, s := range h.resp.Stages {
		if err := s.Respond(res.Request, view); err != nil {
			return err
		}
	}
	res.Body = io.NopCloser(bytes.NewReader(view.Body))
	res.ContentLength = int64(len(view.Body))
	hdr := res.Header
	hdr.Set("Content-Length", strconv.Itoa(len(view.Body)))
	hdr.Del("Transfer-Encoding")
	if decoded || view.changed {
		// The client gets another representation: identity, and perhaps
		// fewer fields. A strong validator or a digest of the upstream's
		// bytes would now lie about it.
		hdr.Del("Content-Encoding")
		hdr.Del("Content-MD5")
		hdr.Del("Digest")
		hdr.Del("Content-Digest")
		hdr.Del("Repr-Digest")
		if etag := hdr.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
			hdr.Set("ETag", "W/"+etag)
		}
	}
	return nil
}

// hasBody reports whether res can carry a body at all.
func hasBody(res *http.Response) bool {
	switch {
	case res.Request != nil && res.Request.Method == http.MethodHead:
		return false
	case res.StatusCode == http.StatusNoContent, res.StatusCode == http.StatusNotModified:
		return false
	}
	return res.Body != nil && res.Body != http.NoBody
}

// readBody reads res's body, decoding its Content-Encoding, up to max
// bytes on the wire and max bytes decoded (a small gzip bomb cannot
// inflate past the limit). decoded reports that an encoding was removed.
func readBody(res *http.Response, max int64) (body []byte, decoded bool, err error) {
	if res.ContentLength > max {
		return nil, false, errBodyTooLarge
	}
	wire := &limitedReader{r: res.Body, left: max}
	var r io.Reader = wire
	enc := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(wire)
		if err != nil {
			return nil, false, readError(wire, err)
		}
		defer zr.Close()
		r = zr
	case "deflate":
		r, err = deflateReader(wire)
		if err != nil {
			return nil, false, readError(wire, err)
		}
	case "br":
		r = brotli.NewReader(wire)
	default:
		return nil, false, fmt.Errorf("%w %q", errUnknownEncoding, enc)
	}
	size := res.ContentLength
	if size < 0 || enc != "" && enc != "identity" {
		size = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(size, max)+1))
	n, err := io.Copy(buf, io.LimitReader(r, max+1))
	switch {
	case wire.over || n > max:
		return nil, false, errBodyTooLarge
	case err != nil:
		return nil, false, readError(wire, err)
	}
	return buf.Bytes(), enc != "" && enc != "identity", nil
}

// readError tells a broken or stalled upstream (the transport's error,
// which fail classifies) from a corrupt encoding.
func readError(wire *limitedReader, err error) error {
	if wire.err != nil {
		return wire.err
	}
	if wire.over {
		return errBodyTooLarge
	}
	return fmt.Errorf("%w: %w", errUnknownEncoding, err)
}

// deflateReader reads HTTP's "deflate" coding: zlib-wrapped (RFC 9110),
// or raw deflate as some servers send it.
func deflateReader(r io.Reader) (io.Reader, error) {
	br := &peekReader{r: r}
	head, err := br.peek(2)
	if err != nil {
		return nil, err
	}
	// A zlib header: CM 8 in the low nibble, and a check value making the
	// first two bytes a multiple of 31.
	if head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

// peekReader lets deflateReader look at the first bytes and then read
// them again.
type peekReader struct {
	r    io.Reader
	head []byte
}

func (p *peekReader) peek(n int) ([]byte, error) {
	p.head = make([]byte, n)
	if _, err := io.ReadFull(p.r, p.head); err != nil {
		return nil, err
	}
	return p.head, nil
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// limitedReader reads at most left bytes and remembers whether the source
// had more (over) and the source's own error (err), so that decoding
// errors can be told from transport ones.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
	err  error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One more byte tells "exactly at the limit" from "over it".
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, errBodyTooLarge
		}
		if err != nil && err != io.EOF {
			l.err = err
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

// Private makes a response that depends on who asked uncacheable by shared
// caches: the views of one route, or its response rules, give different
// principals different bodies under one URL, and a shared cache must not
// serve one principal's answer to another. max-age survives; public and
// s-maxage go.
func Private(h http.Header) {
	keep := []string{"private"}
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(strings.ToLower(d), "=")
			switch name {
			case "", "public", "private", "s-maxage", "proxy-revalidate":
			default:
				keep = append(keep, d)
			}
		}
	}
	h.Set("Cache-Control", strings.Join(keep, ", "))
}
