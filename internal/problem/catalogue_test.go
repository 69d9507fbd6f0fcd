package problem

import (
	"os"
	"strings"
	"testing"
)

// TestCatalogueDocumented keeps docs/errors.md in step with the catalogue:
// every problem type the gateway can answer with is listed there.
func TestCatalogueDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Problem{
		NotFound(), Undocumented(), MethodNotAllowed("GET"), NonCanonicalPath("dot_segment", "x"), BadFraming("x", "x"),
		BadHost(), HeadersTooLarge(), BodyTooLarge(), UpgradeRefused(), UpgradeUnsupported(), CORSRefused(),
		BadGateway(), GatewayTimeout(), AdminForbidden(), AdminUnauthorized(), Internal(),
		Unauthenticated("x", "x", nil), BadCredentialRequest("x", "x", nil), AuthUnavailable("x"), InsufficientScope("x"),
		TooManyRequests("x", "x", 1), RateLimitUnavailable(),
		InvalidRequest("x", "x"), UnsupportedMediaType(), JSONRefused("x", "x"), InvalidResponse("x"),
		UpstreamFailed(500, nil), ResponseTooLarge(), UnreadableResponse(), ResponseNotFiltered("x"), SensitiveData(), NoView(),
		InsufficientPrivileges("x", "x"), MethodOverride(), ObjectForbidden("x", 403), ParameterPollution(), FieldNotWritable("x"),
		EnumerationBlocked(429, 1), PolicyDenied("policy:x", 403, "x"), PolicyUnavailable("policy:x", 503),
	} {
		if !strings.Contains(string(doc), "| `"+p.Slug+"` |") {
			t.Errorf("docs/errors.md has no row for problem type %q", p.Slug)
		}
		if p.Detail == "" || p.Title == "" || p.Stage == "" || p.Reason == "" {
			t.Errorf("problem %q lacks a title, detail, stage or reason: %+v", p.Slug, p)
		}
	}
}

// TestAuthProblemsNameTheThreat checks that authentication and scope
// denials carry the OWASP id and NIST controls the audit event records.
func TestAuthProblemsNameTheThreat(t *testing.T) {
	tests := []struct {
		p     Problem
		owasp string
		nist  string
	}{
		{Unauthenticated("bad_signature", "x", nil), "API2:2023", "IA-2"},
		{Unauthenticated("dpop_replayed", "x", nil), "API2:2023", "SC-23"},
		{Unauthenticated("certificate_mismatch", "x", nil), "API2:2023", "SC-23"},
		{BadCredentialRequest("multiple_authorization", "x", nil), "API2:2023", "IA-2"},
		{AuthUnavailable("keys_unavailable"), "API2:2023", "IA-2"},
		{InsufficientScope("x"), "API5:2023", "AC-3"},
	}
	for _, tt := range tests {
		if tt.p.OWASP != tt.owasp || len(tt.p.NIST) == 0 || tt.p.NIST[0] != tt.nist {
			t.Errorf("%s/%s: owasp %q nist %v, want %q and %s first", tt.p.Slug, tt.p.Reason, tt.p.OWASP, tt.p.NIST, tt.owasp, tt.nist)
		}
	}
}

