package edge

import (
	"net/http"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// checkFraming refuses the framings that Go's server lets through but that
// another hop could read differently. Go's server has already answered
// conflicting Content-Length values and unknown transfer codings itself
// (the exempt answers of docs/errors.md). When a request carried both
// Content-Length and Transfer-Encoding: chunked, Go deleted Content-Length
// and framed the body by chunked, leaving no trace: from here a CL+TE
// request cannot be told from a plain chunked one. So every HTTP/1.x
// request with a Transfer-Encoding gets Connection: close on its response
// (RFC 9112 §6.1): if its framing was ambiguous to a hop in front of us,
// nothing that hop sends after it on this connection is ever read as a
// request.
func (e *edge) checkFraming(w http.ResponseWriter, r *http.Request) (problem.Problem, bool) {
	if r.ProtoMajor != 1 || len(r.TransferEncoding) == 0 {
		return problem.Problem{}, true
	}
	w.Header()["Connection"] = e.close
	if len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
		return problem.BadFraming("unsupported_transfer_encoding",
			"The request's Transfer-Encoding is not supported; only chunked is."), false
	}
	if _, ok := r.Header["Content-Length"]; ok {
		return problem.BadFraming("content_length_with_transfer_encoding",
			"The request has both Content-Length and Transfer-Encoding."), false
	}
	return problem.Problem{}, true
}
