package e2e

// The API inventory (docs/validation.md "Inventory and deprecation",
// docs/operations.md): deprecation headers and counts of deprecated
// operations, the admin endpoint /inventory across a reload, and the
// bulwark inventory command with and without a running gateway.

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// invSpec is the spec of these tests: listOrders, getOrder, and the
// deprecated listLegacyOrders and getLegacyOrder.
func invSpec(t testing.TB) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/inventory/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"shop.yaml": b}
}

// invDeprecations dates listLegacyOrders; getLegacyOrder stays undated.
const invDeprecations = `
    deprecations:
      listLegacyOrders:
        since: 2026-01-01
        sunset: 2027-01-01T00:00:00Z
        link: https://example.com/docs/migrate`

// invConfig validates four routes against the shop spec; list is the
// name of the GET /orders route (a reload renames it).
func invConfig(upstreamURL, list string) string {
	v := "validate: { spec: shop }"
	return baseConfig(upstreamURL,
		route(list, "GET", "/orders", v),
		route("show", "GET", "/orders/{id}", v),
		route("legacy", "GET", "/legacy/orders", v),
		route("legacy-one", "GET", "/legacy/orders/{id}", v),
	) + "specs:\n  shop:\n    file: shop.yaml" + invDeprecations + "\n"
}

// invUpstream streams its answers (flushed before the end, so not
// buffered by the gateway) and sends headers that collide with the
// gateway's: its own Deprecation and a pagination Link. /legacy/orders/{id}
// sends a 103 Early Hints first (after which ReverseProxy clears the
// headers already set).
func invUpstream(t testing.TB) *upstream {
	return startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/legacy/orders/") {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/legacy/") {
			w.Header().Set("Deprecation", "@1")
			w.Header().Add("Link", `</legacy/orders?page=2>; rel="next"`)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"items":[`)
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, `]}`)
	}))
}

func TestDeprecationHeaders(t *testing.T) {
	up := invUpstream(t)
	g := startGateway(t, invConfig("http://"+up.addr, "list"), invSpec(t))
	const link = `<https://example.com/docs/migrate>; rel="deprecation"`
	tests := []struct {
		name        string
		path        string
		status      int
		deprecation []string
		sunset      []string
		links       []string
	}{
		{name: "dated, with sunset and link", path: "/legacy/orders", status: 200,
			deprecation: []string{"@1767225600"}, sunset: []string{"Fri, 01 Jan 2027 00:00:00 GMT"},
			links: []string{`</legacy/orders?page=2>; rel="next"`, link}},
		{name: "undated: the epoch, after a 103", path: "/legacy/orders/7", status: 200,
			deprecation: []string{"@0"}, links: []string{`</legacy/orders?page=2>; rel="next"`}},
		{name: "on the gateway's own 400 too", path: "/legacy/orders/x", status: 400, deprecation: []string{"@0"}},
		{name: "not deprecated", path: "/orders", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, nil, "GET", g.URL(tt.path))
			if a.status != tt.status {
				t.Fatalf("GET %s = %d, want %d (%s)", tt.path, a.status, tt.status, a.body)
			}
			for _, h := range []struct {
				name      string
				got, want []string
			}{
				{"Deprecation", a.header.Values("Deprecation"), tt.deprecation},
				{"Sunset", a.header.Values("Sunset"), tt.sunset},
				{"Link", a.header.Values("Link"), tt.links},
			} {
				got := slices.Clone(h.got)
				slices.Sort(got)
				want := slices.Clone(h.want)
				slices.Sort(want)
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("GET %s %s = %q, want %q", tt.path, h.name, h.got, h.want)
				}
			}
		})
	}
	for route, want := range map[string]float64{"legacy": 1, "legacy-one": 2} {
		if got := g.metric(t, `bulwark_deprecated_requests_total{route="`+route+`"}`); got != want {
			t.Errorf(`bulwark_deprecated_requests_total{route=%q} = %v, want %v`, route, got, want)
		}
	}
	if got := g.metric(t, `bulwark_deprecated_requests_total{route="list"}`); got != -1 {
		t.Errorf(`bulwark_deprecated_requests_total{route="list"} = %v, want no series`, got)
	}
}

