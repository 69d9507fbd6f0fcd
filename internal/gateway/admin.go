package gateway

import (
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/edge"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// readiness is what /readyz reports. It is safe for concurrent use.
type readiness interface {
	// Ready returns "" when the gateway should receive traffic, else the
	// reason it should not.
	Ready() string
	// Degraded returns "" when every dependency works, else what runs
	// degraded while the gateway stays ready (the Redis rate-limit store
	// down under failure_mode: open).
	Degraded() string
}

// adminHandler serves /livez, /readyz, /healthz, /metrics and /inventory.
// /livez and /readyz are always open (probes); everything else is
// restricted when the listener is bound beyond loopback: the peer must be
// inside admin.allow and, when admin.token is set, present it as a bearer
// token.
type adminHandler struct {
	mux        *http.ServeMux
	restricted bool
	allow      []netip.Prefix
	token      []byte
	problems   *problem.Writer
}

var _ http.Handler = (*adminHandler)(nil)

func newAdminHandler(cfg config.Admin, ready readiness, metrics, inventory http.Handler, pw *problem.Writer) *adminHandler {
	a := &adminHandler{
		mux:        http.NewServeMux(),
		restricted: !config.LoopbackOnly(cfg.Listen),
		allow:      cfg.Allow,
		token:      []byte(cfg.Token),
		problems:   pw,
	}
	live := func(w http.ResponseWriter, r *http.Request) { plain(w, http.StatusOK, "ok") }
	a.mux.HandleFunc("GET /livez", live)
	a.mux.HandleFunc("GET /healthz", live)
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if reason := ready.Ready(); reason != "" {
			plain(w, http.StatusServiceUnavailable, "not ready: "+reason)
			return
		}
		if d := ready.Degraded(); d != "" {
			plain(w, http.StatusOK, "ready (degraded: "+d+")")
			return
		}
		plain(w, http.StatusOK, "ready")
	})
	a.mux.Handle("GET /metrics", metrics)
	a.mux.Handle("GET /inventory", inventory)
	return a
}

func (a *adminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if a.restricted && r.URL.Path != "/livez" && r.URL.Path != "/readyz" {
		if !a.peerAllowed(r) {
			a.refuse(w, r, problem.AdminForbidden())
			return
		}
		if len(a.token) > 0 && !a.tokenValid(r) {
			a.refuse(w, r, problem.AdminUnauthorized())
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// refuse answers with p, under a request id like every problem the
// gateway writes, so that a refused scrape can be found in the logs.
func (a *adminHandler) refuse(w http.ResponseWriter, r *http.Request, p problem.Problem) {
	rec := &exchange.Record{RequestID: edge.NewRequestID()}
	w.Header().Set("X-Request-Id", rec.RequestID)
	a.problems.Write(w, r.WithContext(exchange.With(r.Context(), rec)), p)
}

func (a *adminHandler) peerAllowed(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range a.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (a *adminHandler) tokenValid(r *http.Request) bool {
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 {
		return false
	}
	scheme, tok, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), a.token) == 1
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n")) // a probe that hung up needs no answer
}
