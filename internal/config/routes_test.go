package config

import (
	"strings"
	"testing"
)

// oneRoute returns a config whose route (line 4) has fields written out;
// the route mapping starts at column 5, its first key at column 7.
func oneRoute(fields string) string {
	return lines(
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { "+fields+" }",
	)
}

// twoRoutes returns a config with two routes on lines 4 and 5.
func twoRoutes(a, b string) string {
	return lines(
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { "+a+" }",
		"  - { "+b+" }",
	)
}

func TestValidateRoutes(t *testing.T) {
	runErrorCases(t, []errorCase{
		{name: "name missing", src: oneRoute("method: GET, path: /, upstream: app, auth: none"), want: "4:5: routes[0].name", msg: "is required"},
		{name: "name alphabet", src: oneRoute("name: a b, method: GET, path: /, upstream: app, auth: none"), want: "4:13: routes[0].name", msg: "invalid route name"},
		{name: "name too long", src: oneRoute("name: " + strings.Repeat("a", 65) + ", method: GET, path: /, upstream: app, auth: none"), want: "4:13: routes[0].name", msg: "invalid route name"},
		{
			name: "name duplicate",
			src:  twoRoutes("name: a, method: GET, path: /a, upstream: app, auth: none", "name: a, method: GET, path: /b, upstream: app, auth: none"),
			want: "5:13: routes[1].name",
			msg:  `duplicate route name "a" (first at routes[0], line 4)`,
		},
		{name: "method missing", src: oneRoute("name: r, path: /, upstream: app, auth: none"), want: "4:5: routes[0].method", msg: "is required: one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{name: "method lower-case", src: oneRoute("name: r, method: post, path: /, upstream: app, auth: none"), want: "4:24: routes[0].method", msg: "must be upper-case: POST"},
		{name: "method CONNECT", src: oneRoute("name: r, method: CONNECT, path: /, upstream: app, auth: none"), want: "4:24: routes[0].method", msg: "CONNECT is refused"},
		{name: "method TRACE", src: oneRoute("name: r, method: TRACE, path: /, upstream: app, auth: none"), want: "4:24: routes[0].method", msg: "TRACE is refused"},
		{name: "method unknown", src: oneRoute("name: r, method: FETCH, path: /, upstream: app, auth: none"), want: "4:24: routes[0].method", msg: "unknown method"},
		{name: "path missing", src: oneRoute("name: r, method: GET, upstream: app, auth: none"), want: "4:5: routes[0].path", msg: "is required"},
		{name: "path", src: oneRoute("name: r, method: GET, path: /a//b, upstream: app, auth: none"), want: "4:35: routes[0].path", msg: "must not contain //"},
		{name: "host with port", src: oneRoute("name: r, method: GET, path: /, host: \"api.example.com:443\", upstream: app, auth: none"), want: "4:44: routes[0].host", msg: "without port"},
		{name: "host with scheme", src: oneRoute("name: r, method: GET, path: /, host: \"https://api.example.com\", upstream: app, auth: none"), want: "4:44: routes[0].host", msg: "without scheme"},
		{name: "host with path", src: oneRoute("name: r, method: GET, path: /, host: api.example.com/x, upstream: app, auth: none"), want: "4:44: routes[0].host", msg: "without path"},
		{name: "host invalid", src: oneRoute("name: r, method: GET, path: /, host: \"-bad-.example\", upstream: app, auth: none"), want: "4:44: routes[0].host", msg: "not a valid host name"},
		{name: "upstream missing", src: oneRoute("name: r, method: GET, path: /, auth: none"), want: "4:5: routes[0].upstream", msg: "is required"},
		{name: "upstream unknown", src: oneRoute("name: r, method: GET, path: /, upstream: nope, auth: none"), want: "4:48: routes[0].upstream", msg: `unknown upstream "nope"`},
		{name: "max_body_size 0", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, max_body_size: 0"), want: "4:80: routes[0].max_body_size", msg: "must be greater than 0"},
		{name: "websocket on POST", src: oneRoute("name: r, method: POST, path: /, upstream: app, auth: none, websocket: true"), want: "4:77: routes[0].websocket", msg: "only allowed on a GET route"},
		{
			name: "same method and path",
			src:  twoRoutes("name: a, method: GET, path: \"/a/{x}\", upstream: app, auth: none", "name: b, method: GET, path: \"/a/{y}\", upstream: app, auth: none"),
			want: "5:35: routes[1].path",
			msg:  `same method, path and host as route "a" (routes[0])`,
		},
		{
			name: "same path on the same host, spelled differently",
			src:  twoRoutes("name: a, method: GET, path: /a, host: API.example.com, upstream: app, auth: none", "name: b, method: GET, path: /a, host: api.example.com, upstream: app, auth: none"),
			want: "5:35: routes[1].path",
			msg:  `same method, path and host as route "a"`,
		},
		{
			name: "OPTIONS beside cors",
			src:  twoRoutes("name: a, method: GET, path: \"/a/{id}\", upstream: app, auth: none, cors: { origins: [\"*\"] }", "name: b, method: OPTIONS, path: \"/a/{x}\", upstream: app, auth: none"),
			want: "5:24: routes[1].method",
			msg:  `an OPTIONS route cannot share its path with route "a", which has cors`,
		},
		{name: "cors without origins", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { max_age: 1h }"), want: "4:71: routes[0].cors.origins", msg: "needs at least one origin"},
		{name: "cors empty origins", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [] }"), want: "4:82: routes[0].cors.origins", msg: "needs at least one origin"},
		{name: "cors origin with path", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"https://a.example/\"] }"), want: "4:83: routes[0].cors.origins[0]", msg: "scheme://host[:port]"},
		{name: "cors origin upper-case", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"https://A.example\"] }"), want: "4:83: routes[0].cors.origins[0]", msg: "must be lower-case"},
		{name: "cors origin without scheme", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [a.example] }"), want: "4:83: routes[0].cors.origins[0]", msg: "scheme://host[:port]"},
		{name: "cors origin null", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"null\"] }"), want: "4:83: routes[0].cors.origins[0]", msg: "scheme://host[:port]"},
		{name: "cors origin bad port", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"https://a.example:x\"] }"), want: "4:83: routes[0].cors.origins[0]", msg: "scheme://host[:port]"},
		{name: "cors credentials with star", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"*\"], credentials: true }"), want: "4:102: routes[0].cors.credentials", msg: `cannot be true with origin "*"`},
		{name: "cors method lower-case", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"*\"], methods: [get] }"), want: "4:99: routes[0].cors.methods[0]", msg: "not a valid upper-case method"},
		{name: "cors header", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"*\"], headers: [\"X:Y\"] }"), want: "4:99: routes[0].cors.headers[0]", msg: "not a valid header name"},
		{name: "cors expose header", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"*\"], expose_headers: [\"a b\"] }"), want: "4:106: routes[0].cors.expose_headers[0]", msg: "not a valid header name"},
		{name: "cors negative max_age", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, cors: { origins: [\"*\"], max_age: -1s }"), want: "4:98: routes[0].cors.max_age", msg: "must not be negative"},
	})
}

