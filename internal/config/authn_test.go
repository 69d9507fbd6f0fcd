package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// routeTail is the upstream and the one route of the authn test configs:
// four lines, the route using auth.
func routeTail(auth string) []string {
	return []string{
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, auth: " + auth + " }",
	}
}

// authnWith returns a config whose one authenticator, a, has keys, one per
// line from line 3 on, each key at column 5 (so a value is at column
// len(key)+7); the route uses auth: [a].
func authnWith(keys ...string) string {
	src := []string{"authenticators:", "  a:"}
	for _, k := range keys {
		src = append(src, "    "+k)
	}
	return lines(append(src, routeTail("[a]")...)...)
}

// jwtKeys are a valid jwt authenticator, lines 3 to 7 of authnWith.
var jwtKeys = []string{
	"type: jwt",
	"issuer: https://idp.example.com/realms/acme",
	"audiences: [orders]",
	"algorithms: [RS256]",
	"jwks_url: https://idp.example.com/jwks",
}

// jwtWith returns authnWith of a valid jwt authenticator with extra keys
// from line 8.
func jwtWith(extra ...string) string { return authnWith(slices.Concat(jwtKeys, extra)...) }

// introspectionKeys are a valid introspection authenticator, lines 3 to 6.
var introspectionKeys = []string{
	"type: introspection",
	"endpoint: https://idp.example.com/introspect",
	"client_id: gateway",
	"client_secret: not-a-real-secret",
}

// introspectionWith returns authnWith of a valid introspection
// authenticator with extra keys from line 7.
func introspectionWith(extra ...string) string {
	return authnWith(slices.Concat(introspectionKeys, extra)...)
}

// mtlsWith returns a config with server.tls on lines 1 to 5 (client_ca_file
// from ${CA}) and an mtls authenticator, a, whose extra keys start on line
// 9 at column 5.
func mtlsWith(extra ...string) string {
	src := []string{
		"server:",
		"  tls:",
		"    cert_file: ${CERT}",
		"    key_file: ${KEY}",
		"    client_ca_file: ${CA}",
		"authenticators:",
		"  a:",
		"    type: mtls",
	}
	for _, k := range extra {
		src = append(src, "    "+k)
	}
	return lines(append(src, routeTail("[a]")...)...)
}

// namedAuthenticators returns a config with one authenticator entry per
// line from line 2 (its name at column 3) and a public route.
func namedAuthenticators(entries ...string) string {
	src := []string{"authenticators:"}
	for _, e := range entries {
		src = append(src, "  "+e)
	}
	return lines(append(src, routeTail("none")...)...)
}

// consumersWith returns a config with an api_key authenticator, keys, and
// the consumers list items one per line from line 4 (the "-" at column 3,
// a flow mapping's first key at column 7).
func consumersWith(items ...string) string {
	src := []string{"authenticators:", "  keys: { type: api_key }", "consumers:"}
	for _, it := range items {
		src = append(src, "  "+it)
	}
	return lines(append(src, routeTail("[keys]")...)...)
}

// routeAuthn returns a config with three authenticators, corp (jwt), opaque
// (introspection) and keys (api_key), and one route on line 8 whose keys
// after upstream start at column 53.
func routeAuthn(fields string) string {
	return lines(
		"authenticators:",
		"  corp: { type: jwt, issuer: \"https://idp.example.com/realms/acme\", audiences: [orders], algorithms: [RS256], jwks_url: \"https://idp.example.com/jwks\" }",
		"  opaque: { type: introspection, endpoint: \"https://idp.example.com/introspect\", client_id: gateway, client_secret: not-a-real-secret }",
		"  keys: { type: api_key }",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, "+fields+" }",
	)
}

