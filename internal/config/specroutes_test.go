package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// srSpecHead is the start of the test spec: a server prefix of /v1, a
// bearer scheme (corp) and an API key scheme (keys), and document-level
// security (corp with orders:read).
const srSpecHead = `openapi: 3.0.3
info: { title: Orders, version: "1" }
servers: [{ url: "https://api.example.com/v1" }]
components:
  securitySchemes:
    corp: { type: http, scheme: bearer, bearerFormat: JWT }
    keys: { type: apiKey, in: header, name: X-API-Key }
    partner: { type: http, scheme: bearer }
    basic: { type: http, scheme: basic }
`

// srSpecPaths are the operations of the test spec: listOrders (document
// security), createOrder (its own), getOrder (corp or keys, no scopes).
const srSpecPaths = `paths:
  /orders:
    get:
      operationId: listOrders
      responses: { "200": { description: ok } }
    post:
      operationId: createOrder
      security: [{ corp: [orders:write] }]
      requestBody:
        required: true
        content:
          application/json:
            schema: { type: object, required: [item], properties: { item: { type: string } } }
      responses: { "201": { description: created } }
  /orders/{order-id}:
    get:
      operationId: getOrder
      parameters: [{ name: order-id, in: path, required: true, schema: { type: integer } }]
      security: [{ corp: [] }, { keys: [] }]
      responses: { "200": { description: ok } }
`

// srSpec writes a spec made of srSpecHead, the document security line
// (sec, "" for none), srSpecPaths and more path items, and returns its
// path.
func srSpec(t testing.TB, sec, more string) string {
	t.Helper()
	src := srSpecHead
	if sec != "" {
		src += sec + "\n"
	}
	src += srSpecPaths + more
	return writeFile(t, t.TempDir(), "orders.yaml", src)
}

// srOp is one more path item for srSpec.
func srOp(path, method, fields string) string {
	return "  " + path + ":\n    " + method + ":\n      " + strings.ReplaceAll(fields, "\n", "\n      ") +
		"\n      responses: { \"200\": { description: ok } }\n"
}

const srDocSecurity = "security: [{ corp: [orders:read] }]"

// srConfig is a config whose routes_from_spec entry (line 9, the entry's
// mapping at column 5) is entry, validating against the spec at spec;
// more are lines after it (routes: ...).
func srConfig(spec, entry string, more ...string) string {
	return lines(append([]string{
		"upstreams:",
		"  orders: { url: \"http://127.0.0.1:9000\" }",
		"authenticators:",
		"  corp: { type: jwt, issuer: \"https://idp.example.com\", audiences: [api], algorithms: [RS256], jwks_url: \"https://idp.example.com/jwks\" }",
		"  keys: { type: api_key }",
		"specs:",
		"  orders: { file: " + filepath.ToSlash(spec) + " }",
		"routes_from_spec:",
		"  - { " + entry + " }",
	}, more...)...)
}

func TestSpecRoutesExpand(t *testing.T) {
	spec := srSpec(t, srDocSecurity, srOp("/health", "get", "security: []"))
	cfg := mustParse(t, srConfig(spec, "spec: orders, upstream: orders, allow_public: true, name_prefix: o., validate: { response: report, strict_query: true }"), nil)
	type got struct {
		name, method, path string
		auth               AuthList
		scopes             []string
		op                 string
	}
	var routes []got
	for _, rt := range cfg.Routes {
		g := got{name: rt.Name, method: rt.Method, path: rt.Path, auth: rt.Auth, op: rt.Validate.Operation}
		if rt.Require != nil {
			g.scopes = rt.Require.Scopes
		}
		routes = append(routes, g)
		if v := rt.Validate; v.Spec != "orders" || v.Request != ValidateEnforce || v.Response != ValidateReport || !v.Strict || !v.StrictQuery || v.JSON.MaxDepth != 32 {
			t.Errorf("route %s: validate = %+v, want spec orders, request enforce, response report, strict, strict_query, default json limits", rt.Name, *v)
		}
		if rt.Upstream != "orders" {
			t.Errorf("route %s: upstream = %q, want orders", rt.Name, rt.Upstream)
		}
	}
	want := []got{
		{name: "o.get-health", method: "GET", path: "/v1/health", auth: AuthList{None: true}},
		{name: "o.listOrders", method: "GET", path: "/v1/orders", auth: AuthList{Names: []string{"corp"}}, scopes: []string{"orders:read"}, op: "listOrders"},
		{name: "o.createOrder", method: "POST", path: "/v1/orders", auth: AuthList{Names: []string{"corp"}}, scopes: []string{"orders:write"}, op: "createOrder"},
		{name: "o.getOrder", method: "GET", path: "/v1/orders/{order_id}", auth: AuthList{Names: []string{"corp", "keys"}}, op: "getOrder"},
	}
	if len(routes) != len(want) {
		t.Fatalf("routes = %+v, want %+v", routes, want)
	}
	for i := range want {
		g, w := routes[i], want[i]
		if g.name != w.name || g.method != w.method || g.path != w.path || g.op != w.op ||
			g.auth.None != w.auth.None || !slices.Equal(g.auth.Names, w.auth.Names) || !slices.Equal(g.scopes, w.scopes) {
			t.Errorf("routes[%d] = %+v, want %+v", i, g, w)
		}
		if e, ok := cfg.GeneratedBy(i); !ok || e != 0 {
			t.Errorf("GeneratedBy(%d) = %d, %v, want 0, true", i, e, ok)
		}
	}
	if got, want := cfg.Undocumented(), []Undocumented{{Name: "orders.undocumented", Spec: "orders", Upstream: "orders", Prefix: "/v1"}}; !slices.Equal(got, want) {
		t.Errorf("Undocumented() = %+v, want %+v", got, want)
	}
}

