// Package problem is the one writer of the gateway's own error responses:
// RFC 9457 application/problem+json bodies. Every stage that denies a
// request calls Writer.Deny with a Problem; the writer applies report mode
// (DESIGN.md "Report mode"), records the decision on the request's
// exchange.Record, counts it, and writes the body. No other package writes
// an error body.
package problem

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// StatusClientClosedRequest is the status recorded (nginx's 499) when the
// client went away before it could be answered. Nobody reads it; it keeps
// the gateway's own metrics and audit from counting the request as a 200.
const StatusClientClosedRequest = 499

// TypePrefix prefixes every problem type slug; docs/errors.md lists them.
const TypePrefix = "urn:bulwark:problem:"

// ContentType is the media type of every body this package writes.
const ContentType = "application/problem+json"

// Problem is one error answer. Slug, Title and Detail are safe to show to
// any client: they never carry key material, internal addresses or echoed
// input.
type Problem struct {
	Status int
	// Slug names the problem type; the body's type is TypePrefix + Slug.
	Slug   string
	Title  string
	Detail string
	// Stage and Reason label the denial in metrics and audit events
	// (bounded, snake_case). Rule names the rule that denied, if any.
	Stage  string
	Reason string
	Rule   string
	// OWASP and NIST name the threat the denial answers (DESIGN.md
	// "Threats and controls"): an OWASP API Security 2023 id such as
	// API2:2023 and NIST SP 800-53 controls; the audit event records them.
	// Empty for protocol answers that no threat row covers.
	OWASP string
	NIST  []string
	// Header holds extra response headers (Allow, WWW-Authenticate,
	// Retry-After); nil for none.
	Header http.Header
	// Protocol marks a protocol defence (path canonicalisation, smuggling,
	// header limits): it always enforces, whatever the mode.
	Protocol bool
	// Mode, when set, is the mode of a stage that runs before routing
	// (the global and per-IP rate limits), which has no route to take its
	// mode from.
	Mode config.Mode
}

// Writer writes problems and applies report mode. It is safe for concurrent
// use.
type Writer struct {
	log     *zap.Logger
	denials *prometheus.CounterVec
}

// New returns a Writer that counts denials in denials (labels route, stage,
// reason, mode) and logs report-mode decisions to log.
func New(log *zap.Logger, denials *prometheus.CounterVec) *Writer {
	return &Writer{log: log, denials: denials}
}

// Deny records p as the decision of a stage that refuses the request. In
// enforce mode it writes p and returns true: the caller must return without
// calling the next handler. In report mode (the matched route's mode for
// p.Stage) it records a would-deny decision, writes nothing and returns
// false: the caller carries on as if the stage had allowed the request.
func (pw *Writer) Deny(w http.ResponseWriter, r *http.Request, p Problem) bool {
	if !pw.Decide(r, p) {
		return false
	}
	pw.Write(w, r, p)
	return true
}

// Decide records and counts p as a stage's denial without writing anything,
// for a stage that finds out while another handler owns the response (a
// body limit crossed while the proxy streams). It returns true when the
// denial is enforced; the stage must then make the owner write p (for the
// body limit: fail the body read with *http.MaxBytesError). It returns
// false in report mode, after recording a would-deny decision.
func (pw *Writer) Decide(r *http.Request, p Problem) bool {
	rec := exchange.From(r.Context())
	mode := config.ModeEnforce
	switch {
	case p.Protocol:
	case p.Mode != config.ModeInherit:
		mode = p.Mode
	case rec != nil && rec.Route != nil:
		mode = rec.Route.ModeFor(p.Stage)
	}
	d := exchange.Decision{Stage: p.Stage, Reason: p.Reason, Rule: p.Rule, Status: p.Status, Mode: mode, OWASP: p.OWASP, NIST: p.NIST}
	pw.denials.WithLabelValues(rec.RouteName(), p.Stage, p.Reason, string(mode)).Inc()
	if rec != nil {
		rec.Decide(d)
	}
	if mode == config.ModeReport {
		if ce := pw.log.Check(zap.InfoLevel, "would deny"); ce != nil {
			ce.Write(zap.String("request_id", requestID(rec)), zap.String("trace_id", traceID(rec)), zap.String("route", rec.RouteName()),
				zap.String("stage", p.Stage), zap.String("reason", p.Reason), zap.String("rule", p.Rule))
		}
		return false
	}
	return true
}

// Write writes p as the response, without recording a denial: for answers
// that are not a stage's decision (an upstream that failed, a recovered
// panic).
func (pw *Writer) Write(w http.ResponseWriter, r *http.Request, p Problem) {
	id := requestID(exchange.From(r.Context()))
	h := w.Header()
	for k, vs := range p.Header {
		h[k] = vs
	}
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Del("ETag")
	h.Del("Last-Modified")
	body, _ := json.Marshal(wire{ // a struct of strings and an int cannot fail to marshal
		Type:      TypePrefix + p.Slug,
		Title:     p.Title,
		Status:    p.Status,
		Detail:    p.Detail,
		Instance:  instance(id),
		RequestID: id,
	})
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // the client went away; nothing left to tell it
	}
}

// wire is the JSON body of a problem (RFC 9457 members plus request_id).
type wire struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func requestID(rec *exchange.Record) string {
	if rec == nil {
		return ""
	}
	return rec.RequestID
}

func traceID(rec *exchange.Record) string {
	if rec == nil {
		return ""
	}
	return rec.TraceID
}

func instance(id string) string {
	if id == "" {
		return ""
	}
	return "urn:bulwark:request:" + id
}

// RefuseBody answers a request whose JSON body validate.ReadJSONBody could
// not read: 413 when the edge's body limit cut it (the edge decided that
// denial), 400 invalid-json for a threat limit or invalid JSON (always
// enforced), and nothing but the 499 record when the client went away. It
// returns the reason of the denial it decided, "" for none.
func (pw *Writer) RefuseBody(w http.ResponseWriter, r *http.Request, err error) string {
	var maxBytes *http.MaxBytesError
	var limit *validate.LimitError
	switch {
	case errors.As(err, &maxBytes):
		pw.Write(w, r, BodyTooLarge())
		return ""
	case errors.As(err, &limit):
		reason := "json_" + limit.Rule
		pw.Deny(w, r, JSONRefused(reason, limit.Detail()))
		return reason
	case errors.Is(err, validate.ErrInvalidJSON):
		pw.Deny(w, r, JSONRefused("json_syntax", "The request body is not valid JSON."))
		return "json_syntax"
	}
	w.WriteHeader(StatusClientClosedRequest)
	return ""
}