func TestValidateRoutesAccepted(t *testing.T) {
	cfg := mustParse(t, lines(
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: get-a, method: GET, path: \"/a/{id}\", upstream: app, auth: none, websocket: true, cors: { origins: [\"https://x.example:8443\", \"http://localhost\"], credentials: true, methods: [GET, PUT], headers: [content-type], max_age: 10m } }",
		"  - { name: put-a, method: PUT, path: \"/a/{other}\", upstream: app, auth: none, cors: { origins: [\"*\"] } }",
		"  - { name: get-a-host, method: GET, path: \"/a/{id}\", host: API.Example.com, upstream: app, auth: none }",
		"  - { name: head-a, method: HEAD, path: \"/a/{id}\", upstream: app, auth: none }",
		"  - { name: options-b, method: OPTIONS, path: /b, upstream: app, auth: none }",
		"  - { name: catch-all, method: GET, path: \"/static/*\", upstream: app, auth: none }",
		"  - { name: re, method: GET, path: \"/n/{n:[0-9]{3}}\", upstream: app, auth: none }",
		"  - { name: re.other, method: GET, path: \"/n/{n:[a-z]+}\", upstream: app, auth: none }",
		"  - { name: root, method: GET, path: /, upstream: app, auth: none }",
		"  - { name: slash, method: GET, path: /a/, upstream: app, auth: none }",
	), nil)
	if got, want := cfg.Routes[2].Host, "api.example.com"; got != want {
		t.Errorf("host = %q, want %q (lower-cased)", got, want)
	}
}

