package config

import (
	"errors"
	"time"
)

// Authenticator is one entry of `authenticators:`: a named way to verify a
// credential. Type selects the scheme; each other key says which types it
// applies to in its `for` tag, and a key set for another type is an error.
type Authenticator struct {
	Type string `yaml:"type" required:"true" enum:"jwt,introspection,api_key,mtls" doc:"jwt, introspection, api_key or mtls."`

	// jwt
	Issuer         string   `yaml:"issuer" for:"jwt,introspection" doc:"Expected iss claim (exact match); with discovery, also the OIDC issuer URL."`
	Audiences      []string `yaml:"audiences" for:"jwt,introspection" doc:"Accepted aud values: the token must name at least one."`
	Algorithms     []string `yaml:"algorithms" for:"jwt" doc:"The only signature algorithms accepted (RS256, ES256, EdDSA, HS256, ...); none is never accepted."`
	JWKSURL        string   `yaml:"jwks_url" for:"jwt" doc:"URL of the JSON Web Key Set (https, or http to a loopback address)."`
	Discovery      bool     `yaml:"discovery" for:"jwt,introspection" doc:"Find jwks_uri (and the introspection endpoint) in {issuer}/.well-known/openid-configuration."`
	KeyFile        Path     `yaml:"key_file" for:"jwt" doc:"Static verification keys: a PEM public key or certificate, a JWK or a JWK Set file."`
	Secret         Secret   `yaml:"secret" for:"jwt" doc:"HMAC secret (HS256/384/512 only), at least 32 bytes; write it as ${ENV_VAR}."`
	Leeway         Duration `yaml:"leeway" for:"jwt" doc:"Clock skew allowed on exp, nbf and iat (at most 5m)."`
	RequiredClaims []string `yaml:"required_claims" for:"jwt" doc:"Claims that must be present in every token."`
	MaxTokenSize   Size     `yaml:"max_token_size" for:"jwt,introspection" doc:"Longest token accepted (401 above it)."`
	Typ            string   `yaml:"typ" for:"jwt" doc:"Required typ header, e.g. at+jwt (RFC 9068) so ID tokens cannot be used as access tokens."`
	ClientIDs      []string `yaml:"client_ids" for:"jwt,introspection" doc:"Accepted azp / client_id values; empty accepts any."`
	MaxLifetime    Duration `yaml:"max_lifetime" for:"jwt" doc:"Longest exp - iat accepted; 0 means no limit."`
	ScopeClaims    []string `yaml:"scope_claims" for:"jwt,introspection" doc:"Claims holding scopes: a space-separated string or an array."`
	RolesClaim     string   `yaml:"roles_claim" for:"jwt,introspection" doc:"Claim holding roles, a dotted path such as realm_access.roles."`
	CookieName     string   `yaml:"cookie" for:"jwt,introspection" doc:"Also read the token from this cookie (opt-in; Authorization wins)."`
	DPoP           string   `yaml:"dpop" for:"jwt" enum:"off,optional,required" doc:"Sender-constrained tokens (RFC 9449): off, optional (verified when bound) or required."`
	DPoPAlgorithms []string `yaml:"dpop_algorithms" for:"jwt" doc:"Signature algorithms accepted for DPoP proofs."`
	DPoPMaxAge     Duration `yaml:"dpop_max_age" for:"jwt" doc:"How far a DPoP proof's iat may lie from now."`
	DPoPReplaySize int      `yaml:"dpop_replay_cache_size" for:"jwt" min:"1" doc:"Proof ids (jti) remembered to refuse replays."`
	Revocation     Path     `yaml:"revocation_file" for:"jwt,introspection" doc:"File of revoked token ids and subjects; reloads with the config."`
	Refresh        Duration `yaml:"refresh_interval" for:"jwt" doc:"How often the JWKS is fetched again in the background."`
	MinRefresh     Duration `yaml:"unknown_kid_refresh" for:"jwt" doc:"At most one JWKS fetch per this interval for tokens with an unknown kid."`
	CacheSize      int      `yaml:"cache_size" for:"jwt,introspection" min:"0" doc:"Verified tokens (or introspection results) kept; 0 disables the cache."`
	CacheTTL       Duration `yaml:"cache_ttl" for:"jwt,introspection" doc:"Longest time a cached result is used (never past the token's exp)."`
	Timeout        Duration `yaml:"timeout" for:"jwt,introspection" doc:"Time allowed for one call to the identity provider (JWKS, discovery, introspection)."`
	CAFile         Path     `yaml:"ca_file" for:"jwt,introspection" doc:"PEM CA bundle for https calls to the identity provider (instead of the system roots)."`

	// introspection
	Endpoint         string   `yaml:"endpoint" for:"introspection" doc:"RFC 7662 introspection endpoint (https, or http to a loopback address)."`
	ClientID         string   `yaml:"client_id" for:"introspection" doc:"Client id the gateway authenticates to the endpoint with (HTTP Basic)."`
	ClientSecret     Secret   `yaml:"client_secret" for:"introspection" doc:"Client secret for the endpoint; write it as ${ENV_VAR}."`
	NegativeCacheTTL Duration `yaml:"negative_cache_ttl" for:"introspection" doc:"How long an inactive token's answer is cached."`

	// api_key
	Header     string `yaml:"header" for:"api_key" doc:"Request header holding the key."`
	QueryParam string `yaml:"query_param" for:"api_key" doc:"Also accept the key in this query parameter (discouraged: URLs end up in logs)."`

	// mtls
	Identity string   `yaml:"identity" for:"mtls" enum:"subject_cn,san_uri,san_dns" doc:"Which certificate name becomes the subject: subject_cn, san_uri (SPIFFE ids) or san_dns."`
	Allow    []string `yaml:"allow" for:"mtls" doc:"Accepted identities: exact values, or prefixes ending in *; empty accepts any verified certificate."`
}

