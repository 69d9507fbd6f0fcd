package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/inventory"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/proxy"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// requestValidator is a route's request validation: the JSON limits of
// the body, checked while it is read, then (with a spec) the operation's
// parameters, content type and body schema over the body decoded once.
// The body is forwarded byte for byte as it arrived.
type requestValidator struct {
	next     http.Handler
	op       *validate.Operation // nil: JSON limits only
	decode   bool                // decode a JSON body for a later stage even without op
	params   []string            // the route's path parameter names, in order
	limits   validate.Limits
	mode     config.Mode // of the operation checks; the JSON limits always enforce
	problems *problem.Writer
	failures *prometheus.CounterVec // reason, curried with route and direction
	// seen counts the requests of the route's operation for the
	// inventory; nil without a spec.
	seen *inventory.Counter
	// deprecation is the headers of a deprecated operation, nil for
	// others; deprecated counts its requests.
	deprecation *deprecationHeaders
	deprecated  prometheus.Counter
}

var _ http.Handler = (*requestValidator)(nil)

// responseValidator is a route's response validation, a response stage.
type responseValidator struct {
	op       *validate.Operation
	mode     config.Mode
	problems *problem.Writer
	failures *prometheus.CounterVec // reason, curried with route and direction
}

var _ proxy.ResponseStage = (*responseValidator)(nil)

// validation builds a route's validation stages (decode: a later stage,
// the object-level rules, reads the decoded JSON body): the request middleware
// (nil when request validation is off and there is no body limit to
// check... the JSON limits always apply) and the response stage (nil when
// response validation is off).
func validation(cfg *config.Config, rt config.Route, bodyLimit int64, decode bool, deps Deps) (func(http.Handler) http.Handler, proxy.ResponseStage, error) {
	v := rt.Validate
	var op *validate.Operation
	var info validate.OperationInfo
	if v.Spec != "" {
		spec := cfg.Spec(v.Spec)
		if spec == nil {
			return nil, nil, fmt.Errorf("validate: spec %q is not loaded", v.Spec)
		}
		var ok bool
		info, ok = spec.Find(rt.Method, rt.Path)
		if v.Operation != "" {
			info, ok = spec.FindByID(v.Operation)
		}
		if !ok {
			return nil, nil, fmt.Errorf("validate: no operation of spec %q for %s %s", v.Spec, rt.Method, rt.Path)
		}
		if v.Request != config.ValidateOff || v.Response != config.ValidateOff {
			var err error
			if op, err = spec.Compile(info, rt.Path, validate.Options{Strict: v.Strict, StrictQuery: v.StrictQuery}); err != nil {
				return nil, nil, fmt.Errorf("validate: %w", err)
			}
		}
	}
	limits := validate.Limits{
		MaxDepth:    v.JSON.MaxDepth,
		MaxMembers:  v.JSON.MaxMembers,
		MaxElements: v.JSON.MaxElements,
		MaxString:   int(v.JSON.MaxString),
		MaxSize:     int64(v.JSON.MaxSize),
	}
	if limits.MaxSize == 0 {
		limits.MaxSize = bodyLimit
	}
	failures := deps.Metrics.ValidationFailures
	req := &requestValidator{
		params: config.PathParams(rt.Path), limits: limits, mode: validationMode(v.Request), problems: deps.Problems, decode: decode,
		failures: failures.MustCurryWith(prometheus.Labels{"route": rt.Name, "direction": "request"}),
	}
	if v.Request != config.ValidateOff {
		req.op = op
	}
	if v.Spec != "" {
		// Counted even with validation off: the route still serves the
		// operation, and the inventory is about use.
		req.seen = deps.catalog.Route(v.Spec, info, rt.Name)
		if info.Deprecated {
			req.deprecation = newDeprecationHeaders(cfg.Specs[v.Spec].Deprecations[info.ID])
			req.deprecated = deps.Metrics.Deprecated.WithLabelValues(rt.Name)
		}
	}
	mw := func(next http.Handler) http.Handler {
		r := *req
		r.next = next
		return &r
	}
	var resp proxy.ResponseStage
	if op != nil && v.Response != config.ValidateOff {
		resp = &responseValidator{op: op, mode: validationMode(v.Response), problems: deps.Problems,
			failures: failures.MustCurryWith(prometheus.Labels{"route": rt.Name, "direction": "response"})}
	}
	return mw, resp, nil
}

func validationMode(m string) config.Mode {
	if m == config.ValidateReport {
		return config.ModeReport
	}
	return config.ModeEnforce
}

func (v *requestValidator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.seen.Inc()
	if v.deprecation != nil {
		v.deprecated.Inc()
		// Set now, so that the gateway's own answers (a 400, a 502) carry
		// them too; the writer sets them again over what the upstream
		// sent.
		v.deprecation.set(w.Header())
		w = &deprecationWriter{ResponseWriter: w, hdr: v.deprecation}
	}
	ct := r.Header.Get("Content-Type")
	var body []byte
	var value any
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		switch {
		case validate.IsJSON(ct):
			body, value, err = validate.ReadJSONBody(r, v.limits, v.op != nil || v.decode)
			if err == nil && value != nil {
				// Decoded once: the object-level rules read it here.
				if rec := exchange.From(r.Context()); rec != nil {
					rec.Body, rec.BodyRead = value, true
				}
			}
		case v.op != nil:
			body, err = readAll(r)
		}
		if err != nil {
			if reason := v.problems.RefuseBody(w, r, err); reason != "" {
				v.failures.WithLabelValues(reason).Inc()
			}
			return
		}
	}
	if v.op != nil && !v.check(w, r, ct, body, value) {
		return
	}
	v.next.ServeHTTP(w, r)
}

