package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "unknown top-level key lists the known keys",
			src:  lines(minimal, "sever: {}"),
			want: "6:1: sever",
			msg:  `unknown key "sever" (known keys here: mode, server, admin, log, reload, upstreams, specs, authenticators, consumers, principal_headers, rate_limits, audit, policies, response, tracing, routes_from_spec, routes)`,
		},
		{
			name: "unknown nested key",
			src:  lines("upstreams:", "  app:", "    url: https://127.0.0.1:9443", "    tls:", "      pin: x", "routes: []"),
			want: "5:7: upstreams.app.tls.pin",
			msg:  `unknown key "pin" (known keys here: ca_file, cert_file, key_file, server_name, min_version, pin_sha256)`,
		},
		{
			name: "unknown key in a list element",
			src:  lines("upstreams:", "  app: { url: \"http://127.0.0.1:9000\" }", "routes:", "  - { name: r, method: GET, path: /, upstream: app, auth: none, timeout: 1s }"),
			want: "4:65: routes[0].timeout",
			msg:  `unknown key "timeout"`,
		},
		{
			name: "unknown key in a map element",
			src:  lines("upstreams:", "  app:", "    url: \"http://127.0.0.1:9000\"", "    retries: 3", "routes: []"),
			want: "4:5: upstreams.app.retries",
			msg:  `unknown key "retries"`,
		},
		{
			name: "duplicate key",
			src:  lines("log:", "  level: info", "  level: debug", minimal),
			want: "3:3: log.level",
			msg:  `duplicate key "level" (first at line 2)`,
		},
		{
			name: "duplicate map entry",
			src:  lines("upstreams:", "  app: { url: \"http://127.0.0.1:9000\" }", "  app: { url: \"http://127.0.0.1:9001\" }", "routes:", "  - { name: r, method: GET, path: /, upstream: app, auth: none }"),
			want: "3:3: upstreams.app",
			msg:  `duplicate key "app" (first at line 2)`,
		},
		{
			name: "merge key refused",
			src:  lines("log:", "  <<: { level: info }", minimal),
			want: "2:3: log.<<",
			msg:  "merge keys (<<) are not supported",
		},
		{
			name: "mapping where a string is expected",
			src:  lines("server:", "  listen: { port: 80 }", minimal),
			want: "2:11: server.listen",
			msg:  "expected a string, got a mapping",
		},
		{
			name: "list where a mapping is expected",
			src:  lines("server: [a]", minimal),
			want: "1:9: server",
			msg:  "expected a mapping, got a list",
		},
		{
			name: "string where a list is expected",
			src:  lines("server:", "  trusted_proxies: 10.0.0.0/8", minimal),
			want: "2:20: server.trusted_proxies",
			msg:  "expected a list, got a string",
		},
		{
			name: "string where a map is expected",
			src:  lines("upstreams: app", "routes: []"),
			want: "1:12: upstreams",
			msg:  "expected a mapping of names, got a string",
		},
		{
			name: "string where an integer is expected",
			src:  lines("server:", "  max_header_count: lots", minimal),
			want: "2:21: server.max_header_count",
			msg:  "expected an integer",
		},
		{
			name: "list where an integer is expected",
			src:  lines("server:", "  max_header_count: [1]", minimal),
			want: "2:21: server.max_header_count",
			msg:  "expected an integer, got a list",
		},
		{
			name: "not a boolean",
			src:  lines("reload:", "  watch: yes", minimal),
			want: "2:10: reload.watch",
			msg:  "expected true or false",
		},
		{
			name: "null scalar",
			src:  lines("log:", "  level:", minimal),
			want: "2:9: log.level",
			msg:  "expected a string, got null",
		},
		{
			name: "duration without unit",
			src:  lines("server:", "  read_timeout: 30", minimal),
			want: "2:17: server.read_timeout",
			msg:  "use a unit, e.g. 30s",
		},
		{
			name: "negative duration",
			src:  lines("server:", "  read_timeout: -1s", minimal),
			want: "2:17: server.read_timeout",
			msg:  "must not be negative",
		},
		{
			name: "bad size",
			src:  lines("server:", "  max_body_size: 1mb", minimal),
			want: "2:18: server.max_body_size",
			msg:  "not a size",
		},
		{
			name: "negative size",
			src:  lines("server:", "  max_body_size: -1", minimal),
			want: "2:18: server.max_body_size",
			msg:  "must not be negative",
		},
		{
			name: "size overflow",
			src:  lines("server:", "  max_body_size: 9999999999GiB", minimal),
			want: "2:18: server.max_body_size",
			msg:  "too large",
		},
		{
			name: "bad CIDR",
			src:  lines("server:", "  trusted_proxies: [10.0.0.0/33]", minimal),
			want: "2:21: server.trusted_proxies[0]",
			msg:  "not a CIDR",
		},
		{
			name: "bad IP",
			src:  lines("admin:", "  allow: [localhost]", minimal),
			want: "2:11: admin.allow[0]",
			msg:  "not an IP address or CIDR",
		},
		{
			name: "bad mode",
			src:  lines("mode: audit", minimal),
			want: "1:7: mode",
			msg:  "must be enforce or report",
		},
		{
			name: "bad route mode",
			src:  lines("upstreams:", "  app: { url: \"http://127.0.0.1:9000\" }", "routes:", "  - { name: r, method: GET, path: /, upstream: app, auth: none, mode: off }"),
			want: "4:71: routes[0].mode",
			msg:  "must be enforce or report",
		},
		{
			name: "root is a list",
			src:  "- a\n- b\n",
			want: "1:1: ",
			msg:  "expected a mapping, got a list",
		},
		{
			name: "root is a string",
			src:  "hello\n",
			want: "1:1: ",
			msg:  "expected a mapping, got a string",
		},
		{
			name: "alias cycle",
			src:  lines("upstreams:", "  app: { url: \"http://127.0.0.1:9000\" }", "routes: &x [*x]"),
			want: "3:9: routes[0]",
			msg:  "expected a mapping, got a list",
		},
		{
			name: "non-string key",
			src:  lines("server:", "  ? [a]", "  : 1", minimal),
			want: "2:5: server",
			msg:  "a key must be a string, got a list",
		},
	})
}

func TestDecodeFileErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{name: "empty", src: "", want: "t.yaml: the config is empty: it needs at least the upstreams and routes sections"},
		{name: "only comments", src: "# nothing\n", want: "t.yaml: the config is empty: it needs at least the upstreams and routes sections"},
		{name: "only a document marker", src: "---\n", want: "t.yaml: the config is empty: it needs at least the upstreams and routes sections"},
		{name: "null document", src: "~\n", want: "t.yaml: the config is empty: it needs at least the upstreams and routes sections"},
		{name: "two documents", src: minimal + "---\n" + minimal, want: "t.yaml:5:1: more than one YAML document: a config file holds exactly one (remove the second ---)"},
		{name: "syntax error", src: "server:\n  listen: :80\n bad: [\n", want: "t.yaml:2: invalid YAML: did not find expected key"},
		{name: "syntax error in the second document", src: minimal + "---\na: [\n", want: "t.yaml:6: invalid YAML: did not find expected node content"},
		{name: "tab indentation", src: "server:\n\tlisten: :80\n", want: "t.yaml:2: invalid YAML: found character that cannot start any token"},
		{name: "control character", src: "a: \"\x01\"\n", want: "t.yaml: invalid YAML: control characters are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, tt.src, nil)
			if got := errs.Error(); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

// routeWith returns a valid config whose one route has the extra key on
// line 9.
func routeWith(extra string) string {
	return lines(
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - name: r",
		"    method: GET",
		"    path: /",
		"    upstream: app",
		"    auth: none",
		"    "+extra,
	)
}

func TestDecodeAliases(t *testing.T) {
	// An alias reuses a whole value; each use decodes on its own.
	cfg := mustParse(t, lines(
		"upstreams:",
		"  app: &up { url: \"http://127.0.0.1:9000\", timeout: 0s }",
		"  copy: *up",
		"routes:",
		"  - &r { name: a, method: GET, path: /a, upstream: app, auth: none, cors: { origins: &o [\"https://x.example\"] } }",
		"  - { name: b, method: GET, path: /b, upstream: copy, auth: none, cors: { origins: *o } }",
	), nil)
	if got, want := cfg.Upstreams["copy"], cfg.Upstreams["app"]; !reflect.DeepEqual(got, want) {
		t.Errorf("aliased upstream = %+v, want %+v", got, want)
	}
	if got, want := cfg.Routes[1].CORS.Origins, []string{"https://x.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("aliased origins = %v, want %v", got, want)
	}
}

// TestDecodeAliasBomb checks that aliases cannot make the loader decode an
// outsized config: 200 uses of a route holding 1000 origins would be 200k
// values.
func TestDecodeAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("upstreams:\n  app: { url: \"http://127.0.0.1:9000\" }\nroutes:\n")
	b.WriteString("  - &r { name: a, method: GET, path: /a, upstream: app, auth: none, cors: { origins: [")
	b.WriteString(strings.Repeat("a, ", 999) + "a] } }\n")
	for range 199 {
		b.WriteString("  - *r\n")
	}
	errs := parseErrors(t, b.String(), nil)
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1", len(errs))
	}
	want := "the config is too large: more than 100000 values once aliases are expanded"
	if got := errs[0]; got.Msg != want || got.Line != 4 {
		t.Errorf("error = %v, want %q on line 4", got, want)
	}
}

