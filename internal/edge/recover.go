package edge

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// statusReporter is a ResponseWriter that can tell whether the response
// has started (the gateway's counting writer): Status returns 0 until the
// header is written.
type statusReporter interface {
	Status() int
}

// recoverPanic is deferred by ServeHTTP. A panic below the edge becomes a
// 500 problem without any detail; the log gets the route, the request and trace ids,
// the panic value's type and the stack, never the value itself (it may
// hold request data), headers or body.
//
// http.ErrAbortHandler is the proxy's way to abort a response it cannot
// finish; it goes on up to the server, which drops the connection. So does
// any panic once the response has started (when w can tell): a problem
// appended to a half-written body would pass for part of it.
func (e *edge) recoverPanic(w http.ResponseWriter, r *http.Request, rec *exchange.Record) {
	v := recover()
	if v == nil {
		return
	}
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v)
	}
	e.log.Error("panic recovered",
		zap.String("route", rec.RouteName()),
		zap.String("request_id", rec.RequestID),
		zap.String("trace_id", rec.TraceID),
		zap.String("panic_type", fmt.Sprintf("%T", v)),
		zap.ByteString("stack", debug.Stack()),
	)
	if sr, ok := w.(statusReporter); ok && sr.Status() != 0 {
		panic(http.ErrAbortHandler)
	}
	// Whatever the panicking handler put in the header (an upstream's
	// Set-Cookie, its Content-Type) is not part of this answer.
	h := w.Header()
	for k := range h {
		if !edgeResponseHeader(k) {
			delete(h, k)
		}
	}
	e.problems.Write(w, r, problem.Internal())
}

// edgeResponseHeader reports whether the edge itself sets the response
// header k.
func edgeResponseHeader(k string) bool {
	switch k {
	case "X-Request-Id", "X-Content-Type-Options", "Strict-Transport-Security", "Connection":
		return true
	}
	return false
}
