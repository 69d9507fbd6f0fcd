// Package deploy checks the deployment files under deploy/ without starting
// anything: the Kubernetes manifests decode strictly into their API types,
// the Compose file references files that exist, the gateway configs load
// with internal/config, and the alert rules and the Grafana dashboard name
// only metrics the gateway exports.
package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// repoRoot returns the module root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// readFile reads path, relative to the module root.
func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// envLookup is a lookupEnv for config.Load that knows exactly env: a
// ${VAR} without a default that env lacks fails the load, so the test
// names every variable a deploy config needs.
func envLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// parseConfig parses a gateway config as `bulwark serve` would, from data
// (file names it in errors and anchors relative paths), and fails on any
// error or warning.
func parseConfig(t testing.TB, file string, data []byte, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(file, data, envLookup(env))
	if err != nil {
		t.Fatalf("%s does not load:\n%v", file, err)
	}
	for _, w := range cfg.Warnings() {
		t.Errorf("%s: warning: %v", file, w)
	}
	return cfg
}
