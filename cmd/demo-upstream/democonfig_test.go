package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// TestDemoConfigMatchesThisAPI loads configs/demo.yaml (used by make demo)
// as the gateway does and checks that every route it declares is one this
// upstream serves, so the demo's allowed requests cannot 404 upstream.
func TestDemoConfigMatchesThisAPI(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err := config.Load(filepath.Join("..", "..", "configs", "demo.yaml"), noEnv)
	if err != nil {
		t.Fatalf("load configs/demo.yaml: %v", err)
	}
	if got, want := cfg.Server.Listen, "127.0.0.1:8080"; got != want {
		t.Errorf("server.listen without DEMO_PORT = %q, want %q", got, want)
	}
	if got, want := cfg.Admin.Listen, "127.0.0.1:9901"; got != want {
		t.Errorf("admin.listen without DEMO_ADMIN_PORT = %q, want %q", got, want)
	}
	if got, want := cfg.Upstreams["orders"].URL, "http://127.0.0.1:9000"; got != want {
		t.Errorf("upstreams.orders.url without DEMO_UPSTREAM_PORT = %q, want %q", got, want)
	}
	if len(cfg.Routes) == 0 {
		t.Fatalf("configs/demo.yaml has no routes")
	}

	srv := startAPI(t)
	for _, rt := range cfg.Routes {
		t.Run(rt.Name, func(t *testing.T) {
			if !rt.Auth.None {
				t.Errorf("route %s auth = %+v, want none (the demo needs no credentials)", rt.Name, rt.Auth)
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

func TestDemoConfigPortsComeFromTheEnvironment(t *testing.T) {
	env := map[string]string{"DEMO_PORT": "18080", "DEMO_ADMIN_PORT": "19901", "DEMO_UPSTREAM_PORT": "19000"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Load(filepath.Join("..", "..", "configs", "demo.yaml"), lookup)
	if err != nil {
		t.Fatalf("load configs/demo.yaml: %v", err)
	}
	got := []string{cfg.Server.Listen, cfg.Admin.Listen, cfg.Upstreams["orders"].URL}
	want := []string{"127.0.0.1:18080", "127.0.0.1:19901", "http://127.0.0.1:19000"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listeners and upstream = %q, want %q", got, want)
	}
}
