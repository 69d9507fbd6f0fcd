package edge

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

func TestNewCORSRefusesBadConfig(t *testing.T) {
	pw, _ := newProblems(t)
	tests := []struct {
		name string
		cfg  config.CORS
	}{
		{name: "no origins", cfg: config.CORS{}},
		{name: "null origin", cfg: config.CORS{Origins: []string{"null"}}},
		{name: "origin with a path", cfg: config.CORS{Origins: []string{"https://app.example.com/"}}},
		{name: "origin without scheme", cfg: config.CORS{Origins: []string{"app.example.com"}}},
		{name: "origin with userinfo", cfg: config.CORS{Origins: []string{"https://u@app.example.com"}}},
		{name: "wildcard with credentials", cfg: config.CORS{Origins: []string{"*"}, Credentials: true}},
		{name: "wildcard headers with credentials", cfg: config.CORS{Origins: []string{"https://a.example"}, Headers: []string{"*"}, Credentials: true}},
		{name: "bad method", cfg: config.CORS{Origins: []string{"https://a.example"}, Methods: []string{"GET POST"}}},
		{name: "bad header", cfg: config.CORS{Origins: []string{"https://a.example"}, Headers: []string{"X Bad"}}},
		{name: "bad expose header", cfg: config.CORS{Origins: []string{"https://a.example"}, ExposeHeaders: []string{"X:Bad"}}},
		{name: "negative max age", cfg: config.CORS{Origins: []string{"https://a.example"}, MaxAge: config.Duration(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewCORS(tt.cfg, http.MethodGet, pw); err == nil {
				t.Errorf("NewCORS(%+v) error = nil, want an error", tt.cfg)
			}
		})
	}
}

// appPolicy is the policy of the tests: one origin, credentials, a custom
// header.
func appPolicy() config.CORS {
	return config.CORS{
		Origins:       []string{"https://App.Example.com"},
		Methods:       []string{http.MethodPut, http.MethodPatch},
		Headers:       []string{"Content-Type", "X-Trace"},
		ExposeHeaders: []string{"X-Total"},
		Credentials:   true,
		MaxAge:        config.Duration(10 * time.Minute),
	}
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name    string
		mode    config.Mode
		header  http.Header
		status  int
		slug    string            // problem slug when refused
		want    map[string]string // response headers, "" for absent
		noGrant bool
	}{
		{name: "allowed", header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"PUT"},
			"Access-Control-Request-Headers": {"content-type, X-TRACE"}}, status: http.StatusNoContent,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Methods":     "PUT, PATCH",
				"Access-Control-Allow-Headers":     "Content-Type, X-Trace",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age":           "600",
				"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			}},
		{name: "method of the policy without a route", header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"PATCH"}},
			status: http.StatusForbidden, slug: "cors-refused"},
		{name: "origin not allowed", header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"PUT"}},
			status: http.StatusForbidden, slug: "cors-refused"},
		{name: "origin differing in port", header: http.Header{"Origin": {"https://app.example.com:8443"}, "Access-Control-Request-Method": {"PUT"}},
			status: http.StatusForbidden, slug: "cors-refused"},
		{name: "method without a route", header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"DELETE"}},
			status: http.StatusForbidden, slug: "cors-refused"},
		{name: "header not allowed", header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"PUT"},
			"Access-Control-Request-Headers": {"x-trace, authorization"}}, status: http.StatusForbidden, slug: "cors-refused"},
		{name: "two origins", header: http.Header{"Origin": {"https://app.example.com", "https://evil.example"}, "Access-Control-Request-Method": {"PUT"}},
			status: http.StatusForbidden, slug: "cors-refused"},
		{name: "not a preflight", header: http.Header{"Origin": {"https://app.example.com"}}, status: http.StatusMethodNotAllowed,
			slug: "method-not-allowed", want: map[string]string{"Allow": "GET, OPTIONS, PUT"}},
		{name: "refused in report mode grants nothing", mode: config.ModeReport,
			header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"PUT"}},
			status: http.StatusNoContent, noGrant: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h *harness
			h = startHarness(t, harnessOptions{
				cfg:   testServerConfig(),
				route: []func(http.Handler) http.Handler{withRoute(&exchange.Route{Name: "orders", Mode: tt.mode})},
				terminal: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					put, err := NewCORS(appPolicy(), http.MethodPut, h.pw)
					if err != nil {
						t.Errorf("NewCORS: %v", err)
						return
					}
					Preflight(map[string]*CORS{http.MethodPut: put}, []string{http.MethodPut, http.MethodGet, http.MethodOptions}, h.pw).ServeHTTP(w, r)
				}),
			})
			req := h.newRequest(t, http.MethodOptions, "/orders/1", nil)
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			resp, body := h.do(t, req)
			if tt.slug != "" {
				checkProblem(t, resp, body, tt.status, tt.slug)
			} else if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			for k, v := range tt.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.slug != "" || tt.noGrant {
				for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Credentials"} {
					if v, ok := resp.Header[k]; ok {
						t.Errorf("refused preflight has %s: %q", k, v)
					}
				}
			}
			if n := h.up.hits.Load(); n != 0 {
				t.Errorf("upstream hits = %d, want 0 (the gateway answers preflights)", n)
			}
		})
	}
}

