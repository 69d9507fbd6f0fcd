package main

import (
	"strings"
	"testing"
	"text/template"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

func TestTargetsAreComparedWithBare(t *testing.T) {
	seen := map[string]bool{}
	var gated int
	for _, tg := range targets() {
		if seen[tg.name] {
			t.Errorf("target %q defined twice, want unique names", tg.name)
		}
		seen[tg.name] = true
		if tg.gate {
			gated++
		}
		if tg.start == nil {
			t.Errorf("target %q has no start, want one", tg.name)
		}
	}
	if !seen[bareName] || !seen["direct"] {
		t.Errorf("targets = %v, want direct and %s among them", seen, bareName)
	}
	if gated == 0 {
		t.Errorf("no gated target, want the pass-through bulwark route gated")
	}
}

func TestPassThroughConfig(t *testing.T) {
	tmpl := template.Must(template.New("t").Option("missingkey=error").Parse(passThroughConfig))
	var b strings.Builder
	if err := tmpl.Execute(&b, bulwarkConfig{Listen: "127.0.0.1:1", Admin: "127.0.0.1:2", Upstream: "http://127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err := config.Parse("bench.yaml", []byte(b.String()), noEnv)
	if err != nil {
		t.Fatalf("bulwark refuses the pass-through config: %v", err)
	}
	if got := len(cfg.Routes); got != 1 || !cfg.Routes[0].Auth.None {
		t.Errorf("routes = %+v, want one route with auth: none", cfg.Routes)
	}
	for _, want := range []string{
		`listen: "127.0.0.1:1"`,
		`admin: { listen: "127.0.0.1:2" }`,
		`url: "http://127.0.0.1:3"`,
		"path: " + benchPath,
		"auth: none",
		"level: warn",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("config = %q, want it to contain %q", b.String(), want)
		}
	}
}
