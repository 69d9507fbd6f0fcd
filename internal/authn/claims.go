package authn

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// principalFromClaims builds the principal of a verified token (a JWT's
// claims or an introspection answer): subject, issuer, consumer (azp, else
// client_id), scopes from cfg.ScopeClaims (space-separated strings or
// arrays, unioned), roles from cfg.RolesClaim (a dotted path), the jti, the
// expiry and the cnf binding.
func principalFromClaims(name, method string, cfg *config.Authenticator, claims map[string]any) *exchange.Principal {
	p := &exchange.Principal{
		Subject:       stringClaim(claims, "sub"),
		Issuer:        stringClaim(claims, "iss"),
		Claims:        claims,
		Method:        method,
		Authenticator: name,
		TokenID:       stringClaim(claims, "jti"),
	}
	if p.Consumer = stringClaim(claims, "azp"); p.Consumer == "" {
		p.Consumer = stringClaim(claims, "client_id")
	}
	if exp, ok := numberClaim(claims, "exp"); ok {
		p.Expiry = time.Unix(int64(exp), 0)
	}
	for _, c := range cfg.ScopeClaims {
		p.Scopes = appendWords(p.Scopes, claims[c])
	}
	p.Roles = appendWords(nil, exchange.ClaimPath(claims, cfg.RolesClaim))
	if cnf, ok := claims["cnf"].(map[string]any); ok {
		p.Confirmation.X5TS256, _ = cnf["x5t#S256"].(string)
		p.Confirmation.JKT, _ = cnf["jkt"].(string)
	}
	return p
}

// appendWords appends the words of v (a space-separated string or an array
// of strings) to dst, skipping duplicates.
func appendWords(dst []string, v any) []string {
	add := func(w string) {
		if w == "" {
			return
		}
		for _, s := range dst {
			if s == w {
				return
			}
		}
		dst = append(dst, w)
	}
	switch v := v.(type) {
	case string:
		for _, w := range strings.Fields(v) {
			add(w)
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	case []string:
		for _, s := range v {
			add(s)
		}
	}
	return dst
}

func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

// numberClaim returns a numeric claim (JSON numbers decode as float64).
func numberClaim(claims map[string]any, name string) (float64, bool) {
	switch v := claims[name].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}
