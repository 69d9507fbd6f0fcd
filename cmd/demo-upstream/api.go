package main

import (
	"encoding/json"
	"net/http"
	"path"
	"time"
)

// newAPI returns the orders API. Every request that is not one of its
// endpoints gets a 404, including paths that are not in canonical form, so a
// request the gateway should have refused shows up as a 404 in the log
// instead of being redirected or quietly served. A non-nil provider adds
// the demo identity provider's endpoints under /demo-idp/.
func newAPI(store *orderStore, eventInterval time.Duration, provider *idp) http.Handler {
	a := &api{store: store, eventInterval: eventInterval}
	mux := http.NewServeMux()
	if provider != nil {
		provider.register(mux)
	}
	mux.HandleFunc("GET /orders", a.listOrders)
	mux.HandleFunc("POST /orders", a.createOrder)
	mux.HandleFunc("GET /orders/{id}", a.getOrder)
	mux.HandleFunc("GET /orders/{id}/events", a.orderEvents)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("/", notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ServeMux would answer an unclean path with a redirect to its
		// cleaned form; a demo upstream should show such a request as
		// what it is.
		if p := r.URL.Path; p == "" || path.Clean(p) != p {
			notFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// The gateway sends the verified caller in these request headers (its
// principal_headers defaults) and removes any copy a client sent, so behind
// the gateway they can be trusted; sent straight to this port they are
// client input. The API only echoes them. apiKeyHeader is the header the
// demo's API key comes in: the gateway removes it before the upstream, and
// the access log shows that it never arrives.
const (
	subjectHeader  = "X-Bulwark-Subject"
	consumerHeader = "X-Bulwark-Consumer"
	apiKeyHeader   = "X-API-Key"
)

// api holds the handlers of the orders API.
type api struct {
	store         *orderStore
	eventInterval time.Duration
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "not found")
}

// errorBody is the upstream's own error format (deliberately not the
// gateway's problem+json, so the two are easy to tell apart in the demo).
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
