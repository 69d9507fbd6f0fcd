package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// srSpec is the spec that drives the routes (testdata/specroutes).
func srSpec(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "specroutes", "orders.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// srConfig is a gateway whose routes come from the orders spec: a jwt
// authenticator corp (jwksURL) and an api_key authenticator keys with one
// consumer holding apiKey, an orders upstream at upstreamAddr, the
// routes_from_spec entry's extra keys (entry, e.g. "allow_public: true")
// and explicit routes.
func srConfig(upstreamAddr, jwksURL, apiKey, entry string, routes ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
log:
  level: debug
upstreams:
  orders: { url: %q }
authenticators:
%s
  keys: { type: api_key, header: X-API-Key }
consumers:
  - { id: acme, api_keys: [ { id: k1, sha256: %q } ] }
specs:
  orders: { file: orders.yaml }
routes_from_spec:
  - spec: orders
    upstream: orders
`, "http://"+upstreamAddr, jwtAuthenticator("corp", jwksURL), sha256Hex(apiKey))
	if entry != "" {
		b.WriteString("    " + entry + "\n")
	}
	if len(routes) > 0 {
		b.WriteString("routes:\n" + strings.Join(routes, "\n") + "\n")
	}
	return b.String()
}

// srSend makes a request with a JSON body (nil: none) and header
// name/value pairs, and returns the answer.
func srSend(t testing.TB, method, url string, body []byte, hdr ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := authClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestSpecRoutesServe runs a gateway whose routes are the spec's
// operations: each authenticates as its security says, validates as the
// spec says, an explicit route replaces one operation, and everything
// else under the spec's prefix is a 404 that never reaches the upstream.
func TestSpecRoutesServe(t *testing.T) {
	up := startUpstream(t, nil)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	apiKey := "bwk_" + randomSecret(t)
	cfg := srConfig(up.addr, keys.url(), apiKey, "allow_public: true",
		// Replaces deleteOrder (corp with orders:admin): API keys delete.
		"  - { name: ops-delete, method: DELETE, path: \"/v1/orders/{id}\", upstream: orders, auth: [keys] }")
	g := startGateway(t, cfg, map[string][]byte{"orders.yaml": srSpec(t)})

	token := func(scope string) string { return "Bearer " + signRS256(t, key, "a", claims("alice", scope)) }
	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		status       int
		slug         string // problem type of a refusal
		reached      bool   // the upstream saw the request
	}{
		{name: "list with a token", method: "GET", path: "/v1/orders", hdr: []string{"Authorization", token("orders:read")}, status: 200, reached: true},
		{name: "list without credentials", method: "GET", path: "/v1/orders", status: 401, slug: "unauthenticated"},
		{name: "list without the scope", method: "GET", path: "/v1/orders", hdr: []string{"Authorization", token("orders:write")}, status: 403, slug: "insufficient-scope"},
		{name: "list with an API key, which the spec does not allow", method: "GET", path: "/v1/orders", hdr: []string{"X-API-Key", apiKey}, status: 401, slug: "unauthenticated"},
		{name: "create", method: "POST", path: "/v1/orders", body: `{"item":"book"}`, hdr: []string{"Authorization", token("orders:write")}, status: 200, reached: true},
		{name: "create with an invalid body", method: "POST", path: "/v1/orders", body: `{"item":""}`, hdr: []string{"Authorization", token("orders:write")}, status: 400, slug: "invalid-request"},
		{name: "create with an extra property (strict)", method: "POST", path: "/v1/orders", body: `{"item":"x","admin":true}`, hdr: []string{"Authorization", token("orders:write")}, status: 400, slug: "invalid-request"},
		{name: "create with the read scope", method: "POST", path: "/v1/orders", body: `{"item":"book"}`, hdr: []string{"Authorization", token("orders:read")}, status: 403, slug: "insufficient-scope"},
		{name: "get with a token", method: "GET", path: "/v1/orders/42", hdr: []string{"Authorization", token("")}, status: 200, reached: true},
		{name: "get with an API key", method: "GET", path: "/v1/orders/42", hdr: []string{"X-API-Key", apiKey}, status: 200, reached: true},
		{name: "get with a path parameter the spec refuses", method: "GET", path: "/v1/orders/abc", hdr: []string{"X-API-Key", apiKey}, status: 400, slug: "invalid-request"},
		{name: "get without credentials", method: "GET", path: "/v1/orders/42", status: 401, slug: "unauthenticated"},
		{name: "public operation", method: "GET", path: "/v1/health", status: 200, reached: true},
		{name: "replaced operation, by its explicit route", method: "DELETE", path: "/v1/orders/42", hdr: []string{"X-API-Key", apiKey}, status: 200, reached: true},
		{name: "replaced operation, no longer the spec's security", method: "DELETE", path: "/v1/orders/42", hdr: []string{"Authorization", token("orders:admin")}, status: 401, slug: "unauthenticated"},
		{name: "undocumented path", method: "GET", path: "/v1/admin/users", hdr: []string{"Authorization", token("orders:read")}, status: 404, slug: "undocumented-endpoint"},
		{name: "undocumented sub-path", method: "POST", path: "/v1/orders/42/refund", status: 404, slug: "undocumented-endpoint"},
		{name: "the prefix itself", method: "GET", path: "/v1", status: 404, slug: "undocumented-endpoint"},
		{name: "undocumented method of a documented path", method: "PUT", path: "/v1/orders", status: 405, slug: "method-not-allowed"},
		{name: "outside the prefix", method: "GET", path: "/orders", status: 404, slug: "not-found"},
		{name: "a longer first segment is outside the prefix", method: "GET", path: "/v1x/orders", status: 404, slug: "not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			a := srSend(t, tt.method, g.URL(tt.path), body, tt.hdr...)
			if tt.slug != "" {
				a.problem(t, tt.status, tt.slug)
			} else if a.status != tt.status {
				t.Errorf("%s %s = %d, want %d (%s)", tt.method, tt.path, a.status, tt.status, a.body)
			}
			if got := up.hits.Load() > before; got != tt.reached {
				t.Errorf("upstream reached = %v, want %v", got, tt.reached)
			}
		})
	}

	// Three undocumented requests above: counted for the upstream, and
	// labelled with the catch-all's name.
	if got := metricSum(t, g, "bulwark_undocumented_requests_total", `upstream="orders"`); got != 3 {
		t.Errorf("bulwark_undocumented_requests_total{upstream=\"orders\"} = %v, want 3", got)
	}
	if got := metricSum(t, g, "bulwark_denials_total", `route="orders.undocumented"`, `reason="undocumented"`); got != 3 {
		t.Errorf("bulwark_denials_total{route=\"orders.undocumented\",reason=\"undocumented\"} = %v, want 3", got)
	}
	if got := metricSum(t, g, "bulwark_requests_total", `route="getOrder"`); got != 4 {
		t.Errorf("bulwark_requests_total{route=\"getOrder\"} = %v, want 4 (the generated route's name is the operationId)", got)
	}
}

// TestSpecRoutesPublicNeedsAllowPublic checks that an operation the spec
// makes public (security: []) is refused at load unless the config says
// allow_public: true, with the entry's position and the operation named.
func TestSpecRoutesPublicNeedsAllowPublic(t *testing.T) {
	up := startUpstream(t, nil)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "orders.yaml"), srSpec(t))
	path := filepath.Join(dir, "bulwark.yaml")
	writeFile(t, path, []byte(srConfig(up.addr, keys.url(), "bwk_x", "")))
	_, stderr, code := runCLI(t, "validate", "--config", path)
	if code == 0 {
		t.Fatalf("bulwark validate accepted a public operation without allow_public:\n%s", stderr)
	}
	want := path + ":22:5: routes_from_spec[0]: operation getHealth (GET /health): is public in the spec (security: []), and allow_public is false"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not contain\n%s\ngot:\n%s", want, stderr)
	}

	// With allow_public the same config serves the operation to anyone.
	g := startGateway(t, srConfig(up.addr, keys.url(), "bwk_x", "allow_public: true"), map[string][]byte{"orders.yaml": srSpec(t)})
	before := up.hits.Load()
	if a := send(t, nil, "GET", g.URL("/v1/health")); a.status != http.StatusOK || up.hits.Load() != before+1 {
		t.Errorf("GET /v1/health = %d (upstream hits %d -> %d), want 200 from the upstream", a.status, before, up.hits.Load())
	}
}