// hashOf returns the hex SHA-256 of key, as bulwark hash-key prints it.
func hashOf(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// authnCase is a config that must fail with exactly the listed errors.
type authnCase struct {
	name string
	src  string
	env  map[string]string
	want []string // every error as "line:col: path: message", in file order
}

// runAuthnCases checks that each case fails with exactly its errors, each
// printed as "t.yaml:line:col: path: message".
func runAuthnCases(t *testing.T, tests []authnCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErrors(t, tt.src, tt.env).Error()
			want := "t.yaml:" + strings.Join(tt.want, "\nt.yaml:")
			if got != want {
				t.Errorf("errors =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestAuthenticatorErrors(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{
		"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile,
		"NOT_PEM":      writeFile(t, t.TempDir(), "ca.txt", "not a certificate\n"),
		"SECRET":       strings.Repeat("s", 32),
		"SHORT_SECRET": strings.Repeat("s", 31),
		"EMPTY":        "",
	}
	const (
		keySources = "a jwt authenticator needs keys: jwks_url, discovery: true, key_file or secret"
		notHTTPS   = "must be https (plain http only to a loopback address)"
		notAbsURL  = "must be an absolute https URL without credentials or fragment"
	)
	runAuthnCases(t, withAuthnEnv(env, []authnCase{
		// Names and types.
		{name: "named none", src: namedAuthenticators("None: { type: api_key }"), want: []string{
			`2:3: authenticators.None: an authenticator cannot be named "None": auth: none marks a public route`}},
		{name: "name alphabet", src: namedAuthenticators("\"a b\": { type: api_key }"), want: []string{
			`2:3: authenticators.a b: invalid authenticator name "a b": 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)`}},
		{name: "name too long", src: namedAuthenticators(strings.Repeat("a", 65) + ": { type: api_key }"), want: []string{
			"2:3: authenticators." + strings.Repeat("a", 65) + `: invalid authenticator name "` + strings.Repeat("a", 65) + `": 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)`}},
		{name: "type missing", src: namedAuthenticators("a: { header: X-Key }"), want: []string{
			"2:6: authenticators.a.type: is required: jwt, introspection, api_key or mtls"}},
		{name: "type unknown", src: namedAuthenticators("a: { type: oauth }"), want: []string{
			`2:14: authenticators.a.type: unknown type "oauth": use jwt, introspection, api_key or mtls`}},
		{name: "type is case-sensitive", src: namedAuthenticators("a: { type: JWT }"), want: []string{
			`2:14: authenticators.a.type: unknown type "JWT": use jwt, introspection, api_key or mtls`}},

		// The for tag: a key of another type.
		{name: "issuer on api_key", src: authnWith("type: api_key", "issuer: https://idp.example.com/"), want: []string{
			"4:13: authenticators.a.issuer: not valid for type api_key (it applies to jwt, introspection)"}},
		{name: "dpop on api_key", src: authnWith("type: api_key", "dpop: required"), want: []string{
			"4:11: authenticators.a.dpop: not valid for type api_key (it applies to jwt)"}},
		{name: "endpoint on jwt", src: jwtWith("endpoint: https://idp.example.com/introspect"), want: []string{
			"8:15: authenticators.a.endpoint: not valid for type jwt (it applies to introspection)"}},
		{name: "algorithms on introspection", src: introspectionWith("algorithms: [RS256]"), want: []string{
			"7:17: authenticators.a.algorithms: not valid for type introspection (it applies to jwt)"}},
		{name: "header on jwt", src: jwtWith("header: X-Key"), want: []string{
			"8:13: authenticators.a.header: not valid for type jwt (it applies to api_key)"}},
		{name: "identity on api_key", src: authnWith("type: api_key", "identity: san_uri"), want: []string{
			"4:15: authenticators.a.identity: not valid for type api_key (it applies to mtls)"}},
		{name: "an explicit false is still set", src: authnWith("type: api_key", "discovery: false"), want: []string{
			"4:16: authenticators.a.discovery: not valid for type api_key (it applies to jwt, introspection)"}},
		// Only the for error: the value of a key that does not apply is
		// not checked as well.
		{name: "bad timeout on api_key", src: authnWith("type: api_key", "timeout: 0s"), want: []string{
			"4:14: authenticators.a.timeout: not valid for type api_key (it applies to jwt, introspection)"}},
		{name: "missing ca_file on mtls", src: mtlsWith("ca_file: nope.pem"), want: []string{
			"9:14: authenticators.a.ca_file: not valid for type mtls (it applies to jwt, introspection)"}},

		// api_key.
		{name: "api_key header", src: authnWith("type: api_key", "header: \"X Key\""), want: []string{
			"4:13: authenticators.a.header: not a valid header name"}},
		{name: "api_key header empty", src: authnWith("type: api_key", "header: \"\""), want: []string{
			"4:13: authenticators.a.header: not a valid header name"}},
		{name: "api_key query_param empty", src: authnWith("type: api_key", "query_param: \"\""), want: []string{
			"4:18: authenticators.a.query_param: must not be empty (leave it out to read the header only)"}},
		{name: "api_key query_param not a name", src: authnWith("type: api_key", "query_param: \"api key\""), want: []string{
			"4:18: authenticators.a.query_param: must be a query parameter name, e.g. api_key"}},

		// mtls.
		{name: "mtls without server.tls", src: authnWith("type: mtls"), want: []string{
			"3:11: authenticators.a.type: mtls needs server.tls.client_ca_file: the listener must verify client certificates"}},
		{
			name: "mtls without client_ca_file",
			src: lines(append([]string{
				"server:",
				"  tls: { cert_file: \"${CERT}\", key_file: \"${KEY}\" }",
				"authenticators:",
				"  a: { type: mtls }",
			}, routeTail("[a]")...)...),
			want: []string{"4:14: authenticators.a.type: mtls needs server.tls.client_ca_file: the listener must verify client certificates"},
		},
		{name: "mtls identity", src: mtlsWith("identity: email"), want: []string{
			"9:15: authenticators.a.identity: must be subject_cn, san_uri or san_dns"}},
		{name: "mtls allow", src: mtlsWith("allow: [\"spiffe://acme/*/x\", \"\", \"a**\"]"), want: []string{
			"9:13: authenticators.a.allow[0]: must be an identity, or a prefix ending in a single *",
			"9:34: authenticators.a.allow[1]: must be an identity, or a prefix ending in a single *",
			"9:38: authenticators.a.allow[2]: must be an identity, or a prefix ending in a single *",
		}},

		// Keys that jwt and introspection share.
		{name: "cache_size negative", src: jwtWith("cache_size: -1"), want: []string{
			"8:17: authenticators.a.cache_size: must be 0 (no cache) or more"}},
		{name: "cache_ttl 0", src: jwtWith("cache_ttl: 0s"), want: []string{
			"8:16: authenticators.a.cache_ttl: must be greater than 0"}},
		{name: "timeout 0", src: introspectionWith("timeout: 0s"), want: []string{
			"7:14: authenticators.a.timeout: must be greater than 0"}},
		{name: "max_token_size 0", src: jwtWith("max_token_size: 0"), want: []string{
			"8:21: authenticators.a.max_token_size: must be greater than 0 and at most 64KiB"}},
		{name: "max_token_size over 64KiB", src: introspectionWith("max_token_size: 65537"), want: []string{
			"7:21: authenticators.a.max_token_size: must be greater than 0 and at most 64KiB"}},
		{name: "ca_file missing", src: jwtWith("ca_file: nope.pem"), want: []string{
			"8:14: authenticators.a.ca_file: cannot read the CA file: no such file or directory"}},
		{name: "ca_file not PEM", src: introspectionWith("ca_file: ${NOT_PEM}"), want: []string{
			"7:14: authenticators.a.ca_file: the CA file holds no PEM certificate"}},
		{name: "revocation_file missing", src: jwtWith("revocation_file: nope.txt"), want: []string{
			"8:22: authenticators.a.revocation_file: cannot read the revocation file: no such file or directory"}},
		{name: "scope_claims entry empty", src: jwtWith("scope_claims: [scope, \"\"]"), want: []string{
			"8:27: authenticators.a.scope_claims[1]: must not be empty"}},
		{name: "client_ids entry from an empty variable", src: jwtWith("client_ids: [\"${EMPTY}\"]"), want: []string{
			"8:18: authenticators.a.client_ids[0]: must not be empty"}},
		{name: "client_ids entry empty", src: introspectionWith("client_ids: [web, \"${EMPTY:-}\"]"), want: []string{
			"7:23: authenticators.a.client_ids[1]: must not be empty"}},

		// jwt.
		{name: "algorithms missing", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"3:5: authenticators.a.algorithms: is required: the signature algorithms to accept, e.g. [RS256]"}},
		{name: "algorithms empty", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: []", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"6:17: authenticators.a.algorithms: is required: the signature algorithms to accept, e.g. [RS256]"}},
		{name: "algorithm none", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256, None]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"6:25: authenticators.a.algorithms[1]: none is never accepted: an unsigned token proves nothing"}},
		{name: "algorithm unknown", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [rs256]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			`6:18: authenticators.a.algorithms[0]: unknown algorithm "rs256": use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, HS256, HS384, HS512`}},
		{name: "no key source", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]"), want: []string{
			"3:11: authenticators.a.type: " + keySources}},
		{name: "secret from an unset variable is no key source", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [HS256]", "secret: ${JWT_SECRET:-}"), want: []string{
			"3:11: authenticators.a.type: " + keySources}},
		{name: "two key sources", src: jwtWith("discovery: true"), want: []string{
			"3:11: authenticators.a.type: a jwt authenticator takes exactly one key source, but this one sets jwks_url and discovery"}},
		{name: "three key sources", src: jwtWith("key_file: k.pem", "secret: ${SECRET}"), want: []string{
			"3:11: authenticators.a.type: a jwt authenticator takes exactly one key source, but this one sets jwks_url and key_file and secret",
			"6:17: authenticators.a.algorithms: with secret, only HS256, HS384 or HS512 may be listed",
			"8:15: authenticators.a.key_file: cannot read the key file: no such file or directory",
		}},
		{name: "secret with an asymmetric algorithm", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [HS256, RS256]", "secret: ${SECRET}"), want: []string{
			"6:17: authenticators.a.algorithms: with secret, only HS256, HS384 or HS512 may be listed"}},
		{name: "secret too short", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [HS512]", "secret: ${SHORT_SECRET}"), want: []string{
			"7:13: authenticators.a.secret: must be at least 32 bytes (a shorter HMAC secret can be guessed offline from one token)"}},
		{name: "HMAC with public keys", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256, HS256]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"6:17: authenticators.a.algorithms: HS256, HS384 and HS512 need a secret; they are never accepted with public keys (jwks_url, discovery, key_file)"}},
		{name: "issuer missing", src: authnWith("type: jwt", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"3:5: authenticators.a.issuer: is required: the exact iss value of accepted tokens"}},
		{name: "issuer from an empty variable", src: authnWith("type: jwt", "issuer: ${EMPTY}", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"4:13: authenticators.a.issuer: is required: the exact iss value of accepted tokens"}},
		{name: "audiences missing", src: authnWith("type: jwt", "issuer: x", "algorithms: [RS256]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"3:5: authenticators.a.audiences: is required: the aud values that name this API (tokens for other APIs must not pass)"}},
		{name: "audiences empty", src: authnWith("type: jwt", "issuer: x", "audiences: []", "algorithms: [RS256]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"5:16: authenticators.a.audiences: is required: the aud values that name this API (tokens for other APIs must not pass)"}},
		{name: "audience empty", src: authnWith("type: jwt", "issuer: x", "audiences: [orders, \"${EMPTY}\"]", "algorithms: [RS256]", "jwks_url: https://idp.example.com/jwks"), want: []string{
			"5:25: authenticators.a.audiences[1]: must not be empty"}},
		{name: "jwks_url over http", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: http://idp.example.com/jwks"), want: []string{
			"7:15: authenticators.a.jwks_url: " + notHTTPS}},
		{name: "jwks_url over http to a private address", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: http://10.0.0.1/jwks"), want: []string{
			"7:15: authenticators.a.jwks_url: " + notHTTPS}},
		{name: "jwks_url scheme", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: ftp://idp.example.com/jwks"), want: []string{
			"7:15: authenticators.a.jwks_url: " + notHTTPS}},
		{name: "jwks_url relative", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: /jwks"), want: []string{
			"7:15: authenticators.a.jwks_url: " + notAbsURL}},
		{name: "jwks_url with credentials", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: https://user:hunter2@idp.example.com/jwks"), want: []string{
			"7:15: authenticators.a.jwks_url: " + notAbsURL}},
		{name: "jwks_url with a fragment", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: \"https://idp.example.com/jwks#keys\""), want: []string{
			"7:15: authenticators.a.jwks_url: " + notAbsURL}},
		{name: "jwks_url unparsable", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [RS256]", "jwks_url: \"https://[::1\""), want: []string{
			"7:15: authenticators.a.jwks_url: not a valid URL"}},
		{name: "discovery with an issuer that is no URL", src: authnWith("type: jwt", "issuer: acme", "audiences: [orders]", "algorithms: [RS256]", "discovery: true"), want: []string{
			"4:13: authenticators.a.issuer: with discovery, " + notAbsURL}},
		{name: "discovery over http", src: authnWith("type: jwt", "issuer: http://idp.example.com/realms/acme", "audiences: [orders]", "algorithms: [RS256]", "discovery: true"), want: []string{
			"4:13: authenticators.a.issuer: with discovery, " + notHTTPS}},
		{name: "key_file missing", src: authnWith("type: jwt", "issuer: x", "audiences: [orders]", "algorithms: [ES256]", "key_file: nope.pem"), want: []string{
			"7:15: authenticators.a.key_file: cannot read the key file: no such file or directory"}},
		{name: "leeway over 5m", src: jwtWith("leeway: 5m1s"), want: []string{
			"8:13: authenticators.a.leeway: must be between 0s and 5m"}},
		{name: "max_lifetime negative", src: jwtWith("max_lifetime: -1h"), want: []string{
			"8:19: authenticators.a.max_lifetime: a duration must not be negative"}},
		{name: "refresh_interval under 1s", src: jwtWith("refresh_interval: 999ms"), want: []string{
			"8:23: authenticators.a.refresh_interval: must be at least 1s"}},
		{name: "unknown_kid_refresh 0", src: jwtWith("unknown_kid_refresh: 0s"), want: []string{
			"8:26: authenticators.a.unknown_kid_refresh: must be at least 1s (each unknown kid could otherwise make the gateway fetch the JWKS)"}},
		{name: "dpop", src: jwtWith("dpop: always"), want: []string{
			"8:11: authenticators.a.dpop: must be off, optional or required"}},
		{name: "dpop_algorithms", src: jwtWith("dpop_algorithms: [ES256, HS256, none]"), want: []string{
			`8:30: authenticators.a.dpop_algorithms[1]: unknown or symmetric algorithm "HS256": use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`,
			`8:37: authenticators.a.dpop_algorithms[2]: unknown or symmetric algorithm "none": use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`,
		}},
		{name: "dpop_max_age 0", src: jwtWith("dpop_max_age: 0s"), want: []string{
			"8:19: authenticators.a.dpop_max_age: must be greater than 0"}},
		{name: "dpop_replay_cache_size 0", src: jwtWith("dpop_replay_cache_size: 0"), want: []string{
			"8:29: authenticators.a.dpop_replay_cache_size: must be greater than 0"}},

		// introspection.
		{name: "introspection without endpoint", src: authnWith("type: introspection", "client_id: gateway", "client_secret: s"), want: []string{
			"3:11: authenticators.a.type: an introspection authenticator needs endpoint (or discovery: true with issuer)"}},
		{name: "introspection endpoint and discovery", src: introspectionWith("discovery: true", "issuer: https://idp.example.com/realms/acme"), want: []string{
			"4:15: authenticators.a.endpoint: use endpoint or discovery, not both"}},
		{name: "introspection endpoint over http", src: authnWith("type: introspection", "endpoint: http://idp.example.com/introspect", "client_id: gateway", "client_secret: s"), want: []string{
			"4:15: authenticators.a.endpoint: " + notHTTPS}},
		{name: "introspection discovery without issuer", src: authnWith("type: introspection", "discovery: true", "client_id: gateway", "client_secret: s"), want: []string{
			"3:5: authenticators.a.issuer: is required with discovery: the OIDC issuer URL"}},
		{name: "introspection discovery over http", src: authnWith("type: introspection", "discovery: true", "issuer: http://idp.example.com/", "client_id: gateway", "client_secret: s"), want: []string{
			"5:13: authenticators.a.issuer: with discovery, " + notHTTPS}},
		{name: "introspection client_id missing", src: authnWith("type: introspection", "endpoint: https://idp.example.com/introspect", "client_secret: s"), want: []string{
			"3:5: authenticators.a.client_id: is required: the client id the gateway authenticates to the endpoint with"}},
		{name: "introspection client_secret from an empty variable", src: authnWith("type: introspection", "endpoint: https://idp.example.com/introspect", "client_id: gateway", "client_secret: ${EMPTY:-}"), want: []string{
			"6:20: authenticators.a.client_secret: is required: the client secret, written as ${ENV_VAR}"}},
		{name: "introspection negative_cache_ttl negative", src: introspectionWith("negative_cache_ttl: -1s"), want: []string{
			"7:25: authenticators.a.negative_cache_ttl: a duration must not be negative"}},
	}))
}