func TestCORSActualRequests(t *testing.T) {
	tests := []struct {
		name     string
		policy   config.CORS
		mode     config.Mode
		origin   []string
		status   int
		reached  bool
		wantACAO string
	}{
		{name: "no origin", policy: appPolicy(), status: 200, reached: true},
		{name: "same origin", policy: appPolicy(), origin: []string{"SAME"}, status: 200, reached: true},
		{name: "allowed origin", policy: appPolicy(), origin: []string{"https://app.example.com"}, status: 200, reached: true,
			wantACAO: "https://app.example.com"},
		{name: "wildcard without credentials", policy: config.CORS{Origins: []string{"*"}}, origin: []string{"https://any.example"},
			status: 200, reached: true, wantACAO: "*"},
		{name: "origin not allowed", policy: appPolicy(), origin: []string{"https://evil.example"}, status: 403},
		{name: "null origin", policy: appPolicy(), origin: []string{"null"}, status: 403},
		{name: "https origin on plain http is not same origin", policy: appPolicy(), origin: []string{"http://evil.example"}, status: 403},
		{name: "not allowed, report mode", policy: appPolicy(), mode: config.ModeReport, origin: []string{"https://evil.example"},
			status: 200, reached: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h *harness
			cors := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					c, err := NewCORS(tt.policy, http.MethodPut, h.pw)
					if err != nil {
						t.Errorf("NewCORS: %v", err)
						return
					}
					c.Middleware(next).ServeHTTP(w, r)
				})
			}
			h = startHarness(t, harnessOptions{
				cfg:   testServerConfig(),
				route: []func(http.Handler) http.Handler{withRoute(&exchange.Route{Name: "orders", Mode: tt.mode}), cors},
				// An upstream with a CORS policy of its own, more permissive
				// than the route's: only the route's may reach the client.
				upstream: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Access-Control-Allow-Origin", "*")
					w.Header().Set("Access-Control-Allow-Methods", "DELETE")
					w.Header().Set("Access-Control-Expose-Headers", "X-Internal")
					w.Header().Set("Vary", "Accept-Encoding")
				}),
			})
			req := h.newRequest(t, http.MethodPut, "/orders/1", nil)
			for _, o := range tt.origin {
				if o == "SAME" {
					o = h.gw.URL
				}
				req.Header.Add("Origin", o)
			}
			resp, body := h.do(t, req)
			if tt.status == http.StatusForbidden {
				checkProblem(t, resp, body, tt.status, "cors-refused")
			} else if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Values("Access-Control-Allow-Origin"); strings.Join(got, ",") != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin = %q, want exactly %q", got, tt.wantACAO)
			}
			if got := resp.Header.Get("Access-Control-Allow-Methods"); got != "" {
				t.Errorf("Access-Control-Allow-Methods = %q on an actual request, want none (the upstream's must not pass)", got)
			}
			if tt.wantACAO != "" {
				creds, expose := resp.Header.Get("Access-Control-Allow-Credentials"), resp.Header.Get("Access-Control-Expose-Headers")
				wantCreds, wantExpose := "", ""
				if tt.policy.Credentials {
					wantCreds, wantExpose = "true", "X-Total"
				}
				if creds != wantCreds || expose != wantExpose {
					t.Errorf("credentials, expose = %q, %q, want %q, %q", creds, expose, wantCreds, wantExpose)
				}
			}
			if got := resp.Header.Values("Vary"); !slices.Contains(got, "Origin") {
				t.Errorf("Vary = %q, want it to include Origin", got)
			}
			if got := h.up.hits.Load() == 1; got != tt.reached {
				t.Errorf("upstream reached = %v, want %v", got, tt.reached)
			}
		})
	}
}
