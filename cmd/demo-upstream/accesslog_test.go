package main

import (
	"bytes"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func TestAccessLogOneLinePerRequest(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		header  http.Header
		handler http.HandlerFunc
		want    string
	}{
		{
			name: "explicit status", method: "GET", target: "/orders/7",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) },
			want:    `^GET /orders/7 404 \S+ subject=- consumer=- api_key=absent\n$`,
		},
		{
			name: "implicit 200 on write", method: "POST", target: "/orders",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) },
			want:    `^POST /orders 200 \S+ subject=- consumer=- api_key=absent\n$`,
		},
		{
			name: "nothing written", method: "GET", target: "/healthz",
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    `^GET /healthz 200 \S+ subject=- consumer=- api_key=absent\n$`,
		},
		{
			name: "query values are not logged", method: "GET", target: "/orders?token=secret",
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    `^GET /orders 200 \S+ subject=- consumer=- api_key=absent\n$`,
		},
		{
			name: "dot segments are logged as received", method: "GET", target: "/orders/1/../../admin",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) },
			want:    `^GET /orders/1/\.\./\.\./admin 404 \S+ subject=- consumer=- api_key=absent\n$`,
		},
		{
			name: "principal from the gateway", method: "GET", target: "/orders/1",
			header:  http.Header{"X-Bulwark-Subject": {"alice"}, "X-Bulwark-Consumer": {"demo-cli"}},
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    `^GET /orders/1 200 \S+ subject="alice" consumer="demo-cli" api_key=absent\n$`,
		},
		{
			name: "an API key that arrives is flagged, never logged", method: "GET", target: "/orders",
			header:  http.Header{"X-Api-Key": {"demo-key-acme-0123456789abcdef"}},
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    `^GET /orders 200 \S+ subject=- consumer=- api_key=PRESENT\n$`,
		},
		{
			name: "header values cannot forge a line", method: "GET", target: "/orders",
			header:  http.Header{"X-Bulwark-Subject": {"a\nGET /admin 200"}},
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    `^GET /orders 200 \S+ subject="a\\nGET /admin 200" consumer=- api_key=absent\n$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := accessLog(log.New(&buf, "", 0), tt.handler)
			req := httptest.NewRequest(tt.method, tt.target, nil)
			maps.Copy(req.Header, tt.header)
			h.ServeHTTP(httptest.NewRecorder(), req)
			if !regexp.MustCompile(tt.want).MatchString(buf.String()) {
				t.Errorf("log = %q, want a match for %q", buf.String(), tt.want)
			}
		})
	}
}

func TestStatusRecorderKeepsFirstStatus(t *testing.T) {
	rec := &statusRecorder{ResponseWriter: httptest.NewRecorder()}
	rec.WriteHeader(http.StatusCreated)
	rec.WriteHeader(http.StatusInternalServerError) // superfluous, ignored by net/http too
	if rec.status != http.StatusCreated {
		t.Errorf("status = %d, want %d", rec.status, http.StatusCreated)
	}
}
