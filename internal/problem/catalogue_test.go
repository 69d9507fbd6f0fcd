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
		NotFound(), MethodNotAllowed("GET"), NonCanonicalPath("dot_segment", "x"), BadFraming("x", "x"),
		BadHost(), HeadersTooLarge(), BodyTooLarge(), UpgradeRefused(), UpgradeUnsupported(), CORSRefused(),
		BadGateway(), GatewayTimeout(), AdminForbidden(), AdminUnauthorized(), Internal(),
		Unauthenticated("x", "x", nil), BadCredentialRequest("x", "x", nil), AuthUnavailable("x"), InsufficientScope("x"),
	} {
		if !strings.Contains(string(doc), "| `"+p.Slug+"` |") {
			t.Errorf("docs/errors.md has no row for problem type %q", p.Slug)
		}
		if p.Detail == "" || p.Title == "" || p.Stage == "" || p.Reason == "" {
			t.Errorf("problem %q lacks a title, detail, stage or reason: %+v", p.Slug, p)
		}
	}
}