// invOp is an operation of the /inventory document.
type invOp struct {
	Method      string     `json:"method"`
	Path        string     `json:"path"`
	OperationID string     `json:"operation_id"`
	Deprecated  bool       `json:"deprecated"`
	Routes      []string   `json:"routes"`
	Requests    *int64     `json:"requests"`
	LastSeen    *time.Time `json:"last_seen"`
}

type invDoc struct {
	Specs []struct {
		Name       string  `json:"name"`
		Title      string  `json:"title"`
		Version    string  `json:"version"`
		Operations []invOp `json:"operations"`
	} `json:"specs"`
	Undocumented []json.RawMessage `json:"undocumented"`
}

// ops returns the operations of the shop spec by operationId.
func (d invDoc) ops(t testing.TB) map[string]invOp {
	t.Helper()
	if len(d.Specs) != 1 || d.Specs[0].Name != "shop" || d.Specs[0].Title != "Shop" || d.Specs[0].Version != "1.4.0" {
		t.Fatalf("specs = %+v, want the shop spec (Shop 1.4.0) alone", d.Specs)
	}
	m := map[string]invOp{}
	for _, o := range d.Specs[0].Operations {
		m[o.OperationID] = o
	}
	return m
}

func getInventory(t testing.TB, g *gateway) invDoc {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/inventory")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /inventory = %d %q, want 200 application/json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var d invDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("GET /inventory: %v: %s", err, body)
	}
	return d
}

// checkCounts checks the requests of each operation, and that last_seen is
// set exactly when requests are.
func checkCounts(t testing.TB, ops map[string]invOp, want map[string]int64) {
	t.Helper()
	for id, n := range want {
		o, ok := ops[id]
		switch {
		case !ok:
			t.Errorf("operation %s missing", id)
		case o.Requests == nil || *o.Requests != n:
			t.Errorf("%s requests = %v, want %d", id, o.Requests, n)
		case (o.LastSeen != nil) != (n > 0):
			t.Errorf("%s last_seen = %v with %d requests", id, o.LastSeen, n)
		}
	}
}

