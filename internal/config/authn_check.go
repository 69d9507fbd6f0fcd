package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
)

// jwtAlgorithms are the JWS algorithms an authenticator may accept.
var jwtAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
}

// dpopAlgorithms are the asymmetric algorithms a DPoP proof may use (a proof
// carries its public key, so HMAC is meaningless there).
var dpopAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// maxLeeway caps clock skew: more would let expired tokens live on.
const maxLeeway = 5 * time.Minute

func (c *checker) checkAuthenticators() {
	names := make([]string, 0, len(c.cfg.Authenticators))
	for name := range c.cfg.Authenticators {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := c.cfg.Authenticators[name]
		c.checkAuthenticator(name, &a)
		c.cfg.Authenticators[name] = a
	}
}

func (c *checker) checkAuthenticator(name string, a *Authenticator) {
	p := joinPath("authenticators", name)
	switch {
	case strings.EqualFold(name, "none"):
		c.keyErrf(p, "an authenticator cannot be named %q: auth: none marks a public route", name)
	case !validName(name, 64):
		c.keyErrf(p, "invalid authenticator name %q: 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)", name)
	}
	switch a.Type {
	case "jwt", "introspection", "api_key", "mtls":
	case "":
		c.errf(p+".type", "is required: jwt, introspection, api_key or mtls")
		return
	default:
		c.errf(p+".type", "unknown type %q: use jwt, introspection, api_key or mtls", a.Type)
		return
	}
	// A key that belongs to another type is a mistake that would otherwise
	// be silently ignored (and could fail open, e.g. dpop on an api_key).
	t := reflect.TypeFor[Authenticator]()
	for _, f := range fieldsOf(t) {
		types := t.Field(f.index).Tag.Get("for")
		if types == "" || !c.set(p+"."+f.name) || slices.Contains(strings.Split(types, ","), a.Type) {
			continue
		}
		c.errf(p+"."+f.name, "not valid for type %s (it applies to %s)", a.Type, strings.ReplaceAll(types, ",", ", "))
	}
	switch a.Type {
	case "jwt":
		c.checkJWT(p, a)
		c.checkBearer(p, a)
	case "introspection":
		c.checkIntrospection(p, a)
		c.checkBearer(p, a)
	case "api_key":
		if !isToken(a.Header) {
			c.errf(p+".header", "not a valid header name")
		}
		switch {
		case c.set(p+".query_param") && a.QueryParam == "":
			c.errf(p+".query_param", "must not be empty (leave it out to read the header only)")
		case a.QueryParam != "" && !isQueryName(a.QueryParam):
			c.errf(p+".query_param", "must be a query parameter name, e.g. api_key")
		}
	case "mtls":
		if t := c.cfg.Server.TLS; t == nil || t.ClientCAFile == "" {
			c.errf(p+".type", "mtls needs server.tls.client_ca_file: the listener must verify client certificates")
		}
		c.checkEnum(p+".identity", a.Identity, "subject_cn", "san_uri", "san_dns")
		for i, v := range a.Allow {
			if v == "" || strings.Contains(strings.TrimSuffix(v, "*"), "*") {
				c.errf(fmt.Sprintf("%s.allow[%d]", p, i), "must be an identity, or a prefix ending in a single *")
			}
		}
	}
}

// checkBearer checks the keys that jwt and introspection (the bearer-token
// types) share. It runs only for those types: on another type these keys
// are already refused by their for tag, and a second error about their
// value would be noise.
func (c *checker) checkBearer(p string, a *Authenticator) {
	for _, f := range []struct {
		key    string
		values []string
	}{{"audiences", a.Audiences}, {"client_ids", a.ClientIDs}} {
		for i, v := range f.values {
			// An unset ${VAR:-} must not turn into an entry that a token
			// without the claim could match.
			if v == "" {
				c.errf(fmt.Sprintf("%s.%s[%d]", p, f.key, i), "must not be empty")
			}
		}
	}
	if c.set(p+".cache_size") && a.CacheSize < 0 {
		c.errf(p+".cache_size", "must be 0 (no cache) or more")
	}
	if a.CacheTTL <= 0 {
		c.errf(p+".cache_ttl", "must be greater than 0")
	}
	if a.Timeout <= 0 {
		c.errf(p+".timeout", "must be greater than 0")
	}
	if a.MaxTokenSize <= 0 || a.MaxTokenSize > 64<<10 {
		c.errf(p+".max_token_size", "must be greater than 0 and at most 64KiB")
	}
	if a.CAFile != "" {
		if err := checkCAFile(string(a.CAFile)); err != nil {
			c.errf(p+".ca_file", "%s", err.Error())
		}
	}
	if a.Revocation != "" {
		// Its lines are parsed when the gateway builds (errors name the
		// file and line); here only that it can be opened.
		if f, err := os.Open(string(a.Revocation)); err != nil {
			c.errf(p+".revocation_file", "cannot read the revocation file: %s", fileError(err))
		} else {
			f.Close()
		}
	}
	for i, claim := range a.ScopeClaims {
		if claim == "" {
			c.errf(fmt.Sprintf("%s.scope_claims[%d]", p, i), "must not be empty")
		}
	}
}

