package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// demoKey is the demo consumer acme's API key, documented in
// configs/demo.yaml and printed by deploy/demo.sh. It is public: never
// reuse it outside the demo.
const demoKey = "demo-key-acme-0123456789abcdef"

var demoConfigPath = filepath.Join("..", "..", "configs", "demo.yaml")

// loadDemoConfig loads configs/demo.yaml as the gateway does, with env as
// the environment.
func loadDemoConfig(t testing.TB, env map[string]string) *config.Config {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Load(demoConfigPath, lookup)
	if err != nil {
		t.Fatalf("load configs/demo.yaml: %v", err)
	}
	return cfg
}

// TestDemoConfigMatchesThisAPI loads configs/demo.yaml (used by make demo)
// as the gateway does and checks that every route it declares is one this
// upstream serves, with the credentials and scopes the demo shows, so the
// demo's allowed requests cannot 404 upstream.
func TestDemoConfigMatchesThisAPI(t *testing.T) {
	cfg := loadDemoConfig(t, nil)
	if got, want := cfg.Server.Listen, "127.0.0.1:8080"; got != want {
		t.Errorf("server.listen without DEMO_PORT = %q, want %q", got, want)
	}
	if got, want := cfg.Admin.Listen, "127.0.0.1:9901"; got != want {
		t.Errorf("admin.listen without DEMO_ADMIN_PORT = %q, want %q", got, want)
	}
	if got, want := cfg.Upstreams["orders"].URL, "http://127.0.0.1:9000"; got != want {
		t.Errorf("upstreams.orders.url without DEMO_UPSTREAM_PORT = %q, want %q", got, want)
	}

	wantRoutes := map[string]struct {
		auth   []string
		scopes []string
	}{
		"list-orders":  {auth: []string{"demo-idp", "partners"}, scopes: []string{"orders:read"}},
		"get-order":    {auth: []string{"demo-idp", "partners"}, scopes: []string{"orders:read"}},
		"create-order": {auth: []string{"demo-idp", "partners"}, scopes: []string{"orders:write"}},
		"order-events": {auth: []string{"demo-idp", "partners"}, scopes: []string{"orders:read"}},
	}
	if len(cfg.Routes) != len(wantRoutes) {
		t.Errorf("configs/demo.yaml has %d routes, want %d", len(cfg.Routes), len(wantRoutes))
	}
	srv := startAPI(t)
	for _, rt := range cfg.Routes {
		t.Run(rt.Name, func(t *testing.T) {
			want, ok := wantRoutes[rt.Name]
			if !ok {
				t.Fatalf("route %s is not one the demo shows", rt.Name)
			}
			if rt.Auth.None || !slices.Equal(rt.Auth.Names, want.auth) {
				t.Errorf("route %s auth = %+v, want %v", rt.Name, rt.Auth, want.auth)
			}
			var scopes []string
			if rt.Require != nil {
				scopes = rt.Require.Scopes
			}
			if !slices.Equal(scopes, want.scopes) {
				t.Errorf("route %s require.scopes = %v, want %v", rt.Name, scopes, want.scopes)
			}

			target := strings.NewReplacer("{orderId}", "1").Replace(rt.Path)
			body := ""
			if rt.Method == http.MethodPost {
				body = `{"customer":"demo","item":"widget","quantity":1}`
			}
			status, got := do(t, srv, rt.Method, target, body)
			if status >= 300 {
				t.Errorf("%s %s on the demo upstream = %d %q, want a success", rt.Method, target, status, got)
			}
		})
	}
}

// TestDemoConfigTrustsTheDemoIDP checks that the demo-idp authenticator
// accepts exactly the tokens this upstream's identity provider issues on
// its default address.
func TestDemoConfigTrustsTheDemoIDP(t *testing.T) {
	cfg := loadDemoConfig(t, nil)
	a, ok := cfg.Authenticators["demo-idp"]
	if !ok {
		t.Fatalf("configs/demo.yaml has no authenticator demo-idp")
	}
	issuer := issuerFor(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000})
	got := []string{a.Type, a.Issuer, a.JWKSURL, strings.Join(a.Audiences, ","), strings.Join(a.Algorithms, ",")}
	want := []string{"jwt", issuer, issuer + "/jwks.json", tokenAudience, "ES256"}
	if !slices.Equal(got, want) {
		t.Errorf("demo-idp type, issuer, jwks_url, audiences, algorithms = %q, want %q", got, want)
	}
	if p := cfg.Authenticators["partners"]; p.Type != "api_key" || p.Header != apiKeyHeader {
		t.Errorf("partners = type %q header %q, want type api_key header %s", p.Type, p.Header, apiKeyHeader)
	}
}

// TestDemoKeyMatchesTheConsumerHash checks that demoKey, the key the demo
// documents, is the one whose hash configs/demo.yaml lists for acme, and
// that acme lacks orders:write (the demo's 403).
func TestDemoKeyMatchesTheConsumerHash(t *testing.T) {
	cfg := loadDemoConfig(t, nil)
	i := slices.IndexFunc(cfg.Consumers, func(c config.Consumer) bool { return c.ID == "acme" })
	if i < 0 {
		t.Fatalf("configs/demo.yaml has no consumer acme")
	}
	acme := cfg.Consumers[i]
	if len(acme.APIKeys) != 1 {
		t.Fatalf("acme has %d API keys, want 1", len(acme.APIKeys))
	}
	sum := sha256.Sum256([]byte(demoKey))
	if got, want := acme.APIKeys[0].SHA256, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("acme's key sha256 = %s, want %s (the SHA-256 of %q)", got, want, demoKey)
	}
	if !slices.Equal(acme.Scopes, []string{"orders:read"}) {
		t.Errorf("acme scopes = %v, want [orders:read]", acme.Scopes)
	}
	// The key the test checks must be the one the demo tells people to use.
	for _, file := range []string{demoConfigPath, filepath.Join("..", "..", "deploy", "demo.sh")} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), demoKey) {
			t.Errorf("%s does not mention the demo key %q", file, demoKey)
		}
	}
}

func TestDemoConfigPortsComeFromTheEnvironment(t *testing.T) {
	cfg := loadDemoConfig(t, map[string]string{"DEMO_PORT": "18080", "DEMO_ADMIN_PORT": "19901", "DEMO_UPSTREAM_PORT": "19000"})
	idp := cfg.Authenticators["demo-idp"]
	got := []string{cfg.Server.Listen, cfg.Admin.Listen, cfg.Upstreams["orders"].URL, idp.Issuer, idp.JWKSURL}
	want := []string{"127.0.0.1:18080", "127.0.0.1:19901", "http://127.0.0.1:19000",
		"http://127.0.0.1:19000/demo-idp", "http://127.0.0.1:19000/demo-idp/jwks.json"}
	if !slices.Equal(got, want) {
		t.Errorf("listeners, upstream and identity provider = %q, want %q", got, want)
	}
}
