package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/cache"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// Coarse descriptions: they never say which check or which key failed.
const (
	jwtInvalid     = "the access token is invalid"
	jwtExpired     = "the access token expired"
	jwtTooLarge    = "the access token is too large"
	jwtUnavailable = "the access token cannot be verified now"
)

// jwtAuth verifies signed JWT access tokens (type: jwt) with keys from a
// JWKS URL, OIDC discovery, a key file or an HMAC secret. It is safe for
// concurrent use.
//
// Verified tokens are cached by their SHA-256 until the token's exp or
// cache_ttl, whichever comes first; a hit skips parsing and signature
// verification and returns the shared, read-only principal.
type jwtAuth struct {
	name      string
	cfg       config.Authenticator
	parser    *jwt.Parser
	keys      jwtKeys
	cache     *cache.Cache[*exchange.Principal]
	typ       string // normalized required typ; "" when not checked
	challenge string
	// now is the clock of claim checks and cache expiry (tests replace it
	// before first use, together with a cache on the same clock).
	now func() time.Time
}

var _ Authenticator = (*jwtAuth)(nil)

// newJWT builds a jwt authenticator. With jwks_url or discovery it starts
// loading keys in the background and returns at once; until they load,
// Authenticate fails closed with 503 and Ready says why. Close stops the
// loading. It fails for a config it cannot build: no usable algorithm, an
// unreadable key file, no key or several key sources.
func newJWT(name string, cfg config.Authenticator, deps Deps) (*jwtAuth, error) {
	if err := checkJWTConfig(&cfg); err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	// Own the lists the parser and checks keep reading.
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	cfg.Audiences = slices.Clone(cfg.Audiences)
	cfg.ClientIDs = slices.Clone(cfg.ClientIDs)
	cfg.RequiredClaims = slices.Clone(cfg.RequiredClaims)
	log := deps.Log
	if log == nil {
		log = zap.NewNop()
	}
	a := &jwtAuth{
		name:      name,
		cfg:       cfg,
		cache:     cache.New[*exchange.Principal](cfg.CacheSize, nil),
		typ:       normalizeTyp(cfg.Typ),
		challenge: `Bearer realm="` + Realm + `"`,
		now:       time.Now,
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audiences...), // any one of them (v5.3: WithAllAudiences requires all)
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat past now + leeway is refused
		jwt.WithLeeway(cfg.Leeway.D()),
		jwt.WithTimeFunc(func() time.Time { return a.now() }),
	)
	var err error
	if cfg.JWKSURL != "" || cfg.Discovery {
		a.keys, err = newJWTRemoteKeys(name, &a.cfg, deps, log)
	} else {
		a.keys, err = newJWTStaticKeys(&a.cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	return a, nil
}

// checkJWTConfig refuses what would fail open even if config validation
// were skipped: none, HMAC with public keys (key confusion), no issuer or
// audience, and anything but exactly one key source.
func checkJWTConfig(cfg *config.Authenticator) error {
	sources := 0
	for _, set := range []bool{cfg.JWKSURL != "", cfg.Discovery, cfg.KeyFile != "", cfg.Secret != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources != 1:
		return errors.New("use exactly one key source: jwks_url, discovery, key_file or secret")
	case len(cfg.Algorithms) == 0:
		return errors.New("algorithms is required")
	case cfg.Issuer == "":
		return errors.New("issuer is required")
	case len(cfg.Audiences) == 0:
		return errors.New("audiences is required")
	case cfg.MaxTokenSize <= 0:
		return errors.New("max_token_size must be greater than 0")
	case cfg.MaxLifetime < 0:
		return errors.New("max_lifetime must not be negative")
	}
	for _, alg := range cfg.Algorithms {
		hmac := strings.HasPrefix(alg, "HS")
		switch {
		case strings.EqualFold(alg, "none"):
			return errors.New("algorithm none is never accepted")
		case jwt.GetSigningMethod(alg) == nil:
			return fmt.Errorf("unknown algorithm %q", alg)
		case hmac && cfg.Secret == "":
			return fmt.Errorf("algorithm %s needs a secret: never with public keys", alg)
		case !hmac && cfg.Secret != "":
			return fmt.Errorf("with secret, only HS256, HS384 or HS512: not %s", alg)
		}
	}
	return nil
}

// normalizeTyp lowercases a typ value and drops the "application/" prefix
// that RFC 7515 §4.1.9 lets senders omit (at+jwt, RFC 9068).
func normalizeTyp(typ string) string {
	typ = strings.ToLower(typ)
	if rest, ok := strings.CutPrefix(typ, "application/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return typ
}

// Authenticate verifies the bearer token (or the configured cookie). It
// returns ErrNoCredentials without a token, a 401 *Failure for a refused
// token and a 503 *Failure while no key set was ever loaded.
func (a *jwtAuth) Authenticate(ctx context.Context, in *Input) (*exchange.Principal, error) {
	raw := a.token(in)
	if raw == "" {
		return nil, ErrNoCredentials
	}
	if int64(len(raw)) > int64(a.cfg.MaxTokenSize) {
		return nil, invalidToken("too_large", jwtTooLarge)
	}
	sum := sha256.Sum256([]byte(raw))
	if p, ok := a.cache.Get(sum); ok {
		return p, nil
	}
	p, f := a.verify(ctx, raw)
	if f != nil {
		return nil, f
	}
	// Never past exp (a token inside the leeway is not cached at all).
	until := a.now().Add(a.cfg.CacheTTL.D())
	if p.Expiry.Before(until) {
		until = p.Expiry
	}
	a.cache.Put(sum, p, until)
	return p, nil
}

// token returns the bearer token, else the configured cookie's value.
func (a *jwtAuth) token(in *Input) string {
	if in == nil {
		return ""
	}
	if in.Token != "" || a.cfg.CookieName == "" || in.Request == nil {
		return in.Token
	}
	if c, err := in.Request.Cookie(a.cfg.CookieName); err == nil {
		return c.Value
	}
	return ""
}

// verify parses and verifies raw and applies the configured hardening.
func (a *jwtAuth) verify(ctx context.Context, raw string) (*exchange.Principal, *Failure) {
	claims := jwt.MapClaims{}
	var kid string
	token, err := a.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ = jwtKID(t)
		return a.keys.key(ctx, t)
	})
	if err != nil {
		return nil, jwtFailure(err)
	}
	if f := a.harden(token, claims); f != nil {
		return nil, f
	}
	p := principalFromClaims(a.name, "jwt", &a.cfg, claims)
	p.KeyID = kid
	return p, nil
}

