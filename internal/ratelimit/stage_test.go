package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// clock is a settable clock shared by the store and the limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stageFixture is a Limiter built from a config loaded by the real loader,
// over a local store, with a handler that counts what got through.
type stageFixture struct {
	t       *testing.T
	cfg     *config.Config
	lim     *Limiter
	metrics *metrics.Metrics
	clock   *clock
	hits    int
}

func newStageFixture(t *testing.T, yaml string, store Store, edgeMode config.Mode) *stageFixture {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	if store == nil {
		store = NewLocal(1000, c.now)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := metrics.New(metrics.BuildInfo{})
	lim, err := New(cfg.RateLimits, Deps{
		Log: zap.NewNop(), Problems: problem.New(zap.NewNop(), m.Denials), Store: store,
		Decisions: m.RateLimitDecisions, Lockouts: m.Lockouts, EdgeMode: edgeMode, Now: c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &stageFixture{t: t, cfg: cfg, lim: lim, metrics: m, clock: c}
}

func (f *stageFixture) next() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.hits++ })
}

// do sends one request from ip with principal p through h.
func (f *stageFixture) do(h http.Handler, ip string, p *exchange.Principal, header http.Header) (*httptest.ResponseRecorder, *exchange.Record) {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	rec := &exchange.Record{RequestID: "r", ClientIP: netip.MustParseAddr(ip), Principal: p,
		Route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(exchange.With(r.Context(), rec)))
	return w, rec
}

func (f *stageFixture) route(name string) config.Route {
	for _, rt := range f.cfg.Routes {
		if rt.Name == name {
			return rt
		}
	}
	f.t.Fatalf("no route %q", name)
	return config.Route{}
}

const limitsConfig = `
upstreams:
  app: { url: "http://127.0.0.1:1" }
authenticators:
  keys: { type: api_key }
consumers:
  - { id: acme, plan: gold, api_keys: [ { id: k1, sha256: "` + "0000000000000000000000000000000000000000000000000000000000000001" + `" } ] }
rate_limits:
  per_ip: { limit: 2, per: 1m }
  plans:
    gold: { limit: 100, per: 1s, quota: { limit: 3, per: day } }
  auth_failures: { limit: 3, per: 1m, lockout: 10m }
routes:
  - name: by-consumer
    method: GET
    path: /c
    upstream: app
    auth: [keys]
    rate_limit: { key: consumer, limit: 2, per: 1m }
  - name: two
    method: GET
    path: /two
    upstream: app
    auth: [keys]
    rate_limit:
      - { key: "header:X-Tenant", limit: 5, per: 1m }
      - { key: consumer, limit: 1, per: 1m }
`

func TestEdgePerIP(t *testing.T) {
	f := newStageFixture(t, limitsConfig, nil, config.ModeEnforce)
	h := f.lim.Edge(f.next())
	for i := range 2 {
		if w, _ := f.do(h, "192.0.2.1", nil, nil); w.Code != 200 {
			t.Fatalf("request %d: status %d", i+1, w.Code)
		}
	}
	w, rec := f.do(h, "192.0.2.1", nil, nil)
	if w.Code != http.StatusTooManyRequests || f.hits != 2 {
		t.Fatalf("third request: status %d, hits %d; want 429 and 2 hits", w.Code, f.hits)
	}
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30 (one token every 30s)", got)
	}
	if got := w.Header().Get("RateLimit-Policy"); got != `"per_ip";q=2;w=60` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
	if got := w.Header().Get("RateLimit"); got != `"per_ip";r=0;t=30` {
		t.Errorf("RateLimit = %q", got)
	}
	if !strings.Contains(w.Body.String(), "urn:bulwark:problem:rate-limited") {
		t.Errorf("body = %s", w.Body)
	}
	if d, _ := rec.Decisions(); d == nil || d.Stage != "ratelimit" || d.Reason != LayerPerIP || d.OWASP != "API4:2023" {
		t.Errorf("decision = %+v", d)
	}
	if w, _ := f.do(h, "192.0.2.2", nil, nil); w.Code != 200 {
		t.Errorf("another IP: status %d, want its own bucket", w.Code)
	}
	f.clock.add(30 * time.Second)
	if w, _ := f.do(h, "192.0.2.1", nil, nil); w.Code != 200 {
		t.Errorf("after 30s: status %d, want one token back", w.Code)
	}
	if got := testutil.ToFloat64(f.metrics.RateLimitDecisions.WithLabelValues(LayerPerIP, "limited")); got != 1 {
		t.Errorf("limited decisions = %v, want 1", got)
	}
}