func TestSpecRoutesPathPrefix(t *testing.T) {
	tests := []struct {
		name, prefix string
		wantPath     string
		wantCatchAll string
	}{
		{name: "from the spec's servers", prefix: "", wantPath: "/v1/orders", wantCatchAll: "/v1"},
		{name: "none", prefix: `path_prefix: ""`, wantPath: "/orders", wantCatchAll: ""},
		{name: "slash is none", prefix: "path_prefix: /", wantPath: "/orders", wantCatchAll: ""},
		{name: "a server's, with a slash", prefix: "path_prefix: /v1/", wantPath: "/v1/orders", wantCatchAll: "/v1"},
	}
	spec := srSpec(t, srDocSecurity, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := "spec: orders, upstream: orders"
			if tt.prefix != "" {
				entry += ", " + tt.prefix
			}
			cfg := mustParse(t, srConfig(spec, entry), nil)
			if got := cfg.Routes[0].Path; got != tt.wantPath {
				t.Errorf("path = %q, want %q", got, tt.wantPath)
			}
			if got := cfg.Undocumented()[0].Prefix; got != tt.wantCatchAll {
				t.Errorf("catch-all prefix = %q, want %q", got, tt.wantCatchAll)
			}
		})
	}
}

func TestSpecRoutesOverride(t *testing.T) {
	spec := srSpec(t, srDocSecurity, "")
	cfg := mustParse(t, srConfig(spec, "spec: orders, upstream: orders",
		"routes:",
		"  - { name: my-order, method: GET, path: \"/v1/orders/{id}\", upstream: orders, auth: [keys] }",
	), nil)
	var names []string
	for _, rt := range cfg.Routes {
		names = append(names, rt.Name)
	}
	if want := []string{"my-order", "listOrders", "createOrder"}; !slices.Equal(names, want) {
		t.Errorf("routes = %q, want %q (getOrder replaced by my-order)", names, want)
	}
	if _, ok := cfg.GeneratedBy(0); ok {
		t.Errorf("GeneratedBy(0) = true for the explicit route")
	}
	var warned bool
	for _, w := range cfg.Warnings() {
		if where(w) == "11:5: routes[0]" && strings.Contains(w.Msg, `route "my-order" replaces the route of operation getOrder (GET /orders/{order-id}) from routes_from_spec[0]`) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning at 11:5 about the replaced operation; warnings: %v", cfg.Warnings())
	}
}

