package inventory

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// loadConfig loads testdata/bulwark.yaml (the shop spec, four operations,
// one deprecated).
func loadConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Load("testdata/bulwark.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	return cfg
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func op(method, path string) validate.OperationInfo {
	return validate.OperationInfo{Method: method, Path: path}
}

func TestSnapshot(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 23, 10, 0, 0, 500, time.UTC)}
	reg := New(Options{Now: clk.Now})
	cat := reg.Catalog(loadConfig(t))
	list := cat.Route("shop", op("GET", "/orders"), "list")
	show := cat.Route("shop", op("GET", "/orders/{id}"), "show")
	if again := cat.Route("shop", op("GET", "/orders/{id}"), "show-v1"); again != show {
		t.Errorf("Route of the same operation = %p, want the same counter %p", again, show)
	}
	if c := cat.Route("shop", op("DELETE", "/orders"), "nope"); c != nil {
		t.Errorf("Route of an unknown operation = %p, want nil", c)
	}
	if c := cat.Route("other", op("GET", "/orders"), "nope"); c != nil {
		t.Errorf("Route of an unknown spec = %p, want nil", c)
	}
	list.Inc()
	list.Inc()
	clk.set(clk.now.Add(90 * time.Second))
	list.Inc()

	snap := reg.Snapshot(cat)
	if len(snap.Specs) != 1 {
		t.Fatalf("specs = %d, want 1", len(snap.Specs))
	}
	s := snap.Specs[0]
	if s.Name != "shop" || s.Title != "Shop" || s.Version != "2.1.0" {
		t.Errorf("spec = %q %q %q, want shop Shop 2.1.0", s.Name, s.Title, s.Version)
	}
	type row struct {
		id         string
		deprecated bool
		routes     string
		requests   int64
		lastSeen   string
	}
	var got []row
	for _, o := range s.Operations {
		r := row{id: o.OperationID, deprecated: o.Deprecated, routes: strings.Join(o.Routes, ","), requests: *o.Requests}
		if o.LastSeen != nil {
			r.lastSeen = o.LastSeen.Format(time.RFC3339)
		}
		got = append(got, r)
	}
	want := []row{
		{id: "listLegacyOrders", deprecated: true},
		{id: "listOrders", routes: "list", requests: 3, lastSeen: "2026-11-23T10:01:30Z"},
		{id: "createOrder"},
		{id: "getOrder", routes: "show,show-v1"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("operations = %v, want %v", got, want)
	}

	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{
		`"operation_id":"listOrders","deprecated":false,"routes":["list"],"requests":3,"last_seen":"2026-11-23T10:01:30Z"`,
		`"operation_id":"createOrder","deprecated":false,"routes":[],"requests":0,"last_seen":null`,
		`"undocumented":[]`,
	} {
		if !strings.Contains(string(raw), frag) {
			t.Errorf("snapshot JSON lacks %s:\n%s", frag, raw)
		}
	}
}

