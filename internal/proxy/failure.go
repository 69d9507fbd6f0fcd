package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// StatusClientClosedRequest is the status recorded (nginx's 499) when the
// client went away before the upstream answered.
const StatusClientClosedRequest = problem.StatusClientClosedRequest

// Error classes: a bounded label for log lines, never the error text (which
// can carry addresses or, from some libraries, URLs).
const (
	classBodyTooLarge = "body_too_large"
	classClientGone   = "client_gone"
	classTimeout      = "timeout"
	classPin          = "tls_pin"
	classTLS          = "tls"
	classRefused      = "refused"
	classReset        = "reset"
	classDNS          = "dns"
	classDial         = "dial"
	classClosed       = "closed"
	classOther        = "other"
)

// fail is the ReverseProxy's ErrorHandler: it runs when no upstream response
// could be relayed, before anything was written to w. It answers with the
// problem writer only.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	rec := exchange.From(r.Context())
	var refusal *Refusal
	if errors.As(err, &refusal) {
		// A response stage's answer: the stage recorded its decision.
		h.upstream.problems.Write(w, r, refusal.Problem)
		return
	}
	class := classify(r.Context(), err)
	switch class {
	case classBodyTooLarge:
		// The edge's body limit cut the upload; the edge already recorded
		// the decision, the answer is ours to write.
		h.upstream.problems.Write(w, r, problem.BodyTooLarge())
		h.logAt(zap.DebugLevel, rec, class)
	case classClientGone:
		w.WriteHeader(StatusClientClosedRequest)
		h.logAt(zap.DebugLevel, rec, class)
	case classTimeout:
		h.upstream.problems.Write(w, r, problem.GatewayTimeout())
		h.logAt(zap.WarnLevel, rec, class)
	default:
		h.upstream.problems.Write(w, r, problem.BadGateway())
		h.logAt(zap.WarnLevel, rec, class)
	}
}

func (h *handler) logAt(level zapcore.Level, rec *exchange.Record, class string) {
	ce := h.upstream.log.Check(level, "upstream request failed")
	if ce == nil {
		return
	}
	id, trace := "", ""
	if rec != nil {
		id, trace = rec.RequestID, rec.TraceID
	}
	ce.Write(zap.String("route", h.route), zap.String("upstream", h.upstream.name),
		zap.String("request_id", id), zap.String("trace_id", trace), zap.String("error_class", class))
}

// classify maps a round-trip error to a bounded class. ctx is the outbound
// request's context: it tells the client going away (Canceled) from the
// route's overall timeout (DeadlineExceeded).
func classify(ctx context.Context, err error) string {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return classBodyTooLarge
	}
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.Canceled):
		return classClientGone
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return classTimeout
	}
	if errors.Is(err, errPinMismatch) {
		return classPin
	}
	// A timeout anywhere: dial, TLS handshake, response headers ("timeout
	// awaiting response headers" is a net.Error with Timeout() true, for
	// HTTP/1 and HTTP/2 alike), or a deadline.
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return classTimeout
	}
	var (
		verifyErr  *tls.CertificateVerificationError
		alertErr   tls.AlertError
		recordErr  tls.RecordHeaderError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		dnsErr     *net.DNSError
		opErr      *net.OpError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &alertErr), errors.As(err, &recordErr),
		errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return classTLS
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert from the peer (certificate
		// required, bad certificate, ...) as an OpError "remote error".
		return classTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return classRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return classReset
	case errors.As(err, &dnsErr):
		return classDNS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return classDial
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return classClosed
	}
	return classOther
}
