package authn

import (
	"github.com/bulwark-gateway/bulwark/internal/authz"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

const stageSecret = "0123456789abcdef0123456789abcdef-stage-test"

// stageFixture is a Set built by the real loader from YAML, and a way to
// run requests through one route's stage into a handler that counts hits.
type stageFixture struct {
	t        *testing.T
	cfg      *config.Config
	set      *Set
	metrics  *metrics.Metrics
	problems *problem.Writer
	hits     int
	last     *http.Request
	rec      *exchange.Record
}

func newStageFixture(t *testing.T, yaml string) *stageFixture {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "bulwark.yaml")
	if err := os.WriteFile(filepath.Join(dir, "revoked.txt"), []byte("jti revoked-id\nsub mallory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STAGE_SECRET": stageSecret, "KEY_HASH": HashKey("acme-key")}
	cfg, err := config.Parse(file, []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.BuildInfo{})
	reg := NewRegistry(zap.NewNop(), m.JWKSRefresh)
	pw := problem.New(zap.NewNop(), m.Denials)
	set, err := reg.Build(cfg, Options{Problems: pw, Attempts: m.AuthAttempts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return &stageFixture{t: t, cfg: cfg, set: set, metrics: m, problems: pw}
}

// do sends r through the stage of the named route and returns the answer.
func (f *stageFixture) do(route string, r *http.Request) *httptest.ResponseRecorder {
	f.t.Helper()
	for _, rt := range f.cfg.Routes {
		if rt.Name != route {
			continue
		}
		mw, err := f.set.Stage(rt)
		if err != nil {
			f.t.Fatal(err)
		}
		h := mw(authz.Require(rt, f.problems)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.hits++
			f.last = r
			w.WriteHeader(http.StatusOK)
		})))
		info := &exchange.Route{Name: rt.Name, Mode: rt.Mode}
		if rt.Mode == config.ModeInherit {
			info.Mode = config.ModeEnforce
		}
		if rt.Authn != nil && rt.Authn.Mode != config.ModeInherit {
			info.StageModes = map[string]config.Mode{problem.StageAuthn: rt.Authn.Mode}
		}
		f.rec = &exchange.Record{RequestID: "req-1", Route: info}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r.WithContext(exchange.With(r.Context(), f.rec)))
		return w
	}
	f.t.Fatalf("no route %q", route)
	return nil
}