func (c *checker) checkJWT(p string, a *Authenticator) {
	hmac := 0
	if len(a.Algorithms) == 0 {
		c.errf(p+".algorithms", "is required: the signature algorithms to accept, e.g. [RS256]")
	}
	for i, alg := range a.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, i)
		switch {
		case strings.EqualFold(alg, "none"):
			c.errf(ap, "none is never accepted: an unsigned token proves nothing")
		case !slices.Contains(jwtAlgorithms, alg):
			c.errf(ap, "unknown algorithm %q: use one of %s", alg, strings.Join(jwtAlgorithms, ", "))
		case strings.HasPrefix(alg, "HS"):
			hmac++
		}
	}
	var sources []string
	for _, s := range []struct {
		key string
		set bool
	}{{"jwks_url", a.JWKSURL != ""}, {"discovery", a.Discovery}, {"key_file", a.KeyFile != ""}, {"secret", a.Secret != ""}} {
		if s.set {
			sources = append(sources, s.key)
		}
	}
	switch {
	case len(sources) == 0:
		c.errf(p+".type", "a jwt authenticator needs keys: jwks_url, discovery: true, key_file or secret")
	case len(sources) > 1:
		c.errf(p+".type", "a jwt authenticator takes exactly one key source, but this one sets %s", strings.Join(sources, " and "))
	}
	if a.Secret != "" {
		if hmac != len(a.Algorithms) {
			c.errf(p+".algorithms", "with secret, only HS256, HS384 or HS512 may be listed")
		}
		if len(a.Secret) < 32 {
			c.errf(p+".secret", "must be at least 32 bytes (a shorter HMAC secret can be guessed offline from one token)")
		}
	} else if hmac > 0 && len(sources) > 0 {
		// Keys from a JWKS or a PEM file are public: accepting HMAC with
		// them is the RS/HS key-confusion attack. (With no key source at
		// all, the error above says what is missing.)
		c.errf(p+".algorithms", "HS256, HS384 and HS512 need a secret; they are never accepted with public keys (jwks_url, discovery, key_file)")
	}
	if a.Issuer == "" {
		c.errf(p+".issuer", "is required: the exact iss value of accepted tokens")
	}
	if len(a.Audiences) == 0 {
		c.errf(p+".audiences", "is required: the aud values that name this API (tokens for other APIs must not pass)")
	}
	if a.JWKSURL != "" {
		if err := CheckIdPURL(a.JWKSURL); err != nil {
			c.errf(p+".jwks_url", "%s", err.Error())
		}
	}
	if a.Discovery && a.Issuer != "" {
		if err := CheckIdPURL(a.Issuer); err != nil {
			c.errf(p+".issuer", "with discovery, %s", err.Error())
		}
	}
	if a.KeyFile != "" {
		if _, err := readFile(string(a.KeyFile)); err != nil {
			c.errf(p+".key_file", "cannot read the key file: %s", fileError(err))
		}
	}
	if a.Leeway < 0 || a.Leeway.D() > maxLeeway {
		c.errf(p+".leeway", "must be between 0s and %s", formatDuration(Duration(maxLeeway)))
	}
	if a.MaxLifetime < 0 {
		c.errf(p+".max_lifetime", "must not be negative")
	}
	if a.Refresh < Duration(time.Second) {
		c.errf(p+".refresh_interval", "must be at least 1s")
	}
	if a.MinRefresh < Duration(time.Second) {
		c.errf(p+".unknown_kid_refresh", "must be at least 1s (each unknown kid could otherwise make the gateway fetch the JWKS)")
	}
	for i, alg := range a.DPoPAlgorithms {
		if !slices.Contains(dpopAlgorithms, alg) {
			c.errf(fmt.Sprintf("%s.dpop_algorithms[%d]", p, i), "unknown or symmetric algorithm %q: use one of %s", alg, strings.Join(dpopAlgorithms, ", "))
		}
	}
	if a.DPoPMaxAge <= 0 {
		c.errf(p+".dpop_max_age", "must be greater than 0")
	}
	if a.DPoPReplaySize <= 0 {
		c.errf(p+".dpop_replay_cache_size", "must be greater than 0")
	}
	c.checkEnum(p+".dpop", a.DPoP, "off", "optional", "required")
}

