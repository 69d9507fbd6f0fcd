package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

const testBodyLimit = 16 << 10

// startBodyHarness builds a harness whose route has the body limit, with
// the harness's own problem writer.
func startBodyHarness(tb testing.TB, mode config.Mode, terminal http.Handler) *harness {
	tb.Helper()
	var h *harness
	limit := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			BodyLimit(testBodyLimit, h.pw)(next).ServeHTTP(w, r)
		})
	}
	h = startHarness(tb, harnessOptions{
		cfg:      testServerConfig(),
		route:    []func(http.Handler) http.Handler{withRoute(&exchange.Route{Name: "orders", Mode: mode}), limit},
		terminal: terminal,
	})
	return h
}

// chunkedRequest is a hand-written chunked POST of n bytes in 1 KiB chunks.
func chunkedRequest(n int) string {
	var b strings.Builder
	b.WriteString("POST /orders HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("x", 1<<10)
	for sent := 0; sent < n; sent += len(chunk) {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func TestBodyLimitDeclaredLength(t *testing.T) {
	h := startBodyHarness(t, config.ModeEnforce, nil)
	resp, body := h.do(t, h.newRequest(t, http.MethodPost, "/orders", strings.NewReader(strings.Repeat("x", testBodyLimit+1))))
	checkProblem(t, resp, body, http.StatusRequestEntityTooLarge, "body-too-large")
	if n := h.up.hits.Load(); n != 0 {
		t.Errorf("upstream hits = %d, want 0", n)
	}
	if got := counterValue(t, h.denials.WithLabelValues("orders", "edge", "body_too_large", "enforce")); got != 1 {
		t.Errorf("enforced body_too_large denials = %v, want 1", got)
	}
}

func TestBodyLimitWithinLimit(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{name: "declared length at the limit", raw: "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 16384\r\n\r\n" + strings.Repeat("x", testBodyLimit), want: testBodyLimit},
		{name: "chunked at the limit", raw: chunkedRequest(testBodyLimit), want: testBodyLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startBodyHarness(t, config.ModeEnforce, nil)
			resp, _ := dialRaw(t, hostPort(h.gw)).roundTrip(t, tt.raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			if ups := h.up.requests(); len(ups) != 1 || len(ups[0].Body) != tt.want || ups[0].BodyErr != nil {
				t.Errorf("upstream did not get the whole %d-byte body", tt.want)
			}
		})
	}
}

// TestBodyLimitStreaming sends a chunked body eight times the limit: it is
// cut while streaming, answered 413 by the proxy's ErrorHandler, the
// connection closed, and the upstream never gets more than the limit.
func TestBodyLimitStreaming(t *testing.T) {
	h := startBodyHarness(t, config.ModeEnforce, nil)
	c := dialRaw(t, hostPort(h.gw))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.WriteString(c, chunkedRequest(8*testBodyLimit)) // the server may stop reading
	}()
	t.Cleanup(wg.Wait)
	resp, body := c.readResponse(t)
	checkProblem(t, resp, body, http.StatusRequestEntityTooLarge, "body-too-large")
	if !resp.Close || !c.closedByServer(t) {
		t.Errorf("connection kept after a cut body, want closed")
	}
	for _, up := range h.up.requests() {
		if up.BodyErr == nil || len(up.Body) > testBodyLimit {
			t.Errorf("upstream read %d bytes (error %v), want an incomplete body of at most %d", len(up.Body), up.BodyErr, testBodyLimit)
		}
	}
	if got := counterValue(t, h.denials.WithLabelValues("orders", "edge", "body_too_large", "enforce")); got != 1 {
		t.Errorf("enforced body_too_large denials = %v, want 1", got)
	}
}

// TestBodyLimitReport checks report mode: the body goes through whole, and
// the crossing is recorded once as a would-deny.
func TestBodyLimitReport(t *testing.T) {
	tests := []struct {
		name string
		raw  string
	}{
		{name: "declared length over the limit", raw: "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 32768\r\n\r\n" + strings.Repeat("x", 2*testBodyLimit)},
		{name: "chunked over the limit", raw: chunkedRequest(2 * testBodyLimit)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var read int
			var readErr error
			// The route reads the body itself, so the would-deny is
			// recorded on the request's goroutine before the recorder
			// looks.
			h := startBodyHarness(t, config.ModeReport, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				read, readErr = len(b), err
			}))
			resp, _ := dialRaw(t, hostPort(h.gw)).roundTrip(t, tt.raw)
			if resp.StatusCode != http.StatusOK || read != 2*testBodyLimit || readErr != nil {
				t.Errorf("status %d, route read %d bytes (error %v), want 200 and %d bytes", resp.StatusCode, read, readErr, 2*testBodyLimit)
			}
			wd := h.rec.lastSeen().WouldDeny
			if len(wd) != 1 || wd[0].Reason != "body_too_large" || wd[0].Mode != config.ModeReport {
				t.Errorf("would-deny = %+v, want one body_too_large in report mode", wd)
			}
			if got := counterValue(t, h.denials.WithLabelValues("orders", "edge", "body_too_large", "report")); got != 1 {
				t.Errorf("reported body_too_large denials = %v, want 1", got)
			}
		})
	}
}
