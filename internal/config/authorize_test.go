package config

import (
	"strings"
	"testing"
)

// authorizeRoute returns a config whose route, authenticated with an API
// key, has the authorize section written on lines 10 and on.
func authorizeRoute(auth string, section ...string) string {
	return lines(append([]string{
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"authenticators: { keys: { type: api_key, header: X-API-Key } }",
		"routes:",
		"  - name: r",
		"    method: GET",
		"    path: /users/{userId}",
		"    upstream: app",
		"    auth: " + auth,
	}, section...)...)
}

func TestAuthorizeLoads(t *testing.T) {
	cfg := mustParse(t, authorizeRoute("[keys]",
		"    authorize:",
		"      rules:",
		"        - { name: owner, expr: 'request.path.userId == principal.sub' }",
		"        - { name: tenant, expr: 'request.headers[\"x-tenant\"] == \"acme\"' }",
	), nil)
	a := cfg.Routes[0].Authorize
	if a == nil || a.DenyStatus != 403 || a.Mode != ModeInherit || len(a.Rules) != 2 || a.Rules[1].Name != "tenant" {
		t.Errorf("Authorize = %+v, want deny_status 403, mode inherit, two rules", a)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	tests := []struct {
		name    string
		auth    string
		section []string
		want    string
	}{
		{
			name:    "deny status",
			section: []string{"    authorize: { deny_status: 401, rules: [ { name: a, expr: 'true' } ] }"},
			want:    "t.yaml:10:31: routes[0].authorize.deny_status: must be 403 or 404",
		},
		{
			name:    "no rules",
			section: []string{"    authorize: { rules: [] }"},
			want:    "t.yaml:10:25: routes[0].authorize.rules: must list at least one rule ({name, expr}), or give writable_fields, response_rules or policy",
		},
		{
			name:    "duplicate rule names",
			section: []string{"    authorize: { rules: [ { name: a, expr: 'true' }, { name: a, expr: 'false' } ] }"},
			want:    `t.yaml:10:62: routes[0].authorize.rules[1].name: duplicate rule name "a" (first at rules[0])`,
		},
		{
			name:    "bad rule name",
			section: []string{"    authorize: { rules: [ { name: 'a b', expr: 'true' } ] }"},
			want:    "t.yaml:10:35: routes[0].authorize.rules[0].name: invalid rule name: 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)",
		},
		{
			name: "undeclared variable",
			section: []string{
				"    authorize:",
				"      rules:",
				"        - name: owner",
				"          expr: 'request.path.userId == principal.name'",
			},
			want: "t.yaml:13:17: routes[0].authorize.rules[0].expr: expression 1:33: undeclared reference to 'principal.name' (did you mean 'principal.sub' or 'principal.roles'?)",
		},
		{
			name:    "type error",
			section: []string{"    authorize: { rules: [ { name: a, expr: 'request.path.userId == 1' } ] }"},
			want:    "t.yaml:10:44: routes[0].authorize.rules[0].expr: expression 1:21: found no matching overload for '_==_' applied to '(string, int)'",
		},
		{
			name:    "not bool",
			section: []string{"    authorize: { rules: [ { name: a, expr: 'principal.roles' } ] }"},
			want:    "t.yaml:10:44: routes[0].authorize.rules[0].expr: expression 1:1: must evaluate to bool, not list(string)",
		},
		{
			name:    "principal on a public route",
			auth:    "none",
			section: []string{"    authorize: { rules: [ { name: a, expr: '\"admin\" in principal.roles' } ] }"},
			want:    "t.yaml:10:44: routes[0].authorize.rules[0].expr: a public route (auth: none) has no principal for principal.* to read",
		},
		{
			name:    "empty field path segment",
			section: []string{"    authorize: { writable_fields: { 'address..country': { roles: [admin] } } }"},
			want:    `t.yaml:10:37: routes[0].authorize.writable_fields.address..country: invalid field path "address..country": member names joined by '.', none of them empty`,
		},
		{
			name:    "roles on a public route",
			auth:    "none",
			section: []string{"    authorize: { writable_fields: { status: { roles: [admin] } } }"},
			want:    "t.yaml:10:45: routes[0].authorize.writable_fields.status: a public route (auth: none) has no principal to hold roles or scopes; {} makes the field read-only",
		},
		{
			name:    "response rule named like a request rule",
			section: []string{"    authorize: { rules: [ { name: a, expr: 'true' } ], response_rules: [ { name: a, expr: 'true' } ] }"},
			want:    `t.yaml:10:82: routes[0].authorize.response_rules[0].name: duplicate rule name "a" (first at rules[0])`,
		},
		{
			name: "response rule type error",
			section: []string{
				"    authorize:",
				"      response_rules:",
				"        - name: owner",
				"          expr: 'response.status == \"200\"'",
			},
			want: "t.yaml:13:17: routes[0].authorize.response_rules[0].expr: expression 1:17: found no matching overload for '_==_' applied to '(int, string)'",
		},
		{
			name:    "response variable in a request rule",
			section: []string{"    authorize: { rules: [ { name: a, expr: 'response.body.owner == principal.sub' } ] }"},
			want:    "t.yaml:10:44: routes[0].authorize.rules[0].expr: expression 1:1: undeclared reference to 'response'",
		},
		{
			name:    "item without items",
			section: []string{"    authorize: { response_rules: [ { name: a, expr: 'response.item.owner == principal.sub' } ] }"},
			want:    "t.yaml:10:53: routes[0].authorize.response_rules[0].expr: response.item is only set for a rule with items (the path to the array whose elements it checks)",
		},
		{
			name:    "bad items path",
			section: []string{"    authorize: { response_rules: [ { name: a, expr: 'response.item.owner == principal.sub', items: 'invoices' } ] }"},
			want:    `t.yaml:10:100: routes[0].authorize.response_rules[0].items: invalid path "invoices": $ (the body) or $ followed by .name steps ($.invoices, $.data.items)`,
		},
		{
			name:    "response rule reads principal on a public route",
			auth:    "none",
			section: []string{"    authorize: { response_rules: [ { name: a, expr: 'response.body.owner == principal.sub' } ] }"},
			want:    "t.yaml:10:53: routes[0].authorize.response_rules[0].expr: a public route (auth: none) has no principal for principal.* to read",
		},
		{
			name:    "unknown key",
			section: []string{"    authorize: { rule: [] }"},
			want: "t.yaml:10:16: routes[0].authorize.rules: must list at least one rule ({name, expr}), or give writable_fields, response_rules or policy\n" +
				`t.yaml:10:18: routes[0].authorize.rule: unknown key "rule" (known keys here: rules, writable_fields, response_rules, policy, deny_status, mode, enumeration)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth
			if auth == "" {
				auth = "[keys]"
			}
			errs := parseErrors(t, authorizeRoute(auth, tt.section...), nil)
			if got := errs.Error(); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAuthorizePublicRouteWithoutPrincipal(t *testing.T) {
	mustParse(t, authorizeRoute("none", "    authorize: { rules: [ { name: a, expr: 'request.path.userId != \"root\"' } ] }"), nil)
}

func TestAuthorizeWritableFieldsOnly(t *testing.T) {
	cfg := mustParse(t, authorizeRoute("[keys]",
		"    authorize:",
		"      writable_fields:",
		"        status: { roles: [admin] }",
		"        address.country: { scopes: [users:admin], roles: [admin] }",
		"        id: {}",
	), nil)
	a := cfg.Routes[0].Authorize
	if a == nil || len(a.Rules) != 0 || len(a.WritableFields) != 3 || a.WritableFields["address.country"].Scopes[0] != "users:admin" {
		t.Errorf("Authorize = %+v, want three writable fields and no rules", a)
	}
	mustParse(t, authorizeRoute("none", "    authorize: { writable_fields: { id: {} } }"), nil)
}

func TestAuthorizeResponseRules(t *testing.T) {
	cfg := mustParse(t, authorizeRoute("[keys]",
		"    authorize:",
		"      deny_status: 404",
		"      response_rules:",
		"        - { name: owner, expr: 'response.status != 200 || response.body.owner_id == principal.sub' }",
		"        - { name: mine, expr: 'response.item.owner_id == principal.sub', items: $.invoices }",
		"        - { name: top, expr: 'response.item.owner_id == principal.sub', items: $ }",
	), nil)
	a := cfg.Routes[0].Authorize
	if a == nil || len(a.ResponseRules) != 3 || a.ResponseRules[1].Items != "$.invoices" || a.DenyStatus != 404 {
		t.Errorf("Authorize = %+v, want three response rules", a)
	}
}

func TestEnumerationLoads(t *testing.T) {
	cfg := mustParse(t, authorizeRoute("[keys]",
		"    authorize:",
		"      rules: [ { name: owner, expr: 'request.path.userId == principal.sub' } ]",
		"      enumeration: { threshold: 20, window: 1m }",
	), nil)
	e := cfg.Routes[0].Authorize.Enumeration
	if e == nil || e.Threshold != 20 || e.Window != Duration(60e9) || e.Block != 0 || e.BlockStatus != 429 {
		t.Errorf("Enumeration = %+v, want threshold 20, window 1m, no block, block_status 429", e)
	}
}

func TestEnumerationErrors(t *testing.T) {
	tests := []struct {
		name    string
		section string
		want    string
	}{
		{name: "threshold", section: "{ threshold: 1, window: 1m }",
			want: "routes[0].authorize.enumeration.threshold: must be"},
		{name: "threshold too high", section: "{ threshold: 101, window: 1m }",
			want: "routes[0].authorize.enumeration.threshold: must be between 2 and 100"},
		{name: "window", section: "{ threshold: 5, window: 0s }",
			want: "routes[0].authorize.enumeration.window: must be greater than 0"},
		{name: "block", section: "{ threshold: 5, window: 1m, block: -1s }",
			want: "routes[0].authorize.enumeration.block: a duration must not be negative"},
		{name: "block status", section: "{ threshold: 5, window: 1m, block_status: 404 }",
			want: "routes[0].authorize.enumeration.block_status: must be 429 or 403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, authorizeRoute("[keys]",
				"    authorize:",
				"      rules: [ { name: owner, expr: 'request.path.userId == principal.sub' } ]",
				"      enumeration: "+tt.section,
			), nil)
			if got := errs.Error(); !strings.Contains(got, tt.want) {
				t.Errorf("error = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestEnumerationNeedsPathParameters(t *testing.T) {
	src := strings.Replace(authorizeRoute("[keys]",
		"    authorize:",
		"      rules: [ { name: owner, expr: 'principal.sub == \"a\"' } ]",
		"      enumeration: { threshold: 5, window: 1m }",
	), "/users/{userId}", "/users", 1)
	want := "routes[0].authorize.enumeration: the route's path has no parameters"
	if got := parseErrors(t, src, nil).Error(); !strings.Contains(got, want) {
		t.Errorf("error = %q, want it to contain %q", got, want)
	}
}