// Consumer is one API consumer: who is behind a set of API keys.
type Consumer struct {
	ID      string   `yaml:"id" required:"true" pattern:"^[A-Za-z0-9_.@:-]{1,128}$" doc:"Unique consumer id; the principal's subject and consumer for its keys."`
	Plan    string   `yaml:"plan" doc:"Plan name, for rate limits and the audit log."`
	Scopes  []string `yaml:"scopes" doc:"Scopes granted to requests made with this consumer's keys."`
	Roles   []string `yaml:"roles" doc:"Roles granted to requests made with this consumer's keys."`
	APIKeys []APIKey `yaml:"api_keys" doc:"The consumer's API keys, stored as SHA-256 hashes (bulwark hash-key)."`
}

// APIKey is one API key of a consumer, kept only as a hash.
type APIKey struct {
	ID       string `yaml:"id" required:"true" pattern:"^[A-Za-z0-9_.@:-]{1,128}$" doc:"Key id (logged and audited instead of the key)."`
	SHA256   string `yaml:"sha256" required:"true" pattern:"^[0-9a-fA-F]{64}$" doc:"Hex SHA-256 of the key, as printed by bulwark hash-key."`
	Expires  Time   `yaml:"expires" doc:"When the key stops working (RFC 3339, or a date such as 2027-01-31)."`
	Disabled bool   `yaml:"disabled" doc:"Refuse the key (kept in the file for the record)."`
}

// PrincipalHeaders names the request headers that carry the verified
// principal to the upstream. An empty name sends nothing; whatever the
// client sent under these names is always removed.
type PrincipalHeaders struct {
	Subject  string `yaml:"subject" doc:"Header carrying the principal's subject; empty sends none."`
	Consumer string `yaml:"consumer" doc:"Header carrying the consumer id; empty sends none."`
	Scopes   string `yaml:"scopes" doc:"Header carrying the scopes, space-separated; empty sends none."`
	Roles    string `yaml:"roles" doc:"Header carrying the roles, space-separated; empty sends none."`
	Issuer   string `yaml:"issuer" doc:"Header carrying the token issuer; empty sends none."`
	Method   string `yaml:"method" doc:"Header carrying the authentication method (jwt, introspection, api_key, mtls); empty sends none."`
}

// RouteAuthn is a route's `authn:` section: how its credentials are read
// and passed on.
type RouteAuthn struct {
	Mode              Mode   `yaml:"mode" doc:"Mode of the authentication stage on this route (overrides the route)."`
	QueryParam        string `yaml:"query_param" doc:"Also accept a bearer token in this query parameter (discouraged; refused by default)."`
	ForwardCredential *bool  `yaml:"forward_credential" doc:"Send the client's credential upstream; default: bearer tokens yes, API keys no."`
	DPoP              string `yaml:"dpop" enum:"off,optional,required" doc:"DPoP on this route: off, optional or required (overrides the authenticator)."`
}

// Require is a route's `require:` section: what the principal must hold.
type Require struct {
	Scopes    []string            `yaml:"scopes" doc:"Scopes the principal must all hold (403 insufficient_scope otherwise)."`
	AnyScopes []string            `yaml:"any_scopes" doc:"Scopes of which the principal must hold at least one."`
	Roles     []string            `yaml:"roles" doc:"Roles the principal must all hold."`
	Claims    map[string][]string `yaml:"claims" doc:"Claims (dotted paths) that must hold one of the listed values."`
}

// Time is a point in time written as RFC 3339 (2027-01-31T00:00:00Z) or as
// a date (2027-01-31, midnight UTC).
type Time struct{ time.Time }

func (a *Authenticator) setDefaults() {
	a.Leeway = Duration(30 * time.Second)
	a.MaxTokenSize = 8 << 10
	a.ScopeClaims = []string{"scope", "scp"}
	a.RolesClaim = "roles"
	a.DPoP = "off"
	a.DPoPAlgorithms = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}
	a.DPoPMaxAge = Duration(60 * time.Second)
	a.DPoPReplaySize = 100000
	a.Refresh = Duration(15 * time.Minute)
	a.MinRefresh = Duration(time.Minute)
	a.CacheSize = 10000
	a.CacheTTL = Duration(5 * time.Minute)
	a.Timeout = Duration(5 * time.Second)
	a.NegativeCacheTTL = Duration(10 * time.Second)
	a.Header = "X-API-Key"
	a.Identity = "subject_cn"
}

func (h *PrincipalHeaders) setDefaults() {
	h.Subject = "X-Bulwark-Subject"
	h.Consumer = "X-Bulwark-Consumer"
	h.Scopes = "X-Bulwark-Scopes"
}

// parseTime parses a Time value.
func parseTime(s string) (Time, error) {
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return Time{t}, nil
		}
	}
	return Time{}, errTime
}

var errTime = errors.New("not a time: write RFC 3339 (2027-01-31T12:00:00Z) or a date (2027-01-31)")
