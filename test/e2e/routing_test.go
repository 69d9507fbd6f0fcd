package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestRoutingDenyByDefault(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr,
		route("get-order", "GET", "/orders/{id}"),
		route("put-order", "PUT", "/orders/{id}"),
		route("list", "GET", "/orders"),
	), nil)

	tests := []struct {
		name, method, path string
		status             int
		slug               string
		allow              string
	}{
		{name: "no route", method: "GET", path: "/admin", status: 404, slug: "not-found"},
		{name: "no route below a route", method: "GET", path: "/orders/1/items", status: 404, slug: "not-found"},
		{name: "trailing slash is another path", method: "GET", path: "/orders/", status: 404, slug: "not-found"},
		{name: "wrong method", method: "DELETE", path: "/orders/7", status: 405, slug: "method-not-allowed", allow: "GET, PUT"},
		{name: "options without cors", method: "OPTIONS", path: "/orders", status: 405, slug: "method-not-allowed", allow: "GET"},
		{name: "unknown method", method: "BREW", path: "/orders", status: 405, slug: "method-not-allowed", allow: "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			req, _ := http.NewRequest(tt.method, g.URL(tt.path), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			checkProblem(t, resp, tt.status, tt.slug)
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if got := up.hits.Load() - before; got != 0 {
				t.Errorf("upstream hits = %d, want 0", got)
			}
		})
	}

	resp, err := http.Get(g.URL("/orders/42?x=1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"ok":true}` {
		t.Fatalf("GET /orders/42 = %d %s, want 200 from the upstream", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	last, _ := up.lastRequest()
	if last.URL.Path != "/orders/42" || last.URL.RawQuery != "x=1" {
		t.Errorf("upstream got %s?%s, want /orders/42?x=1", last.URL.Path, last.URL.RawQuery)
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || last.Header.Get("X-Request-Id") != id {
		t.Errorf("upstream X-Request-Id = %q, response X-Request-Id = %q; want equal and non-empty",
			last.Header.Get("X-Request-Id"), id)
	}

	// Metrics name routes, never raw paths; unmatched requests share one label.
	if v := g.metric(t, `bulwark_requests_total{code="200",method="GET",route="get-order"}`); v != 1 {
		t.Errorf("requests_total for get-order = %v, want 1", v)
	}
	if v := g.metric(t, `bulwark_requests_total{code="404",method="GET",route="_unmatched"}`); v != 3 {
		t.Errorf("requests_total for unmatched 404s = %v, want 3", v)
	}
	if v := g.metric(t, `bulwark_denials_total{mode="enforce",reason="method_not_allowed",route="_unmatched",stage="route"}`); v != 3 {
		t.Errorf("denials_total for 405 = %v, want 3", v)
	}
	if v := g.metric(t, `bulwark_requests_total{code="405",method="OTHER",route="_unmatched"}`); v != 1 {
		t.Errorf("requests_total for the unknown method = %v, want 1 under method OTHER", v)
	}
	scrape, _ := http.Get("http://" + g.admin + "/metrics")
	all, _ := io.ReadAll(scrape.Body)
	scrape.Body.Close()
	for _, leak := range []string{"/orders", "/admin", "BREW"} {
		if strings.Contains(string(all), leak) {
			t.Errorf("metrics contain %q: labels must never carry raw paths or methods", leak)
		}
	}
	for _, want := range []string{"bulwark_build_info{", "go_goroutines", "process_resident_memory_bytes",
		"bulwark_request_duration_seconds_bucket", "bulwark_upstream_request_duration_seconds_bucket",
		"bulwark_config_reloads_total", "bulwark_config_last_reload_success_timestamp_seconds"} {
		if !strings.Contains(string(all), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestHostRoutes(t *testing.T) {
	a := startUpstream(t, nil)
	b := startUpstream(t, nil)
	cfg := `server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
upstreams:
  a: { url: "http://` + a.addr + `" }
  b: { url: "http://` + b.addr + `" }
routes:
  - { name: any-host, method: GET, path: /x, upstream: a, auth: none }
  - { name: api-host, method: GET, path: /x, host: api.example.com, upstream: b, auth: none }
`
	g := startGateway(t, cfg, nil)
	for _, tc := range []struct {
		host string
		want *upstream
	}{
		{host: "api.example.com", want: b},
		{host: "API.example.com:443", want: b},
		{host: "other.example.com", want: a},
	} {
		req, _ := http.NewRequest("GET", g.URL("/x"), nil)
		req.Host = tc.host
		beforeA, beforeB := a.hits.Load(), b.hits.Load()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		gotA, gotB := a.hits.Load()-beforeA, b.hits.Load()-beforeB
		if tc.want == b && (gotB != 1 || gotA != 0) || tc.want == a && (gotA != 1 || gotB != 0) {
			t.Errorf("Host %q: hits a=%d b=%d, want the request on %s", tc.host, gotA, gotB,
				map[bool]string{true: "b", false: "a"}[tc.want == b])
		}
	}
}
