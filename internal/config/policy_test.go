package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// policyConfig returns a config with the policies entry written on line
// 5 and a route that uses policy tenants.
func policyConfig(policy ...string) string {
	return lines(append(append([]string{
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"authenticators: { keys: { type: api_key, header: X-API-Key } }",
		"policies:",
	}, policy...),
		"routes:",
		"  - name: r",
		"    method: GET",
		"    path: /users/{userId}",
		"    upstream: app",
		"    auth: [keys]",
		"    authorize: { policy: tenants }",
	)...)
}

func TestPolicyLoadsWithDefaults(t *testing.T) {
	cfg := mustParse(t, policyConfig(
		"  tenants:",
		"    url: http://127.0.0.1:8181/v1/data/bulwark/authz",
		"    headers: { Authorization: \"Bearer ${OPA_TOKEN}\" }",
		"    input: { body: true, headers: [X-Tenant] }",
	), map[string]string{"OPA_TOKEN": "s3cret"})
	p := cfg.Policies["tenants"]
	if p.Timeout.D() != 100*time.Millisecond || p.CacheTTL != 0 || p.CacheSize != 10000 ||
		p.BreakerFailures != 5 || p.BreakerCooldown.D() != 5*time.Second || p.ErrorStatus != 503 {
		t.Errorf("defaults = %+v", p)
	}
	if string(p.Headers["Authorization"]) != "Bearer s3cret" || !p.Input.Body || p.Input.Headers[0] != "X-Tenant" {
		t.Errorf("policy = %+v", p)
	}
	if a := cfg.Routes[0].Authorize; a.Policy != "tenants" || a.DenyStatus != 403 {
		t.Errorf("authorize = %+v", a)
	}
}

func TestPolicyErrors(t *testing.T) {
	tests := []struct {
		name   string
		policy []string
		want   string
	}{
		{"unknown policy", []string{"  other: { url: http://127.0.0.1:8181/v1/data/x }"},
			`t.yaml:12:26: routes[0].authorize.policy: unknown policy "tenants": name one of the policies: section`},
		{"url scheme", []string{"  tenants: { url: ftp://127.0.0.1/x }"},
			"t.yaml:5:19: policies.tenants.url: must be an http or https URL such as http://127.0.0.1:8181/v1/data/bulwark/authz"},
		{"url with a query", []string{"  tenants: { url: \"http://127.0.0.1:8181/v1/data/x?pretty=true\" }"},
			"t.yaml:5:19: policies.tenants.url: must not have user info, a query or a fragment (send credentials with headers)"},
		{"url with user info", []string{"  tenants: { url: \"http://u:p@127.0.0.1:8181/v1/data/x\" }"},
			"t.yaml:5:19: policies.tenants.url: must not have user info, a query or a fragment (send credentials with headers)"},
		{"credential header in the input", []string{"  tenants: { url: http://127.0.0.1:8181/x, input: { headers: [authorization] } }"},
			"t.yaml:5:63: policies.tenants.input.headers[0]: authorization carries a credential: it is never sent to a policy server (the verified principal is)"},
		{"api key header in the input", []string{"  tenants: { url: http://127.0.0.1:8181/x, input: { headers: [x-api-key] } }"},
			"t.yaml:5:63: policies.tenants.input.headers[0]: x-api-key carries a credential: it is never sent to a policy server (the verified principal is)"},
		{"error status", []string{"  tenants: { url: http://127.0.0.1:8181/x, error_status: 500 }"},
			"t.yaml:5:58: policies.tenants.error_status: must be 503 or 403"},
		{"timeout", []string{"  tenants: { url: http://127.0.0.1:8181/x, timeout: 0s }"},
			"t.yaml:5:53: policies.tenants.timeout: must be greater than 0"},
		{"tls on http", []string{"  tenants: { url: http://127.0.0.1:8181/x, tls: { server_name: opa } }"},
			"t.yaml:5:49: policies.tenants.tls: is only allowed with an https url"},
		{"unknown key", []string{"  tenants: { url: http://127.0.0.1:8181/x, fail_open: true }"},
			"t.yaml:5:44: policies.tenants.fail_open: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, policyConfig(tt.policy...), nil)
			if got := errs.Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPolicySecretHeadersNeverPrint checks that a header sent to the
// policy server (a bearer token, say) does not leak through the config's
// printed form.
func TestPolicySecretHeadersNeverPrint(t *testing.T) {
	cfg := mustParse(t, policyConfig(
		"  tenants: { url: http://127.0.0.1:8181/x, headers: { Authorization: \"Bearer ${OPA_TOKEN}\" } }",
	), map[string]string{"OPA_TOKEN": "s3cret-token"})
	for _, s := range []string{fmt.Sprintf("%v", cfg.Policies), fmt.Sprintf("%+v", cfg.Policies), fmt.Sprintf("%#v", cfg.Policies)} {
		if strings.Contains(s, "s3cret-token") {
			t.Errorf("the policy header leaks: %s", s)
		}
	}
}
