package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// problemBody is the RFC 9457 body the gateway writes.
type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	RequestID string `json:"request_id"`
}

// checkProblem asserts that resp is a problem+json answer with status and
// type (TypePrefix + slug) whose request_id matches X-Request-Id, and
// returns the body.
func checkProblem(t testing.TB, resp *http.Response, status int, slug string) problemBody {
	t.Helper()
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var p problemBody
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, raw)
	}
	if want := "urn:bulwark:problem:" + slug; p.Type != want {
		t.Errorf("type = %q, want %q", p.Type, want)
	}
	if p.Status != status {
		t.Errorf("body status = %d, want %d", p.Status, status)
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || p.RequestID != id {
		t.Errorf("request_id = %q, X-Request-Id = %q; want equal and non-empty", p.RequestID, id)
	}
	if !strings.HasSuffix(p.Instance, p.RequestID) {
		t.Errorf("instance = %q, want it to name request %q", p.Instance, p.RequestID)
	}
	return p
}
