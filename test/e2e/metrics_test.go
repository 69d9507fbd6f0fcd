package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The metrics tests keep docs/metrics.md in sync with what a running
// gateway exports (TestMetricsCatalogue), and check that no label carries
// a value a client chose: a path, a token, a method token, or anything
// else without a bound (TestMetricsLabelsBounded).

const metricsDoc = "../../docs/metrics.md"

// catalogueEntry is one row of a metric table of docs/metrics.md.
type catalogueEntry struct {
	typ    string   // counter, gauge, histogram
	labels []string // sorted label names
}

var (
	// catalogueRow is a row of a metric table: | `name` | type | labels | meaning |
	catalogueRow = regexp.MustCompile("^\\| `(bulwark_[a-z0-9_]+)` \\| ([a-z]+) \\| ([^|]*) \\|")
	// labelValuesRow is a row of the "Label values" table: | `label`, … | values |
	labelValuesRow = regexp.MustCompile("^\\| (`[a-z_]+`(?:, `[a-z_]+`)*) \\| (.*) \\|$")
	backticked     = regexp.MustCompile("`([^`]+)`")
)

// readCatalogue parses the metric tables and the label values table of
// docs/metrics.md.
func readCatalogue(t *testing.T) (metrics map[string]catalogueEntry, labelValues map[string][]string) {
	t.Helper()
	raw, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatalf("read the catalogue: %v", err)
	}
	metrics, labelValues = map[string]catalogueEntry{}, map[string][]string{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if m := catalogueRow.FindStringSubmatch(line); m != nil {
			if _, dup := metrics[m[1]]; dup {
				t.Errorf("%s: %s has two rows", metricsDoc, m[1])
			}
			var labels []string
			for _, l := range backticked.FindAllStringSubmatch(m[3], -1) {
				labels = append(labels, l[1])
			}
			if len(labels) == 0 && strings.TrimSpace(m[3]) != "—" {
				t.Errorf("%s: %s: labels cell %q is neither backticked names nor —", metricsDoc, m[1], m[3])
			}
			sort.Strings(labels)
			metrics[m[1]] = catalogueEntry{typ: m[2], labels: labels}
			continue
		}
		if m := labelValuesRow.FindStringSubmatch(line); m != nil {
			var values []string
			for _, v := range backticked.FindAllStringSubmatch(m[2], -1) {
				values = append(values, v[1])
			}
			for _, l := range backticked.FindAllStringSubmatch(m[1], -1) {
				labelValues[l[1]] = values
			}
		}
	}
	if len(metrics) < 20 {
		t.Fatalf("%s: found %d metric rows, want the whole catalogue (is the table format | `name` | type | labels | meaning |?)", metricsDoc, len(metrics))
	}
	return metrics, labelValues
}

// scrapeFamilies scrapes g's /metrics and parses the exposition text.
func scrapeFamilies(t testing.TB, g *gateway) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	body := scrape(t, g)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return families, body
}

