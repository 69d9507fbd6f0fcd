package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// BenchmarkPolicyCachedDecision measures a policy decision taken from the
// cache, as the stage takes it: the input document encoded (a JWT-like
// principal with a few claims, two path parameters, a query), hashed and
// looked up. The target is under 5 µs.
func BenchmarkPolicyCachedDecision(b *testing.B) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"result":{"allow":true}}`))
	}))
	defer s.Close()
	m := PolicyMetrics{
		Duration:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d"}, []string{"policy"}),
		Errors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "e"}, []string{"policy", "reason"}),
		CacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "h"}, []string{"policy"}),
	}
	p, err := NewPolicy("tenants", config.Policy{URL: s.URL, Timeout: config.Duration(time.Second), CacheTTL: config.Duration(time.Hour),
		CacheSize: 1000, BreakerFailures: 5, BreakerCooldown: config.Duration(time.Second)}, m, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"route", "stage", "reason", "mode"})
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a"}, []string{"route", "rule", "result"})
	rt := config.Route{Name: "docs", Path: "/tenants/{tenant}/docs/{docId}", Upstream: "docs",
		Authorize: &config.RouteAuthorize{DenyStatus: 403, Policy: "tenants"}}
	o, err := Authorize(rt, Deps{Problems: problem.New(zap.NewNop(), denials), Decisions: decisions, Policies: map[string]*Policy{"tenants": p}})
	if err != nil {
		b.Fatal(err)
	}
	st := &objectStage{ObjectRules: o, next: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	rec := &exchange.Record{Route: &exchange.Route{Name: "docs", Mode: config.ModeEnforce}, ClientIP: netip.MustParseAddr("192.0.2.7"),
		Principal: &exchange.Principal{Subject: "alice", Issuer: "https://idp.example.com", Method: "jwt", Authenticator: "corp",
			Scopes: []string{"docs:read", "docs:write"}, Roles: []string{"user"},
			Claims: map[string]any{"sub": "alice", "iss": "https://idp.example.com", "aud": "api", "tenant": "acme",
				"exp": float64(1893456000), "iat": float64(1893452400), "scope": "docs:read docs:write"}}}
	req := httptest.NewRequest(http.MethodGet, "/tenants/acme/docs/42?view=full", nil)
	rctx := chi.NewRouteContext()
	rctx.URLParams.Add("tenant", "acme")
	rctx.URLParams.Add("docId", "42")
	req = req.WithContext(context.WithValue(exchange.With(req.Context(), rec), chi.RouteCtxKey, rctx))
	w := httptest.NewRecorder()
	if !st.askPolicy(w, req, rec) { // the one call that fills the cache
		b.Fatalf("the first decision denied: %s", w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !st.askPolicy(w, req, rec) {
			b.Fatal("denied")
		}
	}
}
