// Package edge is the gateway's protocol hygiene: what runs on every
// request before routing, and always enforces (DESIGN.md "The request's
// way"). It recovers panics, works out the client address, the request
// id and the W3C trace context (trace.go), adds the security response
// headers, refuses ambiguous framing, too many header fields and every
// non-canonical spelling of a path, and strips the request headers that the
// gateway owns or that must not cross a proxy.
//
// It also provides the per-route pieces that the gateway composes into each
// route's chain: the body limit (BodyLimit), the upgrade policy (Upgrade)
// and the cross-origin policy (CORS, Preflight). Those are reportable; the
// checks done by New are protocol defences and ignore report mode.
package edge

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// Deps are the edge's collaborators. Both are required.
type Deps struct {
	// Log receives recovered panics (never request headers or bodies).
	Log *zap.Logger
	// Problems writes every refusal.
	Problems *problem.Writer
}

// edge is the middleware built by New. It is read-only after New and safe
// for concurrent use.
type edge struct {
	next     http.Handler
	log      *zap.Logger
	problems *problem.Writer

	trusted   []netip.Prefix
	maxFields int
	// strip holds the canonical names of the request headers removed from
	// every request: hop-by-hop, gateway-owned and identity headers.
	strip map[string]struct{}
	// stripFirst marks the first bytes (either case) of the names in strip
	// and of ownedPrefix.
	stripFirst *[256]bool
	// Response header values, built once and shared by every response.
	// Each slice has cap == len, so an Add on a response (the proxy copying
	// the upstream's headers) copies instead of writing into the shared
	// array.
	nosniff []string
	hsts    []string // nil: no Strict-Transport-Security header
	close   []string
}

var _ http.Handler = (*edge)(nil)

// hopByHop are the request headers that describe one connection, not the
// request (RFC 9110 §7.6.1, plus the obsolete Proxy-Connection and
// Keep-Alive). Connection and Upgrade are handled apart: they survive on a
// WebSocket handshake.
func hopByHop() []string {
	return []string{
		"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding",
	}
}

// gatewayOwned are the request headers only the gateway may set: a client
// that sends them is trying to pass for a proxy or for the gateway itself.
// Every header named X-Bulwark-* is owned too.
func gatewayOwned() []string {
	return []string{
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
		"X-Forwarded-Prefix", "Forwarded", "X-Real-Ip",
	}
}

// ownedPrefix starts the name of every header reserved for the gateway.
const ownedPrefix = "X-Bulwark-"

// New compiles the edge from the server config: trusted proxies, identity
// headers, the header count limit and HSTS. cfg is expected as the config
// loader leaves it (defaults applied, identity headers merged with the
// built-in ones); New fails on a header count limit that is not positive,
// an invalid trusted-proxy prefix, an invalid identity header name or a
// negative HSTS max-age.
//
// The returned middleware runs before routing. It uses the request's
// exchange.Record, creating and attaching one when the request has none
// (outside the gateway, in tests). If the ResponseWriter has a method
// Status() int that returns non-zero once the response has started, a panic
// after that point aborts the connection instead of appending a problem to
// a half-written response.
func New(cfg config.Server, deps Deps) (func(http.Handler) http.Handler, error) {
	if deps.Log == nil || deps.Problems == nil {
		return nil, errors.New("edge: missing logger or problem writer")
	}
	if cfg.MaxHeaderCount <= 0 {
		return nil, fmt.Errorf("max_header_count: must be positive, got %d", cfg.MaxHeaderCount)
	}
	trusted, err := compilePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	strip, err := compileStrip(slices.Concat(cfg.IdentityHeaders, methodOverrideHeaders()))
	if err != nil {
		return nil, fmt.Errorf("identity_headers: %w", err)
	}
	var hsts []string
	if cfg.TLS != nil {
		v, err := hstsValue(cfg.TLS.HSTS)
		if err != nil {
			return nil, fmt.Errorf("tls: hsts: %w", err)
		}
		if v != "" {
			hsts = []string{v}
		}
	}
	proto := edge{
		log:        deps.Log,
		problems:   deps.Problems,
		trusted:    trusted,
		maxFields:  cfg.MaxHeaderCount,
		strip:      strip,
		stripFirst: firstBytes(strip),
		nosniff:    []string{"nosniff"},
		hsts:       hsts,
		close:      []string{"close"},
	}
	return func(next http.Handler) http.Handler {
		e := proto
		e.next = next
		return &e
	}, nil
}

