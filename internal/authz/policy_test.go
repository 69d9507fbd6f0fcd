package authz

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestParseVerdict(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name   string
		body   string
		want   Verdict
		errSub string
	}{
		{name: "true", body: `{"result": true}`, want: Verdict{Allow: true}},
		{name: "false", body: `{"result":false,"decision_id":"d1"}`, want: Verdict{}},
		{name: "object allow", body: `{"result":{"allow":true,"reason":"ignored when allowed"}}`, want: Verdict{Allow: true}},
		{name: "object deny with reason", body: `{"result":{"allow":false,"reason":"not your tenant"}}`, want: Verdict{Reason: "not your tenant"}},
		{name: "reason cleaned", body: `{"result":{"allow":false,"reason":"a\u0000b\nc\u00e9d"}}`, want: Verdict{Reason: "abcd"}},
		{name: "reason bounded", body: `{"result":{"allow":false,"reason":"` + long + `"}}`, want: Verdict{Reason: long[:maxPolicyReason]}},
		{name: "reason not a string", body: `{"result":{"allow":false,"reason":7}}`, want: Verdict{}},
		{name: "undefined document", body: `{}`, errSub: "undefined"},
		{name: "null result", body: `{"result":null}`, errSub: "undefined"},
		{name: "string result", body: `{"result":"yes"}`, errSub: "neither a boolean nor an object"},
		{name: "number result", body: `{"result":1}`, errSub: "neither a boolean nor an object"},
		{name: "object without allow", body: `{"result":{"deny":false}}`, errSub: "no boolean allow"},
		{name: "allow not a boolean", body: `{"result":{"allow":"true"}}`, errSub: "no boolean allow"},
		{name: "not JSON", body: `allow`, errSub: "not a JSON object"},
		{name: "an array", body: `[true]`, errSub: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVerdict([]byte(tt.body))
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Fatalf("err = %v, want one containing %q (verdict %+v)", err, tt.errSub, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("verdict = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// policyServer is a real HTTP server on 127.0.0.1 answering every call
// with answer (and status), counting calls and keeping the last body.
type policyServer struct {
	srv    *httptest.Server
	calls  atomic.Int64
	status atomic.Int64
	answer atomic.Value // string
	delay  atomic.Int64 // nanoseconds
	last   atomic.Value // *http.Request with body read into lastBody
	body   atomic.Value // string
}

func startPolicyServer(t *testing.T, answer string) *policyServer {
	t.Helper()
	s := &policyServer{}
	s.status.Store(200)
	s.answer.Store(answer)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.last.Store(r)
		s.body.Store(string(b))
		if d := time.Duration(s.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(int(s.status.Load()))
		_, _ = io.WriteString(w, s.answer.Load().(string))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func newPolicyForTest(t *testing.T, cfg config.Policy) (*Policy, PolicyMetrics) {
	t.Helper()
	m := PolicyMetrics{
		Duration:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d"}, []string{"policy"}),
		Errors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "e"}, []string{"policy", "reason"}),
		CacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "h"}, []string{"policy"}),
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = config.Duration(time.Second)
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = 100
	}
	if cfg.BreakerCooldown == 0 {
		cfg.BreakerCooldown = config.Duration(time.Minute)
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 100
	}
	p, err := NewPolicy("p", cfg, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, m
}

func reasonOf(err error) string {
	var pe *PolicyError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return ""
}

func TestPolicyDecideCallsTheServer(t *testing.T) {
	s := startPolicyServer(t, `{"result":{"allow":false,"reason":"no"}}`)
	p, m := newPolicyForTest(t, config.Policy{URL: s.srv.URL + "/v1/data/bulwark/authz",
		Headers: map[string]config.Secret{"Authorization": "Bearer opa-token"}})
	input := []byte(`{"input":{"principal":null}}`)
	v, err := p.Decide(context.Background(), input)
	if err != nil || v.Allow || v.Reason != "no" {
		t.Fatalf("Decide = %+v, %v", v, err)
	}
	r := s.last.Load().(*http.Request)
	if r.Method != http.MethodPost || r.URL.Path != "/v1/data/bulwark/authz" || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Authorization") != "Bearer opa-token" {
		t.Errorf("request = %s %s, headers %v", r.Method, r.URL.Path, r.Header)
	}
	if got := s.body.Load().(string); got != string(input) {
		t.Errorf("body = %s, want %s", got, input)
	}
	if n := testutil.CollectAndCount(m.Duration); n != 1 {
		t.Errorf("duration series = %d, want 1", n)
	}
}

func TestPolicyDecideFailsClosed(t *testing.T) {
	tests := []struct {
		name   string
		status int
		answer string
		delay  time.Duration
		reason string
	}{
		{name: "status 500", status: 500, answer: `{"code":"internal_error"}`, reason: "unavailable"},
		{name: "status 400", status: 400, answer: `{"result":true}`, reason: "unavailable"},
		{name: "redirect", status: 307, answer: ``, reason: "unavailable"},
		{name: "not a decision", status: 200, answer: `{"result":"allow"}`, reason: "bad_response"},
		{name: "too large", status: 200, answer: `{"result":true,"pad":"` + strings.Repeat("x", maxPolicyAnswer) + `"}`, reason: "bad_response"},
		{name: "slow", status: 200, answer: `{"result":true}`, delay: 2 * time.Second, reason: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startPolicyServer(t, tt.answer)
			s.status.Store(int64(tt.status))
			s.delay.Store(int64(tt.delay))
			p, m := newPolicyForTest(t, config.Policy{URL: s.srv.URL, Timeout: config.Duration(100 * time.Millisecond)})
			start := time.Now()
			v, err := p.Decide(context.Background(), []byte(`{"input":{}}`))
			if err == nil || v.Allow {
				t.Fatalf("Decide = %+v, %v; want no decision", v, err)
			}
			if got := reasonOf(err); got != tt.reason {
				t.Errorf("reason = %q (%v), want %q", got, err, tt.reason)
			}
			if tt.delay > 0 && time.Since(start) > time.Second {
				t.Errorf("a slow server held the call for %s", time.Since(start))
			}
			if got := testutil.ToFloat64(m.Errors.WithLabelValues("p", tt.reason)); got != 1 {
				t.Errorf("errors{%s} = %v, want 1", tt.reason, got)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		s := startPolicyServer(t, `{"result":true}`)
		url := s.srv.URL
		s.srv.Close()
		p, _ := newPolicyForTest(t, config.Policy{URL: url})
		if _, err := p.Decide(context.Background(), []byte(`{}`)); reasonOf(err) != "unavailable" {
			t.Fatalf("err = %v, want unavailable", err)
		}
	})
}

func TestPolicyCache(t *testing.T) {
	s := startPolicyServer(t, `{"result":true}`)
	p, m := newPolicyForTest(t, config.Policy{URL: s.srv.URL, CacheTTL: config.Duration(time.Hour)})
	a, b := []byte(`{"input":{"a":1}}`), []byte(`{"input":{"a":2}}`)
	for range 3 {
		for _, in := range [][]byte{a, b} {
			if v, err := p.Decide(context.Background(), in); err != nil || !v.Allow {
				t.Fatalf("Decide = %+v, %v", v, err)
			}
		}
	}
	if got := s.calls.Load(); got != 2 {
		t.Errorf("calls = %d, want 2 (one per input)", got)
	}
	if got := testutil.ToFloat64(m.CacheHits.WithLabelValues("p")); got != 4 {
		t.Errorf("cache hits = %v, want 4", got)
	}
	// A failure is never cached.
	s.status.Store(500)
	c := []byte(`{"input":{"a":3}}`)
	for range 2 {
		if _, err := p.Decide(context.Background(), c); err == nil {
			t.Fatal("a failed call gave a decision")
		}
	}
	if got := s.calls.Load(); got != 4 {
		t.Errorf("calls = %d, want 4 (failures are not cached)", got)
	}
}

func TestPolicyNoCacheByDefault(t *testing.T) {
	s := startPolicyServer(t, `{"result":true}`)
	p, _ := newPolicyForTest(t, config.Policy{URL: s.srv.URL})
	for range 3 {
		if _, err := p.Decide(context.Background(), []byte(`{"input":{}}`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.calls.Load(); got != 3 {
		t.Errorf("calls = %d, want 3", got)
	}
}

func TestPolicyBreaker(t *testing.T) {
	s := startPolicyServer(t, `{"code":"internal_error"}`)
	s.status.Store(500)
	p, m := newPolicyForTest(t, config.Policy{URL: s.srv.URL, BreakerFailures: 2, BreakerCooldown: config.Duration(200 * time.Millisecond)})
	in := []byte(`{"input":{}}`)
	for range 5 {
		if _, err := p.Decide(context.Background(), in); err == nil {
			t.Fatal("a failing server gave a decision")
		}
	}
	if got := s.calls.Load(); got != 2 {
		t.Errorf("calls = %d, want 2 (then the breaker opened)", got)
	}
	if got := testutil.ToFloat64(m.Errors.WithLabelValues("p", "circuit_open")); got != 3 {
		t.Errorf("circuit_open = %v, want 3", got)
	}
	// The server recovers; after the cooldown one probe closes the breaker.
	s.status.Store(200)
	s.answer.Store(`{"result":true}`)
	time.Sleep(250 * time.Millisecond)
	if v, err := p.Decide(context.Background(), in); err != nil || !v.Allow {
		t.Fatalf("probe: Decide = %+v, %v", v, err)
	}
	if v, err := p.Decide(context.Background(), in); err != nil || !v.Allow {
		t.Fatalf("after the probe: Decide = %+v, %v", v, err)
	}
	if got := s.calls.Load(); got != 4 {
		t.Errorf("calls = %d, want 4", got)
	}
}

func TestPolicyCanceledCallerDoesNotTripTheBreaker(t *testing.T) {
	s := startPolicyServer(t, `{"result":true}`)
	s.delay.Store(int64(time.Second))
	p, _ := newPolicyForTest(t, config.Policy{URL: s.srv.URL, BreakerFailures: 1})
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		if _, err := p.Decide(ctx, []byte(`{}`)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	}
	if p.breaker.Open() {
		t.Error("callers that gave up opened the breaker")
	}
}

// TestPolicyInputDocument runs the object-level stage with a policy and
// checks the input document the policy server receives: the principal,
// the path parameters, the query, only the configured headers, the body
// and the client IP, with stable bytes for equal requests.
func TestPolicyInputDocument(t *testing.T) {
	s := startPolicyServer(t, `{"result":true}`)
	p, _ := newPolicyForTest(t, config.Policy{URL: s.srv.URL,
		Input: config.PolicyInput{Body: true, ClientIP: true, Headers: []string{"x-tenant"}}})
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a"}, []string{"route", "rule", "result"})
	rt := config.Route{Name: "r", Path: "/users/{userId}", Upstream: "app",
		Authorize: &config.RouteAuthorize{DenyStatus: 403, Policy: "tenants"}}
	o, err := Authorize(rt, Deps{Problems: problem.New(zap.NewNop(), denials), Decisions: decisions,
		Policies: map[string]*Policy{"tenants": p}})
	if err != nil {
		t.Fatal(err)
	}
	if !o.ReadsBody() {
		t.Error("a policy whose input carries the body does not read it")
	}
	mux := chi.NewMux()
	mux.Handle("/users/{userId}", o.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	send := func() string {
		rec := &exchange.Record{Route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}, ClientIP: netip.MustParseAddr("192.0.2.7"),
			Principal: &exchange.Principal{Subject: "alice", Issuer: "https://idp", Method: "jwt", Authenticator: "corp",
				Scopes: []string{"docs"}, Claims: map[string]any{"tenant": "acme", "sub": "alice", "z": 1, "a": 2}}}
		req := httptest.NewRequest(http.MethodPost, "/users/al%69ce?b=2&a=1&a=3", strings.NewReader(`{"owner":"alice","n":1.50}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Tenant", "acme")
		req.Header.Set("Authorization", "Bearer secret-token")
		req.Header.Set("X-Other", "not sent")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req.WithContext(exchange.With(req.Context(), rec)))
		if w.Code != 200 {
			t.Fatalf("status = %d (%s)", w.Code, w.Body)
		}
		return s.body.Load().(string)
	}
	got := send()
	want := `{"input":{"principal":{"sub":"alice","issuer":"https://idp","auth_method":"jwt","authenticator":"corp",` +
		`"scopes":["docs"],"roles":[],"claims":{"a":2,"sub":"alice","tenant":"acme","z":1}},` +
		`"request":{"method":"POST","path":{"userId":"alice"},"query":{"a":["1","3"],"b":["2"]},` +
		`"headers":{"x-tenant":["acme"]},"body":{"n":1.50,"owner":"alice"},"client_ip":"192.0.2.7"},` +
		`"route":{"name":"r","path":"/users/{userId}","upstream":"app"}}}`
	if got != want {
		t.Errorf("input =\n%s\nwant\n%s", got, want)
	}
	if again := send(); again != got {
		t.Errorf("equal requests gave different inputs:\n%s\n%s", got, again)
	}
	if testutil.ToFloat64(decisions.WithLabelValues("r", "policy:tenants", "allow")) != 2 {
		t.Error("allow decisions not counted under rule policy:tenants")
	}
}
