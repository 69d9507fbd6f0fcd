package authz

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/proxy"
)

func TestResponseRules(t *testing.T) {
	alice := &exchange.Principal{Subject: "alice", Roles: []string{"user"}}
	owner := config.ResponseRule{Name: "owner", Expr: "response.body.owner_id == principal.sub"}
	mine := config.ResponseRule{Name: "mine", Expr: "response.item.owner_id == principal.sub", Items: "$.invoices"}
	top := config.ResponseRule{Name: "mine", Expr: "response.item.owner_id == principal.sub", Items: "$"}
	const list = `{"total": 3, "invoices": [ {"id":1,"owner_id":"alice","amount":1.50}, {"id":2,"owner_id":"bob"} ,{"owner_id":"alice","id":3,"n":1e2}], "next": null}`
	tests := []struct {
		name    string
		rule    config.ResponseRule
		mode    config.Mode
		deny    int // deny_status; 0: 403
		status  int // the upstream's
		ctype   string
		body    string
		want    string // the body that leaves; "" with slug: refused
		slug    string // the refusal's problem
		code    int    // the refusal's status
		reason  string // of the decision recorded, if any
		result  string // counted for the rule
		dropped float64
	}{
		{name: "owner", rule: owner, body: `{"id":7,"owner_id":"alice"}`, want: `{"id":7,"owner_id":"alice"}`, result: "allow"},
		{name: "not the owner", rule: owner, body: `{"id":7,"owner_id":"bob","secret":"x"}`, slug: "forbidden", code: 403, reason: "rule_denied", result: "deny"},
		{name: "not the owner, as not found", rule: owner, deny: 404, body: `{"id":7,"owner_id":"bob"}`, slug: "not-found", code: 404, reason: "rule_denied", result: "deny"},
		{name: "missing field denies", rule: owner, body: `{"id":7}`, slug: "forbidden", code: 403, reason: "rule_denied", result: "error"},
		{name: "report mode lets it through", rule: owner, mode: config.ModeReport, body: `{"owner_id":"bob"}`, want: `{"owner_id":"bob"}`, reason: "rule_denied", result: "deny"},
		{name: "non-2xx is not checked", rule: owner, status: 404, body: `{"error":"no"}`, want: `{"error":"no"}`},
		{name: "empty body", rule: owner, status: 200, body: ``, want: ``},
		{name: "non-JSON fails closed", rule: owner, ctype: "text/plain", body: `owner bob`, slug: "unfilterable-upstream-response", code: 502, reason: "non_json"},
		{name: "invalid JSON fails closed", rule: owner, body: `{"owner_id":"alice","owner_id":"bob"}`, slug: "unfilterable-upstream-response", code: 502, reason: "invalid_json"},
		{name: "status", rule: config.ResponseRule{Name: "s", Expr: "response.status == 201"}, status: 201, body: `{}`, want: `{}`},
		{name: "items dropped, bytes kept", rule: mine, body: list, want: `{"total": 3, "invoices": [{"id":1,"owner_id":"alice","amount":1.50},{"owner_id":"alice","id":3,"n":1e2}], "next": null}`, result: "dropped", dropped: 1},
		{name: "items all kept", rule: mine, body: `{"invoices":[{"owner_id":"alice"}]}`, want: `{"invoices":[{"owner_id":"alice"}]}`, result: "allow"},
		{name: "items all dropped", rule: mine, body: `{"invoices":[{"owner_id":"bob"},{"owner_id":"carol"}]}`, want: `{"invoices":[]}`, result: "dropped", dropped: 2},
		{name: "empty array", rule: mine, body: `{"invoices":[ ]}`, want: `{"invoices":[ ]}`, result: "allow"},
		{name: "item that cannot be evaluated is dropped", rule: mine, body: `{"invoices":[{"id":1},{"owner_id":"alice"},7]}`, want: `{"invoices":[{"owner_id":"alice"}]}`, result: "dropped", dropped: 2},
		{name: "nested path", rule: config.ResponseRule{Name: "mine", Expr: mine.Expr, Items: "$.data.items"}, body: `{"a":{"items":[]},"data":{"x":[1],"items":[{"owner_id":"bob"},{"owner_id":"alice"}]}}`, want: `{"a":{"items":[]},"data":{"x":[1],"items":[{"owner_id":"alice"}]}}`, result: "dropped", dropped: 1},
		{name: "top-level array", rule: top, body: `[{"owner_id":"bob"},{"owner_id":"alice"}]`, want: `[{"owner_id":"alice"}]`, result: "dropped", dropped: 1},
		{name: "items in report mode stay", rule: mine, mode: config.ModeReport, body: list, want: list, reason: "rule_denied", result: "dropped", dropped: 1},
		{name: "items path missing denies", rule: mine, body: `{"data":[]}`, slug: "forbidden", code: 403, reason: "rule_denied", result: "error"},
		{name: "items path not an array denies", rule: mine, body: `{"invoices":{"owner_id":"alice"}}`, slug: "forbidden", code: 403, reason: "rule_denied", result: "error"},
		{name: "item rule reads the body too", rule: config.ResponseRule{Name: "mine", Expr: "response.item.n <= response.body.max", Items: "$.l"}, body: `{"max":2,"l":[{"n":1},{"n":3},{"n":2.0}]}`, want: `{"max":2,"l":[{"n":1},{"n":2.0}]}`, result: "dropped", dropped: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
			decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a"}, []string{"route", "rule", "result"})
			deny := tt.deny
			if deny == 0 {
				deny = 403
			}
			rt := config.Route{Name: "r", Path: "/invoices/{id}", Authorize: &config.RouteAuthorize{DenyStatus: deny, Mode: tt.mode, ResponseRules: []config.ResponseRule{tt.rule}}}
			s, err := Respond(rt, Deps{Problems: problem.New(zap.NewNop(), denials), Decisions: decisions})
			if err != nil {
				t.Fatal(err)
			}
			rec := &exchange.Record{RequestID: "req", Route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}, Principal: alice}
			req := httptest.NewRequest(http.MethodGet, "/invoices/7", nil)
			req = req.WithContext(exchange.With(req.Context(), rec))
			ctype, status := tt.ctype, tt.status
			if ctype == "" {
				ctype = "application/json"
			}
			if status == 0 {
				status = 200
			}
			resp := &proxy.Response{Status: status, Header: http.Header{"Content-Type": {ctype}, "Cache-Control": {"public, max-age=60"}}, Body: []byte(tt.body)}
			err = s.Respond(req, resp)
			var refusal *proxy.Refusal
			switch {
			case tt.slug != "" && (!errors.As(err, &refusal) || refusal.Problem.Slug != tt.slug || refusal.Problem.Status != tt.code):
				t.Fatalf("Respond() = %v, want a %d %s refusal", err, tt.code, tt.slug)
			case tt.slug == "" && err != nil:
				t.Fatalf("Respond() = %v, want nil", err)
			case tt.slug == "" && string(resp.Body) != tt.want:
				t.Errorf("body = %s, want %s", resp.Body, tt.want)
			}
			if refusal != nil && strings.Contains(refusal.Problem.Detail, "bob") {
				t.Errorf("the refusal shows the body: %s", refusal.Problem.Detail)
			}
			denied, would := rec.Decisions()
			d := denied
			if d == nil && len(would) > 0 {
				d = &would[0]
			}
			switch {
			case tt.reason == "" && d != nil:
				t.Errorf("decision = %+v, want none", d)
			case tt.reason != "" && (d == nil || d.Reason != tt.reason || d.Stage != problem.StageAuthz):
				t.Errorf("decision = %+v, want authz %s", d, tt.reason)
			case tt.reason == "rule_denied" && d.Rule != tt.rule.Name:
				t.Errorf("decision rule = %q, want %q", d.Rule, tt.rule.Name)
			}
			if tt.result != "" {
				want := 1.0
				if tt.result == "dropped" {
					want = tt.dropped
				}
				if got := testutil.ToFloat64(decisions.WithLabelValues("r", tt.rule.Name, tt.result)); got != want {
					t.Errorf("decisions{result=%q} = %v, want %v", tt.result, got, want)
				}
			}
			if status/100 == 2 && tt.body != "" && resp.Header.Get("Cache-Control") != "private, max-age=60" {
				t.Errorf("Cache-Control = %q, want private, max-age=60", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

func TestAuthorizeResponseRulesOnly(t *testing.T) {
	o, err := Authorize(config.Route{Authorize: &config.RouteAuthorize{ResponseRules: []config.ResponseRule{{Name: "a", Expr: "true"}}}}, Deps{})
	if o != nil || err != nil {
		t.Errorf("Authorize(response rules only) = %v, %v; want nil, nil (no request stage)", o, err)
	}
}

func TestRespondNothing(t *testing.T) {
	s, err := Respond(config.Route{Authorize: &config.RouteAuthorize{Rules: []config.AuthorizeRule{{Name: "a", Expr: "true"}}}}, Deps{})
	if s != nil || err != nil {
		t.Errorf("Respond(no response rules) = %v, %v; want nil, nil", s, err)
	}
}