// harden applies the checks beyond signature and registered claims, on a
// verified token only: typ, client, lifetime, required claims.
func (a *jwtAuth) harden(token *jwt.Token, claims jwt.MapClaims) *Failure {
	if a.typ != "" {
		if typ, _ := token.Header["typ"].(string); normalizeTyp(typ) != a.typ {
			return invalidToken("bad_type", jwtInvalid)
		}
	}
	if len(a.cfg.ClientIDs) > 0 {
		// The same client the principal names: azp, else client_id.
		client := stringClaim(claims, "azp")
		if client == "" {
			client = stringClaim(claims, "client_id")
		}
		if !slices.Contains(a.cfg.ClientIDs, client) {
			return invalidToken("bad_client", jwtInvalid)
		}
	}
	if a.cfg.MaxLifetime > 0 {
		iat, err := claims.GetIssuedAt()
		if err != nil || iat == nil {
			return invalidToken("missing_claim", jwtInvalid)
		}
		exp, err := claims.GetExpirationTime()
		if err != nil || exp == nil || exp.Sub(iat.Time) > a.cfg.MaxLifetime.D() {
			return invalidToken("too_long_lived", jwtInvalid)
		}
	}
	for _, c := range a.cfg.RequiredClaims {
		if claims[c] == nil {
			return invalidToken("missing_claim", jwtInvalid)
		}
	}
	return nil
}

// jwtFailure maps a parse error to a bounded reason. Key lookups come
// first (they wrap jwt.ErrTokenUnverifiable); a token refused for several
// claims gets the first reason in this order.
func jwtFailure(err error) *Failure {
	if errors.Is(err, errJWTKeysUnavailable) {
		return unavailable("keys_unavailable", jwtUnavailable)
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return invalidToken("expired", jwtExpired)
	}
	for _, m := range jwtReasons {
		if errors.Is(err, m.err) {
			return invalidToken(m.reason, jwtInvalid)
		}
	}
	// Claims of the wrong type (an exp that is not a number, ...).
	return invalidToken("malformed", jwtInvalid)
}

// jwtReasons maps jwt's sentinel errors (and the key lookup's) to reasons.
var jwtReasons = []struct {
	err    error
	reason string
}{
	{errJWTUnknownKey, "unknown_key"},
	{jwt.ErrTokenMalformed, "malformed"},
	// A disallowed or unknown alg, a key whose alg or use forbid it, a
	// signature that does not verify.
	{jwt.ErrTokenSignatureInvalid, "bad_signature"},
	{jwt.ErrTokenUnverifiable, "bad_signature"},
	{jwt.ErrTokenNotValidYet, "not_yet_valid"},
	{jwt.ErrTokenUsedBeforeIssued, "issued_in_future"},
	{jwt.ErrTokenInvalidIssuer, "bad_issuer"},
	{jwt.ErrTokenInvalidAudience, "bad_audience"},
	{jwt.ErrTokenRequiredClaimMissing, "missing_claim"},
}

// Challenge returns `Bearer realm="bulwark"`.
func (a *jwtAuth) Challenge() string { return a.challenge }

// Ready returns "" once the key set was loaded (at once for key_file and
// secret), else why not.
func (a *jwtAuth) Ready() string { return a.keys.ready() }

// KeySetAge returns the time since the key set was last loaded; false
// while it never was. Static keys report the time since they were read.
func (a *jwtAuth) KeySetAge() (time.Duration, bool) { return a.keys.age() }

// Close stops the background key refresh and waits for it. Requests keep
// working with the keys loaded so far.
func (a *jwtAuth) Close() { a.keys.close() }