func TestEdgeReportMode(t *testing.T) {
	f := newStageFixture(t, limitsConfig, nil, config.ModeReport)
	h := f.lim.Edge(f.next())
	for range 3 {
		f.do(h, "192.0.2.1", nil, nil)
	}
	if f.hits != 3 {
		t.Fatalf("report mode let %d of 3 through", f.hits)
	}
	_, rec := f.do(h, "192.0.2.1", nil, nil)
	if d, would := rec.Decisions(); d != nil || len(would) != 1 || would[0].Reason != LayerPerIP {
		t.Errorf("decisions = %+v, %+v; want one would-deny", d, would)
	}
}

func TestRouteLimitsAndPlans(t *testing.T) {
	f := newStageFixture(t, limitsConfig, nil, config.ModeEnforce)
	h := f.lim.Route(f.route("by-consumer"))(f.next())
	acme := &exchange.Principal{Subject: "acme", Consumer: "acme", Plan: "gold"}
	other := &exchange.Principal{Subject: "bob", Consumer: "bob"}
	// The same consumer from two IPs shares one bucket.
	if w, _ := f.do(h, "192.0.2.1", acme, nil); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if w, _ := f.do(h, "192.0.2.2", acme, nil); w.Code != 200 {
		t.Fatal(w.Code)
	}
	w, rec := f.do(h, "192.0.2.3", acme, nil)
	if w.Code != 429 {
		t.Fatalf("third request of acme: %d, want 429", w.Code)
	}
	if d, _ := rec.Decisions(); d.Reason != LayerRoute || d.Rule != "by-consumer" {
		t.Errorf("decision = %+v, want route / by-consumer", d)
	}
	if w, _ := f.do(h, "192.0.2.3", other, nil); w.Code != 200 {
		t.Errorf("another consumer: %d", w.Code)
	}
	// No consumer: counted by IP, never unlimited.
	anon := &exchange.Principal{Subject: "carol"}
	f.do(h, "198.51.100.7", anon, nil)
	f.do(h, "198.51.100.7", anon, nil)
	if w, _ := f.do(h, "198.51.100.7", anon, nil); w.Code != 429 {
		t.Errorf("a principal without consumer: %d, want 429 by IP", w.Code)
	}
	// The gold plan's daily quota (3) counted the acme requests: the
	// first two passed the quota, the third was refused by the route
	// limit first and never counted.
	f.clock.add(time.Minute) // refill the route bucket
	if w, _ := f.do(h, "192.0.2.1", acme, nil); w.Code != 200 {
		t.Fatalf("third quota request: %d", w.Code)
	}
	f.clock.add(time.Minute)
	w, rec = f.do(h, "192.0.2.1", acme, nil)
	if w.Code != 429 {
		t.Fatalf("fourth quota request: %d, want 429", w.Code)
	}
	if d, _ := rec.Decisions(); d.Reason != LayerQuota || d.Rule != "gold-quota" {
		t.Errorf("decision = %+v, want quota / gold-quota", d)
	}
	if got := w.Header().Get("Retry-After"); got != strconv.Itoa(int((12*time.Hour - 2*time.Minute).Seconds())) {
		t.Errorf("Retry-After = %s, want the seconds to midnight UTC", got)
	}
	// A new UTC day resets the quota.
	f.clock.add(12 * time.Hour)
	if w, _ := f.do(h, "192.0.2.1", acme, nil); w.Code != 200 {
		t.Errorf("next day: %d", w.Code)
	}
}

func TestRouteSeveralLimitsStrictestWins(t *testing.T) {
	f := newStageFixture(t, limitsConfig, nil, config.ModeEnforce)
	h := f.lim.Route(f.route("two"))(f.next())
	p := &exchange.Principal{Subject: "acme", Consumer: "acme"}
	tenant := http.Header{"X-Tenant": {"t1"}}
	if w, _ := f.do(h, "192.0.2.1", p, tenant); w.Code != 200 {
		t.Fatal(w.Code)
	}
	w, rec := f.do(h, "192.0.2.1", p, tenant)
	if w.Code != 429 {
		t.Fatalf("status %d, want 429 from the consumer limit", w.Code)
	}
	if d, _ := rec.Decisions(); d.Rule != "two-2" {
		t.Errorf("rule = %q, want two-2 (the second limit's default name)", d.Rule)
	}
}

