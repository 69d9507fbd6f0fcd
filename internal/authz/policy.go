package authz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/breaker"
	"github.com/bulwark-gateway/bulwark/internal/cache"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// Policy asks one external policy decision point that speaks OPA's Data
// API (policies.<name>, docs/authorization.md "Policy hook"): it POSTs
// the input document and reads {"result": true|false} or {"result":
// {"allow": bool, "reason": "…"}}. Anything else, a timeout, an error or
// an open circuit breaker is no decision, which the stage turns into a
// refusal (fail closed). Decisions are cached by the SHA-256 of the input
// when the config says so. Safe for concurrent use.
type Policy struct {
	url     string
	header  http.Header
	client  *http.Client
	timeout time.Duration
	input   config.PolicyInput
	// cache holds decisions for ttl; nil: none.
	cache   *cache.Cache[Verdict]
	ttl     time.Duration
	breaker *breaker.Breaker
	// errorStatus is the status of a request refused for want of a
	// decision (503 or 403).
	errorStatus int
	log         *zap.Logger

	duration prometheus.Observer
	errs     map[string]prometheus.Counter // by PolicyError reason
	hits     prometheus.Counter
}

// PolicyMetrics are the policy hook's collectors (labels in brackets).
type PolicyMetrics struct {
	// Duration observes the calls to the policy server [policy].
	Duration *prometheus.HistogramVec
	// Errors counts the calls that gave no decision, and the requests the
	// open breaker refused without a call [policy, reason].
	Errors *prometheus.CounterVec
	// CacheHits counts the decisions taken from the cache [policy].
	CacheHits *prometheus.CounterVec
}

// Verdict is a policy server's decision.
type Verdict struct {
	Allow bool
	// Reason is the policy's explanation of a denial, when it gave one
	// (at most maxPolicyReason printable ASCII characters).
	Reason string
}

// PolicyError is a call that gave no decision. Reason is a bounded
// metric label: timeout, unavailable (the server could not be reached or
// did not answer 200), bad_response (the answer is not a decision; also
// an undefined decision document) or circuit_open.
type PolicyError struct {
	Reason string
	Err    error
}

func (e *PolicyError) Error() string {
	if e.Err == nil {
		return "policy: " + e.Reason
	}
	return "policy: " + e.Reason + ": " + e.Err.Error()
}

func (e *PolicyError) Unwrap() error { return e.Err }

var policyErrorReasons = []string{"timeout", "unavailable", "bad_response", "circuit_open"}

const (
	// maxPolicyAnswer bounds the policy server's answer that is read.
	maxPolicyAnswer = 1 << 20
	// maxPolicyReason bounds the reason kept from a denial.
	maxPolicyReason = 200
)

// NewPolicy builds the client of policies.<name>.
func NewPolicy(name string, cfg config.Policy, m PolicyMetrics, log *zap.Logger) (*Policy, error) {
	tr := &http.Transport{
		// Never through an HTTP proxy from the environment: authorization
		// traffic goes where the config says.
		Proxy: nil,
		// The call's context carries the one deadline (timeout) that
		// dialing, the TLS handshake and the answer share.
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.Config("policy " + name)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	p := &Policy{
		url:    cfg.URL,
		header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}},
		client: &http.Client{Transport: tr,
			// A redirect is not a decision.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout:     cfg.Timeout.D(),
		input:       cfg.Input,
		ttl:         cfg.CacheTTL.D(),
		breaker:     breaker.New(cfg.BreakerFailures, cfg.BreakerCooldown.D()),
		errorStatus: cfg.ErrorStatus,
		log:         log.With(zap.String("policy", name)),
		duration:    m.Duration.WithLabelValues(name),
		errs:        make(map[string]prometheus.Counter, len(policyErrorReasons)),
		hits:        m.CacheHits.WithLabelValues(name),
	}
	for k, v := range cfg.Headers {
		p.header.Set(k, string(v))
	}
	p.input.Headers = make([]string, len(cfg.Input.Headers))
	for i, h := range cfg.Input.Headers {
		p.input.Headers[i] = http.CanonicalHeaderKey(h)
	}
	if p.ttl > 0 {
		p.cache = cache.New[Verdict](cfg.CacheSize, nil)
	}
	for _, reason := range policyErrorReasons {
		p.errs[reason] = m.Errors.WithLabelValues(name, reason)
	}
	return p, nil
}

// Close closes the client's idle connections.
func (p *Policy) Close() { p.client.CloseIdleConnections() }

