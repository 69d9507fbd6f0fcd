package edge

import (
	"net/http"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// Upgrade returns the middleware that applies a route's upgrade policy. It
// belongs in every route's chain: a request with an Upgrade header is
// refused unless allowed (the route's websocket: true), and then only a
// WebSocket upgrade passes; the rest of the chain runs on the handshake.
// Refusing a WebSocket upgrade is reportable; refusing any other protocol
// (h2c, ...) always enforces, as in New. pw must not be nil.
func Upgrade(allowed bool, pw *problem.Writer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return &upgradePolicy{next: next, allowed: allowed, problems: pw}
	}
}

type upgradePolicy struct {
	next     http.Handler
	allowed  bool
	problems *problem.Writer
}

var _ http.Handler = (*upgradePolicy)(nil)

func (u *upgradePolicy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up, ok := r.Header["Upgrade"]
	if !ok {
		u.next.ServeHTTP(w, r)
		return
	}
	if !isWebSocket(up) {
		if u.problems.Deny(w, r, problem.UpgradeUnsupported()) {
			return
		}
	} else if !u.allowed {
		if u.problems.Deny(w, r, problem.UpgradeRefused()) {
			return
		}
	}
	u.next.ServeHTTP(w, r)
}