func TestDecodeValues(t *testing.T) {
	cfg := mustParse(t, lines(
		"server:",
		"  trusted_proxies: [10.1.2.3/8, 192.0.2.7, \"2001:db8::1\"]",
		"admin:",
		"  allow: [127.0.0.1]",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: pub, method: GET, path: /, upstream: app, auth: none }",
		"  - name: quoted",
		"    method: \"GET\"",
		"    path: '/q'",
		"    upstream: app",
		"    auth: \"none\"",
		"    max_body_size: 512KiB",
		"    websocket: TRUE",
	), nil)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{
			name: "prefixes are masked and bare addresses are single hosts",
			got:  cfg.Server.TrustedProxies,
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::1/128")},
		},
		{name: "admin allow", got: cfg.Admin.Allow, want: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		{name: "auth none", got: cfg.Routes[0].Auth, want: AuthList{None: true}},
		{name: "quoted none", got: cfg.Routes[1].Auth, want: AuthList{None: true}},
		{name: "route size", got: cfg.Routes[1].MaxBodySize, want: Size(512 << 10)},
		{name: "upper-case boolean", got: cfg.Routes[1].WebSocket, want: true},
		{name: "route mode inherits", got: cfg.Routes[1].Mode, want: ModeInherit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestDecodeAuth(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "missing",
			src:  lines("upstreams:", "  app: { url: \"http://127.0.0.1:9000\" }", "routes:", "  - { name: r, method: GET, path: /, upstream: app }"),
			want: "4:5: routes[0].auth",
			msg:  "is required: auth: none for a public route",
		},
		{
			name: "empty list",
			src:  routeAuth("[]"),
			want: "4:59: routes[0].auth",
			msg:  "auth: [] names no authenticator",
		},
		{
			name: "null",
			src:  routeAuth("~"),
			want: "4:59: routes[0].auth",
			msg:  "expected none, or a list of authenticator names, got null",
		},
		{
			name: "single name as a scalar",
			src:  routeAuth("corp"),
			want: "4:59: routes[0].auth",
			msg:  "auth: [name] for one authenticator",
		},
		{
			name: "none inside a list",
			src:  routeAuth("[none]"),
			want: "4:60: routes[0].auth[0]",
			msg:  "none cannot be listed with authenticators",
		},
		{
			name: "none with a name",
			src:  routeAuth("[corp, none]"),
			want: "4:66: routes[0].auth[1]",
			msg:  "none cannot be listed with authenticators",
		},
		{
			name: "unknown authenticator",
			src:  routeAuth("[corp]"),
			want: "4:60: routes[0].auth[0]",
			msg:  `unknown authenticator "corp"`,
		},
		{
			name: "mapping",
			src:  routeAuth("{ type: jwt }"),
			want: "4:59: routes[0].auth",
			msg:  "expected none, or a list of authenticator names, got a mapping",
		},
	})
}

// routeAuth returns a config whose route has auth: value at 4:59.
func routeAuth(value string) string {
	return lines(
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, auth: "+value+" }",
	)
}
