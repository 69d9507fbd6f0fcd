package edge

import (
	"net/http"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// cleanHeaders strips from the request the headers that must not reach a
// stage or the upstream as the client sent them:
//   - hop-by-hop headers, and every header the client names in Connection
//     (RFC 9110 §7.6.1); Connection and Upgrade themselves survive only on
//     an upgrade request, which the route's Upgrade middleware then judges
//     and httputil.ReverseProxy needs to relay;
//   - the headers the gateway owns (X-Forwarded-*, Forwarded, X-Real-Ip,
//     X-Bulwark-*) and the identity headers that upstreams often trust;
//     also when spelt with '_' for '-' (X_User), which CGI-style upstreams
//     read as the same header;
//   - the client's trailers, which could carry any of those past this
//     point.
//
// An upgrade to anything but WebSocket (h2c, ...) is refused: a tunnel
// opened through the gateway would carry requests that no chain sees.
func (e *edge) cleanHeaders(r *http.Request) (problem.Problem, bool) {
	h := r.Header
	r.Trailer = nil
	upgrade := len(h["Upgrade"]) > 0 && hasToken(h["Connection"], "upgrade")
	if upgrade && !isWebSocket(h["Upgrade"]) {
		return problem.UpgradeUnsupported(), false
	}
	conn := h["Connection"]
	for _, line := range conn {
		for line != "" {
			var tok string
			tok, line, _ = strings.Cut(line, ",")
			tok = trimOWS(tok)
			if tok == "" || strings.EqualFold(tok, "close") || strings.EqualFold(tok, "keep-alive") ||
				strings.EqualFold(tok, "upgrade") {
				continue // no header to remove (Keep-Alive goes below anyway)
			}
			delete(h, http.CanonicalHeaderKey(tok))
		}
	}
	for k := range h {
		if e.stripped(k) || !upgrade && (k == "Connection" || k == "Upgrade") {
			delete(h, k)
		}
	}
	return problem.Problem{}, true
}

// stripped reports whether the request header k (canonical, as Go's server
// leaves it) is one the edge removes.
func (e *edge) stripped(k string) bool {
	if k == "" {
		return false
	}
	// Most headers of a request are none of these: a look at the first
	// byte spares them the hashing of a map lookup.
	if e.stripFirst[k[0]] {
		if _, ok := e.strip[k]; ok {
			return true
		}
		if len(k) >= len(ownedPrefix) && strings.EqualFold(k[:len(ownedPrefix)], ownedPrefix) {
			return true
		}
	}
	if strings.IndexByte(k, '_') < 0 {
		return false
	}
	// Rare: compare the '-' spelling of the name.
	dashed := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
	if _, ok := e.strip[dashed]; ok {
		return true
	}
	return strings.HasPrefix(dashed, ownedPrefix)
}

// hasToken reports whether the comma-separated header lines hold token,
// compared case-insensitively.
func hasToken(lines []string, token string) bool {
	for _, line := range lines {
		for line != "" {
			var tok string
			tok, line, _ = strings.Cut(line, ",")
			if strings.EqualFold(trimOWS(tok), token) {
				return true
			}
		}
	}
	return false
}

// isWebSocket reports whether the Upgrade header lines ask for exactly one
// protocol, WebSocket (RFC 6455 §4.1).
func isWebSocket(upgrade []string) bool {
	return len(upgrade) == 1 && strings.EqualFold(trimOWS(upgrade[0]), "websocket")
}
