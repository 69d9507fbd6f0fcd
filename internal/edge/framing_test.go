package edge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestSmugglingCLTE sends a request with both Content-Length and
// Transfer-Encoding: chunked, followed by a second request hidden where a
// Content-Length reader would see body. The upstream must see exactly one
// request, framed by chunked, and the connection must close after the
// response so the hidden request is never read.
func TestSmugglingCLTE(t *testing.T) {
	h := startHarness(t, harnessOptions{cfg: testServerConfig()})
	c := dialRaw(t, hostPort(h.gw))
	resp, body := c.roundTrip(t, "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\nhello\r\n0\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp.StatusCode != http.StatusOK || string(body) != "upstream ok" {
		t.Fatalf("response = %d %q, want 200 \"upstream ok\"", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("response without Connection: close, want it")
	}
	if !c.closedByServer(t) {
		t.Errorf("connection still open after a Transfer-Encoding request, want closed")
	}
	ups := h.up.requests()
	if len(ups) != 1 {
		t.Fatalf("upstream requests = %d, want 1 (no smuggled request)", len(ups))
	}
	if ups[0].RequestURI != "/orders" || string(ups[0].Body) != "hello" {
		t.Errorf("upstream got %s %q, want /orders \"hello\"", ups[0].RequestURI, ups[0].Body)
	}
	if got := ups[0].Header.Values("Content-Length"); len(got) > 1 {
		t.Errorf("upstream got Content-Length %q, want at most one framing", got)
	}
	if te, cl := ups[0].Header.Get("Transfer-Encoding"), ups[0].Header.Get("Content-Length"); te != "" && cl != "" {
		t.Errorf("upstream got Transfer-Encoding %q and Content-Length %q, want one framing", te, cl)
	}
}

// TestFramingRefusedBeforeTheEdge covers what Go's server answers itself
// (the exempt answers of docs/errors.md): nothing may reach the upstream.
func TestFramingRefusedBeforeTheEdge(t *testing.T) {
	tests := []struct {
		name   string
		head   string
		status int
	}{
		{name: "chunked twice", head: "Transfer-Encoding: chunked, chunked\r\n", status: http.StatusNotImplemented},
		{name: "gzip then chunked", head: "Transfer-Encoding: gzip, chunked\r\n", status: http.StatusNotImplemented},
		{name: "two Transfer-Encoding lines", head: "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", status: http.StatusNotImplemented},
		{name: "identity coding", head: "Transfer-Encoding: identity\r\n", status: http.StatusNotImplemented},
		{name: "conflicting Content-Length", head: "Content-Length: 5\r\nContent-Length: 6\r\n", status: http.StatusBadRequest},
		{name: "Content-Length list", head: "Content-Length: 5, 6\r\n", status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t, harnessOptions{cfg: testServerConfig()})
			c := dialRaw(t, hostPort(h.gw))
			resp, _ := c.roundTrip(t, "POST /orders HTTP/1.1\r\nHost: gw\r\n"+tt.head+"\r\n5\r\nhello\r\n0\r\n\r\n")
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if n := h.up.hits.Load(); n != 0 {
				t.Errorf("upstream hits = %d, want 0", n)
			}
		})
	}
}

// TestChunkedClosesConnection checks that an ordinary chunked request is
// proxied with its body, and its connection closed after the response.
func TestChunkedClosesConnection(t *testing.T) {
	h := startHarness(t, harnessOptions{cfg: testServerConfig()})
	c := dialRaw(t, hostPort(h.gw))
	resp, _ := c.roundTrip(t, "POST /orders HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if !c.closedByServer(t) {
		t.Errorf("connection still open after a chunked request, want closed")
	}
	if ups := h.up.requests(); len(ups) != 1 || string(ups[0].Body) != "abcdef" {
		t.Errorf("upstream requests = %+v, want one with body \"abcdef\"", ups)
	}
}

// TestKeepAliveWithoutTransferEncoding checks that the edge does not close
// ordinary keep-alive connections.
func TestKeepAliveWithoutTransferEncoding(t *testing.T) {
	h := startHarness(t, harnessOptions{cfg: testServerConfig()})
	c := dialRaw(t, hostPort(h.gw))
	for i := range 2 {
		resp, _ := c.roundTrip(t, "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello")
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("request %d: status %d close %v, want 200 and a kept connection", i, resp.StatusCode, resp.Close)
		}
	}
	if n := h.up.hits.Load(); n != 2 {
		t.Errorf("upstream hits = %d, want 2", n)
	}
}

// TestFramingInProcess covers framings that Go's server never hands to a
// handler but an in-process caller could: the edge refuses them too.
func TestFramingInProcess(t *testing.T) {
	tests := []struct {
		name   string
		te     []string
		header http.Header
		reason string
	}{
		{name: "two codings", te: []string{"gzip", "chunked"}, reason: "unsupported_transfer_encoding"},
		{name: "unknown coding", te: []string{"identity"}, reason: "unsupported_transfer_encoding"},
		{name: "Content-Length kept with chunked", te: []string{"chunked"}, header: http.Header{"Content-Length": {"5"}},
			reason: "content_length_with_transfer_encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw, denials := newProblems(t)
			mw, err := New(testServerConfig(), Deps{Log: zap.NewNop(), Problems: pw})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			reached := 0
			hd := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ }))
			r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader("hello"))
			r.TransferEncoding = tt.te
			for k, vs := range tt.header {
				r.Header[k] = vs
			}
			w := httptest.NewRecorder()
			hd.ServeHTTP(w, r)
			if w.Code != http.StatusBadRequest || reached != 0 {
				t.Errorf("status %d, next reached %d times, want 400 and 0", w.Code, reached)
			}
			if got := w.Header().Get("Connection"); got != "close" {
				t.Errorf("Connection = %q, want close", got)
			}
			if !strings.Contains(w.Body.String(), `"urn:bulwark:problem:bad-framing"`) {
				t.Errorf("body = %s, want the bad-framing problem", w.Body)
			}
			if got := counterValue(t, denials.WithLabelValues("_unmatched", "edge", tt.reason, "enforce")); got != 1 {
				t.Errorf("denials{reason=%q} = %v, want 1", tt.reason, got)
			}
		})
	}
}
