package main

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// benchPath is the path every target is measured on.
const benchPath = "/bench"

// benchBody is the upstream's fixed answer to GET /bench: about 100 bytes of
// JSON, a typical small API response.
const benchBody = `{"id":"ord_0001","status":"shipped","customer":"acme","items":3,"total":"42.50","currency":"EUR"}` + "\n"

// newUpstream returns the fixed upstream: GET /bench answers benchBody,
// anything else 404. It does as little as possible, so that the figures
// measure the proxies and not the upstream.
func newUpstream() http.Handler {
	body := []byte(benchBody)
	length := []string{strconv.Itoa(len(body))}
	contentType := []string{"application/json"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != benchPath || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h["Content-Type"] = contentType
		h["Content-Length"] = length
		_, _ = w.Write(body)
	})
}

// serveUpstream is the upstream role: it serves newUpstream on listen until
// ctx is cancelled.
func serveUpstream(ctx context.Context, listen string) error {
	return serveRole(ctx, listen, newUpstream())
}

// serveRole serves h on addr until ctx is cancelled.
func serveRole(ctx context.Context, addr string, h http.Handler) error {
	return serveRoleWith(ctx, &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second})
}

// serveRoleWith serves srv until ctx is cancelled.
func serveRoleWith(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Close()
	}
}
