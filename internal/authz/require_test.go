package authz

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestRequire(t *testing.T) {
	alice := &exchange.Principal{
		Subject: "alice",
		Scopes:  []string{"orders:read", "orders:write"},
		Roles:   []string{"support"},
		Claims: map[string]any{
			"tenant":       "acme",
			"tier":         float64(2),
			"verified":     true,
			"groups":       []any{"eng", "ops"},
			"realm_access": map[string]any{"tenant": "acme-eu"},
			"empty":        nil,
		},
	}
	tests := []struct {
		name      string
		require   config.Require
		principal *exchange.Principal
		status    int
		slug      string
		reason    string
	}{
		{name: "all scopes held", require: config.Require{Scopes: []string{"orders:read", "orders:write"}}, principal: alice, status: 200},
		{name: "a scope missing", require: config.Require{Scopes: []string{"orders:read", "orders:admin"}}, principal: alice, status: 403, slug: "insufficient-scope", reason: "insufficient_scope"},
		{name: "scopes match exactly, not by prefix", require: config.Require{Scopes: []string{"orders"}}, principal: alice, status: 403, slug: "insufficient-scope"},
		{name: "scopes match case-sensitively", require: config.Require{Scopes: []string{"Orders:Read"}}, principal: alice, status: 403, slug: "insufficient-scope"},
		{name: "any scope: one held", require: config.Require{AnyScopes: []string{"orders:admin", "orders:write"}}, principal: alice, status: 200},
		{name: "any scope: none held", require: config.Require{AnyScopes: []string{"orders:admin", "billing:read"}}, principal: alice, status: 403, slug: "insufficient-scope"},
		{name: "role held", require: config.Require{Roles: []string{"support"}}, principal: alice, status: 200},
		{name: "role missing", require: config.Require{Roles: []string{"support", "admin"}}, principal: alice, status: 403, slug: "insufficient-privileges", reason: "missing_role"},
		{name: "role case-sensitive", require: config.Require{Roles: []string{"Support"}}, principal: alice, status: 403, slug: "insufficient-privileges"},
		{name: "string claim", require: config.Require{Claims: map[string][]string{"tenant": {"globex", "acme"}}}, principal: alice, status: 200},
		{name: "string claim other value", require: config.Require{Claims: map[string][]string{"tenant": {"globex"}}}, principal: alice, status: 403, slug: "insufficient-privileges", reason: "claim_mismatch"},
		{name: "dotted claim path", require: config.Require{Claims: map[string][]string{"realm_access.tenant": {"acme-eu"}}}, principal: alice, status: 200},
		{name: "number claim", require: config.Require{Claims: map[string][]string{"tier": {"2"}}}, principal: alice, status: 200},
		{name: "boolean claim", require: config.Require{Claims: map[string][]string{"verified": {"true"}}}, principal: alice, status: 200},
		{name: "array claim holds one", require: config.Require{Claims: map[string][]string{"groups": {"ops"}}}, principal: alice, status: 200},
		{name: "missing claim", require: config.Require{Claims: map[string][]string{"region": {"eu"}}}, principal: alice, status: 403, slug: "insufficient-privileges"},
		{name: "null claim", require: config.Require{Claims: map[string][]string{"empty": {""}}}, principal: alice, status: 403, slug: "insufficient-privileges"},
		{name: "object claim never matches", require: config.Require{Claims: map[string][]string{"realm_access": {"acme-eu"}}}, principal: alice, status: 403, slug: "insufficient-privileges"},
		{name: "every requirement must hold", require: config.Require{Scopes: []string{"orders:read"}, Roles: []string{"support"}, Claims: map[string][]string{"tenant": {"globex"}}}, principal: alice, status: 403, slug: "insufficient-privileges"},
		{name: "no principal (report-mode authentication)", require: config.Require{Scopes: []string{"orders:read"}}, principal: nil, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
			pw := problem.New(zap.NewNop(), denials)
			rt := config.Route{Name: "r", Require: &tt.require}
			hits := 0
			h := Require(rt, pw)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
			rec := &exchange.Record{RequestID: "req", Route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}, Principal: tt.principal}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.WithContext(exchange.With(req.Context(), rec)))
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				if hits != 1 {
					t.Errorf("next ran %d times, want 1", hits)
				}
				return
			}
			if hits != 0 {
				t.Errorf("a denied request reached the next handler")
			}
			if !strings.Contains(w.Body.String(), "urn:bulwark:problem:"+tt.slug) {
				t.Errorf("body %s, want problem %s", w.Body, tt.slug)
			}
			if ch := w.Header().Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `realm="bulwark"`) {
				t.Errorf("WWW-Authenticate = %q", ch)
			}
			if d, _ := rec.Decisions(); d == nil || tt.reason != "" && d.Reason != tt.reason || d.Stage != problem.StageAuthz {
				t.Errorf("decision = %+v, want stage authz reason %q", d, tt.reason)
			}
		})
	}
}

func TestRequireNothing(t *testing.T) {
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, q := range []*config.Require{nil, {}} {
		h := Require(config.Route{Require: q}, nil)(next)
		if _, same := h.(http.HandlerFunc); !same {
			t.Errorf("require %+v: a stage was added for no requirement", q)
		}
	}
}

func TestRequireChallengeNamesScopes(t *testing.T) {
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
	rt := config.Route{Name: "r", Require: &config.Require{Scopes: []string{"a"}, AnyScopes: []string{"b", "c"}}}
	h := Require(rt, problem.New(zap.NewNop(), denials))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec := &exchange.Record{Route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}, Principal: &exchange.Principal{}}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req.WithContext(exchange.With(req.Context(), rec)))
	if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="bulwark", error="insufficient_scope", scope="a b c"`; got != want {
		t.Errorf("challenge = %q, want %q", got, want)
	}
}
