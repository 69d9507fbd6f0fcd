package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// adminAnswer is what a test looks at in an admin listener's response.
type adminAnswer struct {
	status    int
	body      string
	problem   string // the problem type of a problem+json answer, else ""
	challenge string // WWW-Authenticate
	nosniff   string // X-Content-Type-Options
}

// adminGet sends GET path to the admin listener at addr, with auth as the
// Authorization header when it is not empty.
func adminGet(t testing.TB, addr, path, auth string) adminAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	a := adminAnswer{
		status:    resp.StatusCode,
		body:      string(body),
		challenge: resp.Header.Get("WWW-Authenticate"),
		nosniff:   resp.Header.Get("X-Content-Type-Options"),
	}
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		var p problemBody
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("%s: problem body is not JSON: %v: %s", path, err, body)
		}
		a.problem = p.Type
		// Admin refusals are problems like any other: they carry the
		// request id of the X-Request-Id header.
		if id := resp.Header.Get("X-Request-Id"); id == "" || p.RequestID != id {
			t.Errorf("%s: request_id = %q, X-Request-Id = %q; want equal and non-empty", path, p.RequestID, id)
		}
	}
	return a
}

// TestAdminLoopback: on loopback (the default) every admin endpoint answers
// without credentials, an unknown path is 404, and every answer carries
// nosniff.
func TestAdminLoopback(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr, route("x", "GET", "/x")), nil)

	tests := []struct {
		name, path string
		want       int
		wantBody   string // a substring of the body
	}{
		{name: "livez", path: "/livez", want: http.StatusOK, wantBody: "ok"},
		{name: "readyz", path: "/readyz", want: http.StatusOK, wantBody: "ready"},
		{name: "healthz", path: "/healthz", want: http.StatusOK, wantBody: "ok"},
		{name: "metrics", path: "/metrics", want: http.StatusOK, wantBody: "bulwark_build_info"},
		{name: "unknown path", path: "/debug/pprof/", want: http.StatusNotFound},
		{name: "public route is not served here", path: "/x", want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := adminGet(t, g.admin, tt.path, "")
			if got.status != tt.want {
				t.Errorf("GET %s status = %d, want %d", tt.path, got.status, tt.want)
			}
			if !strings.Contains(got.body, tt.wantBody) {
				t.Errorf("GET %s body = %q, want it to contain %q", tt.path, got.body, tt.wantBody)
			}
			if got.nosniff != "nosniff" {
				t.Errorf("GET %s X-Content-Type-Options = %q, want nosniff", tt.path, got.nosniff)
			}
		})
	}
	if up.hits.Load() != 0 {
		t.Errorf("upstream hits = %d, want 0 (the admin listener never proxies)", up.hits.Load())
	}
}

// adminProbe is one request to an exposed admin listener and its expected
// answer.
type adminProbe struct {
	path, auth string
	status     int
	problem    string // problem type, "" for a plain answer
	challenge  string // expected WWW-Authenticate, "" for none
}

// TestAdminBeyondLoopback binds the admin listener to 0.0.0.0 and checks
// that everything but /livez and /readyz needs an admin.allow match and,
// when set, the bearer token. It only ever connects to 127.0.0.1.
func TestAdminBeyondLoopback(t *testing.T) {
	up := startUpstream(t, nil)
	token := randomSecret(t)
	wrong := randomSecret(t)
	const challenge = `Bearer realm="bulwark-admin"`

	open := func(path string) adminProbe { return adminProbe{path: path, status: http.StatusOK} }
	forbidden := func(path, auth string) adminProbe {
		return adminProbe{path: path, auth: auth, status: http.StatusForbidden, problem: "urn:bulwark:problem:admin-forbidden"}
	}
	unauthorized := func(path, auth string) adminProbe {
		return adminProbe{path: path, auth: auth, status: http.StatusUnauthorized, problem: "urn:bulwark:problem:admin-unauthorized",
			challenge: challenge}
	}
	withToken := func(path string) adminProbe {
		return adminProbe{path: path, auth: "Bearer " + token, status: http.StatusOK}
	}

	tests := []struct {
		name   string
		admin  string // extra keys of the admin block, in flow style
		probes []adminProbe
	}{
		{
			name: "no allow list",
			probes: []adminProbe{
				open("/livez"), open("/readyz"),
				forbidden("/metrics", ""), forbidden("/healthz", ""), forbidden("/unknown", ""),
			},
		},
		{
			name:  "peer inside allow",
			admin: ", allow: [127.0.0.1/32]",
			probes: []adminProbe{
				open("/livez"), open("/readyz"), open("/metrics"), open("/healthz"),
				{path: "/unknown", status: http.StatusNotFound},
			},
		},
		{
			name:  "peer outside allow",
			admin: ", allow: [10.0.0.0/8]",
			probes: []adminProbe{
				open("/livez"), open("/readyz"),
				forbidden("/metrics", ""), forbidden("/healthz", ""),
			},
		},
		{
			name:  "allow and token",
			admin: `, allow: [127.0.0.0/8], token: "${ADMIN_TOKEN}"`,
			probes: []adminProbe{
				unauthorized("/metrics", ""),
				unauthorized("/metrics", "Bearer "+wrong),
				unauthorized("/metrics", "Bearer "+token[:len(token)-1]),
				unauthorized("/metrics", "Basic "+token),
				unauthorized("/healthz", ""),
				withToken("/metrics"), withToken("/healthz"),
				open("/livez"), open("/readyz"),
			},
		},
		{
			name:  "token does not replace allow",
			admin: `, allow: [10.0.0.0/8], token: "${ADMIN_TOKEN}"`,
			probes: []adminProbe{
				forbidden("/metrics", "Bearer "+token),
				open("/livez"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := strings.Replace(baseConfig("http://"+up.addr, route("x", "GET", "/x")),
				"admin:\n  listen: \"127.0.0.1:0\"\n", `admin: { listen: "0.0.0.0:0"`+tt.admin+" }\n", 1)
			g := startExposedGateway(t, cfg, "ADMIN_TOKEN="+token)
			for _, p := range tt.probes {
				got := adminGet(t, g.admin, p.path, p.auth)
				if got.status != p.status || got.problem != p.problem {
					t.Errorf("GET %s (Authorization %q) = %d %q, want %d %q (body %s)",
						p.path, redactAuth(p.auth, token), got.status, got.problem, p.status, p.problem, got.body)
				}
				if got.challenge != p.challenge {
					t.Errorf("GET %s WWW-Authenticate = %q, want %q", p.path, got.challenge, p.challenge)
				}
				if got.nosniff != "nosniff" {
					t.Errorf("GET %s X-Content-Type-Options = %q, want nosniff", p.path, got.nosniff)
				}
			}
			if strings.Contains(g.Logs(), token) {
				t.Errorf("the admin token appears in the gateway log")
			}
		})
	}
}

// redactAuth keeps the real token out of failure messages.
func redactAuth(auth, token string) string {
	return strings.ReplaceAll(auth, token, "<token>")
}

// startExposedGateway is startGateway for a config whose admin listener is
// bound to a wildcard address; the harness dials it on 127.0.0.1. It checks
// that the listener really is bound beyond loopback.
func startExposedGateway(t testing.TB, cfg string, env ...string) *gateway {
	t.Helper()
	g := startGateway(t, cfg, nil, env...)
	host, _, err := net.SplitHostPort(g.adminBound)
	if err != nil {
		t.Fatalf("admin address %q: %v", g.adminBound, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsUnspecified() {
		t.Fatalf("admin listener bound to %q, want a wildcard address", g.adminBound)
	}
	return g
}