// compilePrefixes masks each prefix and turns IPv4-mapped IPv6 prefixes
// into IPv4 ones, since peer addresses are compared unmapped.
func compilePrefixes(in []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid prefix %q", p.String())
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("prefix %s: IPv4-mapped prefix shorter than /96", p)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func compileStrip(identity []string) (map[string]struct{}, error) {
	strip := map[string]struct{}{}
	for _, list := range [][]string{hopByHop(), gatewayOwned()} {
		for _, h := range list {
			strip[h] = struct{}{}
		}
	}
	for _, h := range identity {
		if !httpguts.ValidHeaderFieldName(h) {
			return nil, fmt.Errorf("invalid header name %q", h)
		}
		strip[http.CanonicalHeaderKey(h)] = struct{}{}
	}
	return strip, nil
}

func firstBytes(strip map[string]struct{}) *[256]bool {
	var first [256]bool
	mark := func(c byte) {
		first[c] = true
		if 'a' <= c && c <= 'z' {
			first[c-'a'+'A'] = true
		} else if 'A' <= c && c <= 'Z' {
			first[c-'A'+'a'] = true
		}
	}
	for k := range strip {
		mark(k[0])
	}
	mark(ownedPrefix[0])
	return &first
}

func hstsValue(h config.HSTS) (string, error) {
	if h.MaxAge < 0 {
		return "", fmt.Errorf("max_age: must not be negative, got %s", h.MaxAge.D())
	}
	secs := int64(h.MaxAge.D() / time.Second)
	if secs == 0 {
		return "", nil
	}
	v := "max-age=" + strconv.FormatInt(secs, 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v, nil
}

// ServeHTTP runs the edge checks in order, each refusal written by the
// problem writer, then calls next.
func (e *edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := exchange.From(r.Context())
	if rec == nil {
		rec = &exchange.Record{Start: time.Now()}
		r = r.WithContext(exchange.With(r.Context(), rec))
	}
	defer e.recoverPanic(w, r, rec)

	// Counted before the edge adds X-Request-Id: the limit is on what the
	// client sent.
	fields := 0
	for _, vs := range r.Header {
		fields += len(vs)
	}

	peer := peerAddr(r.RemoteAddr)
	fromProxy := contains(e.trusted, peer)
	rec.ClientIP = peer
	if fromProxy {
		rec.ClientIP = walkForwarded(peer, r.Header["X-Forwarded-For"], e.trusted)
	}
	rec.TLS = r.TLS != nil
	rec.RequestID = requestID(r.Header["X-Request-Id"], fromProxy)
	// Taken from any client, trusted proxy or not (trace.go).
	trace := newTraceContext(r.Header["Traceparent"], r.Header["Tracestate"])
	rec.TraceID = trace.id
	// One allocation for the three headers, as slices that cannot grow
	// into each other.
	ids := [...]string{rec.RequestID, rec.RequestID, trace.parent}
	idSlices := ids[:]
	h := w.Header()
	h["X-Request-Id"] = idSlices[0:1:1]
	h["X-Content-Type-Options"] = e.nosniff
	if e.hsts != nil && r.TLS != nil {
		h["Strict-Transport-Security"] = e.hsts
	}

	if p, ok := e.checkFraming(w, r); !ok {
		if e.problems.Deny(w, r, p) {
			return
		}
	}
	if fields > e.maxFields {
		if e.problems.Deny(w, r, problem.HeadersTooLarge()) {
			return
		}
	}
	if err := canonicalizeURL(r); err != nil {
		if e.problems.Deny(w, r, pathProblem(err)) {
			return
		}
	}
	if p, ok := e.cleanHeaders(r); !ok {
		if e.problems.Deny(w, r, p) {
			return
		}
	}
	if methodOverrideQuery(r.URL.RawQuery) {
		if e.problems.Deny(w, r, problem.MethodOverride()) {
			return
		}
	}
	// Set after cleanHeaders: a client naming X-Request-Id in Connection
	// must not be able to strip the id the upstream receives.
	r.Header["X-Request-Id"] = idSlices[1:2:2]
	r.Header["Traceparent"] = idSlices[2:3:3] // the gateway's span is the upstream's parent
	if !trace.keepState {
		delete(r.Header, "Tracestate")
	}
	e.next.ServeHTTP(w, r)
}

// methodOverrideHeaders are the headers some frameworks read to run
// another method than the request's (a POST that the application treats
// as a DELETE): a client could reach a function the route's method does
// not allow. They are stripped from every request, like identity headers.
func methodOverrideHeaders() []string {
	return []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}
}

// methodOverrideQuery reports whether a raw query carries the _method
// parameter that Rails, Laravel and others read as the request's method.
// It cannot be stripped without changing the URL the client signed or
// cached, so the request is refused.
func methodOverrideQuery(raw string) bool {
	if raw == "" || !strings.Contains(raw, "method") {
		return false
	}
	for part := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if name == "_method" {
			return true
		}
		if strings.Contains(name, "%") {
			if n, err := url.QueryUnescape(name); err == nil && n == "_method" {
				return true
			}
		}
	}
	return false
}