func TestSpecRoutesWarnings(t *testing.T) {
	spec := srSpec(t, srDocSecurity, srOp("/echo", "trace", "operationId: echo")+
		srOp("/lookup", "get", "operationId: lookup\nsecurity: [{ keys: [] }]"))
	src := lines(
		"upstreams:",
		"  orders: { url: \"http://127.0.0.1:9000\" }",
		"authenticators:",
		"  corp: { type: jwt, issuer: \"https://idp.example.com\", audiences: [api], algorithms: [RS256], jwks_url: \"https://idp.example.com/jwks\" }",
		"  keys: { type: api_key, header: X-Key }",
		"specs:",
		"  orders: { file: "+filepath.ToSlash(spec)+" }",
		"routes_from_spec:",
		"  - { spec: orders, upstream: orders }",
	)
	cfg := mustParse(t, src, nil)
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, where(w)+": "+w.Msg)
	}
	want := []string{
		`5:9: authenticators.keys: the spec's scheme "keys" sends the key in header X-API-Key, but authenticator "keys" reads header X-Key: clients that follow the spec get 401`,
		`9:5: routes_from_spec[0]: operation echo (TRACE /echo) gets no route: the gateway never serves TRACE`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSpecRoutesErrors(t *testing.T) {
	base := srSpec(t, srDocSecurity, "")
	withOp := func(path, method, fields string) string {
		return srSpec(t, srDocSecurity, srOp(path, method, fields))
	}
	explicit := func(fields string) []string { return []string{"routes:", "  - { " + fields + " }"} }
	runErrorCases(t, []errorCase{
		{name: "spec missing", src: srConfig(base, "upstream: orders"), want: "9:5: routes_from_spec[0].spec", msg: "is required"},
		{name: "spec unknown", src: srConfig(base, "spec: nope, upstream: orders"), want: "9:13: routes_from_spec[0].spec", msg: `unknown spec "nope"`},
		{name: "upstream unknown", src: srConfig(base, "spec: orders, upstream: nope"), want: "9:31: routes_from_spec[0].upstream", msg: `unknown upstream "nope"`},
		{name: "upstream missing", src: srConfig(base, "spec: orders"), want: "9:5: routes_from_spec[0].upstream", msg: "is required"},
		{name: "name_prefix", src: srConfig(base, "spec: orders, upstream: orders, name_prefix: a b"), want: "9:52: routes_from_spec[0].name_prefix", msg: "invalid name prefix"},
		{name: "validate request", src: srConfig(base, "spec: orders, upstream: orders, validate: { request: on }"), want: "9:60: routes_from_spec[0].validate.request", msg: "must be enforce, report or off"},
		{name: "validate json", src: srConfig(base, "spec: orders, upstream: orders, validate: { json: { max_depth: 0 } }"), want: "9:70: routes_from_spec[0].validate.json.max_depth", msg: "must be at least 1"},
		{name: "response rule", src: srConfig(base, "spec: orders, upstream: orders, response: { detect: maybe }"), want: "9:59: routes_from_spec[0].response.detect", msg: "must be off, report or block"},
		{name: "path_prefix not a server's", src: srConfig(base, "spec: orders, upstream: orders, path_prefix: /api"), want: "9:52: routes_from_spec[0].path_prefix", msg: `must be "" (none) or the path of one of the spec's servers[].url (/v1)`},
		{
			name: "servers disagree",
			src: srConfig(writeFile(t, t.TempDir(), "s.yaml", strings.Replace(srSpecHead, `servers: [{ url: "https://api.example.com/v1" }]`,
				`servers: [{ url: "https://api.example.com/v1" }, { url: "https://api.example.com/v2" }]`, 1)+srDocSecurity+"\n"+srSpecPaths),
				"spec: orders, upstream: orders"),
			want: "9:13: routes_from_spec[0].spec", msg: "the spec's servers have different path prefixes (/v1, /v2): set path_prefix",
		},
		{
			name: "spec twice",
			src:  srConfig(base, "spec: orders, upstream: orders", "  - { spec: orders, upstream: orders, path_prefix: /x }"),
			want: "10:13: routes_from_spec[1].spec", msg: `spec "orders" already drives routes at routes_from_spec[0]`,
		},
		{
			name: "two entries on one prefix",
			src: lines(
				"upstreams:",
				"  orders: { url: \"http://127.0.0.1:9000\" }",
				"authenticators:",
				"  corp: { type: jwt, issuer: \"https://idp.example.com\", audiences: [api], algorithms: [RS256], jwks_url: \"https://idp.example.com/jwks\" }",
				"  keys: { type: api_key }",
				"specs:",
				"  orders: { file: "+filepath.ToSlash(base)+" }",
				"  copy: { file: "+filepath.ToSlash(base)+" }",
				"routes_from_spec:",
				"  - { spec: orders, upstream: orders }",
				"  - { spec: copy, upstream: orders, name_prefix: c. }",
			),
			want: "11:5: routes_from_spec[1]", msg: "routes_from_spec[0] already covers the path prefix /v1: two catch-alls cannot share it",
		},
		{
			name: "public without allow_public",
			src:  srConfig(withOp("/health", "get", "security: []"), "spec: orders, upstream: orders"),
			want: "9:5: routes_from_spec[0]",
			msg:  "operation GET /health: is public in the spec (security: []), and allow_public is false: set allow_public: true",
		},
		{
			name: "anonymous requirement alone is public",
			src:  srConfig(withOp("/health", "get", "security: [{}]"), "spec: orders, upstream: orders"),
			want: "9:5: routes_from_spec[0]",
			msg:  "operation GET /health: is public in the spec",
		},
		{
			name: "optional authentication",
			src:  srConfig(withOp("/health", "get", "operationId: health\nsecurity: [{}, { corp: [] }]"), "spec: orders, upstream: orders, allow_public: true"),
			want: "9:5: routes_from_spec[0]",
			msg:  "operation health (GET /health): makes authentication optional",
		},
		{
			name: "no security anywhere",
			src:  srConfig(srSpec(t, "", ""), "spec: orders, upstream: orders, allow_public: true"),
			want: "9:5: routes_from_spec[0]",
			msg:  "operation listOrders (GET /orders): declares no security (neither the operation nor the document has security:)",
		},
		{
			name: "scheme not an authenticator",
			src:  srConfig(withOp("/partners", "get", "operationId: listPartners\nsecurity: [{ partner: [] }]"), "spec: orders, upstream: orders"),
			want: "9:5: routes_from_spec[0]",
			msg:  `operation listPartners (GET /partners): security scheme "partner" is not a configured authenticator`,
		},
		{
			name: "schemes together",
			src:  srConfig(withOp("/both", "get", "operationId: both\nsecurity: [{ corp: [], keys: [] }]"), "spec: orders, upstream: orders"),
			want: "9:5: routes_from_spec[0]",
			msg:  "operation both (GET /both): requires the schemes corp and keys together",
		},
		{
			name: "alternatives with different scopes",
			src:  srConfig(withOp("/mixed", "get", "operationId: mixed\nsecurity: [{ corp: [orders:read] }, { keys: [] }]"), "spec: orders, upstream: orders"),
			want: "9:5: routes_from_spec[0]",
			msg:  "operation mixed (GET /mixed): its security alternatives need different scopes ([orders:read] and [])",
		},
		{
			name: "path that cannot be a route",
			src:  srConfig(withOp("/files/{name}.json", "get", "operationId: getFile\nparameters: [{ name: name, in: path, required: true, schema: { type: string } }]"), "spec: orders, upstream: orders"),
			want: "9:5: routes_from_spec[0]",
			msg:  "operation getFile (GET /files/{name}.json): path /v1/files/{name}.json cannot be a route: a {param} must be a whole path segment",
		},
		{
			name: "name taken by an explicit route",
			src:  srConfig(base, "spec: orders, upstream: orders", explicit("name: listOrders, method: GET, path: /other, upstream: orders, auth: none")...),
			want: "9:5: routes_from_spec[0]",
			msg:  `operation listOrders (GET /orders): route name "listOrders" is already taken by routes[0]: set name_prefix`,
		},
		{
			name: "name too long",
			src:  srConfig(base, "spec: orders, upstream: orders, name_prefix: "+strings.Repeat("p", 54)),
			want: "9:5: routes_from_spec[0]",
			msg:  `operation createOrder (POST /orders): route name "` + strings.Repeat("p", 54) + `createOrder" is longer than 64 characters`,
		},
		{
			name: "a route check on a generated route",
			src:  srConfig(withOp("/health", "get", "security: []"), "spec: orders, upstream: orders, allow_public: true, response: { views: [{ when: { roles: [admin] }, allow: [$.id] }] }"),
			want: "9:78: routes_from_spec[0].response.views",
			msg:  "operation GET /health: a public route (auth: none) has no principal to choose a view by",
		},
	})
}

func TestSpecRoutesSchemeKinds(t *testing.T) {
	src := lines(
		"upstreams:",
		"  orders: { url: \"http://127.0.0.1:9000\" }",
		"authenticators:",
		"  basic: { type: api_key }",
		"  corp: { type: api_key }",
		"  keys: { type: api_key }",
		"specs:",
		"  orders: { file: "+filepath.ToSlash(srSpec(t, srDocSecurity, srOp("/b", "get", "operationId: b\nsecurity: [{ basic: [] }]")))+" }",
		"routes_from_spec:",
		"  - { spec: orders, upstream: orders }",
	)
	errs := parseErrors(t, src, nil)
	var got []string
	for _, e := range errs {
		got = append(got, where(e)+": "+e.Msg)
	}
	want := []string{
		`10:5: routes_from_spec[0]: operation b (GET /b): security scheme "basic" is an http basic scheme, which no authenticator verifies, but authenticator "basic" is of type api_key`,
		`10:5: routes_from_spec[0]: operation createOrder (POST /orders): security scheme "corp" is an http bearer scheme, but authenticator "corp" is of type api_key`,
		`10:5: routes_from_spec[0]: operation getOrder (GET /orders/{order-id}): security scheme "corp" is an http bearer scheme, but authenticator "corp" is of type api_key`,
		`10:5: routes_from_spec[0]: operation listOrders (GET /orders): security scheme "corp" is an http bearer scheme, but authenticator "corp" is of type api_key`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
