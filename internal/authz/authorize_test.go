package authz

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

func TestAuthorize(t *testing.T) {
	alice := &exchange.Principal{Subject: "alice", Roles: []string{"user"}, Claims: map[string]any{"tenant": "acme"}}
	admin := &exchange.Principal{Subject: "root", Roles: []string{"user", "admin"}}
	support := &exchange.Principal{Subject: "sam", Scopes: []string{"users:support"}}
	tests := []struct {
		name      string
		authorize config.RouteAuthorize
		principal *exchange.Principal
		target    string
		body      string // sent as application/json when not ""
		hdr       []string
		status    int
		slug      string
		reason    string
		rule      string
		result    string // of the last rule evaluated: allow, deny, error
		stage     string // of the decision; "" means authz
	}{
		{name: "owner by path", authorize: rule(403, "owner", "request.path.userId == principal.sub"), principal: alice, target: "/users/alice", status: 200, result: "allow"},
		{name: "other user by path", authorize: rule(403, "owner", "request.path.userId == principal.sub"), principal: alice, target: "/users/bob", status: 403, slug: "forbidden", reason: "rule_denied", rule: "owner", result: "deny"},
		{name: "deny as not found", authorize: rule(404, "owner", "request.path.userId == principal.sub"), principal: alice, target: "/users/bob", status: 404, slug: "not-found", reason: "rule_denied", rule: "owner", result: "deny"},
		{name: "no principal denies", authorize: rule(403, "owner", "request.path.userId == principal.sub"), target: "/users/alice", status: 403, slug: "forbidden", reason: "rule_denied", rule: "owner", result: "error"},
		{name: "body read without validation", authorize: rule(403, "body", "request.body.owner == principal.sub && request.body.n == 2"), principal: alice, target: "/users/x", body: `{"owner":"alice","n":2}`, status: 200, result: "allow"},
		{name: "body of another owner", authorize: rule(403, "body", "request.body.owner == principal.sub"), principal: alice, target: "/users/x", body: `{"owner":"bob"}`, status: 403, slug: "forbidden", rule: "body", result: "deny"},
		{name: "body missing field", authorize: rule(403, "body", "request.body.owner == principal.sub"), principal: alice, target: "/users/x", body: `{}`, status: 403, slug: "forbidden", rule: "body", result: "error"},
		{name: "body duplicate member", authorize: rule(403, "body", "request.body.owner == principal.sub"), principal: alice, target: "/users/x", body: `{"owner":"alice","owner":"bob"}`, status: 400, slug: "invalid-json", reason: "json_duplicate_member", stage: problem.StageValidate},
		{name: "repeated query read", authorize: rule(403, "q", `request.query.tenant == "acme"`), principal: alice, target: "/users/x?tenant=acme&tenant=globex", status: 400, slug: "parameter-pollution", reason: "parameter_pollution"},
		{name: "repeated query not read", authorize: rule(403, "q", `request.query.tenant == "acme"`), principal: alice, target: "/users/x?tenant=acme&x=1&x=2", status: 200, result: "allow"},
		{name: "repeated header read", authorize: rule(403, "h", `request.headers["x-tenant"] == "acme"`), principal: alice, target: "/users/x", hdr: []string{"X-Tenant", "acme", "X-Tenant", "acme"}, status: 400, slug: "parameter-pollution"},
		{name: "report mode lets it through", authorize: config.RouteAuthorize{DenyStatus: 403, Mode: config.ModeReport, Rules: []config.AuthorizeRule{{Name: "owner", Expr: "request.path.userId == principal.sub"}}}, principal: alice, target: "/users/bob", status: 200, reason: "rule_denied", rule: "owner", result: "deny"},
		{name: "field not written", authorize: fields(config.ModeInherit), principal: alice, target: "/users/x", body: `{"name":"a","address":{"city":"x"}}`, status: 200},
		{name: "admin-only field written", authorize: fields(config.ModeInherit), principal: alice, target: "/users/x", body: `{"name":"a","status":"active"}`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "status"},
		{name: "null counts as written", authorize: fields(config.ModeInherit), principal: alice, target: "/users/x", body: `{"status":null}`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "status"},
		{name: "admin writes it", authorize: fields(config.ModeInherit), principal: admin, target: "/users/x", body: `{"status":"active"}`, status: 200},
		{name: "scope grants nested field", authorize: fields(config.ModeInherit), principal: support, target: "/users/x", body: `{"address":{"country":"FR"}}`, status: 200},
		{name: "nested field", authorize: fields(config.ModeInherit), principal: alice, target: "/users/x", body: `{"address":{"country":"FR"}}`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "address.country"},
		{name: "field in an array element", authorize: fields(config.ModeInherit), principal: alice, target: "/users/x", body: `{"items":[{"id":1},{"id":2,"price":0}]}`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "items.price"},
		{name: "top-level array", authorize: fields(config.ModeInherit), principal: alice, target: "/users/x", body: `[{"status":"x"}]`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "status"},
		{name: "read-only field", authorize: fields(config.ModeInherit), principal: admin, target: "/users/x", body: `{"id":"7"}`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "id"},
		{name: "no body", authorize: fields(config.ModeInherit), principal: alice, target: "/users/x", status: 200},
		{name: "no principal", authorize: fields(config.ModeInherit), target: "/users/x", body: `{"status":"x"}`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "status"},
		{name: "fields in report mode", authorize: fields(config.ModeReport), principal: alice, target: "/users/x", body: `{"status":"x"}`, status: 200, reason: "field_not_writable", rule: "status"},
		{name: "rule denies before fields", authorize: config.RouteAuthorize{DenyStatus: 404, Rules: []config.AuthorizeRule{{Name: "owner", Expr: "request.path.userId == principal.sub"}}, WritableFields: fields(config.ModeInherit).WritableFields}, principal: alice, target: "/users/bob", body: `{"status":"x"}`, status: 404, slug: "not-found", reason: "rule_denied", rule: "owner", result: "deny"},
		{name: "rule holds, field denies", authorize: config.RouteAuthorize{DenyStatus: 404, Rules: []config.AuthorizeRule{{Name: "owner", Expr: "request.path.userId == principal.sub"}}, WritableFields: fields(config.ModeInherit).WritableFields}, principal: alice, target: "/users/alice", body: `{"status":"x"}`, status: 403, slug: "field-not-writable", reason: "field_not_writable", rule: "status", result: "allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
			decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a"}, []string{"route", "rule", "result"})
			rt := config.Route{Name: "r", Path: "/users/{userId}", Authorize: &tt.authorize}
			o, err := Authorize(rt, Deps{Problems: problem.New(zap.NewNop(), denials), Decisions: decisions})
			if err != nil {
				t.Fatal(err)
			}
			var upstreamBody string
			hits := 0
			mux := chi.NewMux()
			mux.Handle("/users/{userId}", o.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits++
				b, _ := io.ReadAll(r.Body)
				upstreamBody = string(b)
			})))
			rec := &exchange.Record{RequestID: "req", Route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}, Principal: tt.principal}
			req := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			} else {
				req.Body = http.NoBody
			}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Add(tt.hdr[i], tt.hdr[i+1])
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req.WithContext(exchange.With(req.Context(), rec)))
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				if hits != 1 || upstreamBody != tt.body {
					t.Errorf("next ran %d times with body %q, want once with %q", hits, upstreamBody, tt.body)
				}
			} else {
				if hits != 0 {
					t.Errorf("a denied request reached the next handler")
				}
				if !strings.Contains(w.Body.String(), `"urn:bulwark:problem:`+tt.slug+`"`) {
					t.Errorf("body %s, want problem %s", w.Body, tt.slug)
				}
			}
			denied, would := rec.Decisions()
			d := denied
			if d == nil && len(would) > 0 {
				d = &would[0]
			}
			stage := tt.stage
			if stage == "" {
				stage = problem.StageAuthz
			}
			if tt.reason != "" && (d == nil || d.Reason != tt.reason || d.Stage != stage || d.Rule != tt.rule) {
				t.Errorf("decision = %+v, want stage %s, reason %q, rule %q", d, stage, tt.reason, tt.rule)
			}
			if tt.result != "" {
				name := tt.authorize.Rules[0].Name
				if got := testutil.ToFloat64(decisions.WithLabelValues("r", name, tt.result)); got != 1 {
					t.Errorf("decisions{rule=%q,result=%q} = %v, want 1", name, tt.result, got)
				}
			}
		})
	}
}