// TestDenialsNameTheThreat checks that every stage denial carries an
// OWASP id and NIST controls for the audit event, and that answers which
// are not a decision about the request (upstream failures, panics, the
// admin listener) carry none.
func TestDenialsNameTheThreat(t *testing.T) {
	for _, p := range []Problem{
		NotFound(), Undocumented(), MethodNotAllowed("GET"), NonCanonicalPath("dot_segment", "x"), BadFraming("x", "x"),
		HeadersTooLarge(), BodyTooLarge(), UpgradeRefused(), UpgradeUnsupported(), CORSRefused(),
		Unauthenticated("x", "x", nil), BadCredentialRequest("x", "x", nil), AuthUnavailable("x"),
		InsufficientScope("x"), TooManyRequests("x", "x", 1), RateLimitUnavailable(),
		InvalidRequest("x", "x"), UnsupportedMediaType(), JSONRefused("x", "x"), InvalidResponse("x"),
		ResponseNotFiltered("x"), SensitiveData(), NoView(), InsufficientPrivileges("x", "x"), MethodOverride(),
		ObjectForbidden("x", 403), ObjectForbidden("x", 404), ParameterPollution(), FieldNotWritable("x"),
		EnumerationBlocked(429, 1), EnumerationBlocked(403, 1), PolicyDenied("policy:x", 403, ""),
		PolicyDenied("policy:x", 404, "x"), PolicyUnavailable("policy:x", 503), PolicyUnavailable("policy:x", 403),
	} {
		if p.OWASP == "" || len(p.NIST) == 0 {
			t.Errorf("%s/%s: no OWASP id or NIST controls", p.Slug, p.Reason)
		}
	}
	for _, p := range []Problem{BadGateway(), GatewayTimeout(), Internal(), AdminForbidden(), AdminUnauthorized(),
		UpstreamFailed(503, nil), ResponseTooLarge(), UnreadableResponse()} {
		if p.OWASP != "" || len(p.NIST) != 0 {
			t.Errorf("%s: not a stage decision, but carries %s %v", p.Slug, p.OWASP, p.NIST)
		}
	}
}

// TestPolicyDeniedNotFound checks that a 404 policy denial answers like
// an unknown route and never carries the policy's reason, while a 403
// does.
func TestPolicyDeniedNotFound(t *testing.T) {
	got, nf := PolicyDenied("policy:tenants", 404, "not your tenant"), NotFound()
	if got.Status != nf.Status || got.Slug != nf.Slug || got.Title != nf.Title || got.Detail != nf.Detail {
		t.Errorf("PolicyDenied(404) = %+v, want the body of %+v", got, nf)
	}
	if got.Stage != StageAuthz || got.Reason != "policy_denied" || got.Rule != "policy:tenants" || got.Protocol {
		t.Errorf("PolicyDenied(404) decision = %s/%s/%s protocol %v", got.Stage, got.Reason, got.Rule, got.Protocol)
	}
	if f := PolicyDenied("policy:tenants", 403, "not your tenant"); f.Status != 403 || !strings.HasSuffix(f.Detail, ": not your tenant") {
		t.Errorf("PolicyDenied(403) = %d %q, want 403 with the reason", f.Status, f.Detail)
	}
	if u := PolicyUnavailable("policy:tenants", 403); u.Status != 403 || u.Slug != "policy-unavailable" {
		t.Errorf("PolicyUnavailable(403) = %d %s", u.Status, u.Slug)
	}
}

// TestObjectForbiddenNotFound checks that a 404 denial of an object rule
// reads exactly like the router's 404 (nothing reveals that the object
// exists), while the decision names the rule.
func TestObjectForbiddenNotFound(t *testing.T) {
	got, nf := ObjectForbidden("owner", 404), NotFound()
	if got.Status != nf.Status || got.Slug != nf.Slug || got.Title != nf.Title || got.Detail != nf.Detail || len(got.Header) != 0 {
		t.Errorf("ObjectForbidden(404) = %+v, want the body of %+v", got, nf)
	}
	if got.Stage != StageAuthz || got.Reason != "rule_denied" || got.Rule != "owner" || got.Protocol || got.OWASP != "API1:2023" {
		t.Errorf("ObjectForbidden(404) decision = %s/%s/%s protocol %v %s", got.Stage, got.Reason, got.Rule, got.Protocol, got.OWASP)
	}
	if f := ObjectForbidden("owner", 403); f.Status != 403 || f.Slug != "forbidden" {
		t.Errorf("ObjectForbidden(403) = %d %s, want 403 forbidden", f.Status, f.Slug)
	}
}