func hs256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	base := jwt.MapClaims{"iss": "https://idp.test", "aud": "api", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "scope": "orders:read"}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, base).SignedString([]byte(stageSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const stageConfig = `
upstreams:
  app: { url: "http://127.0.0.1:1" }
authenticators:
  corp: { type: jwt, issuer: https://idp.test, audiences: [api], algorithms: [HS256], secret: "${STAGE_SECRET}", revocation_file: revoked.txt }
  keys: { type: api_key, header: X-API-Key }
consumers:
  - { id: acme, scopes: [orders:read], api_keys: [ { id: k1, sha256: "${KEY_HASH}" } ] }
principal_headers: { roles: X-Bulwark-Roles, method: X-Bulwark-Method }
routes:
  - { name: both, method: GET, path: /both, upstream: app, auth: [corp, keys] }
  - { name: scoped, method: GET, path: /scoped, upstream: app, auth: [corp, keys], require: { scopes: [orders:read, orders:write] } }
  - { name: query, method: GET, path: /query, upstream: app, auth: [corp], authn: { query_param: access_token } }
  - { name: nofwd, method: GET, path: /nofwd, upstream: app, auth: [corp], authn: { forward_credential: false } }
  - { name: fwdkey, method: GET, path: /fwdkey, upstream: app, auth: [keys], authn: { forward_credential: true } }
  - { name: report, method: GET, path: /report, upstream: app, auth: [corp], authn: { mode: report } }
  - { name: public, method: GET, path: /public, upstream: app, auth: none }
`

func TestStage(t *testing.T) {
	f := newStageFixture(t, stageConfig)
	good := hs256(t, nil)
	tests := []struct {
		name      string
		route     string
		target    string
		header    http.Header
		status    int
		challenge string // substring of WWW-Authenticate
	}{
		{name: "no credentials", route: "both", status: 401, challenge: `Bearer realm="bulwark"`},
		{name: "valid token", route: "both", header: http.Header{"Authorization": {"Bearer " + good}}, status: 200},
		{name: "scheme is case-insensitive", route: "both", header: http.Header{"Authorization": {"bEaReR " + good}}, status: 200},
		{name: "valid API key", route: "both", header: http.Header{"X-Api-Key": {"acme-key"}}, status: 200},
		{name: "invalid token does not fall through to a valid key", route: "both",
			header: http.Header{"Authorization": {"Bearer " + good + "x"}, "X-Api-Key": {"acme-key"}}, status: 401, challenge: `error="invalid_token"`},
		{name: "Basic is not a bearer token: the key decides", route: "both",
			header: http.Header{"Authorization": {"Basic YTpi"}, "X-Api-Key": {"acme-key"}}, status: 200},
		{name: "two Authorization headers", route: "both", header: http.Header{"Authorization": {"Bearer " + good, "Bearer " + good}},
			status: 400, challenge: `error="invalid_request"`},
		{name: "bad token68", route: "both", header: http.Header{"Authorization": {"Bearer a b"}}, status: 401},
		{name: "query token refused by default", route: "both", target: "/both?access_token=" + good, status: 400},
		{name: "query token where the route opts in", route: "query", target: "/query?access_token=" + good, status: 200},
		{name: "query and header token", route: "query", target: "/query?access_token=" + good,
			header: http.Header{"Authorization": {"Bearer " + good}}, status: 400},
		{name: "revoked jti", route: "both", header: http.Header{"Authorization": {"Bearer " + hs256(t, jwt.MapClaims{"jti": "revoked-id"})}}, status: 401},
		{name: "revoked subject", route: "both", header: http.Header{"Authorization": {"Bearer " + hs256(t, jwt.MapClaims{"sub": "mallory"})}}, status: 401},
		{name: "insufficient scope", route: "scoped", header: http.Header{"Authorization": {"Bearer " + good}}, status: 403,
			challenge: `error="insufficient_scope", scope="orders:read orders:write"`},
		{name: "all scopes", route: "scoped", header: http.Header{"Authorization": {"Bearer " + hs256(t, jwt.MapClaims{"scope": "orders:write orders:read"})}}, status: 200},
		{name: "certificate-bound token without a certificate", route: "both",
			header: http.Header{"Authorization": {"Bearer " + hs256(t, jwt.MapClaims{"cnf": map[string]any{"x5t#S256": "abc"}})}}, status: 401},
		{name: "DPoP-bound token where DPoP is off", route: "both",
			header: http.Header{"Authorization": {"Bearer " + hs256(t, jwt.MapClaims{"cnf": map[string]any{"jkt": "abc"}})}}, status: 401,
			challenge: `error="invalid_dpop_proof"`},
		{name: "report mode lets a bad token through", route: "report", header: http.Header{"Authorization": {"Bearer x.y.z"}}, status: 200},
		{name: "public route", route: "public", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/" + tt.route
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			for k, vs := range tt.header {
				r.Header[k] = vs
			}
			hits := f.hits
			w := f.do(tt.route, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			reached := f.hits > hits
			if reached != (tt.status == 200) {
				t.Fatalf("upstream reached = %v with status %d", reached, w.Code)
			}
			if got := strings.Join(w.Header().Values("WWW-Authenticate"), " | "); !strings.Contains(got, tt.challenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", got, tt.challenge)
			}
			if tt.status >= 400 && strings.Contains(w.Body.String(), good) {
				t.Error("the answer echoes the token")
			}
		})
	}
}

func TestStagePrincipalAndCredentialForwarding(t *testing.T) {
	f := newStageFixture(t, stageConfig)
	tok := hs256(t, jwt.MapClaims{"azp": "web", "roles": []string{"buyer"}})

	r := httptest.NewRequest(http.MethodGet, "/both", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if w := f.do("both", r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	h := f.last.Header
	for k, want := range map[string]string{"X-Bulwark-Subject": "alice", "X-Bulwark-Consumer": "web", "X-Bulwark-Scopes": "orders:read",
		"X-Bulwark-Roles": "buyer", "X-Bulwark-Method": "jwt", "Authorization": "Bearer " + tok} {
		if got := h.Get(k); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	if p := f.rec.Principal; p == nil || p.Subject != "alice" || p.Authenticator != "corp" {
		t.Errorf("record principal = %+v", p)
	}

	r = httptest.NewRequest(http.MethodGet, "/nofwd", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	f.do("nofwd", r)
	if got := f.last.Header.Get("Authorization"); got != "" {
		t.Errorf("forward_credential: false still sent Authorization %q", got)
	}

	r = httptest.NewRequest(http.MethodGet, "/both?x=1", nil)
	r.Header.Set("X-API-Key", "acme-key")
	f.do("both", r)
	if f.last.Header.Get("X-Api-Key") != "" {
		t.Error("the API key went upstream")
	}
	if got := f.last.Header.Get("X-Bulwark-Subject"); got != "acme" {
		t.Errorf("API key subject = %q, want acme", got)
	}

	r = httptest.NewRequest(http.MethodGet, "/fwdkey", nil)
	r.Header.Set("X-API-Key", "acme-key")
	f.do("fwdkey", r)
	if f.last.Header.Get("X-Api-Key") != "acme-key" {
		t.Error("forward_credential: true did not send the API key")
	}

	// A claim with CR LF never splits a header.
	r = httptest.NewRequest(http.MethodGet, "/both", nil)
	r.Header.Set("Authorization", "Bearer "+hs256(t, jwt.MapClaims{"sub": "eve\r\nX-Admin: 1"}))
	f.do("both", r)
	if got := f.last.Header.Get("X-Bulwark-Subject"); got != "" {
		t.Errorf("a subject with control characters was sent: %q", got)
	}
}

func TestStageMetricsAndReportMode(t *testing.T) {
	f := newStageFixture(t, stageConfig)
	r := httptest.NewRequest(http.MethodGet, "/report", nil)
	r.Header.Set("Authorization", "Bearer "+hs256(t, jwt.MapClaims{"iss": "https://evil.test"}))
	if w := f.do("report", r); w.Code != 200 {
		t.Fatalf("report mode status %d", w.Code)
	}
	if f.rec.Principal != nil {
		t.Error("report mode recorded a principal for a refused token")
	}
	_, would := f.rec.Decisions()
	if len(would) != 1 || would[0].Stage != "authn" || would[0].Reason != "bad_issuer" {
		t.Errorf("would-deny decisions = %+v", would)
	}
	r = httptest.NewRequest(http.MethodGet, "/both", nil)
	r.Header.Set("Authorization", "Bearer "+hs256(t, nil))
	f.do("both", r)
	for result, want := range map[string]float64{"success": 1, "failure": 1} {
		if got := testutil.ToFloat64(f.metrics.AuthAttempts.WithLabelValues("corp", result)); got != want {
			t.Errorf("auth attempts %s = %v, want %v", result, got, want)
		}
	}
}