// withAuthnEnv gives every case without its own environment env.
func withAuthnEnv(env map[string]string, tests []authnCase) []authnCase {
	for i := range tests {
		if tests[i].env == nil {
			tests[i].env = env
		}
	}
	return tests
}

func TestConsumerErrors(t *testing.T) {
	h1, h2 := hashOf("bwk_first"), hashOf("bwk_second")
	runAuthnCases(t, []authnCase{
		{name: "id missing", src: consumersWith("- { plan: gold }"), want: []string{
			"4:5: consumers[0].id: is required: a unique consumer id"}},
		{name: "id alphabet", src: consumersWith("- { id: \"acme corp\" }"), want: []string{
			"4:11: consumers[0].id: invalid id: 1 to 128 letters, digits, '_', '.', '@', ':' or '-'"}},
		{name: "id too long", src: consumersWith("- { id: " + strings.Repeat("a", 129) + " }"), want: []string{
			"4:11: consumers[0].id: invalid id: 1 to 128 letters, digits, '_', '.', '@', ':' or '-'"}},
		{name: "id duplicate", src: consumersWith("- { id: acme }", "- { id: beta }", "- { id: acme }"), want: []string{
			`6:11: consumers[2].id: duplicate consumer id "acme" (first at consumers[0])`}},
		{name: "scope with a space", src: consumersWith("- { id: acme, scopes: [orders:read, \"orders:write admin\"] }"), want: []string{
			"4:39: consumers[0].scopes[1]: a scope is one non-empty word without spaces"}},
		{name: "role empty", src: consumersWith("- { id: acme, roles: [\"\"] }"), want: []string{
			"4:25: consumers[0].roles[0]: a role is one non-empty word without spaces"}},
		{name: "key id missing", src: consumersWith("- { id: acme, api_keys: [ { sha256: " + h1 + " } ] }"), want: []string{
			"4:29: consumers[0].api_keys[0].id: is required: a key id (logged instead of the key)"}},
		{name: "key id alphabet", src: consumersWith("- { id: acme, api_keys: [ { id: \"key #1\", sha256: " + h1 + " } ] }"), want: []string{
			"4:35: consumers[0].api_keys[0].id: invalid id: 1 to 128 letters, digits, '_', '.', '@', ':' or '-'"}},
		{
			name: "key id duplicate across consumers",
			src: consumersWith(
				"- { id: acme, api_keys: [ { id: k1, sha256: "+h1+" } ] }",
				"- { id: beta, api_keys: [ { id: k1, sha256: "+h2+" } ] }",
			),
			want: []string{`5:35: consumers[1].api_keys[0].id: duplicate key id "k1" (first at consumers[0].api_keys[0])`},
		},
		{name: "sha256 missing", src: consumersWith("- { id: acme, api_keys: [ { id: k1 } ] }"), want: []string{
			"4:29: consumers[0].api_keys[0].sha256: is required: the hex SHA-256 of the key (bulwark hash-key prints it)"}},
		{name: "sha256 is the key itself", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: bwk_first } ] }"), want: []string{
			"4:47: consumers[0].api_keys[0].sha256: must be 64 hex digits: the SHA-256 of the key, never the key itself (bulwark hash-key prints it)"}},
		{name: "sha256 one digit short", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: " + h1[1:] + " } ] }"), want: []string{
			"4:47: consumers[0].api_keys[0].sha256: must be 64 hex digits: the SHA-256 of the key, never the key itself (bulwark hash-key prints it)"}},
		{
			name: "the same key twice, in another case",
			src: consumersWith(
				"- { id: acme, api_keys: [ { id: k1, sha256: "+h1+" } ] }",
				"- { id: beta, api_keys: [ { id: k2, sha256: "+strings.ToUpper(h1)+" } ] }",
			),
			want: []string{"5:47: consumers[1].api_keys[0].sha256: the same key is already listed at consumers[0].api_keys[0]"},
		},
		{name: "expires not a time", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: " + h1 + ", expires: 31/01/2027 } ] }"), want: []string{
			"4:122: consumers[0].api_keys[0].expires: not a time: write RFC 3339 (2027-01-31T12:00:00Z) or a date (2027-01-31)"}},
		{name: "expires with a space", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: " + h1 + ", expires: \"2027-01-31 12:00:00\" } ] }"), want: []string{
			"4:122: consumers[0].api_keys[0].expires: not a time: write RFC 3339 (2027-01-31T12:00:00Z) or a date (2027-01-31)"}},
		{name: "expires a list", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: " + h1 + ", expires: [2027-01-31] } ] }"), want: []string{
			"4:122: consumers[0].api_keys[0].expires: expected a time such as 2027-01-31 or 2027-01-31T12:00:00Z, got a list"}},
		{
			name: "keys without an api_key authenticator",
			src: lines(
				"consumers:",
				"  - { id: acme, api_keys: [ { id: k1, sha256: "+h1+" } ] }",
				minimal,
			),
			want: []string{"1:1: consumers: API keys are listed but no authenticator has type: api_key, so none of them can be used"},
		},
	})
}