// Decide returns the policy server's verdict on input, the JSON document
// {"input": …}: from the cache when an equal input was decided within
// the TTL, else from one call under the timeout and the breaker. An error
// (always a *PolicyError, unless ctx was canceled by the caller) means
// there is no decision.
func (p *Policy) Decide(ctx context.Context, input []byte) (Verdict, error) {
	var key [32]byte
	if p.cache != nil {
		key = sha256.Sum256(input)
		if v, ok := p.cache.Get(key); ok {
			p.hits.Inc()
			return v, nil
		}
	}
	probe, ok := p.breaker.Allow(time.Now())
	if !ok {
		p.errs["circuit_open"].Inc()
		return Verdict{}, &PolicyError{Reason: "circuit_open"}
	}
	start := time.Now()
	v, err := p.call(ctx, input)
	p.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
			// The client went away: no fault of the policy server.
			p.breaker.Release(probe)
			return Verdict{}, ctx.Err()
		}
		var pe *PolicyError
		if errors.As(err, &pe) {
			p.errs[pe.Reason].Inc()
		}
		if p.breaker.Failure(probe, time.Now()) {
			p.log.Warn("policy server failing: circuit breaker open",
				zap.Int64("failures", p.breaker.Threshold()),
				zap.Duration("cooldown", p.breaker.Cooldown()),
				zap.Error(err))
		}
		return Verdict{}, err
	}
	if p.breaker.Success(probe) {
		p.log.Info("policy server answering again: circuit breaker closed")
	}
	if p.cache != nil {
		p.cache.Put(key, v, time.Now().Add(p.ttl))
	}
	return v, nil
}

// call makes one call to the policy server.
func (p *Policy) call(ctx context.Context, input []byte) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(input))
	if err != nil {
		return Verdict{}, &PolicyError{Reason: "unavailable", Err: err}
	}
	req.Header = p.header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return Verdict{}, p.transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicyAnswer+1))
	switch {
	case err != nil:
		return Verdict{}, p.transportError(ctx, err)
	case resp.StatusCode != http.StatusOK:
		return Verdict{}, &PolicyError{Reason: "unavailable", Err: fmt.Errorf("status %d", resp.StatusCode)}
	case len(body) > maxPolicyAnswer:
		return Verdict{}, &PolicyError{Reason: "bad_response", Err: fmt.Errorf("answer over %d bytes", maxPolicyAnswer)}
	}
	v, err := parseVerdict(body)
	if err != nil {
		return Verdict{}, &PolicyError{Reason: "bad_response", Err: err}
	}
	return v, nil
}

// transportError classifies a failed exchange: past the timeout, or not
// reached.
func (p *Policy) transportError(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return &PolicyError{Reason: "timeout", Err: fmt.Errorf("no answer within %s", p.timeout)}
	}
	return &PolicyError{Reason: "unavailable", Err: err}
}

// parseVerdict reads an OPA Data API answer: {"result": true|false} or
// {"result": {"allow": true|false, "reason": "…"}}. A missing result (OPA
// answers {} for an undefined document), a result of another type or an
// object without a boolean allow is not a decision.
func parseVerdict(body []byte) (Verdict, error) {
	var answer struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return Verdict{}, errors.New("the answer is not a JSON object")
	}
	res := bytes.TrimSpace(answer.Result)
	switch {
	case len(res) == 0 || bytes.Equal(res, []byte("null")):
		return Verdict{}, errors.New("no result: the decision document is undefined (check the policy's package and rule names against the url)")
	case bytes.Equal(res, []byte("true")):
		return Verdict{Allow: true}, nil
	case bytes.Equal(res, []byte("false")):
		return Verdict{}, nil
	case res[0] != '{':
		return Verdict{}, errors.New("the result is neither a boolean nor an object")
	}
	var obj struct {
		Allow  *bool           `json:"allow"`
		Reason json.RawMessage `json:"reason"`
	}
	if err := json.Unmarshal(res, &obj); err != nil || obj.Allow == nil {
		return Verdict{}, errors.New("the result object has no boolean allow")
	}
	v := Verdict{Allow: *obj.Allow}
	var reason string
	if !v.Allow && json.Unmarshal(obj.Reason, &reason) == nil {
		v.Reason = cleanReason(reason)
	}
	return v, nil
}

