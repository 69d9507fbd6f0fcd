package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// echoWebSocket is an upstream that accepts an upgrade, then echoes one
// line. It speaks just enough of RFC 6455's handshake for the proxy.
func echoWebSocket(tb testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			tb.Errorf("upstream hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	})
}

const wsHandshake = "GET /chat HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func TestUpgrade(t *testing.T) {
	tests := []struct {
		name    string
		allowed bool
		mode    config.Mode
		raw     string
		status  int
		slug    string // problem slug when refused
	}{
		{name: "websocket on a websocket route", allowed: true, raw: wsHandshake, status: http.StatusSwitchingProtocols},
		{name: "websocket on another route", allowed: false, raw: wsHandshake, status: http.StatusBadRequest, slug: "upgrade-not-allowed"},
		{name: "websocket on another route, report mode", allowed: false, mode: config.ModeReport, raw: wsHandshake, status: http.StatusSwitchingProtocols},
		{name: "h2c on a websocket route", allowed: true, raw: strings.Replace(wsHandshake, "Upgrade: websocket", "Upgrade: h2c", 1),
			status: http.StatusBadRequest, slug: "upgrade-unsupported"},
		{name: "h2c in report mode still refused", allowed: false, mode: config.ModeReport, raw: strings.Replace(wsHandshake, "Upgrade: websocket", "Upgrade: h2c", 1),
			status: http.StatusBadRequest, slug: "upgrade-unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h *harness
			upgrade := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					Upgrade(tt.allowed, h.pw)(next).ServeHTTP(w, r)
				})
			}
			h = startHarness(t, harnessOptions{
				cfg:      testServerConfig(),
				upstream: echoWebSocket(t),
				route:    []func(http.Handler) http.Handler{withRoute(&exchange.Route{Name: "chat", Mode: tt.mode}), upgrade},
			})
			c := dialRaw(t, hostPort(h.gw))
			resp, body := c.roundTrip(t, tt.raw)
			if tt.slug != "" {
				checkProblem(t, resp, body, tt.status, tt.slug)
				if n := h.up.hits.Load(); n != 0 {
					t.Errorf("upstream hits = %d, want 0", n)
				}
				return
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if _, err := io.WriteString(c, "ping\n"); err != nil {
				t.Fatalf("write through the tunnel: %v", err)
			}
			if line, err := c.br.ReadString('\n'); err != nil || line != "echo: ping\n" {
				t.Errorf("tunnel answered %q, %v, want \"echo: ping\\n\"", line, err)
			}
		})
	}
}

// TestUpgradeWithoutEdge checks the route middleware on its own: an
// upgrade to anything but WebSocket is refused even where the edge did not
// run first.
func TestUpgradeWithoutEdge(t *testing.T) {
	pw, _ := newProblems(t)
	reached := 0
	srv := httptest.NewServer(Upgrade(true, pw)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ })))
	t.Cleanup(srv.Close)
	c := dialRaw(t, hostPort(srv))
	resp, _ := c.roundTrip(t, "GET /chat HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || reached != 0 {
		t.Errorf("status %d, handler reached %d times, want 400 and 0", resp.StatusCode, reached)
	}
}