func TestPrincipalHeaderErrors(t *testing.T) {
	var tests []authnCase
	for _, key := range []string{"subject", "consumer", "scopes", "roles", "issuer", "method"} {
		tests = append(tests, authnCase{
			name: key,
			src:  lines("principal_headers:", "  "+key+": \"X Bulwark\"", minimal),
			want: []string{"2:" + strconv.Itoa(len(key)+5) + ": principal_headers." + key + ": not a valid header name"},
		})
	}
	tests = append(tests,
		authnCase{
			name: "same header as a default, in another case",
			src:  lines("principal_headers:", "  roles: x-bulwark-scopes", minimal),
			want: []string{"2:10: principal_headers.roles: header X-Bulwark-Scopes is already used by principal_headers.scopes"},
		},
		authnCase{
			name: "same header twice",
			src:  lines("principal_headers:", "  subject: \"\"", "  issuer: X-Iss", "  method: X-Iss", minimal),
			want: []string{"4:11: principal_headers.method: header X-Iss is already used by principal_headers.issuer"},
		},
	)
	runAuthnCases(t, tests)
}

func TestRouteAuthnErrors(t *testing.T) {
	runAuthnCases(t, []authnCase{
		{name: "auth missing", src: routeAuthn("mode: enforce"), want: []string{
			"8:5: routes[0].auth: is required: auth: none for a public route, or auth: [name, ...] for the authenticators that may accept it"}},
		{name: "unknown authenticator", src: routeAuthn("auth: [corp, nope]"), want: []string{
			`8:66: routes[0].auth[1]: unknown authenticator "nope"`}},
		{name: "authenticator listed twice", src: routeAuthn("auth: [corp, keys, corp]"), want: []string{
			`8:72: routes[0].auth[2]: authenticator "corp" is listed twice`}},
		{name: "authn on a public route", src: routeAuthn("auth: none, authn: { forward_credential: true }"), want: []string{
			"8:72: routes[0].authn: has no effect on a public route (auth: none)"}},
		{name: "authn.query_param without a bearer authenticator", src: routeAuthn("auth: [keys], authn: { query_param: access_token }"), want: []string{
			"8:89: routes[0].authn.query_param: needs a jwt or introspection authenticator in auth"}},
		{name: "authn.query_param not a name", src: routeAuthn("auth: [keys, opaque], authn: { query_param: \"access token\" }"), want: []string{
			"8:97: routes[0].authn.query_param: must be a query parameter name, e.g. access_token"}},
		{name: "authn.query_param empty", src: routeAuthn("auth: [corp], authn: { query_param: \"\" }"), want: []string{
			"8:89: routes[0].authn.query_param: must be a query parameter name, e.g. access_token"}},
		{name: "authn.dpop value", src: routeAuthn("auth: [corp], authn: { dpop: always }"), want: []string{
			"8:82: routes[0].authn.dpop: must be off, optional or required"}},
		{name: "authn.dpop without a jwt authenticator", src: routeAuthn("auth: [opaque, keys], authn: { dpop: required }"), want: []string{
			"8:90: routes[0].authn.dpop: needs a jwt authenticator in auth"}},
		{name: "authn.mode", src: routeAuthn("auth: [corp], authn: { mode: audit }"), want: []string{
			"8:82: routes[0].authn.mode: must be enforce or report"}},
		{name: "authn.forward_credential", src: routeAuthn("auth: [corp], authn: { forward_credential: yes }"), want: []string{
			"8:96: routes[0].authn.forward_credential: expected true or false"}},
		{name: "require.scopes on a public route", src: routeAuthn("auth: none, require: { scopes: [orders:read] }"), want: []string{
			"8:74: routes[0].require: a public route (auth: none) has no principal to hold scopes, roles or claims"}},
		{name: "require.scopes words", src: routeAuthn("auth: [corp], require: { scopes: [\"orders:read admin\", \"\"] }"), want: []string{
			"8:87: routes[0].require.scopes[0]: a scope is one non-empty word without spaces",
			"8:108: routes[0].require.scopes[1]: a scope is one non-empty word without spaces",
		}},
		{name: "require.roles words", src: routeAuthn("auth: [corp], require: { roles: [\"a b\"] }"), want: []string{
			"8:86: routes[0].require.roles[0]: a role is one non-empty word without spaces"}},
		{name: "require.claims", src: routeAuthn("auth: [corp], require: { claims: { \"a..b\": [x], tenant: [] } }"), want: []string{
			"8:88: routes[0].require.claims.a..b: a claim name, or a dotted path such as realm_access.tenant",
			"8:109: routes[0].require.claims.tenant: must list at least one value"}},
	})
}