// TestInventory: /inventory counts each operation's requests, keeps them
// across a reload, and bulwark inventory shows them, or the operations
// alone once the gateway is gone.
func TestInventory(t *testing.T) {
	up := invUpstream(t)
	g := startGateway(t, invConfig("http://"+up.addr, "list"), invSpec(t))
	for _, p := range []string{"/orders", "/orders", "/orders/1", "/orders/x"} {
		send(t, nil, "GET", g.URL(p))
	}
	ops := getInventory(t, g).ops(t)
	checkCounts(t, ops, map[string]int64{"listOrders": 2, "getOrder": 2, "listLegacyOrders": 0, "getLegacyOrder": 0})
	if o := ops["listLegacyOrders"]; !o.Deprecated || o.Method != "GET" || o.Path != "/legacy/orders" || !slices.Equal(o.Routes, []string{"legacy"}) {
		t.Errorf("listLegacyOrders = %+v, want GET /legacy/orders, deprecated, routes [legacy]", o)
	}

	g.reload(t, invConfig("http://"+up.addr, "list-all"))
	if !strings.Contains(g.Logs(), `"config reloaded"`) {
		t.Fatalf("reload refused:\n%s", g.Logs())
	}
	send(t, nil, "GET", g.URL("/orders"))
	ops = getInventory(t, g).ops(t)
	checkCounts(t, ops, map[string]int64{"listOrders": 3, "getOrder": 2})
	if r := ops["listOrders"].Routes; !slices.Equal(r, []string{"list-all"}) {
		t.Errorf("listOrders routes after the reload = %q, want [list-all]", r)
	}

	adminURL := "http://" + g.admin
	stdout, stderr, code := runCLI(t, "inventory", "--config", g.configPath, "--admin-url", adminURL)
	if code != 0 {
		t.Fatalf("bulwark inventory = %d, want 0\n%s%s", code, stdout, stderr)
	}
	for _, p := range []string{
		`^spec shop: Shop 1\.4\.0 \(4 operations, 2 seen, 2 never seen\)$`,
		`^listOrders +GET +/orders +no +list-all +3 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`,
		`^getOrder +GET +/orders/\{id\} +no +show +2 +\d{4}-`,
		`^listLegacyOrders +GET +/legacy/orders +yes +legacy +0 +never$`,
		`^undocumented requests: none$`,
	} {
		if !regexp.MustCompile(`(?m)` + p).MatchString(stdout) {
			t.Errorf("bulwark inventory output does not match %q:\n%s", p, stdout)
		}
	}
	stdout, _, code = runCLI(t, "inventory", "--config", g.configPath, "--admin-url", adminURL, "--json")
	var d invDoc
	if err := json.Unmarshal([]byte(stdout), &d); code != 0 || err != nil {
		t.Fatalf("bulwark inventory --json = %d, %v:\n%s", code, err, stdout)
	}
	checkCounts(t, d.ops(t), map[string]int64{"listOrders": 3, "getOrder": 2, "getLegacyOrder": 0})

	g.stop(t)
	stdout, stderr, code = runCLI(t, "inventory", "--config", g.configPath, "--admin-url", adminURL)
	if code != 0 {
		t.Errorf("bulwark inventory without a gateway = %d, want 0\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "request counts unknown") {
		t.Errorf("stderr does not say the counts are unknown:\n%s", stderr)
	}
	for _, p := range []string{
		`^spec shop: Shop 1\.4\.0 \(4 operations, request counts unknown\)$`,
		`^listOrders +GET +/orders +no +list-all +\? +unknown$`,
	} {
		if !regexp.MustCompile(`(?m)` + p).MatchString(stdout) {
			t.Errorf("output without a gateway does not match %q:\n%s", p, stdout)
		}
	}
	stdout, _, _ = runCLI(t, "inventory", "--config", g.configPath, "--admin-url", adminURL, "--json")
	if !strings.Contains(stdout, `"requests": null`) {
		t.Errorf("--json without a gateway: requests are not null:\n%s", stdout)
	}
}

// TestInventoryUndocumented: on an upstream whose routes come from a spec,
// requests that match no operation are counted, and /inventory lists their
// paths as templates, without ids or query strings.
func TestInventoryUndocumented(t *testing.T) {
	up := invUpstream(t)
	spec, err := os.ReadFile("testdata/inventory/public.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := `server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
upstreams:
  api: { url: "http://` + up.addr + `" }
specs:
  shop: { file: shop.yaml }
routes_from_spec:
  - { spec: shop, upstream: api, allow_public: true }
routes: []
`
	g := startGateway(t, cfg, map[string][]byte{"shop.yaml": spec})
	for _, r := range []struct {
		path   string
		status int
	}{
		{"/orders", 200},
		{"/users/123/orders", 404},
		{"/users/456/orders?token=s3cr3t", 404},
		{"/debug/alice@example.com", 404},
	} {
		if a := send(t, nil, "GET", g.URL(r.path)); a.status != r.status {
			t.Errorf("GET %s = %d, want %d", r.path, a.status, r.status)
		}
	}
	if got := g.metric(t, `bulwark_undocumented_requests_total{upstream="api"}`); got != 3 {
		t.Errorf(`bulwark_undocumented_requests_total{upstream="api"} = %v, want 3`, got)
	}
	d := getInventory(t, g)
	checkCounts(t, d.ops(t), map[string]int64{"listOrders": 1, "getOrder": 0})
	raw, err := json.Marshal(d.Undocumented)
	if err != nil {
		t.Fatal(err)
	}
	var ups []struct {
		Upstream string `json:"upstream"`
		Requests int64  `json:"requests"`
		Paths    []struct {
			Template string `json:"template"`
			Requests int64  `json:"requests"`
		} `json:"paths"`
		OtherRequests int64 `json:"other_requests"`
	}
	if err := json.Unmarshal(raw, &ups); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range ups {
		for _, p := range u.Paths {
			got = append(got, u.Upstream+" "+p.Template+" "+strconv.FormatInt(p.Requests, 10))
		}
	}
	if want := []string{"api /users/{id}/orders 2", "api /debug/{id} 1"}; !slices.Equal(got, want) {
		t.Errorf("undocumented paths = %q, want %q", got, want)
	}
	for _, leak := range []string{"123", "456", "s3cr3t", "alice"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("/inventory keeps %q of a raw path: %s", leak, raw)
		}
	}
}

// TestInventoryConfigErrors: deprecations must name deprecated operations
// of the spec; bulwark inventory refuses a bad config like validate.
func TestInventoryConfigErrors(t *testing.T) {
	spec := invSpec(t)["shop.yaml"]
	tests := []struct {
		name  string
		deps  string
		want  string // matches a line of stderr, after the file name
		wantN int
	}{
		{name: "unknown operation", deps: "\n    deprecations:\n      nope: { since: 2026-01-01 }",
			want: `:\d+:7: specs\.shop\.deprecations\.nope: the spec has no operation with operationId "nope"`},
		{name: "not deprecated", deps: "\n    deprecations:\n      listOrders: { since: 2026-01-01 }",
			want: `:\d+:7: specs\.shop\.deprecations\.listOrders: operation "listOrders" \(GET /orders\) is not marked deprecated`},
		{name: "sunset before since", deps: "\n    deprecations:\n      getLegacyOrder: { since: 2026-06-01, sunset: 2026-01-01 }",
			want: `:\d+:\d+: specs\.shop\.deprecations\.getLegacyOrder\.sunset: is before since`},
		{name: "link that could break the header", deps: "\n    deprecations:\n      getLegacyOrder: { link: \"https://example.com/a>b\" }",
			want: `:\d+:\d+: specs\.shop\.deprecations\.getLegacyOrder\.link: must be a URL`},
		{name: "not a date", deps: "\n    deprecations:\n      getLegacyOrder: { since: soon }",
			want: `:\d+:\d+: specs\.shop\.deprecations\.getLegacyOrder\.since: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "shop.yaml"), spec)
			path := filepath.Join(dir, "bulwark.yaml")
			cfg := baseConfig("http://127.0.0.1:9", route("list", "GET", "/orders", "validate: { spec: shop }")) +
				"specs:\n  shop:\n    file: shop.yaml" + tt.deps + "\n"
			writeFile(t, path, []byte(cfg))
			stdout, stderr, code := runCLI(t, "inventory", "--config", path)
			if code != 1 {
				t.Errorf("bulwark inventory = %d, want 1\n%s%s", code, stdout, stderr)
			}
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + tt.want).MatchString(stderr) {
				t.Errorf("stderr does not match %q:\n%s", tt.want, stderr)
			}
		})
	}
}

// TestInventoryRestricted: /inventory is restricted like /metrics on an
// admin listener bound beyond loopback.
func TestInventoryRestricted(t *testing.T) {
	up := startUpstream(t, nil)
	cfg := strings.Replace(baseConfig("http://"+up.addr, route("x", "GET", "/x")),
		"admin:\n  listen: \"127.0.0.1:0\"\n", "admin: { listen: \"0.0.0.0:0\" }\n", 1)
	g := startExposedGateway(t, cfg)
	if a := adminGet(t, g.admin, "/inventory", ""); a.status != http.StatusForbidden || a.problem != "urn:bulwark:problem:admin-forbidden" {
		t.Errorf("GET /inventory beyond loopback without allow = %d %q, want 403 admin-forbidden", a.status, a.problem)
	}
}
