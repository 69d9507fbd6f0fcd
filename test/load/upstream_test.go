package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestUpstream(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "bench", method: "GET", path: benchPath, wantStatus: 200, wantBody: benchBody},
		{name: "other path", method: "GET", path: "/other", wantStatus: 404, wantBody: "404 page not found\n"},
		{name: "other method", method: "POST", path: benchPath, wantStatus: 404, wantBody: "404 page not found\n"},
	}
	h := newUpstream()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("%s %s status = %d, want %d", tt.method, tt.path, rec.Code, tt.wantStatus)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("%s %s body = %q, want %q", tt.method, tt.path, got, tt.wantBody)
			}
		})
	}
}

func TestUpstreamBodyIsSmall(t *testing.T) {
	rec := httptest.NewRecorder()
	newUpstream().ServeHTTP(rec, httptest.NewRequest("GET", benchPath, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	if n := len(b); n < 80 || n > 120 {
		t.Errorf("body length = %d, want about 100 bytes", n)
	}
	if got, want := resp.Header.Get("Content-Length"), "98"; got != want {
		t.Errorf("Content-Length = %q, want %q", got, want)
	}
	if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want %d", resp.StatusCode, http.StatusOK)
	}
}