// TestAuthnLoads loads a config with one authenticator of each kind and
// consumers, from a file, and checks what it decodes to and the defaults.
func TestAuthnLoads(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	signing, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&signing.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "keys/signing.pem", pemOf("PUBLIC KEY", spki))
	secret := strings.Repeat("k", 32)
	env := map[string]string{
		"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile,
		"JWT_SECRET": secret, "INTROSPECTION_SECRET": "not-a-real-secret",
	}
	key1, key2 := "bwk_first-test-key", "bwk_second-test-key"
	path := writeFile(t, dir, "bulwark.yaml", lines(
		"server:",
		"  tls:",
		"    cert_file: ${CERT}",
		"    key_file: ${KEY}",
		"    client_ca_file: ${CA}",
		"authenticators:",
		"  corp:",
		"    type: jwt",
		"    issuer: https://idp.example.com/realms/acme",
		"    audiences: [orders]",
		"    algorithms: [RS256, ES256]",
		"    jwks_url: http://127.0.0.1:1/jwks",
		"  hmac:",
		"    type: jwt",
		"    issuer: internal-tools",
		"    audiences: [orders]",
		"    algorithms: [HS256]",
		"    secret: ${JWT_SECRET}",
		"    leeway: 5m",
		"  static:",
		"    type: jwt",
		"    issuer: https://issuer.example.com",
		"    audiences: [orders, billing]",
		"    algorithms: [ES256]",
		"    key_file: keys/signing.pem",
		"    typ: at+jwt",
		"    dpop: required",
		"    cache_size: 0",
		"  opaque:",
		"    type: introspection",
		"    endpoint: https://idp.example.com/realms/acme/protocol/openid-connect/token/introspect",
		"    client_id: gateway",
		"    client_secret: ${INTROSPECTION_SECRET}",
		"  keys:",
		"    type: api_key",
		"  certs:",
		"    type: mtls",
		"    identity: san_uri",
		"    allow: [\"spiffe://acme.example/ns/prod/*\"]",
		"consumers:",
		"  - id: acme",
		"    plan: gold",
		"    scopes: [orders:read]",
		"    api_keys:",
		"      - { id: acme-1, sha256: "+strings.ToUpper(hashOf(key1))+", expires: 2027-01-31 }",
		"      - { id: acme-2, sha256: "+hashOf(key2)+", expires: \"2027-01-31T12:00:00+02:00\", disabled: true }",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - name: tokens",
		"    method: GET",
		"    path: /orders",
		"    upstream: app",
		"    auth: [corp, hmac, static, opaque]",
		"    require: { scopes: [orders:read] }",
		"    authn: { query_param: access_token, forward_credential: false, dpop: optional, mode: report }",
		"  - { name: keys, method: POST, path: /orders, upstream: app, auth: [keys, certs] }",
		"  - { name: health, method: GET, path: /health, upstream: app, auth: none }",
	))
	cfg, err := Load(path, envOf(env))
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	forward := false
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "authenticators", got: len(cfg.Authenticators), want: 6},
		{name: "jwks_url", got: cfg.Authenticators["corp"].JWKSURL, want: "http://127.0.0.1:1/jwks"},
		{name: "algorithms", got: cfg.Authenticators["corp"].Algorithms, want: []string{"RS256", "ES256"}},
		{name: "leeway default", got: cfg.Authenticators["corp"].Leeway, want: Duration(30 * time.Second)},
		{name: "leeway at its limit", got: cfg.Authenticators["hmac"].Leeway, want: Duration(5 * time.Minute)},
		{name: "max_token_size default", got: cfg.Authenticators["corp"].MaxTokenSize, want: Size(8 << 10)},
		{name: "secret from the environment", got: cfg.Authenticators["hmac"].Secret, want: Secret(secret)},
		{name: "key_file resolves against the config's directory", got: cfg.Authenticators["static"].KeyFile, want: Path(filepath.Join(dir, "keys/signing.pem"))},
		{name: "typ", got: cfg.Authenticators["static"].Typ, want: "at+jwt"},
		{name: "dpop", got: cfg.Authenticators["static"].DPoP, want: "required"},
		{name: "cache_size 0 disables the cache", got: cfg.Authenticators["static"].CacheSize, want: 0},
		{name: "client_secret from the environment", got: cfg.Authenticators["opaque"].ClientSecret, want: Secret("not-a-real-secret")},
		{name: "api_key header default", got: cfg.Authenticators["keys"].Header, want: "X-API-Key"},
		{name: "mtls identity", got: cfg.Authenticators["certs"].Identity, want: "san_uri"},
		{name: "mtls allow", got: cfg.Authenticators["certs"].Allow, want: []string{"spiffe://acme.example/ns/prod/*"}},
		{name: "sha256 is lower-cased", got: cfg.Consumers[0].APIKeys[0].SHA256, want: hashOf(key1)},
		{name: "expires as a date is midnight UTC", got: cfg.Consumers[0].APIKeys[0].Expires.Time, want: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)},
		{name: "expires as RFC 3339", got: cfg.Consumers[0].APIKeys[1].Expires.UTC(), want: time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC)},
		{name: "disabled", got: cfg.Consumers[0].APIKeys[1].Disabled, want: true},
		{name: "consumer", got: []any{cfg.Consumers[0].ID, cfg.Consumers[0].Plan, cfg.Consumers[0].Scopes}, want: []any{"acme", "gold", []string{"orders:read"}}},
		{name: "route auth", got: cfg.Routes[0].Auth, want: AuthList{Names: []string{"corp", "hmac", "static", "opaque"}}},
		{name: "route require", got: cfg.Routes[0].Require, want: &Require{Scopes: []string{"orders:read"}}},
		{name: "route authn", got: cfg.Routes[0].Authn, want: &RouteAuthn{Mode: ModeReport, QueryParam: "access_token", ForwardCredential: &forward, DPoP: "optional"}},
		{name: "route without authn", got: cfg.Routes[1].Authn, want: (*RouteAuthn)(nil)},
		{name: "public route", got: cfg.Routes[2].Auth, want: AuthList{None: true}},
		{name: "principal headers default", got: cfg.Principal, want: PrincipalHeaders{Subject: "X-Bulwark-Subject", Consumer: "X-Bulwark-Consumer", Scopes: "X-Bulwark-Scopes"}},
		{
			name: "principal headers are stripped at the edge",
			got:  cfg.Server.IdentityHeaders[len(cfg.Server.IdentityHeaders)-3:],
			want: []string{"X-Bulwark-Subject", "X-Bulwark-Consumer", "X-Bulwark-Scopes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestAuthenticatorDefaults checks every default of an authenticator: the
// keys of other types get theirs too, unused.
func TestAuthenticatorDefaults(t *testing.T) {
	cfg := mustParse(t, jwtWith(), nil)
	want := Authenticator{
		Type:             "jwt",
		Issuer:           "https://idp.example.com/realms/acme",
		Audiences:        []string{"orders"},
		Algorithms:       []string{"RS256"},
		JWKSURL:          "https://idp.example.com/jwks",
		Leeway:           Duration(30 * time.Second),
		MaxTokenSize:     8 << 10,
		ScopeClaims:      []string{"scope", "scp"},
		RolesClaim:       "roles",
		DPoP:             "off",
		DPoPAlgorithms:   []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"},
		DPoPMaxAge:       Duration(time.Minute),
		DPoPReplaySize:   100000,
		Refresh:          Duration(15 * time.Minute),
		MinRefresh:       Duration(time.Minute),
		CacheSize:        10000,
		CacheTTL:         Duration(5 * time.Minute),
		Timeout:          Duration(5 * time.Second),
		NegativeCacheTTL: Duration(10 * time.Second),
		Header:           "X-API-Key",
		Identity:         "subject_cn",
	}
	if got := cfg.Authenticators["a"]; !reflect.DeepEqual(got, want) {
		t.Errorf("authenticator =\n%+v\nwant\n%+v", got, want)
	}
}

// TestIdPURLLoopback checks the URLs the gateway may fetch over plain
// http: loopback only, IPv6 included.
func TestIdPURLLoopback(t *testing.T) {
	tests := []struct {
		url  string
		want string // "" when accepted
	}{
		{url: "https://idp.example.com/jwks"},
		{url: "http://127.0.0.1:8080/jwks"},
		{url: "http://127.0.0.2/jwks"},
		{url: "http://localhost:8080/jwks"},
		{url: "http://[::1]:8080/jwks"},
		{url: "http://[::1]/jwks"},
		{url: "HTTPS://idp.example.com/jwks"},
		{url: "http://192.0.2.1/jwks", want: "must be https (plain http only to a loopback address)"},
		{url: "http://[2001:db8::1]/jwks", want: "must be https (plain http only to a loopback address)"},
		{url: "http://localhost.example.com/jwks", want: "must be https (plain http only to a loopback address)"},
		{url: "https://idp.example.com/jwks#x", want: "must be an absolute https URL without credentials or fragment"},
		{url: "https:idp.example.com", want: "must be an absolute https URL without credentials or fragment"},
		{url: "https://idp.example.com:bad/", want: "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckIdPURL(tt.url)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("CheckIdPURL(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2027-01-31", want: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)},
		{in: "2027-01-31T12:00:00Z", want: time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC)},
		{in: "2027-01-31T12:00:00.5Z", want: time.Date(2027, 1, 31, 12, 0, 0, 5e8, time.UTC)},
		{in: "2027-01-31T12:00:00-05:00", want: time.Date(2027, 1, 31, 17, 0, 0, 0, time.UTC)},
		{in: "", wantErr: true},
		{in: "2027-1-31", wantErr: true},
		{in: "2027-02-30", wantErr: true},
		{in: "31/01/2027", wantErr: true},
		{in: "2027-01-31 12:00:00", wantErr: true},
		{in: "2027-01-31T12:00:00", wantErr: true}, // no zone: which one?
		{in: "1800000000", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime(tt.in)
			if tt.wantErr {
				if !errors.Is(err, errTime) {
					t.Errorf("parseTime(%q) = %v, %v, want errTime", tt.in, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("parseTime(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestPrincipalHeadersToIdentityHeaders checks that configured principal
// header names are stripped from client requests like the built-in
// identity headers: canonical, once, and not when disabled.
func TestPrincipalHeadersToIdentityHeaders(t *testing.T) {
	cfg := mustParse(t, lines(
		"server:",
		"  identity_headers: [x-tenant-id]",
		"principal_headers:",
		"  subject: x-user-subject",
		"  consumer: \"\"",
		"  roles: X-Bulwark-Roles",
		"  issuer: x-user-id",
		"  method: X-TENANT-ID",
		minimal,
	), nil)
	want := append(builtinIdentityHeaders(), "X-Tenant-Id", "X-User-Subject", "X-Bulwark-Scopes", "X-Bulwark-Roles")
	if got := cfg.Server.IdentityHeaders; !reflect.DeepEqual(got, want) {
		t.Errorf("identity headers = %v, want %v", got, want)
	}
	// The principal headers keep the names as written; the gateway
	// canonicalises when it sets them.
	if got, want := cfg.Principal, (PrincipalHeaders{Subject: "x-user-subject", Scopes: "X-Bulwark-Scopes", Roles: "X-Bulwark-Roles", Issuer: "x-user-id", Method: "X-TENANT-ID"}); got != want {
		t.Errorf("principal headers = %+v, want %+v", got, want)
	}
}

// TestAuthnSchema checks what the editor schema accepts for the new keys:
// cache_size may be 0 (min tag 0), dpop_replay_cache_size may not (the
// default minimum of 1).
func TestAuthnSchema(t *testing.T) {
	sch := compileSchema(t)
	tests := []struct {
		name string
		src  string
		ok   bool
	}{
		{name: "valid jwt", src: jwtWith(), ok: true},
		{name: "cache_size 0", src: jwtWith("cache_size: 0"), ok: true},
		{name: "cache_size negative", src: jwtWith("cache_size: -1")},
		{name: "dpop_replay_cache_size 0", src: jwtWith("dpop_replay_cache_size: 0")},
		{name: "type unknown", src: authnWith("type: oauth")},
		{name: "type missing", src: authnWith("issuer: x")},
		{name: "mtls identity", src: authnWith("type: mtls", "identity: email")},
		{name: "expires as a date", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: \"" + hashOf("k") + "\", expires: \"2027-01-31\" } ] }"), ok: true},
		{name: "expires not a time", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: \"" + hashOf("k") + "\", expires: \"31/01/2027\" } ] }")},
		{name: "sha256 not hex", src: consumersWith("- { id: acme, api_keys: [ { id: k1, sha256: bwk_key } ] }")},
		{name: "route require and authn", src: routeAuthn("auth: [corp], require: { scopes: [orders:read] }, authn: { query_param: access_token, dpop: optional }"), ok: true},
		{name: "route require roles", src: routeAuthn("auth: [corp], require: { roles: [admin], any_scopes: [a, b], claims: { tenant: [acme] } }"), ok: true},
		{name: "principal header", src: lines("principal_headers: { subject: X-User-Subject, consumer: \"\" }", minimal), ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sch.Validate(yamlToJSON(t, []byte(tt.src)))
			if got := err == nil; got != tt.ok {
				t.Errorf("valid = %v, want %v (%v)", got, tt.ok, err)
			}
		})
	}
}

// TestExampleAPIKey checks that the example key documented in
// configs/bulwark.example.yaml and docs/configuration.md hashes to the
// sha256 written next to it, and that the example route requires scopes.
func TestExampleAPIKey(t *testing.T) {
	const key = "bwk_EXAMPLE-ONLY-acme-partner-key-0001"
	cfg, err := Load(filepath.Join(configsDir, "bulwark.example.yaml"), envOf(configsEnv(t)))
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	if got, want := cfg.Consumers[0].APIKeys[0].SHA256, hashOf(key); got != want {
		t.Errorf("example consumer sha256 = %s, want %s (the hash of %q)", got, want, key)
	}
	for _, file := range []string{filepath.Join(configsDir, "bulwark.example.yaml"), docFile} {
		if doc := mustRead(t, file); !strings.Contains(doc, key) || !strings.Contains(doc, hashOf(key)) {
			t.Errorf("%s does not show the example key %q next to its hash", file, key)
		}
	}
	i := slices.IndexFunc(cfg.Routes, func(rt Route) bool { return rt.Require != nil })
	if i < 0 || len(cfg.Routes[i].Auth.Names) == 0 || len(cfg.Routes[i].Require.Scopes) == 0 {
		t.Errorf("no example route has auth: [...] with require.scopes")
	}
}
