package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestUpstream(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{name: "bench", method: "GET", path: benchPath, wantStatus: 200, wantBody: benchBody},
		{name: "post", method: "POST", path: benchPath, body: string(benchOrder), wantStatus: 200, wantBody: benchPostAnswer},
		// Whatever the body: validating it is the proxy's job.
		{name: "post, any body", method: "POST", path: benchPath, body: "not json", wantStatus: 200, wantBody: benchPostAnswer},
		{name: "post, no body", method: "POST", path: benchPath, wantStatus: 200, wantBody: benchPostAnswer},
		{name: "user", method: "GET", path: benchUserPath, wantStatus: 200, wantBody: benchUserBody},
		{name: "other path", method: "GET", path: "/other", wantStatus: 404, wantBody: "404 page not found\n"},
		{name: "other method", method: "PUT", path: benchPath, wantStatus: 404, wantBody: "404 page not found\n"},
		{name: "post to the user", method: "POST", path: benchUserPath, wantStatus: 404, wantBody: "404 page not found\n"},
	}
	h := newUpstream()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, body))
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

func TestUpstreamAnswersCarryTheirLength(t *testing.T) {
	tests := []struct {
		name, method, path string
		body               io.Reader
		wantMin, wantMax   int // bytes
	}{
		{name: "post", method: "POST", path: benchPath, body: strings.NewReader(string(benchOrder)), wantMin: 20, wantMax: 120},
		// The filtered route's document: big enough that filtering it is
		// real work, the size of a typical user resource.
		{name: "user", method: "GET", path: benchUserPath, wantMin: 2 << 10, wantMax: 4 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			newUpstream().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, tt.body))
			resp := rec.Result()
			b, _ := io.ReadAll(resp.Body)
			if n := len(b); n < tt.wantMin || n > tt.wantMax {
				t.Errorf("body length = %d, want %d to %d bytes", n, tt.wantMin, tt.wantMax)
			}
			if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(len(b)); got != want {
				t.Errorf("Content-Length = %q, want %q", got, want)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if !json.Valid(b) {
				t.Errorf("body = %q, want JSON", b)
			}
		})
	}
}

// eofReader records whether it was read to the end.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

func TestUpstreamReadsThePostBody(t *testing.T) {
	// An upstream that answered before reading the body would make the
	// server close the connection, and every POST a new connection.
	body := &eofReader{r: strings.NewReader(strings.Repeat(string(benchOrder), 64))}
	req := httptest.NewRequest("POST", benchPath, body)
	newUpstream().ServeHTTP(httptest.NewRecorder(), req)
	if !body.eof {
		t.Errorf("POST %s: body not read to the end, want it read and discarded", benchPath)
	}
}

func TestBenchDocuments(t *testing.T) {
	// The order wrk POSTs: about 1 KB, compact, eight items.
	if n := len(benchOrder); n < 900 || n > 1200 {
		t.Errorf("len(benchOrder) = %d, want about 1 KB", n)
	}
	var order struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(benchOrder, &order); err != nil {
		t.Fatalf("benchOrder: %v", err)
	}
	if len(order.Items) != 8 {
		t.Errorf("benchOrder has %d items, want 8", len(order.Items))
	}
	if strings.ContainsAny(string(benchOrder), "\n\t") {
		t.Errorf("benchOrder = %q, want it compact", benchOrder)
	}
	var user struct {
		Orders []json.RawMessage `json:"orders"`
	}
	if err := json.Unmarshal([]byte(benchUserBody), &user); err != nil {
		t.Fatalf("benchUserBody: %v", err)
	}
	if len(user.Orders) < 4 {
		t.Errorf("benchUserBody has %d orders, want a list worth filtering", len(user.Orders))
	}
}