func TestRoutePattern(t *testing.T) {
	tests := []struct {
		path    string
		want    string
		wantErr string
	}{
		{path: "/", want: "/"},
		{path: "/orders", want: "/orders"},
		{path: "/orders/", want: "/orders/"},
		{path: "/orders/{orderId}", want: "/orders/{}"},
		{path: "/orders/{id}/items/{item_id}", want: "/orders/{}/items/{}"},
		{path: "/orders/{id:[0-9]+}", want: "/orders/{:[0-9]+}"},
		{path: "/n/{n:[0-9]{3}}", want: "/n/{:[0-9]{3}}"},
		{path: `/n/{n:\d+}`, want: `/n/{:\d+}`},
		{path: "/static/*", want: "/static/*"},
		{path: "/*", want: "/*"},
		{path: "/v1:batch/a@b/~x/a,b;c=d/$!'()+&", want: "/v1:batch/a@b/~x/a,b;c=d/$!'()+&"},
		{path: "/café", want: "/café"},
		{path: "", wantErr: "is required"},
		{path: "orders", wantErr: "must start with /"},
		{path: "//orders", wantErr: "must not contain //"},
		{path: "/a//b", wantErr: "must not contain //"},
		{path: "/a/./b", wantErr: "must not contain . or .. segments"},
		{path: "/a/..", wantErr: "must not contain . or .. segments"},
		{path: "/a/%2e", wantErr: "must not contain %"},
		{path: `/a\b`, wantErr: `must not contain \`},
		{path: "/a?b", wantErr: "must not contain ?"},
		{path: "/a#b", wantErr: "must not contain #"},
		{path: "/a b", wantErr: "must not contain spaces or control characters"},
		{path: "/a\tb", wantErr: "must not contain spaces or control characters"},
		{path: "/a\x00", wantErr: "must not contain spaces or control characters"},
		{path: "/a\x7f", wantErr: "must not contain spaces or control characters"},
		{path: "/a\xff", wantErr: "must be valid UTF-8"},
		{path: "/a/<b>", wantErr: `character '<' is not allowed`},
		{path: "/a/[b]", wantErr: `character '[' is not allowed`},
		{path: "/files/{name}.json", wantErr: "a {param} must be a whole path segment"},
		{path: "/files/x{name}", wantErr: "a {param} must be a whole path segment"},
		{path: "/files/{name", wantErr: "a {param} must be a whole path segment"},
		{path: "/files/{a}{b}", wantErr: "invalid parameter {a}{b}"},
		{path: "/a/{}", wantErr: "invalid parameter {}"},
		{path: "/a/{1x}", wantErr: "invalid parameter {1x}"},
		{path: "/a/{x-y}", wantErr: "invalid parameter {x-y}"},
		{path: "/a/{id}/b/{id}", wantErr: "parameter {id} appears twice"},
		{path: "/a/{id:}", wantErr: "must be a non-empty regexp"},
		{path: "/a/{id:[a}]}", wantErr: "balanced braces"},
		{path: "/a/{id:[}", wantErr: "not a valid regexp: error parsing regexp: missing closing ]"},
		{path: "/a/{id:(}", wantErr: "not a valid regexp"},
		{path: "/a/{id:a b}", wantErr: "must not contain spaces"},
		{path: "/a/{p:x/y}", wantErr: "a {param} must be a whole path segment"},
		{path: "/*/a", wantErr: "* is only allowed as the whole last segment"},
		{path: "/a*", wantErr: "* is only allowed as the whole last segment"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := RoutePattern(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RoutePattern(%q) error = %v, want %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("RoutePattern(%q) = %q, %v, want %q", tt.path, got, err, tt.want)
			}
		})
	}
}