// check runs the operation's checks; false means it answered.
func (v *requestValidator) check(w http.ResponseWriter, r *http.Request, ct string, body []byte, value any) bool {
	var params []string
	if len(v.params) > 0 {
		params = make([]string, len(v.params))
		rctx := chi.RouteContext(r.Context())
		for i, name := range v.params {
			raw := ""
			if rctx != nil {
				raw = rctx.URLParam(name)
			}
			if s, err := url.PathUnescape(raw); err == nil {
				raw = s
			}
			params[i] = raw
		}
	}
	err := v.op.ValidateRequest(&validate.Request{
		Method: r.Method, PathParams: params, Query: r.URL.Query(), Header: r.Header,
		ContentType: ct, Body: body, BodyValue: value,
	})
	var viol *validate.Violation
	if !errors.As(err, &viol) {
		return true
	}
	v.failures.WithLabelValues(viol.Reason).Inc()
	p := problem.InvalidRequest(viol.Reason, viol.Detail)
	if viol.Status == http.StatusUnsupportedMediaType {
		p = problem.UnsupportedMediaType()
	}
	p.Rule = viol.Rule
	p.Mode = v.mode
	return !v.problems.Deny(w, r, p)
}

// readAll reads a non-JSON body that the operation checks (bounded by the
// edge's body limit) and puts the bytes back for the upstream.
func readAll(r *http.Request) ([]byte, error) {
	b := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 512)))
	if _, err := b.ReadFrom(r.Body); err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(b.Bytes()))
	r.ContentLength = int64(b.Len())
	return b.Bytes(), nil
}

// Respond checks the upstream response against the operation.
func (v *responseValidator) Respond(r *http.Request, resp *proxy.Response) error {
	err := v.op.ValidateResponse(resp.Status, resp.Header, resp.Body)
	var viol *validate.Violation
	if !errors.As(err, &viol) {
		return nil
	}
	v.failures.WithLabelValues(viol.Reason).Inc()
	p := problem.InvalidResponse(viol.Reason)
	p.Rule = viol.Rule
	p.Mode = v.mode
	if !v.problems.Decide(r, p) {
		return nil
	}
	return &proxy.Refusal{Problem: p}
}

// deprecationHeaders are the response headers of a deprecated operation:
// Deprecation (RFC 9745) always, Sunset (RFC 8594) and Link
// rel="deprecation" (RFC 9745 section 3) when configured.
type deprecationHeaders struct {
	deprecation, sunset, link string
}

// newDeprecationHeaders formats the headers of d once. Without since, the
// Deprecation date is @0 (the Unix epoch): RFC 9745 needs a date, and a
// date in the past says "deprecated already" without inventing when.
func newDeprecationHeaders(d config.Deprecation) *deprecationHeaders {
	h := &deprecationHeaders{deprecation: "@0"}
	if !d.Since.IsZero() {
		h.deprecation = "@" + strconv.FormatInt(d.Since.Unix(), 10)
	}
	if !d.Sunset.IsZero() {
		h.sunset = d.Sunset.UTC().Format(http.TimeFormat)
	}
	if d.Link != "" {
		h.link = "<" + d.Link + `>; rel="deprecation"`
	}
	return h
}

// set puts the headers into hdr: Deprecation and Sunset replace any value
// there (the gateway's configuration wins over the upstream's), the
// deprecation link is added once, beside the upstream's other links.
func (d *deprecationHeaders) set(hdr http.Header) {
	hdr["Deprecation"] = []string{d.deprecation}
	if d.sunset != "" {
		hdr["Sunset"] = []string{d.sunset}
	}
	if d.link != "" {
		links := slices.DeleteFunc(hdr["Link"], func(l string) bool { return l == d.link })
		hdr["Link"] = append(links, d.link)
	}
}

// deprecationWriter sets the deprecation headers again when the final
// status is written. ReverseProxy adds the upstream's headers to the ones
// already set (so an upstream's own Deprecation would make a second
// value) and clears them all after a 1xx answer; setting them here, for
// streamed and buffered responses alike, leaves exactly one of each.
type deprecationWriter struct {
	http.ResponseWriter
	hdr   *deprecationHeaders
	wrote bool
}

func (d *deprecationWriter) WriteHeader(code int) {
	if !d.wrote && (code >= http.StatusOK || code == http.StatusSwitchingProtocols) {
		d.wrote = true
		d.hdr.set(d.ResponseWriter.Header())
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *deprecationWriter) Write(b []byte) (int, error) {
	if !d.wrote {
		d.WriteHeader(http.StatusOK)
	}
	return d.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (ReverseProxy's flushes and
// upgrades) reach the connection's writer.
func (d *deprecationWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
