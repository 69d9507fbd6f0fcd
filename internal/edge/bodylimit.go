package edge

import (
	"io"
	"net/http"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// BodyLimit returns the middleware that holds a route's request bodies to
// limit bytes. A declared Content-Length over the limit is refused before
// anything is read (413). Any other body is watched while it streams, so
// memory stays bounded whatever the length: when the count crosses the
// limit, the denial is decided once; enforced, that Read fails with
// *http.MaxBytesError (the proxy's ErrorHandler answers 413 through
// problem.Writer.Write). In report mode the body streams on, counted but
// not decided again. pw must not be nil.
//
// The rest of a cut body is never read, so its connection must not be
// reused: an HTTP/1 body of unknown length gets Connection: close on its
// response up front, from the handler's goroutine (the cut is noticed on
// the goroutine that reads the body, which must not touch the response).
// A body with a declared length cannot cross a limit it is within: Go's
// server stops at the declared length.
func BodyLimit(limit int64, pw *problem.Writer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return &bodyLimit{next: next, limit: limit, problems: pw}
	}
}

type bodyLimit struct {
	next     http.Handler
	limit    int64
	problems *problem.Writer
}

var _ http.Handler = (*bodyLimit)(nil)

func (b *bodyLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > b.limit {
		if b.problems.Deny(w, r, problem.BodyTooLarge()) {
			return
		}
		b.next.ServeHTTP(w, r) // report mode: decided once, nothing more to watch
		return
	}
	if r.Body == nil || r.Body == http.NoBody {
		b.next.ServeHTTP(w, r)
		return
	}
	if r.ContentLength < 0 && r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	// Also with a declared length within the limit: Go's servers stop at
	// the declared length, but an in-process caller's body may not.
	r.Body = &limitedBody{rc: r.Body, r: r, limit: b.limit, problems: b.problems}
	b.next.ServeHTTP(w, r)
}

// limitedBody counts a request body as it is read, on whichever goroutine
// reads it (the proxy's transport).
type limitedBody struct {
	rc       io.ReadCloser
	r        *http.Request
	limit    int64
	problems *problem.Writer

	n       int64 // bytes read so far
	decided bool  // the limit was crossed and the denial decided
	cut     bool  // the denial is enforced: every Read fails
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.cut {
		return 0, &http.MaxBytesError{Limit: b.limit}
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.decided || b.n <= b.limit {
		return n, err
	}
	b.decided = true
	if !b.problems.Decide(b.r, problem.BodyTooLarge()) {
		return n, err
	}
	b.cut = true
	// Hand on the bytes up to the limit, never past it. The count before
	// this read was within the limit, so this is not negative.
	return n - int(b.n-b.limit), &http.MaxBytesError{Limit: b.limit}
}

func (b *limitedBody) Close() error { return b.rc.Close() }