// requestsCounted is the sum of bulwark_requests_total, -1 without it.
func requestsCounted(families map[string]*dto.MetricFamily) float64 {
	f := families["bulwark_requests_total"]
	if f == nil {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// scrapeAfter scrapes g until bulwark_requests_total adds up to at least
// n: a request is counted when its handler returns, which can be just
// after the client read the answer.
func scrapeAfter(t testing.TB, g *gateway, n int) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		families, body := scrapeFamilies(t, g)
		got := requestsCounted(families)
		if got >= float64(n) {
			return families, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("bulwark_requests_total adds up to %v, want >= %d (one per request sent)\n%s", got, n, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// labelValuesOf returns label name → the distinct values it has across
// the bulwark_* families (except those in skip).
func labelValuesOf(families map[string]*dto.MetricFamily, skip ...string) map[string]map[string]bool {
	values := map[string]map[string]bool{}
	for name, f := range families {
		if !strings.HasPrefix(name, "bulwark_") || slices.Contains(skip, name) {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if values[lp.GetName()] == nil {
					values[lp.GetName()] = map[string]bool{}
				}
				values[lp.GetName()][lp.GetValue()] = true
			}
		}
	}
	return values
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// metricsConfig is a gateway that exercises every feature with metrics of
// its own: a jwt authenticator (corp) with a JWKS from the test, an
// api_key authenticator (keys), every rate-limit layer in a real Redis,
// the auth-failure lockout, an audit file, OpenAPI validation (the spec
// metricsSpec) and response filtering. Routes: orders (GET /orders/{id},
// [corp, keys]), limited (GET /limited, public, one request per hour per
// IP), watch (GET /watch, [corp] in report mode), pub (GET /pub, public),
// checked (GET /checked/{id}, validated both ways), filtered (GET
// /filtered, a deny rule and detection).
func metricsConfig(up *upstream, keys *keyServer, redisURL, apiKey string) string {
	return authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url()), keysAuthenticator},
		top: fmt.Sprintf(`rate_limits:
  store: redis
  redis: { url: %q, timeout: 100ms }
  global: { limit: 10000, per: 1s }
  per_ip: { limit: 1000, per: 1s }
  plans:
    gold: { limit: 1000, per: 1m, quota: { limit: 100000, per: month } }
  auth_failures: { limit: 1000, per: 1m, lockout: 1m }
consumers:
%s
audit: { sink: file, file: { path: audit.jsonl } }
specs:
  checked: { file: checked.yaml }`, redisURL, consumer("acme", "gold", "k1", apiKey)),
		routes: []string{
			authRoute("orders", "/orders/{id}", "[corp, keys]", "rate_limit: { key: consumer, limit: 1000, per: 1m }",
				`authorize: { rules: [ { name: any, expr: "true" } ] }`),
			authRoute("limited", "/limited", "none", "rate_limit: { key: ip, limit: 1, per: 1h }"),
			authRoute("watch", "/watch", "[corp]", "authn: { mode: report }"),
			authRoute("pub", "/pub", "none"),
			authRoute("checked", "/checked/{id}", "none", "validate: { spec: checked, response: enforce }"),
			authRoute("filtered", "/filtered", "none", `response: { deny: ["$.ok"], detect: report }`),
		},
	}.yaml()
}

// metricsSpec is the OpenAPI document of the checked route: an integer
// id, and a 200 whose ok is a string, which the test upstream's boolean
// breaks. The operation is deprecated, for bulwark_deprecated_requests_total.
const metricsSpec = `openapi: 3.0.3
info: { title: checked, version: "1" }
paths:
  /checked/{id}:
    get:
      operationId: getChecked
      deprecated: true
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: { type: object, properties: { ok: { type: string } } }
`

// metricsUpstream answers like startUpstream's default handler, and
// /filtered with a card number for detection to find.
func metricsUpstream(t testing.TB) *upstream {
	return startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/filtered" {
			_, _ = io.WriteString(w, `{"ok":true,"card":"4111111111111111"}`)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
}

// metricsRoutes are the route names of metricsConfig.
var metricsRoutes = []string{"orders", "limited", "watch", "pub", "checked", "filtered"}

// TestMetricsCatalogue checks docs/metrics.md against a running gateway:
// every bulwark_* family scraped has a row there with the same type and
// label names, every row is scraped (or listed below with why not), and
// the values of the closed-set labels are the documented ones.
func TestMetricsCatalogue(t *testing.T) {
	catalogue, labelDocs := readCatalogue(t)

	rs := startRedis(t)
	up := metricsUpstream(t)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	apiKey := newAPIKey(t)
	g := startGateway(t, metricsConfig(up, keys, rs.url(), apiKey), map[string][]byte{"checked.yaml": []byte(metricsSpec)})

	good := signRS256(t, key, "a", claims("alice", "orders:read"))
	forged := signRS256(t, rsaKey(t, 1), "a", claims("alice", "orders:read"))
	requests := []struct {
		path   string
		hdr    []string
		status int
	}{
		{"/orders/1", []string{"Authorization", "Bearer " + good}, 200},
		{"/orders/2", []string{"X-API-Key", apiKey}, 200},
		{"/orders/3", nil, 401},
		{"/orders/4", []string{"Authorization", "Bearer " + forged}, 401},
		{"/limited", nil, 200},
		{"/limited", nil, 429},
		{"/watch", nil, 200}, // report mode: a would-deny
		{"/pub", nil, 200},
		{"/checked/x", nil, 400}, // not an integer
		{"/checked/1", nil, 502}, // ok is a boolean, the spec says string
		{"/filtered", nil, 200},  // ok removed, the card number found
		{"/nowhere", nil, 404},
	}
	for _, r := range requests {
		if a := send(t, nil, "GET", g.URL(r.path), r.hdr...); a.status != r.status {
			t.Errorf("GET %s = %d, want %d (%s)", r.path, a.status, r.status, a.body)
		}
	}
	families, _ := scrapeAfter(t, g, len(requests))

	// Families that only exist under a config other than metricsConfig,
	// with why. An entry whose family is scraped after all fails the test,
	// so the list cannot go stale.
	notScraped := map[string]string{
		"bulwark_undocumented_requests_total":      "needs routes_from_spec, which metricsConfig does not use (test/e2e/specroutes_test.go covers it)",
		"bulwark_bola_enumeration_suspected_total": "needs a principal denied on authorize.enumeration.threshold distinct objects (test/e2e/authorize_enumeration_test.go covers it)",
		"bulwark_bola_blocked_total":               "needs an enumeration block, as above (test/e2e/authorize_enumeration_test.go covers it)",
		"bulwark_policy_hook_duration_seconds":     "needs a policy server (OPA): test/e2e/authorize_policy_test.go covers it",
		"bulwark_policy_hook_errors_total":         "needs a policy server that fails: test/e2e/authorize_policy_test.go covers it",
		"bulwark_policy_hook_cache_hits_total":     "needs a policy with a cache: test/e2e/authorize_policy_test.go covers it",
	}

	for name, f := range families {
		if !strings.HasPrefix(name, "bulwark_") {
			continue
		}
		doc, ok := catalogue[name]
		if !ok {
			t.Errorf("%s (%s) is exported but has no row in %s", name, strings.ToLower(f.GetType().String()), metricsDoc)
			continue
		}
		if typ := strings.ToLower(f.GetType().String()); typ != doc.typ {
			t.Errorf("%s is a %s, %s says %s", name, typ, metricsDoc, doc.typ)
		}
		seen := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				seen[lp.GetName()] = true
			}
		}
		if got := sortedKeys(seen); !slices.Equal(got, doc.labels) {
			t.Errorf("%s has labels %q, %s says %q", name, got, metricsDoc, doc.labels)
		}
	}
	for name := range catalogue {
		_, scraped := families[name]
		reason, exempt := notScraped[name]
		switch {
		case !scraped && !exempt:
			t.Errorf("%s is in %s but was not scraped: a metric that no longer exists, a typo, or one that needs a config this test does not have (list it in notScraped with the reason)", name, metricsDoc)
		case scraped && exempt:
			t.Errorf("%s is listed as not scraped (%s) but was: remove it from notScraped", name, reason)
		}
	}
	// The Go and process collectors the catalogue describes.
	for _, name := range []string{"go_goroutines", "go_info", "process_start_time_seconds"} {
		if families[name] == nil {
			t.Errorf("%s was not scraped; %s says the Go and process collectors are registered", name, metricsDoc)
		}
	}

	// Closed-set labels: every value scraped is one the label values table
	// lists. Config-bounded labels: one of this config's names.
	values := labelValuesOf(families, "bulwark_build_info")
	for _, label := range []string{"method", "stage", "mode", "result", "layer", "kind", "store"} {
		documented := labelDocs[label]
		if len(documented) == 0 {
			t.Errorf("%s: no row for label %q in the label values table", metricsDoc, label)
			continue
		}
		if len(values[label]) == 0 {
			t.Errorf("no scraped series has label %q: the requests above should have produced one", label)
		}
		for v := range values[label] {
			if !slices.Contains(documented, v) {
				t.Errorf("label %s=%q is scraped but not among its documented values %q", label, v, documented)
			}
		}
	}
	for label, names := range map[string][]string{
		"route":         append([]string{"_unmatched"}, metricsRoutes...),
		"upstream":      {"api"},
		"authenticator": {"corp", "keys"},
	} {
		if len(values[label]) == 0 {
			t.Errorf("no scraped series has label %q", label)
		}
		for v := range values[label] {
			if !slices.Contains(names, v) {
				t.Errorf("label %s=%q is not a configured name (%q)", label, v, names)
			}
		}
	}
	for _, label := range []string{"route", "upstream", "authenticator", "code", "reason"} {
		if labelDocs[label] == nil {
			t.Errorf("%s: no row for label %q in the label values table", metricsDoc, label)
		}
	}
	if bi := families["bulwark_build_info"]; bi != nil {
		for _, m := range bi.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 1 {
				t.Errorf("bulwark_build_info = %v, want 1", v)
			}
			for _, lp := range m.GetLabel() {
				if labelDocs[lp.GetName()] == nil {
					t.Errorf("%s: build_info label %q has no row in the label values table", metricsDoc, lp.GetName())
				}
			}
		}
	}
}