func rule(status int, name, expr string) config.RouteAuthorize {
	return config.RouteAuthorize{DenyStatus: status, Rules: []config.AuthorizeRule{{Name: name, Expr: expr}}}
}

// fields is a route's writable fields: status and items.price for
// admins, address.country for admins or the users:support scope, id for
// nobody.
func fields(mode config.Mode) config.RouteAuthorize {
	return config.RouteAuthorize{DenyStatus: 403, Mode: mode, WritableFields: map[string]config.WritableField{
		"status":          {Roles: []string{"admin"}},
		"items.price":     {Roles: []string{"admin"}},
		"address.country": {Roles: []string{"admin"}, Scopes: []string{"users:support"}},
		"id":              {},
	}}
}

func TestAuthorizeNothing(t *testing.T) {
	o, err := Authorize(config.Route{}, Deps{})
	if o != nil || err != nil || o.ReadsBody() {
		t.Errorf("Authorize(no section) = %v, %v; want nil, nil", o, err)
	}
}

// TestWritableFieldsRefuseOtherBodies checks that a route with writable
// fields refuses a body it cannot check field by field: an upstream that
// parses JSON whatever the Content-Type would otherwise take the field.
func TestWritableFieldsRefuseOtherBodies(t *testing.T) {
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"route", "stage", "reason", "mode"})
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a"}, []string{"route", "rule", "result"})
	rt := config.Route{Name: "r", Path: "/users/{userId}", Authorize: &config.RouteAuthorize{DenyStatus: 403,
		WritableFields: map[string]config.WritableField{"status": {Roles: []string{"admin"}}}}}
	o, err := Authorize(rt, Deps{Problems: problem.New(zap.NewNop(), denials), Decisions: decisions, Limits: validate.DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, ct, body string
		status         int
	}{
		{"text/plain carrying JSON", "text/plain", `{"status":"x"}`, http.StatusUnsupportedMediaType},
		{"no Content-Type", "", `{"status":"x"}`, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", "status=x", http.StatusUnsupportedMediaType},
		{"no body", "", "", http.StatusOK},
		{"JSON without the field", "application/json", `{"name":"a"}`, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hits := 0
			h := o.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
			req := httptest.NewRequest(http.MethodPost, "/users/x", strings.NewReader(tt.body))
			if tt.body == "" {
				req = httptest.NewRequest(http.MethodPost, "/users/x", http.NoBody)
			}
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			rec := &exchange.Record{Route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}, Principal: &exchange.Principal{Subject: "alice"}}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.WithContext(exchange.With(req.Context(), rec)))
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if want := 0; tt.status != http.StatusOK && hits != want {
				t.Errorf("a refused request reached the next handler")
			}
		})
	}
}