func (c *checker) checkIntrospection(p string, a *Authenticator) {
	switch {
	case a.Endpoint == "" && !a.Discovery:
		c.errf(p+".type", "an introspection authenticator needs endpoint (or discovery: true with issuer)")
	case a.Endpoint != "" && a.Discovery:
		c.errf(p+".endpoint", "use endpoint or discovery, not both")
	case a.Endpoint != "":
		if err := CheckIdPURL(a.Endpoint); err != nil {
			c.errf(p+".endpoint", "%s", err.Error())
		}
	}
	if a.Discovery {
		if a.Issuer == "" {
			c.errf(p+".issuer", "is required with discovery: the OIDC issuer URL")
		} else if err := CheckIdPURL(a.Issuer); err != nil {
			c.errf(p+".issuer", "with discovery, %s", err.Error())
		}
	}
	if a.ClientID == "" {
		c.errf(p+".client_id", "is required: the client id the gateway authenticates to the endpoint with")
	}
	if a.ClientSecret == "" {
		c.errf(p+".client_secret", "is required: the client secret, written as ${ENV_VAR}")
	}
	if a.NegativeCacheTTL < 0 {
		c.errf(p+".negative_cache_ttl", "must not be negative")
	}
}

func (c *checker) checkEnum(path, v string, values ...string) {
	if !slices.Contains(values, v) {
		last := len(values) - 1
		c.errf(path, "must be %s or %s", strings.Join(values[:last], ", "), values[last])
	}
}

// CheckIdPURL checks a URL the gateway sends tokens to or fetches keys
// from (JWKS, discovery, introspection, the audit collector): absolute,
// https, or plain http only to a loopback address (a JWKS fetched in the
// clear can be swapped on the way). Messages never repeat the URL.
func CheckIdPURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("not a valid URL")
	case u.Host == "" || u.Opaque != "" || u.User != nil || u.Fragment != "":
		return fmt.Errorf("must be an absolute https URL without credentials or fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && LoopbackOnly(hostPort(u)):
		return nil
	}
	return fmt.Errorf("must be https (plain http only to a loopback address)")
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	// JoinHostPort brackets an IPv6 address: http://[::1]/ is loopback.
	return net.JoinHostPort(u.Hostname(), port)
}

func (c *checker) checkConsumers() {
	ids := map[string]int{}
	keyIDs := map[string]string{}
	hashes := map[string]string{}
	for i := range c.cfg.Consumers {
		cs := &c.cfg.Consumers[i]
		p := fmt.Sprintf("consumers[%d]", i)
		switch {
		case cs.ID == "":
			c.errf(p+".id", "is required: a unique consumer id")
		case !validConsumerID(cs.ID):
			c.errf(p+".id", "invalid id: 1 to 128 letters, digits, '_', '.', '@', ':' or '-'")
		default:
			if j, dup := ids[cs.ID]; dup {
				c.errf(p+".id", "duplicate consumer id %q (first at consumers[%d])", cs.ID, j)
			}
			ids[cs.ID] = i
		}
		// The principal's scopes and roles go upstream space-separated: a
		// value with a space would read as two there.
		c.checkWords(p+".scopes", cs.Scopes, "scope")
		c.checkWords(p+".roles", cs.Roles, "role")
		for j := range cs.APIKeys {
			k := &cs.APIKeys[j]
			kp := fmt.Sprintf("%s.api_keys[%d]", p, j)
			switch {
			case k.ID == "":
				c.errf(kp+".id", "is required: a key id (logged instead of the key)")
			case !validConsumerID(k.ID):
				c.errf(kp+".id", "invalid id: 1 to 128 letters, digits, '_', '.', '@', ':' or '-'")
			default:
				if prev, dup := keyIDs[k.ID]; dup {
					c.errf(kp+".id", "duplicate key id %q (first at %s)", k.ID, prev)
				}
				keyIDs[k.ID] = kp
			}
			k.SHA256 = strings.ToLower(k.SHA256)
			switch {
			case k.SHA256 == "":
				c.errf(kp+".sha256", "is required: the hex SHA-256 of the key (bulwark hash-key prints it)")
			case !isHex64(k.SHA256):
				c.errf(kp+".sha256", "must be 64 hex digits: the SHA-256 of the key, never the key itself (bulwark hash-key prints it)")
			default:
				if prev, dup := hashes[k.SHA256]; dup {
					c.errf(kp+".sha256", "the same key is already listed at %s", prev)
				}
				hashes[k.SHA256] = kp
			}
		}
	}
	if len(hashes) > 0 && !c.hasType("api_key") {
		c.r.add(c.cfg.keyPos("consumers"), "consumers", "API keys are listed but no authenticator has type: api_key, so none of them can be used")
	}
}