// TestOperationsWithoutCounts: the config-only view has no counts.
func TestOperationsWithoutCounts(t *testing.T) {
	reg := New(Options{})
	cat := reg.Catalog(loadConfig(t))
	cat.Route("shop", op("GET", "/orders"), "list").Inc()
	raw, err := json.Marshal(cat.Operations())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"operation_id":"listOrders","deprecated":false,"routes":["list"],"requests":null,"last_seen":null`) {
		t.Errorf("operations without counts = %s", raw)
	}
}

// TestCountsSurviveANewCatalog: a reload builds a new catalog from the same
// registry; it keeps counting into the same counters.
func TestCountsSurviveANewCatalog(t *testing.T) {
	reg := New(Options{})
	cfg := loadConfig(t)
	first := reg.Catalog(cfg)
	first.Route("shop", op("GET", "/orders"), "list").Inc()
	second := reg.Catalog(cfg)
	second.Route("shop", op("GET", "/orders"), "list").Inc()
	for _, o := range reg.Snapshot(second).Specs[0].Operations {
		if o.OperationID == "listOrders" && *o.Requests != 2 {
			t.Errorf("listOrders requests after a new catalog = %d, want 2", *o.Requests)
		}
	}
}

func TestNilCounter(t *testing.T) {
	var c *Counter
	c.Inc() // must not panic
	if n := c.Requests(); n != 0 {
		t.Errorf("nil Counter Requests() = %d, want 0", n)
	}
	var zero Counter
	zero.Inc()
	if _, ok := zero.LastSeen(); !ok || zero.Requests() != 1 {
		t.Errorf("zero Counter after Inc: requests %d, last seen %v; want 1, set", zero.Requests(), ok)
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{name: "root", path: "/", want: "/"},
		{name: "names stay", path: "/api/v2/orders", want: "/api/v2/orders"},
		{name: "query dropped", path: "/orders?token=secret&x=1", want: "/orders"},
		{name: "fragment dropped", path: "/orders#frag", want: "/orders"},
		{name: "digits", path: "/users/12345/orders", want: "/users/{id}/orders"},
		{name: "single digit", path: "/pages/7", want: "/pages/{id}"},
		{name: "uuid", path: "/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301", want: "/orders/{id}"},
		{name: "uuid without dashes", path: "/orders/3f2504e04f8911d39a0c0305e82c3301", want: "/orders/{id}"},
		{name: "hex of 16", path: "/blobs/deadbeefcafebabe", want: "/blobs/{id}"},
		{name: "short hex word stays", path: "/facade/added", want: "/facade/added"},
		{name: "base64url token", path: "/reset/dGhpcyBpcyBhIHRva2VuMTIz", want: "/reset/{id}"},
		{name: "mixed-case token of 16", path: "/s/aB3dE5fG7hI9jK1l", want: "/s/{id}"},
		{name: "long camel-case name stays", path: "/getAllOrdersForCustomer", want: "/getAllOrdersForCustomer"},
		{name: "32 characters", path: "/x/" + strings.Repeat("a", 32), want: "/x/{id}"},
		{name: "email", path: "/users/alice@example.com", want: "/users/{id}"},
		{name: "encoded email", path: "/users/alice%40example.com", want: "/users/{id}"},
		{name: "digit run in a name", path: "/invoices/INV-000123", want: "/invoices/{id}"},
		{name: "date", path: "/reports/2026-01-31", want: "/reports/{id}"},
		{name: "version-like names stay", path: "/oauth2/sha256/x509", want: "/oauth2/sha256/x509"},
		{name: "control byte", path: "/a/b\x01c", want: "/a/{id}"},
		{name: "invalid utf-8", path: "/a/\xff\xfe", want: "/a/{id}"},
		{name: "C1 control (CSI)", path: "/a/x\u009b31m", want: "/a/{id}"},
		{name: "trailing slash kept", path: "/orders/", want: "/orders/"},
		{name: "no leading slash", path: "orders/1", want: "/orders/{id}"},
		{name: "too many segments", path: "/a/b/c/d/e/f/g/h/i/j/k/l/m/n", want: "/a/b/c/d/e/f/g/h/i/j/k/l/*"},
		{name: "too long", path: "/" + strings.Repeat("abcdefghij/", 30), want: "/" + strings.Repeat("abcdefghij/", 10) + "abcdefghij/abcdefghij/*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Template(tt.path); got != tt.want {
				t.Errorf("Template(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestUndocumentedBounds(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "undocumented_total"}, []string{"upstream"})
	reg := New(Options{Undocumented: vec, MaxTemplates: 2})
	for _, p := range []string{"/admin", "/admin?debug=1", "/users/1", "/users/2", "/metrics", "/debug/vars"} {
		reg.Undocumented("shop", p)
	}
	reg.Undocumented("billing", "/x")
	snap := reg.Snapshot(nil)
	if len(snap.Undocumented) != 2 {
		t.Fatalf("upstreams = %d, want 2", len(snap.Undocumented))
	}
	if u := snap.Undocumented[0]; u.Upstream != "billing" || u.Requests != 1 {
		t.Errorf("first upstream = %+v, want billing with 1 request", u)
	}
	shop := snap.Undocumented[1]
	var paths []string
	for _, p := range shop.Paths {
		paths = append(paths, fmt.Sprintf("%s=%d", p.Template, p.Requests))
	}
	if got, want := strings.Join(paths, " "), "/admin=2 /users/{id}=2"; got != want {
		t.Errorf("shop templates = %s, want %s", got, want)
	}
	if shop.Requests != 6 || shop.OtherRequests != 2 {
		t.Errorf("shop requests = %d, other = %d; want 6, 2", shop.Requests, shop.OtherRequests)
	}
	m := prometheus.NewRegistry()
	m.MustRegister(vec)
	mfs, err := m.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, metric := range mfs[0].GetMetric() {
		got[metric.GetLabel()[0].GetValue()] = metric.GetCounter().GetValue()
	}
	if got["shop"] != 6 || got["billing"] != 1 {
		t.Errorf("undocumented_total = %v, want shop 6, billing 1", got)
	}
}

// TestConcurrent runs counting, undocumented recording and snapshots at
// once; run it with -race.
func TestConcurrent(t *testing.T) {
	reg := New(Options{MaxTemplates: 10})
	cat := reg.Catalog(loadConfig(t))
	c := cat.Route("shop", op("GET", "/orders"), "list")
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c.Inc()
				reg.Undocumented("shop", fmt.Sprintf("/w%d/p%d", w, i%20))
				if i%100 == 0 {
					_ = reg.Snapshot(cat)
				}
			}
		}()
	}
	wg.Wait()
	snap := reg.Snapshot(cat)
	for _, o := range snap.Specs[0].Operations {
		if o.OperationID == "listOrders" && *o.Requests != workers*each {
			t.Errorf("listOrders requests = %d, want %d", *o.Requests, workers*each)
		}
	}
	u := snap.Undocumented[0]
	var inTemplates int64
	for _, p := range u.Paths {
		inTemplates += p.Requests
	}
	if len(u.Paths) != 10 || u.Requests != workers*each || inTemplates+u.OtherRequests != u.Requests {
		t.Errorf("undocumented: %d templates, %d requests, %d in templates + %d other; want 10 templates, %d requests, sums equal",
			len(u.Paths), u.Requests, inTemplates, u.OtherRequests, workers*each)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := &Counter{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}