// TestMetricsLabelsBounded feeds a gateway what a scanner or an attacker
// sends — random paths, random method tokens, tokens in the query string
// and in headers, bad JWTs, non-canonical paths — and checks that no
// label of any bulwark_* series picked up a path, one of the random
// strings or a credential, and that route and method stay within their
// bounds.
func TestMetricsLabelsBounded(t *testing.T) {
	up := startUpstream(t, nil)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	apiKey := newAPIKey(t)
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url()), keysAuthenticator},
		top: fmt.Sprintf(`rate_limits:
  per_ip: { limit: 10000, per: 1s }
consumers:
%s
audit: { sink: file, file: { path: audit.jsonl } }`, consumer("acme", "", "k1", apiKey)),
		routes: []string{
			authRoute("orders", "/orders/{id}", "[corp, keys]", "rate_limit: { key: consumer, limit: 1000, per: 1m }"),
			authRoute("search", "/search", "[corp]", "authn: { query_param: access_token }"),
			authRoute("pub", "/pub/*", "none"),
		},
	}.yaml()
	routes := []string{"orders", "search", "pub"}
	g := startGateway(t, cfg, nil)

	// Everything the client chose that must not be a label value.
	var tainted []string
	fresh := func() string {
		s := randomSecret(t)
		tainted = append(tainted, s)
		return s
	}
	sent := 0
	do := func(method, path string, hdr ...string) answer {
		t.Helper()
		sent++
		return send(t, nil, method, g.URL(path), hdr...)
	}

	const randomPaths = 30
	for range randomPaths {
		if a := do("GET", "/x/"+fresh()); a.status != http.StatusNotFound {
			t.Errorf("GET /x/<random> = %d, want 404", a.status)
		}
	}
	const randomMethods = 10
	for i := range randomMethods {
		m := "FOO" + strings.ToUpper(fresh()[:12])
		path := "/orders/" + fresh()
		if i%2 == 0 {
			path = "/x/" + fresh()
		}
		if a := do(m, path); a.status < 400 {
			t.Errorf("%s %s = %d, want a refusal", m, path, a.status)
		}
	}
	good := signRS256(t, key, "a", claims("alice", "orders:read"))
	forged := signRS256(t, rsaKey(t, 1), "a", claims(fresh(), "orders:read"))
	garbage := "eyJ" + fresh() + "." + fresh() + "." + fresh()
	tainted = append(tainted, good, forged, garbage, apiKey)
	checks := []struct {
		method, path string
		hdr          []string
		status       int
	}{
		{"GET", "/orders/" + fresh(), []string{"Authorization", "Bearer " + good}, 200},
		{"GET", "/orders/" + fresh() + "?q=" + fresh(), []string{"X-API-Key", apiKey, "Cookie", "session=" + fresh()}, 200},
		{"GET", "/orders/" + fresh(), []string{"Authorization", "Bearer " + forged}, 401},
		{"GET", "/orders/" + fresh(), []string{"Authorization", "Bearer " + garbage}, 401},
		{"GET", "/orders/" + fresh(), []string{"X-API-Key", "bwk_" + fresh()}, 401},
		{"GET", "/orders/" + fresh() + "?access_token=" + fresh(), nil, 400},                   // query_token_refused
		{"GET", "/search?access_token=" + garbage, nil, 401},                                   // accepted place, bad token
		{"GET", "/search?access_token=" + good + "&" + fresh() + "=" + fresh(), nil, 200},      // token and a random parameter
		{"GET", "/pub/" + fresh() + "/" + fresh(), []string{"X-" + fresh()[:8], fresh()}, 200}, // wildcard route
		{"DELETE", "/orders/" + fresh(), nil, 405},
		{"GET", "/x/" + fresh() + "/%2e%2e/" + fresh(), nil, 400}, // non-canonical
		{"GET", "/x//" + fresh(), nil, 400},
	}
	for _, c := range checks {
		if a := do(c.method, c.path, c.hdr...); a.status != c.status {
			t.Errorf("%s %s = %d, want %d (%s)", c.method, c.path, a.status, c.status, a.body)
		}
	}

	families, body := scrapeAfter(t, g, sent)

	// The random strings and credentials are nowhere in the scrape, HELP
	// lines and build_info included.
	for _, s := range tainted {
		if strings.Contains(body, s) {
			t.Errorf("/metrics contains a value the client sent (%.12s…)", s)
		}
	}
	// No label value is a path: route names have no "/". bulwark_build_info
	// is left out: its labels come from the build (a branch may be
	// "release/1.2"), never from a request, and the check above covers it.
	for name, f := range families {
		if !strings.HasPrefix(name, "bulwark_") || name == "bulwark_build_info" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "/") {
					t.Errorf("%s{%s=%q}: a label value with a path", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}

	values := labelValuesOf(families)
	allowedRoutes := append([]string{"_unmatched"}, routes...)
	for r := range values["route"] {
		if !slices.Contains(allowedRoutes, r) {
			t.Errorf("route label %q is not a configured route name or _unmatched", r)
		}
	}
	if n := len(values["route"]); n > len(routes)+1 {
		t.Errorf("route has %d values %q, want at most %d (the routes and _unmatched)", n, sortedKeys(values["route"]), len(routes)+1)
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}
	for m := range values["method"] {
		if !slices.Contains(methods, m) {
			t.Errorf("method label %q is not a standard method or OTHER", m)
		}
	}
	if n := len(values["method"]); n > len(methods) {
		t.Errorf("method has %d values %q, want at most %d", n, sortedKeys(values["method"]), len(methods))
	}
	// The random methods were counted, as OTHER, and the random paths
	// under _unmatched: they were bounded, not dropped.
	if got := metricSum(t, g, "bulwark_requests_total", `method="OTHER"`); got != randomMethods {
		t.Errorf(`bulwark_requests_total{method="OTHER"} = %v, want %d (one per random method)`, got, randomMethods)
	}
	if got := metricSum(t, g, "bulwark_requests_total", `route="_unmatched"`, `code="404"`); got < randomPaths {
		t.Errorf(`bulwark_requests_total{route="_unmatched",code="404"} = %v, want >= %d (one per random path)`, got, randomPaths)
	}
	// Reasons are the closed list of errors.md.
	errorsDoc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(values["reason"]) < 4 {
		t.Errorf("reason values %q: the refusals above should have produced several", sortedKeys(values["reason"]))
	}
	for r := range values["reason"] {
		if !strings.Contains(string(errorsDoc), "`"+r+"`") {
			t.Errorf("reason label %q is not a reason listed in docs/errors.md", r)
		}
	}
	// No label of any kind grew with the traffic: the test sent over 40
	// distinct random paths and methods.
	for label, vs := range values {
		if len(vs) > 25 {
			t.Errorf("label %q has %d distinct values: unbounded? %q", label, len(vs), sortedKeys(vs))
		}
	}
}
