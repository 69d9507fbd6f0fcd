package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// benchPath is the path every target is measured on, but the user
// document's (benchUserPath): GET for most targets, POST for the POST
// targets.
const benchPath = "/bench"

// benchUserPath is the path of the user document, the response the
// filtered route filters.
const benchUserPath = "/bench-user"

// benchBody is the upstream's fixed answer to GET /bench: about 100 bytes of
// JSON, a typical small API response.
const benchBody = `{"id":"ord_0001","status":"shipped","customer":"acme","items":3,"total":"42.50","currency":"EUR"}` + "\n"

// benchPostAnswer is the upstream's fixed answer to POST /bench, whatever
// the body: a small JSON acknowledgement, the 200 of the bench spec's
// createOrder (testdata/bench-openapi.yaml).
const benchPostAnswer = `{"id":"ord_0002","status":"accepted"}` + "\n"

// benchOrder is the body the POST targets send: a realistic order of about
// 1 KB (a customer with an address, eight items, a note), valid against
// the bench spec's createOrder. It is testdata/bench-order.json compacted
// once, as a client would send it.
var benchOrder = compactJSON(benchOrderFile)

// benchUserBody is the upstream's fixed answer to GET /bench-user: a user
// document of about 2.5 KB (profile fields, an address, preferences, six
// orders with nested items, shipping and payment), the response the
// filtered route filters. It is testdata/bench-user.json compacted once.
var benchUserBody = string(compactJSON(benchUserFile))

//go:embed testdata/bench-order.json
var benchOrderFile []byte

//go:embed testdata/bench-user.json
var benchUserFile []byte

// compactJSON returns b without insignificant white space; it panics on
// invalid JSON (the embedded files are checked by the tests).
func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		panic("load: embedded JSON: " + err.Error())
	}
	return out.Bytes()
}

// newUpstream returns the fixed upstream: GET /bench answers benchBody,
// POST /bench reads and discards the body and answers benchPostAnswer,
// GET /bench-user answers benchUserBody, anything else 404. It does as
// little as possible, so that the figures measure the proxies and not the
// upstream.
func newUpstream() http.Handler {
	get := fixedAnswer(benchBody)
	post := fixedAnswer(benchPostAnswer)
	user := fixedAnswer(benchUserBody)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == benchPath && r.Method == http.MethodGet:
			get.write(w)
		case r.URL.Path == benchPath && r.Method == http.MethodPost:
			// Read to the end, as an application would, so that the
			// connection can be reused; io.Discard reads with a pooled
			// buffer.
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
				return
			}
			post.write(w)
		case r.URL.Path == benchUserPath && r.Method == http.MethodGet:
			user.write(w)
		default:
			http.NotFound(w, r)
		}
	})
}

// answer is one of the upstream's fixed JSON answers, its headers made
// once.
type answer struct {
	raw                 []byte
	length, contentType []string
}

func fixedAnswer(body string) answer {
	return answer{
		raw:         []byte(body),
		length:      []string{strconv.Itoa(len(body))},
		contentType: []string{"application/json"},
	}
}

// write sends a with status 200.
func (a answer) write(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = a.contentType
	h["Content-Length"] = a.length
	_, _ = w.Write(a.raw)
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
