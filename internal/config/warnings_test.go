package config

import (
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // whole formatted warnings
	}{
		{
			name: "none for a plain config",
			src:  minimal,
		},
		{
			name: "top-level report mode",
			src:  lines("mode: report", minimal),
			want: []string{"t.yaml:1:7: mode: every route runs in report mode: denials are only recorded (would_deny) and every request goes through"},
		},
		{
			name: "route in report mode",
			src:  oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, mode: report"),
			want: []string{`t.yaml:4:71: routes[0].mode: route "r" runs in report mode: its denials are only recorded (would_deny) and its requests go through`},
		},
		{
			name: "route enforcing under a reporting top level",
			src:  lines("mode: report", "upstreams:", "  app: { url: \"http://127.0.0.1:9000\" }", "routes:", "  - { name: r, method: GET, path: /, upstream: app, auth: none, mode: enforce }"),
			want: []string{"t.yaml:1:7: mode: every route runs in report mode: denials are only recorded (would_deny) and every request goes through"},
		},
		{
			name: "object-level rules in report mode",
			src:  oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, authorize: { mode: report, rules: [ { name: a, expr: 'true' } ] }"),
			want: []string{`t.yaml:4:84: routes[0].authorize.mode: route "r" checks its object-level rules in report mode: requests that break them reach the upstream`},
		},
		{
			name: "no routes",
			src:  lines("upstreams:", "  app: { url: \"http://127.0.0.1:9000\" }"),
			want: []string{
				"t.yaml:1:1: routes: no routes: every request gets 404",
				`t.yaml:2:8: upstreams.app: upstream "app" is not used by any route`,
			},
		},
		{
			name: "admin beyond loopback without allow",
			src:  lines("admin:", "  listen: \":9901\"", minimal),
			want: []string{"t.yaml:2:11: admin.listen: the admin listener is reachable beyond loopback and admin.allow is empty: only /livez and /readyz will answer; list the CIDRs of your scrapers in admin.allow"},
		},
		{
			name: "admin beyond loopback without token",
			src:  lines("admin:", "  listen: \"0.0.0.0:9901\"", "  allow: [10.0.0.0/8]", minimal),
			want: []string{"t.yaml:3:10: admin.allow: the admin listener is reachable beyond loopback with no admin.token: /metrics is guarded by admin.allow alone"},
		},
		{
			name: "admin beyond loopback with allow and token",
			src:  lines("admin:", "  listen: \"0.0.0.0:9901\"", "  allow: [10.0.0.0/8]", "  token: 0123456789abcdef", minimal),
		},
		{
			name: "admin token on loopback",
			src:  lines("admin:", "  listen: \"[::1]:9901\"", "  token: 0123456789abcdef", minimal),
			want: []string{"t.yaml:3:10: admin.token: not used: the admin listener is on loopback, where admin.allow and admin.token are not checked"},
		},
		{
			name: "trusting every proxy",
			src:  lines("server:", "  trusted_proxies: [10.0.0.0/8, 0.0.0.0/0]", minimal),
			want: []string{"t.yaml:2:33: server.trusted_proxies[1]: trusts every peer: any client can set its own X-Forwarded-For and X-Request-Id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.src, nil)
			var got []string
			for _, w := range cfg.Warnings() {
				got = append(got, w.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Warnings() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