func TestHeadersOnAllowedResponses(t *testing.T) {
	f := newStageFixture(t, strings.Replace(limitsConfig, "rate_limits:\n", "rate_limits:\n  headers: true\n", 1), nil, config.ModeEnforce)
	h := f.lim.Edge(f.next())
	w, _ := f.do(h, "192.0.2.1", nil, nil)
	if got := w.Header().Get("RateLimit"); got != `"per_ip";r=1;t=30` {
		t.Errorf("RateLimit = %q, want one token left, full in 30s", got)
	}
	if got := w.Header().Get("RateLimit-Policy"); got != `"per_ip";q=2;w=60` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
}

// failingStore is a Store whose backend is down: what the stage does then
// is the failure policy's business, whatever the store.
type failingStore struct{ Store }

func (failingStore) Take(context.Context, []Bucket, []Decision) error {
	return ErrUnavailable
}

func TestStoreFailurePolicy(t *testing.T) {
	for _, tt := range []struct {
		mode   string
		status int
	}{{"open", 200}, {"closed", 503}} {
		t.Run(tt.mode, func(t *testing.T) {
			cfg := strings.Replace(limitsConfig, "rate_limits:\n", "rate_limits:\n  failure_mode: "+tt.mode+"\n", 1)
			f := newStageFixture(t, cfg, failingStore{NewLocal(10, nil)}, config.ModeEnforce)
			w, _ := f.do(f.lim.Edge(f.next()), "192.0.2.1", nil, nil)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			result := map[string]string{"open": "error_allowed", "closed": "error_denied"}[tt.mode]
			if got := testutil.ToFloat64(f.metrics.RateLimitDecisions.WithLabelValues(LayerPerIP, result)); got != 1 {
				t.Errorf("%s decisions = %v, want 1", result, got)
			}
		})
	}
}

func TestLockout(t *testing.T) {
	f := newStageFixture(t, limitsConfig, nil, config.ModeEnforce)
	lo := f.lim.Lockout()
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.9")
	for i := range 3 {
		if _, locked := lo.Locked(ctx, ip, ""); locked {
			t.Fatalf("locked after %d failures, want after 3", i)
		}
		lo.Failed(ctx, ip, "")
	}
	d, locked := lo.Locked(ctx, ip, "")
	if !locked || d != 10*time.Minute {
		t.Fatalf("after 3 failures: locked %v for %v, want 10m", locked, d)
	}
	if _, locked := lo.Locked(ctx, netip.MustParseAddr("192.0.2.10"), ""); locked {
		t.Error("another IP is locked too")
	}
	// Credential failures from many IPs lock the credential, not the IPs.
	for i := range 3 {
		lo.Failed(ctx, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "keys/key/k1")
	}
	if _, locked := lo.Locked(ctx, ip, "keys/key/k1"); !locked {
		t.Error("the credential is not locked after 3 failures")
	}
	if _, locked := lo.Locked(ctx, netip.AddrFrom4([4]byte{198, 51, 100, 0}), ""); locked {
		t.Error("one credential failure per IP locked an IP")
	}
	f.clock.add(10 * time.Minute)
	if _, locked := lo.Locked(ctx, ip, ""); locked {
		t.Error("still locked after the lockout")
	}
	if got := testutil.ToFloat64(f.metrics.Lockouts.WithLabelValues("ip")); got != 1 {
		t.Errorf("ip lockouts = %v, want 1", got)
	}
	var nilLockout *Lockout
	if _, locked := nilLockout.Locked(ctx, ip, ""); locked {
		t.Error("a nil lockout locks")
	}
	p := lo.Problem(90 * time.Second)
	if p.Status != 429 || p.Header.Get("Retry-After") != "90" || p.OWASP != "API2:2023" || p.Reason != LayerAuthFailures {
		t.Errorf("lockout problem = %+v", p)
	}
	if got := p.Header.Get("RateLimit-Policy"); got != `"auth_failures";q=3;w=60` {
		t.Errorf("lockout RateLimit-Policy = %q", got)
	}
	if got := p.Header.Get("RateLimit"); got != `"auth_failures";r=0;t=90` {
		t.Errorf("lockout RateLimit = %q", got)
	}
}

func TestNewNeedsStore(t *testing.T) {
	if _, err := New(config.RateLimits{}, Deps{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}
