package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestRedirectHandler(t *testing.T) {
	pw := problem.New(zap.NewNop(), prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"}))
	tests := []struct {
		name, port, host, target string
		wantStatus               int
		wantLocation             string
	}{
		{name: "default port", port: "", host: "api.example.com", target: "/orders?x=1",
			wantStatus: 308, wantLocation: "https://api.example.com/orders?x=1"},
		{name: "other port, client port dropped", port: "8443", host: "api.example.com:8080", target: "/a",
			wantStatus: 308, wantLocation: "https://api.example.com:8443/a"},
		{name: "ipv6 literal", port: "8443", host: "[::1]:8080", target: "/a",
			wantStatus: 308, wantLocation: "https://[::1]:8443/a"},
		{name: "host with a path trick", port: "", host: "evil.example/x", target: "/a", wantStatus: 400},
		{name: "host with userinfo", port: "", host: "a@evil.example", target: "/a", wantStatus: 400},
		{name: "empty host", port: "", host: "", target: "/a", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.target, nil)
			r.Host = tt.host
			w := httptest.NewRecorder()
			redirectHandler(tt.port, pw).ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
		})
	}
}

func TestHTTPSPort(t *testing.T) {
	for addr, want := range map[string]string{"127.0.0.1:443": "", "[::]:8443": "8443", "0.0.0.0:8080": "8080", "bad": ""} {
		if got := httpsPort(addr); got != want {
			t.Errorf("httpsPort(%q) = %q, want %q", addr, got, want)
		}
	}
}