// cleanReason keeps a policy's reason safe to show: printable ASCII, at
// most maxPolicyReason characters.
func cleanReason(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxPolicyReason; i++ {
		if c := s[i]; c >= ' ' && c <= '~' {
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// policyRoute is the route part of the input document.
type policyRoute struct {
	Name     string
	Path     string
	Upstream string
}

// appendInput appends the input document of r to dst: the principal, the
// request and the route, with the names the object-level rules use
// (docs/authorization.md, "Policy hook"). Members are written in a fixed
// order and map keys sorted, so equal inputs are equal bytes and share a
// cache entry. Strings go through jsontext.AppendQuote (invalid UTF-8
// becomes U+FFFD, as encoding/json writes it); this direct writer costs a
// fraction of encoding/json's reflection, and runs on every request, the
// cached ones included.
func (o *ObjectRules) appendInput(dst []byte, r *http.Request, rec *exchange.Record) []byte {
	dst = append(dst, `{"input":{"principal":`...)
	if p := rec.Principal; p == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, `{"sub":`...)
		dst = appendString(dst, p.Subject)
		if p.Issuer != "" {
			dst = append(dst, `,"issuer":`...)
			dst = appendString(dst, p.Issuer)
		}
		if p.Consumer != "" {
			dst = append(dst, `,"consumer":`...)
			dst = appendString(dst, p.Consumer)
		}
		dst = append(dst, `,"auth_method":`...)
		dst = appendString(dst, p.Method)
		dst = append(dst, `,"authenticator":`...)
		dst = appendString(dst, p.Authenticator)
		dst = append(dst, `,"scopes":`...)
		dst = appendStrings(dst, p.Scopes)
		dst = append(dst, `,"roles":`...)
		dst = appendStrings(dst, p.Roles)
		if len(p.Claims) > 0 {
			dst = append(dst, `,"claims":`...)
			dst = appendAny(dst, p.Claims)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"request":{"method":`...)
	dst = appendString(dst, r.Method)
	dst = append(dst, `,"path":{`...)
	for i, name := range o.sortedParams {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, name)
		dst = append(dst, ':')
		dst = appendString(dst, pathParam(r, name))
	}
	dst = append(dst, `},"query":`...)
	var query url.Values
	if r.URL.RawQuery != "" {
		// A malformed pair is left out, as url.Query does.
		query, _ = url.ParseQuery(r.URL.RawQuery)
	}
	dst = appendValues(dst, query)
	sel := o.policy.input
	if len(sel.Headers) > 0 {
		headers := make(map[string][]string, len(sel.Headers))
		for _, name := range sel.Headers {
			if v := r.Header.Values(name); len(v) > 0 {
				headers[strings.ToLower(name)] = v
			}
		}
		if len(headers) > 0 {
			dst = append(dst, `,"headers":`...)
			dst = appendValues(dst, headers)
		}
	}
	if sel.Body && rec.BodyRead {
		dst = append(dst, `,"body":`...)
		dst = appendAny(dst, rec.Body)
	}
	if sel.ClientIP && rec.ClientIP.IsValid() {
		dst = append(dst, `,"client_ip":"`...)
		dst = rec.ClientIP.AppendTo(dst)
		dst = append(dst, '"')
	}
	dst = append(dst, `},"route":{"name":`...)
	dst = appendString(dst, o.route.Name)
	dst = append(dst, `,"path":`...)
	dst = appendString(dst, o.route.Path)
	dst = append(dst, `,"upstream":`...)
	dst = appendString(dst, o.route.Upstream)
	return append(dst, "}}}"...)
}

func appendString(dst []byte, s string) []byte {
	dst, _ = jsontext.AppendQuote(dst, s) // invalid UTF-8 is replaced, see appendInput
	return dst
}

func appendStrings(dst []byte, list []string) []byte {
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendValues appends a map of string lists, keys sorted.
func appendValues(dst []byte, m map[string][]string) []byte {
	dst = append(dst, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendStrings(dst, m[k])
	}
	return append(dst, '}')
}

// appendAny appends a decoded JSON value (claims, a request body): maps
// with keys sorted, numbers as decoded (json.Number keeps its text).
func appendAny(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendString(dst, v)
	case bool:
		return strconv.AppendBool(dst, v)
	case json.Number:
		return append(dst, v...)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(dst, "null"...)
		}
		return jsontext.AppendFloat(dst, v, 64)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case []string:
		return appendStrings(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAny(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendAny(dst, v[k])
		}
		return append(dst, '}')
	}
	// Another type (a claim some authenticator built): encoding/json's
	// form, or null when it has none.
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// askPolicy asks the route's policy decision point; false means it
// answered.
func (o *objectStage) askPolicy(w http.ResponseWriter, r *http.Request, rec *exchange.Record) bool {
	v, err := o.policy.Decide(r.Context(), o.appendInput(make([]byte, 0, 1024), r, rec))
	var p problem.Problem
	switch {
	case err != nil:
		o.policyCounts[resultError].Inc()
		p = problem.PolicyUnavailable(o.policyRule, o.policy.errorStatus)
	case !v.Allow:
		o.policyCounts[resultDeny].Inc()
		p = problem.PolicyDenied(o.policyRule, o.denyStatus, v.Reason)
	default:
		o.policyCounts[resultAllow].Inc()
		return true
	}
	p.Mode = o.mode
	return !o.problems.Deny(w, r, p)
}
