package authn

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

func TestPrincipalFromClaims(t *testing.T) {
	var claims map[string]any
	err := json.Unmarshal([]byte(`{
		"sub": "alice", "iss": "https://idp.test", "azp": "web", "client_id": "ignored", "jti": "t1", "exp": 2000000000,
		"scope": "orders:read orders:write", "scp": ["orders:read", "admin"],
		"realm_access": {"roles": ["buyer", "buyer", 7]},
		"cnf": {"x5t#S256": "abc", "jkt": "def"}
	}`), &claims)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Authenticator{ScopeClaims: []string{"scope", "scp"}, RolesClaim: "realm_access.roles"}
	p := principalFromClaims("corp", "jwt", cfg, claims)
	if p.Subject != "alice" || p.Issuer != "https://idp.test" || p.Consumer != "web" || p.TokenID != "t1" ||
		p.Method != "jwt" || p.Authenticator != "corp" {
		t.Errorf("principal = %+v", p)
	}
	if want := []string{"orders:read", "orders:write", "admin"}; !slices.Equal(p.Scopes, want) {
		t.Errorf("scopes = %v, want %v (union, no duplicates)", p.Scopes, want)
	}
	if want := []string{"buyer"}; !slices.Equal(p.Roles, want) {
		t.Errorf("roles = %v, want %v", p.Roles, want)
	}
	if !p.Expiry.Equal(time.Unix(2000000000, 0)) {
		t.Errorf("expiry = %v", p.Expiry)
	}
	if p.Confirmation.X5TS256 != "abc" || p.Confirmation.JKT != "def" {
		t.Errorf("confirmation = %+v", p.Confirmation)
	}
	if !p.HasScope("admin") || p.HasScope("orders") {
		t.Error("HasScope must match exactly")
	}
}

func TestPrincipalFromClaimsClientID(t *testing.T) {
	p := principalFromClaims("x", "introspection", &config.Authenticator{RolesClaim: "roles"},
		map[string]any{"client_id": "svc", "roles": "a b"})
	if p.Consumer != "svc" {
		t.Errorf("consumer = %q, want the client_id when there is no azp", p.Consumer)
	}
	if !slices.Equal(p.Roles, []string{"a", "b"}) {
		t.Errorf("roles = %v", p.Roles)
	}
	if exchange.ClaimPath(map[string]any{"a": "x"}, "a.b") != nil {
		t.Error("claimPath through a non-object must be nil")
	}
}
