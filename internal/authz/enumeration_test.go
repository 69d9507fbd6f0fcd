package authz

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestDetectorObserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := NewDetector(0)
		steps := []struct {
			name  string
			id    uint64
			sleep time.Duration // before the denial
			want  bool
		}{
			{name: "first id", id: 1},
			{name: "repeated id", id: 1},
			{name: "second id", id: 2},
			{name: "third id reaches the threshold", id: 3, want: true},
			{name: "reported once per window", id: 4},
			{name: "new window starts over", id: 5, sleep: time.Minute},
			{name: "new window second id", id: 6},
			{name: "new window third id", id: 7, want: true},
			{name: "window expired before the threshold", id: 8, sleep: time.Minute},
			{name: "old ids gone", id: 9, sleep: 30 * time.Second},
			{name: "expires again", id: 10, sleep: 31 * time.Second},
		}
		for _, s := range steps {
			time.Sleep(s.sleep)
			if got := d.observe(42, s.id, time.Now(), 3, time.Minute, 0); got != s.want {
				t.Errorf("%s: observe(id %d) = %v, want %v", s.name, s.id, got, s.want)
			}
		}
		if left := d.blockedFor(42, time.Now()); left != 0 {
			t.Errorf("blockedFor without block = %v, want 0", left)
		}
	})
}

func TestDetectorBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := NewDetector(0)
		for id := range uint64(2) {
			d.observe(1, id, time.Now(), 2, time.Minute, 10*time.Minute)
		}
		if left := d.blockedFor(1, time.Now()); left != 10*time.Minute {
			t.Errorf("blockedFor after the threshold = %v, want 10m", left)
		}
		if left := d.blockedFor(2, time.Now()); left != 0 {
			t.Errorf("blockedFor(other key) = %v, want 0", left)
		}
		time.Sleep(10 * time.Minute)
		if left := d.blockedFor(1, time.Now()); left != 0 {
			t.Errorf("blockedFor after the block = %v, want 0", left)
		}
	})
}

// TestDetectorBounded checks that random keys (an attacker rotating
// principals or addresses) cannot grow the store past its bound.
func TestDetectorBounded(t *testing.T) {
	d := NewDetector(DefaultEnumerationKeys)
	now := time.Now()
	for k := range uint64(200_000) {
		d.observe(k*0x9e3779b97f4a7c15, 1, now, 20, time.Minute, time.Minute)
	}
	if n := d.Len(); n > DefaultEnumerationKeys {
		t.Errorf("Len() after 200000 keys = %d, want at most %d", n, DefaultEnumerationKeys)
	}
}

// enumChain is a route /users/{userId}/orders/{orderId} whose rule lets a
// principal read its own orders, behind enumeration detection with
// threshold 3; hits counts what reached the upstream.
type enumChain struct {
	h         http.Handler
	hits      int
	suspected *prometheus.CounterVec
	blocks    *prometheus.CounterVec
}

func newEnumChain(t testing.TB, mode config.Mode, block time.Duration, status int) *enumChain {
	t.Helper()
	rt := config.Route{Name: "orders", Path: "/users/{userId}/orders/{orderId}", Authorize: &config.RouteAuthorize{
		DenyStatus: 403, Mode: mode,
		Rules:       []config.AuthorizeRule{{Name: "owner", Expr: "request.path.userId == principal.sub"}},
		Enumeration: &config.Enumeration{Threshold: 3, Window: config.Duration(time.Minute), Block: config.Duration(block), BlockStatus: status},
	}}
	c := &enumChain{
		suspected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s"}, []string{"route"}),
		blocks:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b"}, []string{"route"}),
	}
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a"}, []string{"route", "rule", "result"})
	deps := Deps{Problems: problem.New(zap.NewNop(), denials), Decisions: decisions, Detector: NewDetector(0), Log: zap.NewNop(),
		Enumerations: c.suspected, EnumerationBlocks: c.blocks}
	o, err := Authorize(rt, deps)
	if err != nil {
		t.Fatal(err)
	}
	up := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { c.hits++ })
	r := chi.NewRouter()
	r.Handle(rt.Path, Enumerate(rt, deps).Middleware(o.Middleware(up)))
	c.h = r
	return c
}

// send sends GET target as p (nil: anonymous from ip) and returns the
// response and the request's record.
func (c *enumChain) send(p *exchange.Principal, ip, target string) (*httptest.ResponseRecorder, *exchange.Record) {
	rec := &exchange.Record{Principal: p, ClientIP: netip.MustParseAddr(ip), Route: &exchange.Route{Name: "orders"}}
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req = req.WithContext(exchange.With(req.Context(), rec))
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, req)
	return w, rec
}

func hasReason(ds []exchange.Decision, reason string) bool {
	for _, d := range ds {
		if d.Reason == reason {
			return true
		}
	}
	return false
}

func TestEnumerationBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newEnumChain(t, config.ModeInherit, 10*time.Minute, 429)
		alice := &exchange.Principal{Subject: "alice", Issuer: "https://idp"}
		bob := &exchange.Principal{Subject: "bob", Issuer: "https://idp"}
		for i := 1; i <= 3; i++ {
			w, rec := c.send(alice, "192.0.2.1", "/users/bob/orders/"+strconv.Itoa(i))
			if w.Code != http.StatusForbidden {
				t.Fatalf("alice on bob's order %d: status %d, want 403", i, w.Code)
			}
			_, would := rec.Decisions()
			if got, want := hasReason(would, reasonEnumeration), i == 3; got != want {
				t.Errorf("denial %d: %s recorded = %v, want %v", i, reasonEnumeration, got, want)
			}
		}
		if got := testutil.ToFloat64(c.suspected.WithLabelValues("orders")); got != 1 {
			t.Errorf("suspected = %v, want 1", got)
		}
		if got := testutil.ToFloat64(c.blocks.WithLabelValues("orders")); got != 1 {
			t.Errorf("blocks = %v, want 1", got)
		}
		hits := c.hits
		w, rec := c.send(alice, "192.0.2.1", "/users/alice/orders/1")
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "600" {
			t.Errorf("alice blocked: status %d Retry-After %q, want 429 and 600", w.Code, w.Header().Get("Retry-After"))
		}
		if d, _ := rec.Decisions(); d == nil || d.Reason != "enumeration_blocked" {
			t.Errorf("blocked decision = %+v, want enumeration_blocked", d)
		}
		if c.hits != hits {
			t.Errorf("a blocked request reached the upstream")
		}
		if w, _ := c.send(bob, "192.0.2.1", "/users/bob/orders/1"); w.Code != http.StatusOK {
			t.Errorf("bob from the same IP: status %d, want 200", w.Code)
		}
		time.Sleep(10 * time.Minute)
		if w, _ := c.send(alice, "192.0.2.1", "/users/alice/orders/1"); w.Code != http.StatusOK {
			t.Errorf("alice after the block: status %d, want 200", w.Code)
		}
	})
}

func TestEnumerationByIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newEnumChain(t, config.ModeInherit, time.Minute, 403)
		for i := 1; i <= 3; i++ {
			c.send(nil, "198.51.100.7", "/users/bob/orders/"+strconv.Itoa(i))
		}
		w, _ := c.send(nil, "198.51.100.7", "/users/bob/orders/1")
		if w.Code != http.StatusForbidden || w.Header().Get("Retry-After") != "" {
			t.Errorf("blocked IP: status %d Retry-After %q, want 403 without Retry-After", w.Code, w.Header().Get("Retry-After"))
		}
		if got := testutil.ToFloat64(c.suspected.WithLabelValues("orders")); got != 1 {
			t.Errorf("suspected = %v, want 1", got)
		}
		// Another address is another key: its denials start from zero.
		for i := 1; i <= 2; i++ {
			c.send(nil, "198.51.100.8", "/users/bob/orders/"+strconv.Itoa(i))
		}
		if got := testutil.ToFloat64(c.suspected.WithLabelValues("orders")); got != 1 {
			t.Errorf("suspected after another IP's 2 denials = %v, want 1", got)
		}
	})
}

func TestEnumerationRepeatedIDs(t *testing.T) {
	c := newEnumChain(t, config.ModeInherit, time.Minute, 429)
	alice := &exchange.Principal{Subject: "alice"}
	for range 10 {
		c.send(alice, "192.0.2.1", "/users/bob/orders/1")
		c.send(alice, "192.0.2.1", "/users/bob/orders/2")
	}
	if got := testutil.ToFloat64(c.suspected.WithLabelValues("orders")); got != 0 {
		t.Errorf("suspected after 2 distinct ids = %v, want 0", got)
	}
	if w, _ := c.send(alice, "192.0.2.1", "/users/alice/orders/1"); w.Code != http.StatusOK {
		t.Errorf("alice's own order: status %d, want 200", w.Code)
	}
}

func TestEnumerationReportMode(t *testing.T) {
	c := newEnumChain(t, config.ModeReport, time.Minute, 429)
	alice := &exchange.Principal{Subject: "alice"}
	for i := 1; i <= 3; i++ {
		if w, _ := c.send(alice, "192.0.2.1", "/users/bob/orders/"+strconv.Itoa(i)); w.Code != http.StatusOK {
			t.Errorf("report mode, bob's order %d: status %d, want 200", i, w.Code)
		}
	}
	if got := testutil.ToFloat64(c.suspected.WithLabelValues("orders")); got != 1 {
		t.Errorf("suspected = %v, want 1", got)
	}
	hits := c.hits
	w, rec := c.send(alice, "192.0.2.1", "/users/alice/orders/1")
	if _, would := rec.Decisions(); w.Code != http.StatusOK || !hasReason(would, "enumeration_blocked") || c.hits != hits+1 {
		t.Errorf("report mode while blocked: status %d, would-deny %+v, upstream hit %v; want 200, enumeration_blocked, hit",
			w.Code, would, c.hits == hits+1)
	}
}

func TestDeniedObject(t *testing.T) {
	tests := []struct {
		name string
		d    exchange.Decision
		want bool
	}{
		{name: "rule denied", d: exchange.Decision{Stage: "authz", Reason: "rule_denied"}, want: true},
		{name: "rule would deny", d: exchange.Decision{Stage: "authz", Reason: "rule_denied", Mode: config.ModeReport}, want: true},
		{name: "field not writable", d: exchange.Decision{Stage: "authz", Reason: "field_not_writable"}, want: true},
		{name: "scope", d: exchange.Decision{Stage: "authz", Reason: "insufficient_scope"}},
		{name: "parameter pollution", d: exchange.Decision{Stage: "authz", Reason: "parameter_pollution"}},
		{name: "blocked", d: exchange.Decision{Stage: "authz", Reason: "enumeration_blocked"}},
		{name: "report", d: exchange.Decision{Stage: "authz", Reason: reasonEnumeration, Mode: config.ModeReport}},
		{name: "authn", d: exchange.Decision{Stage: "authn", Reason: "bad_signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &exchange.Record{}
			rec.Decide(tt.d)
			if got := deniedObject(rec); got != tt.want {
				t.Errorf("deniedObject(%+v) = %v, want %v", tt.d, got, tt.want)
			}
		})
	}
}
