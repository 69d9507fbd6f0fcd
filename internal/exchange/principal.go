package exchange

import (
	"strings"
	"time"
)

// Principal is the verified identity behind a request (DESIGN.md "The
// principal and the request record"). It is built by one authenticator and
// read-only afterwards: a principal from the verified-token cache is shared
// by every request that presents the same token.
type Principal struct {
	// Subject is the token's sub; for an API key or a certificate, the
	// consumer id or the certificate identity.
	Subject string
	// Issuer is the token's iss (empty for API keys and certificates).
	Issuer string
	// Consumer is the consumer id: the API key's consumer, or the token's
	// client (azp / client_id) when it has one.
	Consumer string
	// Plan is the consumer's plan, when the config names one.
	Plan string
	// Scopes and Roles are matched exactly; never nil-vs-empty sensitive.
	Scopes []string
	Roles  []string
	// Claims are the token's claims (or the introspection answer); nil for
	// API keys and certificates.
	Claims map[string]any
	// Method is how the principal was verified: jwt, introspection,
	// api_key or mtls. Authenticator is the configured authenticator name.
	Method        string
	Authenticator string
	// KeyID is the JWT kid or the API key id (never the key).
	KeyID string
	// TokenID is the token's jti, when it has one.
	TokenID string
	// Expiry is when the credential stops being valid; zero when it has no
	// end.
	Expiry time.Time
	// Confirmation holds the token's proof-of-possession binding (cnf),
	// checked against the request by the authentication stage.
	Confirmation Confirmation
}

// Confirmation is a token's cnf claim: the key or certificate the token is
// bound to (RFC 7800).
type Confirmation struct {
	// X5TS256 is cnf.x5t#S256: the base64url SHA-256 of the client
	// certificate the token is bound to (RFC 8705).
	X5TS256 string
	// JKT is cnf.jkt: the base64url JWK SHA-256 thumbprint of the DPoP key
	// the token is bound to (RFC 9449).
	JKT string
}

// HasScope reports whether p holds scope (exact match).
func (p *Principal) HasScope(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// ClaimPath follows a dotted path (realm_access.roles) through nested
// claim objects; nil when any step is missing or not an object, or when
// path is empty.
func ClaimPath(claims map[string]any, path string) any {
	if path == "" {
		return nil
	}
	var cur any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}