func (c *checker) hasType(typ string) bool {
	for _, a := range c.cfg.Authenticators {
		if a.Type == typ {
			return true
		}
	}
	return false
}

func (c *checker) checkPrincipalHeaders() {
	h := c.cfg.Principal
	seen := map[string]string{} // canonical name -> key
	for _, f := range []struct{ key, v string }{
		{"subject", h.Subject}, {"consumer", h.Consumer}, {"scopes", h.Scopes},
		{"roles", h.Roles}, {"issuer", h.Issuer}, {"method", h.Method},
	} {
		switch name := http.CanonicalHeaderKey(f.v); {
		case f.v == "":
		case !isToken(f.v):
			c.errf("principal_headers."+f.key, "not a valid header name")
		case seen[name] != "":
			// The upstream could not tell the two values apart.
			c.errf("principal_headers."+f.key, "header %s is already used by principal_headers.%s", name, seen[name])
		default:
			seen[name] = f.key
		}
	}
}

// checkRouteAuth checks a route's auth, authn and require sections.
func (c *checker) checkRouteAuth(p string, rt *Route) {
	if !rt.Auth.None && len(rt.Auth.Names) == 0 {
		c.errf(p+".auth", "is required: auth: none for a public route, or auth: [name, ...] for the authenticators that may accept it")
	}
	bearer, jwt := false, false
	seen := map[string]bool{}
	for j, name := range rt.Auth.Names {
		ap := fmt.Sprintf("%s.auth[%d]", p, j)
		a, ok := c.cfg.Authenticators[name]
		switch {
		case !ok:
			c.errf(ap, "unknown authenticator %q", name)
		case seen[name]:
			c.errf(ap, "authenticator %q is listed twice", name)
		}
		seen[name] = true
		bearer = bearer || a.Type == "jwt" || a.Type == "introspection"
		jwt = jwt || a.Type == "jwt"
	}
	if rt.Authn != nil {
		switch {
		case rt.Auth.None:
			c.errf(p+".authn", "has no effect on a public route (auth: none)")
		case c.set(p+".authn.query_param") && !bearer:
			c.errf(p+".authn.query_param", "needs a jwt or introspection authenticator in auth")
		case c.set(p+".authn.query_param") && !isQueryName(rt.Authn.QueryParam):
			c.errf(p+".authn.query_param", "must be a query parameter name, e.g. access_token")
		}
		if rt.Authn.DPoP != "" {
			c.checkEnum(p+".authn.dpop", rt.Authn.DPoP, "off", "optional", "required")
			if !jwt && !rt.Auth.None {
				c.errf(p+".authn.dpop", "needs a jwt authenticator in auth")
			}
		}
	}
	if q := rt.Require; q != nil {
		if rt.Auth.None && len(q.Scopes)+len(q.AnyScopes)+len(q.Roles)+len(q.Claims) > 0 {
			c.errf(p+".require", "a public route (auth: none) has no principal to hold scopes, roles or claims")
		}
		c.checkWords(p+".require.scopes", q.Scopes, "scope")
		c.checkWords(p+".require.any_scopes", q.AnyScopes, "scope")
		c.checkWords(p+".require.roles", q.Roles, "role")
		for _, name := range sortedNames(q.Claims) {
			cp := p + ".require.claims." + name
			if name == "" || slices.Contains(strings.Split(name, "."), "") {
				c.keyErrf(cp, "a claim name, or a dotted path such as realm_access.tenant")
			}
			if len(q.Claims[name]) == 0 {
				c.errf(cp, "must list at least one value")
			}
		}
	}
}

// checkWords checks a list of scopes or roles: each one non-empty word.
func (c *checker) checkWords(path string, words []string, what string) {
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\r\n") {
			c.errf(fmt.Sprintf("%s[%d]", path, i), "a %s is one non-empty word without spaces", what)
		}
	}
}

func isQueryName(s string) bool {
	return s != "" && url.QueryEscape(s) == s
}

func validConsumerID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("_.@:-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
