package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// startAPI serves a fresh orders API (events without pauses) until the test
// ends.
func startAPI(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newAPI(newOrderStore(), 0, nil))
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request with an optional JSON body and returns the status and
// the body.
func do(t testing.TB, srv *httptest.Server, method, target, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, srv, req)
}

func send(t testing.TB, srv *httptest.Server, req *http.Request) (int, string) {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestAPIRoutes(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string
	}{
		{name: "list", method: "GET", target: "/orders", wantStatus: 200, wantBody: `"item":"widget"`},
		{name: "get one", method: "GET", target: "/orders/2", wantStatus: 200, wantBody: `"customer":"bob"`},
		{name: "unknown order", method: "GET", target: "/orders/999", wantStatus: 404, wantBody: `"error":"order not found"`},
		{name: "health", method: "GET", target: "/healthz", wantStatus: 200, wantBody: `"status":"ok"`},
		{name: "events of unknown order", method: "GET", target: "/orders/999/events", wantStatus: 404, wantBody: `order not found`},
		{name: "unknown path", method: "GET", target: "/admin", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "trailing slash", method: "GET", target: "/orders/", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "unknown method on an order", method: "DELETE", target: "/orders/1", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "unknown method on the list", method: "PUT", target: "/orders", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "dot segments are not cleaned", method: "GET", target: "/orders/1/../2", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "double slash is not cleaned", method: "GET", target: "//orders", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "encoded slash in an id", method: "GET", target: "/orders/1%2F2", wantStatus: 404, wantBody: `order not found`},
	}
	srv := startAPI(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The client sends the path as written: it cleans nothing.
			status, body := do(t, srv, tt.method, tt.target, "")
			if status != tt.wantStatus {
				t.Errorf("%s %s status = %d, want %d", tt.method, tt.target, status, tt.wantStatus)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s %s body = %q, want it to contain %q", tt.method, tt.target, body, tt.wantBody)
			}
		})
	}
}

func TestAPIAnswersJSON(t *testing.T) {
	srv := startAPI(t)
	resp, err := srv.Client().Get(srv.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var body struct {
		Orders []order `json:"orders"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode list: %v", err)
	}
	var ids []string
	for _, o := range body.Orders {
		ids = append(ids, o.ID)
	}
	if got, want := strings.Join(ids, ","), "1,2,3"; got != want {
		t.Errorf("listed ids = %v, want %v", got, want)
	}
}
