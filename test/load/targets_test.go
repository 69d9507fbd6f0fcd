package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

func TestTargetsAreComparedWithBare(t *testing.T) {
	// Every target, with the limits it is judged by and the headers wrk
	// sends it. Adding a target means adding it here.
	want := map[string]struct {
		limits  *limits
		headers []string
	}{
		"direct":         {},
		bareName:         {},
		bareTimeoutsName: {},
		"bulwark":        {limits: &limits{minRPS: 0.90, maxP99: 1.20}},
		"bulwark-jwt":    {limits: &limits{minRPS: 0.80}, headers: []string{"Authorization: Bearer tok.en.sig"}},
	}
	seen := map[string]bool{}
	for _, tg := range targets("tok.en.sig") {
		if seen[tg.name] {
			t.Errorf("target %q defined twice, want unique names", tg.name)
		}
		seen[tg.name] = true
		if tg.start == nil {
			t.Errorf("target %q has no start, want one", tg.name)
		}
		w, ok := want[tg.name]
		if !ok {
			t.Errorf("unexpected target %q, want it listed in this test", tg.name)
			continue
		}
		if !reflect.DeepEqual(tg.limits, w.limits) {
			t.Errorf("target %q limits = %v, want %v", tg.name, tg.limits, w.limits)
		}
		if !slices.Equal(tg.headers, w.headers) {
			t.Errorf("target %q headers = %q, want %q", tg.name, tg.headers, w.headers)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("targets() has no %q, want it", name)
		}
	}
}

// authnSummary is what the bench configs say about one authenticator.
type authnSummary struct {
	Type, Issuer, JWKSURL string
	Audiences, Algorithms []string
	CacheSize             int
}

func TestBulwarkConfigs(t *testing.T) {
	fill := bulwarkConfig{Listen: "127.0.0.1:1", Admin: "127.0.0.1:2", Upstream: "http://127.0.0.1:3", JWKSURL: "http://127.0.0.1:4/jwks.json"}
	common := []string{
		`listen: "127.0.0.1:1"`,
		`admin: { listen: "127.0.0.1:2" }`,
		`url: "http://127.0.0.1:3"`,
		"path: " + benchPath,
		"level: warn",
	}
	tests := []struct {
		name      string
		template  string
		wantAuth  config.AuthList
		wantAuthn map[string]authnSummary
		wantText  []string
	}{
		{
			name:      "pass-through",
			template:  passThroughConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantText:  append(slices.Clone(common), "auth: none"),
		},
		{
			name:     "jwt",
			template: jwtConfig,
			wantAuth: config.AuthList{Names: []string{"bench-jwt"}},
			wantAuthn: map[string]authnSummary{"bench-jwt": {
				Type:       "jwt",
				Issuer:     benchIssuer,
				JWKSURL:    "http://127.0.0.1:4/jwks.json",
				Audiences:  []string{benchAudience},
				Algorithms: []string{"RS256"},
				CacheSize:  10000, // bulwark's default: the cache path is what is measured
			}},
			wantText: append(slices.Clone(common), "auth: [bench-jwt]"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := template.Must(template.New(tt.name).Option("missingkey=error").Parse(tt.template))
			var b strings.Builder
			if err := tmpl.Execute(&b, fill); err != nil {
				t.Fatal(err)
			}
			noEnv := func(string) (string, bool) { return "", false }
			cfg, err := config.Parse("bench.yaml", []byte(b.String()), noEnv)
			if err != nil {
				t.Fatalf("bulwark refuses the %s config: %v\n%s", tt.name, err, b.String())
			}
			if got := len(cfg.Routes); got != 1 {
				t.Fatalf("routes = %+v, want one", cfg.Routes)
			}
			if got := cfg.Routes[0].Auth; !reflect.DeepEqual(got, tt.wantAuth) {
				t.Errorf("route auth = %+v, want %+v", got, tt.wantAuth)
			}
			gotAuthn := map[string]authnSummary{}
			for name, a := range cfg.Authenticators {
				gotAuthn[name] = authnSummary{
					Type: a.Type, Issuer: a.Issuer, JWKSURL: a.JWKSURL,
					Audiences: a.Audiences, Algorithms: a.Algorithms, CacheSize: a.CacheSize,
				}
			}
			if !reflect.DeepEqual(gotAuthn, tt.wantAuthn) {
				t.Errorf("authenticators = %+v, want %+v", gotAuthn, tt.wantAuthn)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(b.String(), want) {
					t.Errorf("config = %q, want it to contain %q", b.String(), want)
				}
			}
		})
	}
}
