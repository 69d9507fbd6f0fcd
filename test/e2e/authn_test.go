package e2e

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The authentication tests run the real binary against real key servers,
// introspection endpoints and TLS on 127.0.0.1 (docs/authentication.md).
// Every refused request also asserts that the upstream was not reached.

// corpFixture is a gateway whose jwt authenticator corp trusts key "a" of
// a key server, with an api_key authenticator and the routes the
// challenge, principal, report-mode and metrics tests share.
type corpFixture struct {
	g    *gateway
	up   *upstream
	keys *keyServer
	key  *rsa.PrivateKey // key "a"
	apiK string          // the API key of consumer acme
}

func startCorp(t *testing.T) *corpFixture {
	t.Helper()
	f := &corpFixture{up: startUpstream(t, nil), key: rsaKey(t, 0), apiK: "bwk_" + randomSecret(t)}
	f.keys = startKeyServer(t, rsaJWK("a", &f.key.PublicKey))
	setup := authnSetup{
		upstream: f.up.addr,
		authenticators: []string{
			jwtAuthenticator("corp", f.keys.url()),
			"  keys: { type: api_key, header: X-API-Key }",
		},
		top: fmt.Sprintf(`consumers:
  - { id: acme, plan: gold, scopes: [orders:read], api_keys: [ { id: k1, sha256: %q } ] }`, sha256Hex(f.apiK)),
		routes: []string{
			authRoute("r", "/orders/{id}", "[corp]", "require: { scopes: [orders:read] }"),
			authRoute("mixed", "/mixed", "[corp, keys]"),
			authRoute("query", "/query", "[corp]", "authn: { query_param: access_token }"),
			authRoute("nofwd", "/nofwd", "[corp]", "authn: { forward_credential: false }"),
			authRoute("pub", "/pub", "none"),
			authRoute("report", "/report", "[corp]", "authn: { mode: report }"),
		},
	}
	f.g = startGateway(t, setup.yaml(), nil)
	return f
}

// token is a token corp accepts, for subject alice with scope.
func (f *corpFixture) token(t testing.TB, scope string, mutate ...func(jwt.MapClaims)) string {
	t.Helper()
	return signRS256(t, f.key, "a", claims("alice", scope, mutate...))
}

// refusal is what every refused request is checked for.
type refusal struct {
	status    int
	slug      string
	challenge []string // substrings WWW-Authenticate must contain
	lacks     []string // substrings WWW-Authenticate must not contain
}

// checkRefused asserts that a is the refusal r, that neither the body nor
// the challenge repeats secret or says which check failed, and that the
// upstream saw no request since before.
func checkRefused(t testing.TB, a answer, r refusal, up *upstream, before int64, secret string) {
	t.Helper()
	p := a.problem(t, r.status, r.slug)
	ch := a.challenge()
	for _, want := range r.challenge {
		if !strings.Contains(ch, want) {
			t.Errorf("WWW-Authenticate = %q, want it to contain %s", ch, want)
		}
	}
	for _, bad := range r.lacks {
		if strings.Contains(ch, bad) {
			t.Errorf("WWW-Authenticate = %q, want no %s", ch, bad)
		}
	}
	shown := strings.ToLower(string(a.body) + "\n" + ch)
	if secret != "" && strings.Contains(string(a.body)+ch, secret) {
		t.Errorf("the answer repeats the credential: detail %q", p.Detail)
	}
	for _, word := range []string{"kid", "signature"} {
		if strings.Contains(shown, word) {
			t.Errorf("the answer says %q (body %s, challenge %q): descriptions must stay coarse", word, a.body, ch)
		}
	}
	if hits := up.hits.Load() - before; hits != 0 {
		t.Errorf("upstream hits = %d after a refused request, want 0", hits)
	}
}

var (
	unauthenticated = refusal{status: http.StatusUnauthorized, slug: "unauthenticated",
		challenge: []string{`Bearer realm="bulwark"`, `error="invalid_token"`}}
	badCredentialRequest = refusal{status: http.StatusBadRequest, slug: "invalid-credential-request",
		challenge: []string{`error="invalid_request"`}}
)

func TestAuthnChallenges(t *testing.T) {
	f := startCorp(t)
	good := f.token(t, "orders:read")
	forged := signRS256(t, rsaKey(t, 1), "a", claims("alice", "orders:read"))
	expired := f.token(t, "orders:read", func(c jwt.MapClaims) {
		c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	})
	narrow := f.token(t, "orders:write profile")

	t.Run("no credentials", func(t *testing.T) {
		before := f.up.hits.Load()
		a := send(t, nil, "GET", f.g.URL("/orders/1"))
		checkRefused(t, a, refusal{status: 401, slug: "unauthenticated", lacks: []string{"error="}}, f.up, before, "")
		if got, want := a.header.Values("Www-Authenticate"), []string{`Bearer realm="bulwark"`}; !slices.Equal(got, want) {
			t.Errorf("WWW-Authenticate = %q, want %q", got, want)
		}
	})

	tests := []struct {
		name   string
		path   string
		hdr    []string
		want   refusal
		secret string
	}{
		{name: "no credentials on a route that also takes API keys", path: "/mixed",
			want: refusal{status: 401, slug: "unauthenticated",
				challenge: []string{`Bearer realm="bulwark"`, `ApiKey realm="bulwark", header="X-Api-Key"`}, lacks: []string{"error="}}},
		{name: "signed by another key", path: "/orders/1", hdr: []string{"Authorization", "Bearer " + forged},
			want: unauthenticated, secret: forged},
		{name: "expired", path: "/orders/1", hdr: []string{"Authorization", "Bearer " + expired},
			want: unauthenticated, secret: expired},
		{name: "bad token on a route that also takes API keys", path: "/mixed", hdr: []string{"Authorization", "Bearer " + forged},
			want: unauthenticated, secret: forged},
		// A credential that is present but refused never falls through to
		// the next authenticator, even when that one would accept.
		{name: "bad token with a good API key", path: "/mixed", hdr: []string{"Authorization", "Bearer " + forged, "X-API-Key", f.apiK},
			want: unauthenticated, secret: f.apiK},
		{name: "two Authorization headers", path: "/orders/1",
			hdr:  []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good},
			want: badCredentialRequest, secret: good},
		{name: "token in the query of a route without query_param", path: "/orders/1?access_token=" + good,
			want: badCredentialRequest, secret: good},
		{name: "token in the query and in Authorization", path: "/query?access_token=" + good,
			hdr: []string{"Authorization", "Bearer " + good}, want: badCredentialRequest, secret: good},
		{name: "too few scopes", path: "/orders/1", hdr: []string{"Authorization", "Bearer " + narrow},
			want: refusal{status: 403, slug: "insufficient-scope", challenge: []string{`error="insufficient_scope"`}}, secret: narrow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.up.hits.Load()
			checkRefused(t, send(t, nil, "GET", f.g.URL(tt.path), tt.hdr...), tt.want, f.up, before, tt.secret)
		})
	}

	accepted := []struct {
		name string
		path string
		hdr  []string
	}{
		{name: "Bearer", path: "/orders/1", hdr: []string{"Authorization", "Bearer " + good}},
		{name: "lower-case scheme", path: "/orders/1", hdr: []string{"authorization", "bearer " + good}},
		{name: "upper-case scheme", path: "/orders/1", hdr: []string{"Authorization", "BEARER " + good}},
		{name: "query token where the route takes one", path: "/query?access_token=" + good},
		{name: "token on a route that also takes API keys", path: "/mixed", hdr: []string{"Authorization", "Bearer " + good}},
		{name: "API key on a route that also takes tokens", path: "/mixed", hdr: []string{"X-API-Key", f.apiK}},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			before := f.up.hits.Load()
			if a := send(t, nil, "GET", f.g.URL(tt.path), tt.hdr...); a.status != http.StatusOK {
				t.Errorf("GET %s = %d, want 200 (%s)", tt.path, a.status, a.body)
			}
			if hits := f.up.hits.Load() - before; hits != 1 {
				t.Errorf("upstream hits = %d, want 1", hits)
			}
		})
	}
}

func TestAuthnPrincipalHeaders(t *testing.T) {
	f := startCorp(t)
	tok := f.token(t, "orders:read orders:write")
	spoofed := []string{
		"X-Bulwark-Subject", "mallory",
		"X-Bulwark-Scopes", "admin",
		"X-Bulwark-Consumer", "evil-client",
	}

	t.Run("token", func(t *testing.T) {
		a := send(t, nil, "GET", f.g.URL("/orders/7"), append([]string{"Authorization", "Bearer " + tok}, spoofed...)...)
		if a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		last, _ := f.up.lastRequest()
		if got := last.Header.Values("X-Bulwark-Subject"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("upstream X-Bulwark-Subject = %q, want [alice]", got)
		}
		if got := last.Header.Values("X-Bulwark-Consumer"); !slices.Equal(got, []string{testClient}) {
			t.Errorf("upstream X-Bulwark-Consumer = %q, want [%s] (the azp)", got, testClient)
		}
		scopes := last.Header.Values("X-Bulwark-Scopes")
		if len(scopes) != 1 || !sameWords(scopes[0], "orders:read orders:write") {
			t.Errorf("upstream X-Bulwark-Scopes = %q, want one value with orders:read and orders:write", scopes)
		}
		if got := last.Header.Get("Authorization"); got != "Bearer "+tok {
			t.Errorf("upstream Authorization = %q, want the client's bearer token (forwarded by default)", redactAuth(got, tok))
		}
	})

	t.Run("public route", func(t *testing.T) {
		a := send(t, nil, "GET", f.g.URL("/pub"), spoofed...)
		if a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		last, _ := f.up.lastRequest()
		for _, h := range []string{"X-Bulwark-Subject", "X-Bulwark-Scopes", "X-Bulwark-Consumer"} {
			if got := last.Header.Values(h); len(got) != 0 {
				t.Errorf("upstream %s = %q on an auth: none route, want it stripped", h, got)
			}
		}
	})

	t.Run("forward_credential false", func(t *testing.T) {
		a := send(t, nil, "GET", f.g.URL("/nofwd"), "Authorization", "Bearer "+tok)
		if a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		last, _ := f.up.lastRequest()
		if got := last.Header.Get("Authorization"); got != "" {
			t.Errorf("upstream Authorization = %q, want none with forward_credential: false", redactAuth(got, tok))
		}
		if got := last.Header.Get("X-Bulwark-Subject"); got != "alice" {
			t.Errorf("upstream X-Bulwark-Subject = %q, want alice", got)
		}
	})
}

// sameWords reports whether two space-separated lists hold the same words.
func sameWords(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func TestAuthnReportMode(t *testing.T) {
	f := startCorp(t)
	bad := signRS256(t, rsaKey(t, 1), "a", claims("alice", "orders:read"))
	series := []string{`mode="report"`, `route="report"`, `stage="authn"`}
	before := max(metricSum(t, f.g, "bulwark_denials_total", series...), 0)
	hits := f.up.hits.Load()

	a := send(t, nil, "GET", f.g.URL("/report"), "Authorization", "Bearer "+bad, "X-Bulwark-Subject", "mallory")
	if a.status != http.StatusOK {
		t.Errorf("report mode with a bad token = %d, want 200 (%s)", a.status, a.body)
	}
	if got := f.up.hits.Load() - hits; got != 1 {
		t.Errorf("upstream hits = %d, want 1", got)
	}
	if last, _ := f.up.lastRequest(); last != nil && last.Header.Get("X-Bulwark-Subject") != "" {
		t.Errorf("upstream X-Bulwark-Subject = %q, want none: a would-deny passes without a principal", last.Header.Get("X-Bulwark-Subject"))
	}
	if got := metricSum(t, f.g, "bulwark_denials_total", series...); got != before+1 {
		t.Errorf("bulwark_denials_total{%s} = %v, want %v", strings.Join(series, ","), got, before+1)
	}
	if got := metricSum(t, f.g, "bulwark_denials_total", `mode="enforce"`, `route="report"`); got > 0 {
		t.Errorf("an enforce-mode denial was counted on the report-mode route (%v)", got)
	}
}

func TestAuthnMetrics(t *testing.T) {
	f := startCorp(t)
	success := `bulwark_auth_attempts_total{authenticator="corp",result="success"}`
	failure := `bulwark_auth_attempts_total{authenticator="corp",result="failure"}`
	missing := `bulwark_denials_total{mode="enforce",reason="missing_credentials",route="r",stage="authn"}`
	before := map[string]float64{}
	for _, s := range []string{success, failure, missing} {
		before[s] = max(f.g.metric(t, s), 0)
	}

	if a := send(t, nil, "GET", f.g.URL("/orders/1"), "Authorization", "Bearer "+f.token(t, "orders:read")); a.status != 200 {
		t.Fatalf("good token = %d, want 200 (%s)", a.status, a.body)
	}
	bad := signRS256(t, rsaKey(t, 1), "a", claims("alice", "orders:read"))
	if a := send(t, nil, "GET", f.g.URL("/orders/1"), "Authorization", "Bearer "+bad); a.status != 401 {
		t.Fatalf("forged token = %d, want 401", a.status)
	}
	if a := send(t, nil, "GET", f.g.URL("/orders/1")); a.status != 401 {
		t.Fatalf("no credentials = %d, want 401", a.status)
	}

	for _, s := range []string{success, failure, missing} {
		if got := f.g.metric(t, s); got != before[s]+1 {
			t.Errorf("%s = %v, want %v", s, got, before[s]+1)
		}
	}
	if got := f.g.metric(t, `bulwark_jwks_refresh_total{authenticator="corp",result="success"}`); got < 1 {
		t.Errorf(`bulwark_jwks_refresh_total{authenticator="corp",result="success"} = %v, want >= 1`, got)
	}
	if got := f.g.metric(t, `bulwark_jwks_age_seconds{authenticator="corp"}`); got < 0 {
		t.Errorf(`bulwark_jwks_age_seconds{authenticator="corp"} = %v, want a sample >= 0`, got)
	}
}

// TestJWTAttacks sends the classic JWT attacks through the binary. Each
// is refused, never reaches the upstream, never makes the gateway contact
// the attacker's server, and the whole table costs at most one extra
// fetch of the real key set (the unknown-kid refetch is rate-limited).
func TestJWTAttacks(t *testing.T) {
	keyA, stranger, attackerKey := rsaKey(t, 0), rsaKey(t, 1), rsaKey(t, 2)
	ecKey := newKey(t)
	corpKeys := startKeyServer(t, rsaJWK("a", &keyA.PublicKey))
	strictKeys := startKeyServer(t, rsaJWK("a", &keyA.PublicKey))
	ecKeys := startKeyServer(t, ecJWK(t, "e1", "ES256", &ecKey.PublicKey))
	attackerCert := selfSigned(t, attackerKey)
	attacker := startAttackerServer(t, rsaJWK("evil", &attackerKey.PublicKey), attackerCert)
	up := startUpstream(t, nil)
	setup := authnSetup{
		upstream: up.addr,
		authenticators: []string{
			jwtAuthenticator("corp", corpKeys.url()),
			strings.Replace(jwtAuthenticator("ec", ecKeys.url()), "[RS256]", "[ES256]", 1),
			jwtAuthenticator("strict", strictKeys.url(),
				"typ: at+jwt", "client_ids: ["+testClient+"]", "max_lifetime: 1h", "required_claims: [jti]"),
		},
		routes: []string{
			authRoute("r", "/orders/{id}", "[corp]"),
			authRoute("ec", "/ec", "[ec]"),
			authRoute("strict", "/strict", "[strict]"),
		},
	}
	g := startGateway(t, setup.yaml(), nil)

	valid := func(mutate ...func(jwt.MapClaims)) jwt.MapClaims { return claims("alice", "orders:read", mutate...) }
	atJWT := func(c jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodRS256, keyA, map[string]any{"kid": "a", "typ": "at+jwt"}, c)
	}
	// The controls: the same gateway accepts honest tokens on every route,
	// and exp within the leeway (30s).
	controls := []struct{ name, path, token string }{
		{name: "RS256", path: "/orders/1", token: signRS256(t, keyA, "a", valid())},
		{name: "ES256", path: "/ec", token: sign(t, jwt.SigningMethodES256, ecKey, map[string]any{"kid": "e1"}, valid())},
		{name: "at+jwt", path: "/strict", token: atJWT(valid())},
		{name: "expired 10s ago, within the leeway", path: "/orders/1", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-5*time.Minute).Unix(), time.Now().Add(-10*time.Second).Unix()
		}))},
	}
	for _, c := range controls {
		if a := send(t, nil, "GET", g.URL(c.path), "Authorization", "Bearer "+c.token); a.status != http.StatusOK {
			t.Fatalf("control %s: an honest token on %s = %d, want 200 (%s)", c.name, c.path, a.status, a.body)
		}
	}
	fetches := corpKeys.hits.Load()

	pkix, err := x509.MarshalPKIXPublicKey(&keyA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&keyA.PublicKey)
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})
	hs256 := func(secret []byte) string {
		return sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": "a"}, valid())
	}
	none := func(alg string) string {
		return rawJWT(t, map[string]any{"alg": alg, "typ": "JWT", "kid": "a"}, valid(), nil)
	}
	byA := func(kid string) string { return signRS256(t, keyA, kid, valid()) }
	byAttacker := func(hdr map[string]any) string {
		return sign(t, jwt.SigningMethodRS256, attackerKey, hdr, valid())
	}
	good := signRS256(t, keyA, "a", valid())
	head, _, _ := strings.Cut(good, ".")
	unsigned := good[:strings.LastIndex(good, ".")]

	tests := []struct {
		name      string
		path      string
		token     string
		malformed bool // 400 invalid_request is as good an answer as 401
	}{
		{name: "alg none", token: none("none")},
		{name: "alg None", token: none("None")},
		{name: "alg NONE", token: none("NONE")},
		{name: "alg none with the signature of a real token", token: none("none") + good[strings.LastIndex(good, ".")+1:]},
		{name: "HS256 keyed with the PEM public key (PKIX)", token: hs256(pkixPEM)},
		{name: "HS256 keyed with the PEM public key (PKCS#1)", token: hs256(pkcs1PEM)},
		{name: "HS256 keyed with the DER public key (PKIX)", token: hs256(pkix)},
		{name: "HS256 keyed with the DER public key (PKCS#1)", token: hs256(pkcs1)},
		{name: "unknown kid", token: byA("b")},
		{name: "kid path traversal", token: byA("../../../../etc/passwd")},
		{name: "kid SQL injection", token: byA("' OR '1'='1")},
		{name: "kid command substitution", token: byA("$(id)")},
		{name: "kid of 2 KiB", token: byA(strings.Repeat("k", 2048))},
		{name: "jku to the attacker", token: byAttacker(map[string]any{"kid": "evil", "jku": attacker.srv.URL + "/jwks"})},
		{name: "jku to the attacker with the trusted kid", token: byAttacker(map[string]any{"kid": "a", "jku": attacker.srv.URL + "/jwks"})},
		{name: "x5u to the attacker", token: byAttacker(map[string]any{"kid": "evil", "x5u": attacker.srv.URL + "/cert.pem"})},
		{name: "embedded jwk", token: byAttacker(map[string]any{"kid": "evil", "jwk": rsaJWK("evil", &attackerKey.PublicKey)})},
		{name: "embedded jwk without kid", token: byAttacker(map[string]any{"jwk": rsaJWK("evil", &attackerKey.PublicKey)})},
		{name: "embedded x5c", token: byAttacker(map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(attackerCert)}})},
		{name: "ES256 psychic signature (r = s = 0)", path: "/ec",
			token: rawJWT(t, map[string]any{"alg": "ES256", "typ": "JWT", "kid": "e1"}, valid(), make([]byte, 64))},
		{name: "ES256 token on the RS256 authenticator",
			token: sign(t, jwt.SigningMethodES256, ecKey, map[string]any{"kid": "a"}, valid())},
		{name: "expired", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		}))},
		{name: "expired beyond the leeway", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-10*time.Minute).Unix(), time.Now().Add(-2*time.Minute).Unix()
		}))},
		{name: "nbf in the future", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) {
			c["nbf"] = time.Now().Add(5 * time.Minute).Unix()
		}))},
		{name: "iat far in the future", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(time.Hour).Unix(), time.Now().Add(2*time.Hour).Unix()
		}))},
		{name: "wrong iss", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }))},
		{name: "iss with a trailing slash", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { c["iss"] = testIssuer + "/" }))},
		{name: "missing iss", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{name: "wrong aud", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { c["aud"] = "billing-api" }))},
		{name: "aud list without ours", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { c["aud"] = []string{"billing-api", "orders"} }))},
		{name: "missing aud", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{name: "missing exp", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{name: "over max_token_size", token: signRS256(t, keyA, "a", valid(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", 9<<10) }))},
		{name: "truncated", token: good[:len(good)-12], malformed: true},
		{name: "signature removed", token: unsigned + ".", malformed: true},
		{name: "two parts", token: unsigned, malformed: true},
		{name: "header only", token: head, malformed: true},
		{name: "garbage base64", token: "eyJ!!!.eyJ***.$$$", malformed: true},
		{name: "base64 that is not JSON", token: "Zm9vYmFy.YmF6cXV4.c2lnbmF0dXJl", malformed: true},
		{name: "payload swapped into a real signature", token: head + "." + b64.EncodeToString([]byte(`{"iss":"`+testIssuer+`","aud":"`+testAudience+`","sub":"admin","exp":9999999999}`)) + good[strings.LastIndex(good, "."):]},
		{name: "signed by a key not in the key set", token: signRS256(t, stranger, "a", valid())},
		// The hardening keys of the strict authenticator.
		{name: "typ JWT where at+jwt is required (an ID token)", path: "/strict", token: signRS256(t, keyA, "a", valid())},
		{name: "azp not in client_ids", path: "/strict", token: atJWT(valid(func(c jwt.MapClaims) { c["azp"] = "other-client" }))},
		{name: "lifetime over max_lifetime", path: "/strict", token: atJWT(valid(func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(3 * time.Hour).Unix()
		}))},
		{name: "required claim missing", path: "/strict", token: atJWT(valid(func(c jwt.MapClaims) { delete(c, "jti") }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := cmpOr(tt.path, "/orders/1")
			before := up.hits.Load()
			a := send(t, nil, "GET", g.URL(path), "Authorization", "Bearer "+tt.token)
			want := unauthenticated
			if tt.malformed && a.status == http.StatusBadRequest {
				want = badCredentialRequest
			}
			checkRefused(t, a, want, up, before, tt.token)
		})
	}

	if hits := attacker.hits.Load(); hits != 0 {
		t.Errorf("the attacker's server got %d requests, want 0: keys come only from the configured source", hits)
	}
	if extra := corpKeys.hits.Load() - fetches; extra > 1 {
		t.Errorf("the attack table made %d key set fetches, want at most 1 (unknown_kid_refresh)", extra)
	}
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// TestJWTKeyRotation: a key added to the JWKS is used at once (one
// refetch on the unknown kid); a key removed stops verifying once the set
// is fetched again, after a reload or a refresh_interval.
func TestJWTKeyRotation(t *testing.T) {
	keyA, keyB := rsaKey(t, 0), rsaKey(t, 1)
	jwkA, jwkB := rsaJWK("a", &keyA.PublicKey), rsaJWK("b", &keyB.PublicKey)
	keys := startKeyServer(t, jwkA)
	up := startUpstream(t, nil)
	cfg := func(refresh string) string {
		return authnSetup{
			upstream:       up.addr,
			authenticators: []string{jwtAuthenticator("corp", keys.url(), "refresh_interval: "+refresh)},
			routes:         []string{authRoute("r", "/orders/{id}", "[corp]")},
		}.yaml()
	}
	g := startGateway(t, cfg("1h"), nil)
	status := func(key *rsa.PrivateKey, kid string) int {
		t.Helper()
		return send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+signRS256(t, key, kid, claims("alice", "orders:read"))).status
	}

	tokA := signRS256(t, keyA, "a", claims("alice", "orders:read"))
	if a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tokA); a.status != 200 {
		t.Fatalf("token by key A = %d, want 200 (%s)", a.status, a.body)
	}

	// Key B appears: the first token that names it makes one refetch.
	fetches := keys.hits.Load()
	keys.setKeys(jwkA, jwkB)
	if got := status(keyB, "b"); got != 200 {
		t.Fatalf("token by the newly published key B = %d, want 200", got)
	}
	if got := keys.hits.Load() - fetches; got != 1 {
		t.Errorf("key set fetches for the new kid = %d, want 1", got)
	}

	// Key A is withdrawn; a reload that changes the authenticator fetches
	// the set again before it takes traffic.
	keys.setKeys(jwkB)
	g.reload(t, cfg("1s"))
	if got := g.metric(t, `bulwark_config_reloads_total{result="success"}`); got != 1 {
		t.Fatalf("successful reloads = %v, want 1\n%s", got, g.Logs())
	}
	if a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tokA); a.status != 401 {
		t.Errorf("the token by withdrawn key A (accepted before) = %d, want 401", a.status)
	}
	if got := status(keyA, "a"); got != 401 {
		t.Errorf("a new token by withdrawn key A = %d, want 401", got)
	}
	if got := status(keyB, "b"); got != 200 {
		t.Errorf("token by key B after the reload = %d, want 200", got)
	}

	// With refresh_interval 1s, the periodic fetch alone picks up A's
	// return (the unknown-kid refetch was just spent) and its removal.
	keys.setKeys(jwkA, jwkB)
	waitFor(t, 5*time.Second, "key A accepted again after a periodic refresh", func() bool { return status(keyA, "a") == 200 })
	keys.setKeys(jwkB)
	waitFor(t, 5*time.Second, "key A refused after a periodic refresh", func() bool { return status(keyA, "a") == 401 })
	if got := status(keyB, "b"); got != 200 {
		t.Errorf("token by key B at the end = %d, want 200", got)
	}
}

// TestJWTKeySetDownAfterStart: once loaded, the key set outlives its
// server: refreshes fail and are counted, tokens keep working.
func TestJWTKeySetDownAfterStart(t *testing.T) {
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	up := startUpstream(t, nil)
	g := startGateway(t, authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url(), "refresh_interval: 1s")},
		routes:         []string{authRoute("r", "/orders/{id}", "[corp]")},
	}.yaml(), nil)
	first := signRS256(t, key, "a", claims("alice", "orders:read"))
	if a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+first); a.status != 200 {
		t.Fatalf("token = %d, want 200 (%s)", a.status, a.body)
	}

	keys.srv.Close()
	failures := `bulwark_jwks_refresh_total{authenticator="corp",result="failure"}`
	waitFor(t, 5*time.Second, "a failed key set refresh counted", func() bool { return g.metric(t, failures) >= 1 })

	second := signRS256(t, key, "a", claims("bob", "orders:read")) // not in any token cache
	for name, tok := range map[string]string{"the token seen before": first, "a new token by the cached key": second} {
		if a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tok); a.status != 200 {
			t.Errorf("%s with the key server down = %d, want 200 (%s)", name, a.status, a.body)
		}
	}
	if code := g.readyStatus(t); code != 200 {
		t.Errorf("/readyz = %d with a loaded key set whose server went away, want 200", code)
	}
}

// TestJWTKeySetUnreachableFailsClosed: a key set that never loaded makes
// the gateway refuse tokens with 503 and stay not ready, until it loads.
func TestJWTKeySetUnreachableFailsClosed(t *testing.T) {
	key := rsaKey(t, 0)
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	ln.Close() // nothing listens here for now
	up := startUpstream(t, nil)
	g := startGatewayUnready(t, authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", "http://"+addr+"/jwks", "refresh_interval: 1s", "timeout: 1s")},
		routes:         []string{authRoute("r", "/orders/{id}", "[corp]")},
	}.yaml(), nil)
	tok := signRS256(t, key, "a", claims("alice", "orders:read"))

	for range 3 {
		if code := g.readyStatus(t); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d before the key set ever loaded, want 503", code)
		}
		before := up.hits.Load()
		a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tok)
		a.problem(t, http.StatusServiceUnavailable, "authentication-unavailable")
		if a.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		if hits := up.hits.Load() - before; hits != 0 {
			t.Errorf("upstream hits = %d while keys are unavailable, want 0", hits)
		}
		time.Sleep(200 * time.Millisecond)
	}

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on the key server's address: %v", err)
	}
	startKeyServerOn(t, ln2, rsaJWK("a", &key.PublicKey))
	g.waitReady(t)
	if a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tok); a.status != 200 {
		t.Errorf("token once the key set loaded = %d, want 200 (%s)", a.status, a.body)
	}
}

// TestJWTDiscovery: with discovery: true the key set comes from the
// jwks_uri of {issuer}/.well-known/openid-configuration, and a discovery
// document that names another issuer is not trusted (fail closed).
func TestJWTDiscovery(t *testing.T) {
	key := rsaKey(t, 0)
	up := startUpstream(t, nil)
	discovery := func(issuer string) string {
		return fmt.Sprintf("  oidc:\n    type: jwt\n    issuer: %q\n    discovery: true\n    audiences: [%s]\n    algorithms: [RS256]\n    refresh_interval: 1s",
			issuer, testAudience)
	}
	routes := []string{authRoute("r", "/orders/{id}", "[oidc]")}

	t.Run("honest provider", func(t *testing.T) {
		idp := startDiscoveryServer(t, "", rsaJWK("a", &key.PublicKey))
		g := startGateway(t, authnSetup{upstream: up.addr, authenticators: []string{discovery(idp.srv.URL)}, routes: routes}.yaml(), nil)
		tok := signRS256(t, key, "a", claims("alice", "orders:read", func(c jwt.MapClaims) { c["iss"] = idp.srv.URL }))
		if a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tok); a.status != http.StatusOK {
			t.Errorf("token of the discovered issuer = %d, want 200 (%s)", a.status, a.body)
		}
		if idp.jwks.Load() == 0 {
			t.Errorf("the key set named by jwks_uri was never fetched")
		}
		other := signRS256(t, key, "a", claims("alice", "orders:read")) // iss testIssuer
		before := up.hits.Load()
		checkRefused(t, send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+other), unauthenticated, up, before, other)
	})

	t.Run("document names another issuer", func(t *testing.T) {
		idp := startDiscoveryServer(t, "https://evil.test", rsaJWK("a", &key.PublicKey))
		g := startGatewayUnready(t, authnSetup{upstream: up.addr, authenticators: []string{discovery(idp.srv.URL)}, routes: routes}.yaml(), nil)
		tok := signRS256(t, key, "a", claims("alice", "orders:read", func(c jwt.MapClaims) { c["iss"] = idp.srv.URL }))
		time.Sleep(1500 * time.Millisecond) // time for the discovery fetch and a retry
		if code := g.readyStatus(t); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz = %d with a discovery document for another issuer, want 503", code)
		}
		before := up.hits.Load()
		checkRefused(t, send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tok),
			refusal{status: 503, slug: "authentication-unavailable"}, up, before, tok)
	})
}

func TestAPIKeyAuthn(t *testing.T) {
	good, expired, disabled, wrong := "bwk_"+randomSecret(t), "bwk_"+randomSecret(t), "bwk_"+randomSecret(t), "bwk_"+randomSecret(t)
	up := startUpstream(t, nil)
	g := startGateway(t, authnSetup{
		upstream:       up.addr,
		authenticators: []string{"  keys: { type: api_key, header: X-API-Key }"},
		top: fmt.Sprintf(`consumers:
  - id: acme
    plan: gold
    scopes: [orders:read]
    api_keys:
      - { id: k1, sha256: %q, expires: %s }
      - { id: k2, sha256: %q, expires: %s }
      - { id: k3, sha256: %q, disabled: true }`,
			sha256Hex(good), time.Now().AddDate(1, 0, 0).Format(time.DateOnly),
			sha256Hex(expired), time.Now().AddDate(0, 0, -2).Format(time.DateOnly),
			sha256Hex(disabled)),
		routes: []string{authRoute("r", "/orders/{id}", "[keys]", "require: { scopes: [orders:read] }")},
	}.yaml(), nil)

	t.Run("right key", func(t *testing.T) {
		a := send(t, nil, "GET", g.URL("/orders/1"), "X-API-Key", good, "X-Bulwark-Subject", "mallory")
		if a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		last, _ := up.lastRequest()
		if got := last.Header.Values("X-Bulwark-Subject"); !slices.Equal(got, []string{"acme"}) {
			t.Errorf("upstream X-Bulwark-Subject = %q, want [acme]", got)
		}
		if got := last.Header.Values("X-Api-Key"); len(got) != 0 {
			t.Errorf("upstream got the API key header (%d values), want it removed", len(got))
		}
	})
	t.Run("header name in lower case", func(t *testing.T) {
		if a := send(t, nil, "GET", g.URL("/orders/1"), "x-api-key", good); a.status != http.StatusOK {
			t.Errorf("status = %d, want 200 (%s)", a.status, a.body)
		}
	})

	unauth := refusal{status: 401, slug: "unauthenticated"}
	tests := []struct {
		name   string
		hdr    []string
		want   refusal
		secret string
	}{
		{name: "no key", want: refusal{status: 401, slug: "unauthenticated",
			challenge: []string{`ApiKey realm="bulwark", header="X-Api-Key"`}, lacks: []string{"error="}}},
		{name: "wrong key", hdr: []string{"X-API-Key", wrong}, want: unauth, secret: wrong},
		{name: "expired key", hdr: []string{"X-API-Key", expired}, want: unauth, secret: expired},
		{name: "disabled key", hdr: []string{"X-API-Key", disabled}, want: unauth, secret: disabled},
		{name: "the hash instead of the key", hdr: []string{"X-API-Key", sha256Hex(good)}, want: unauth},
		{name: "two keys", hdr: []string{"X-API-Key", good, "X-API-Key", good},
			want: refusal{status: 400, slug: "invalid-credential-request"}, secret: good},
		{name: "a good and a wrong key", hdr: []string{"X-API-Key", good, "X-API-Key", wrong},
			want: refusal{status: 400, slug: "invalid-credential-request"}, secret: good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			checkRefused(t, send(t, nil, "GET", g.URL("/orders/1"), tt.hdr...), tt.want, up, before, tt.secret)
		})
	}
}

func TestIntrospection(t *testing.T) {
	secret := randomSecret(t)
	active, other, inactive := "op_"+randomSecret(t), "op_"+randomSecret(t), "op_"+randomSecret(t)
	answer := func(sub string) map[string]any {
		return map[string]any{"active": true, "sub": sub, "scope": "orders:read orders:write",
			"client_id": "reports", "token_type": "access_token", "exp": time.Now().Add(10 * time.Minute).Unix()}
	}
	idp := startIntrospectionServer(t, "gw", secret, map[string]map[string]any{active: answer("svc-reporting"), other: answer("svc-other")})
	up := startUpstream(t, nil)
	g := startGateway(t, authnSetup{
		upstream: up.addr,
		authenticators: []string{fmt.Sprintf(`  opaque:
    type: introspection
    endpoint: %q
    client_id: gw
    client_secret: "${INTROSPECT_SECRET}"
    cache_ttl: 1m
    negative_cache_ttl: 10s`, idp.srv.URL+"/introspect")},
		routes: []string{authRoute("r", "/orders/{id}", "[opaque]", "require: { scopes: [orders:read] }")},
	}.yaml(), nil, "INTROSPECT_SECRET="+secret)

	t.Run("active", func(t *testing.T) {
		a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+active)
		if a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		if bad := idp.bad.Load(); bad != 0 {
			t.Errorf("the endpoint refused %d calls for their client authentication or form", bad)
		}
		last, _ := up.lastRequest()
		if got := last.Header.Get("X-Bulwark-Subject"); got != "svc-reporting" {
			t.Errorf("upstream X-Bulwark-Subject = %q, want svc-reporting", got)
		}
		if got := last.Header.Get("X-Bulwark-Scopes"); !sameWords(got, "orders:read orders:write") {
			t.Errorf("upstream X-Bulwark-Scopes = %q, want orders:read orders:write", got)
		}
	})
	t.Run("cached", func(t *testing.T) {
		calls := idp.hits.Load()
		if a := send(t, nil, "GET", g.URL("/orders/2"), "Authorization", "Bearer "+active); a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		if got := idp.hits.Load() - calls; got != 0 {
			t.Errorf("endpoint calls for a token answered a moment ago = %d, want 0 (cache_ttl 1m)", got)
		}
	})
	t.Run("inactive", func(t *testing.T) {
		before := up.hits.Load()
		checkRefused(t, send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+inactive), unauthenticated, up, before, inactive)
	})
	t.Run("endpoint down", func(t *testing.T) {
		idp.srv.Close()
		before := up.hits.Load()
		a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+other)
		checkRefused(t, a, refusal{status: 503, slug: "authentication-unavailable"}, up, before, other)
		if a.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		if a := send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+active); a.status != http.StatusOK {
			t.Errorf("a token with a cached active answer = %d while the endpoint is down, want 200 (%s)", a.status, a.body)
		}
	})
}

func TestMTLSAuthn(t *testing.T) {
	ca := newCA(t, "test CA")
	srv := ca.issue(t, "localhost", true)
	svcA, svcB := ca.issue(t, "svc-a", false), ca.issue(t, "svc-b", false)
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	up := startUpstream(t, nil)
	g := startGateway(t, authnSetup{
		upstream: up.addr,
		server:   []string{"tls: { cert_file: tls.crt, key_file: tls.key, client_ca_file: clients.pem, client_auth: request }"},
		authenticators: []string{
			`  certs: { type: mtls, identity: subject_cn, allow: [svc-a, "spiffe://example.org/*"] }`,
			jwtAuthenticator("corp", keys.url()),
		},
		routes: []string{
			authRoute("svc", "/svc", "[certs]"),
			authRoute("bound", "/bound", "[corp]"),
		},
	}.yaml(), map[string][]byte{"tls.crt": srv.certPEM, "tls.key": srv.keyPEM, "clients.pem": ca.pem})

	client := func(l *leaf) *http.Client {
		c := httpsClient(ca.pool(), func(c *tls.Config) {
			if l != nil {
				cert := l.tlsCert(t)
				c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
			}
		})
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	withA, withB, without := client(svcA), client(svcB), client(nil)
	bound := signRS256(t, key, "a", claims("alice", "orders:read", func(c jwt.MapClaims) {
		c["cnf"] = map[string]any{"x5t#S256": certThumbprint(svcA.cert)}
	}))

	t.Run("allowed certificate", func(t *testing.T) {
		a := send(t, withA, "GET", g.URL("/svc"), "X-Bulwark-Subject", "mallory")
		if a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		last, _ := up.lastRequest()
		if got := last.Header.Values("X-Bulwark-Subject"); !slices.Equal(got, []string{"svc-a"}) {
			t.Errorf("upstream X-Bulwark-Subject = %q, want [svc-a]", got)
		}
	})
	t.Run("certificate-bound token with its certificate", func(t *testing.T) {
		if a := send(t, withA, "GET", g.URL("/bound"), "Authorization", "Bearer "+bound); a.status != http.StatusOK {
			t.Errorf("status = %d, want 200 (%s)", a.status, a.body)
		}
	})

	tests := []struct {
		name   string
		client *http.Client
		path   string
		hdr    []string
		secret string
	}{
		{name: "certificate not allowed", client: withB, path: "/svc"},
		{name: "no certificate", client: without, path: "/svc"},
		{name: "certificate-bound token with another certificate", client: withB, path: "/bound",
			hdr: []string{"Authorization", "Bearer " + bound}, secret: bound},
		{name: "certificate-bound token without a certificate", client: without, path: "/bound",
			hdr: []string{"Authorization", "Bearer " + bound}, secret: bound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			checkRefused(t, send(t, tt.client, "GET", g.URL(tt.path), tt.hdr...), refusal{status: 401, slug: "unauthenticated"}, up, before, tt.secret)
		})
	}
}

func TestDPoP(t *testing.T) {
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	up := startUpstream(t, nil)
	g := startGateway(t, authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url(), "dpop: optional")},
		routes: []string{
			authRoute("dpop", "/dpop", "[corp]"),
			authRoute("required", "/required", "[corp]", "authn: { dpop: required }"),
		},
	}.yaml(), nil)

	holder, thief := newKey(t), newKey(t)
	bound := signRS256(t, key, "a", claims("alice", "orders:read", func(c jwt.MapClaims) {
		c["cnf"] = map[string]any{"jkt": jwkThumbprint(t, &holder.PublicKey)}
	}))
	plain := signRS256(t, key, "a", claims("bob", "orders:read"))
	htu := g.URL("/dpop")
	now := time.Now()
	proof := func(k *ecdsa.PrivateKey, htm, htu, token string, iat time.Time) string {
		return dpopProof(t, k, htm, htu, token, iat)
	}

	first := proof(holder, "GET", htu, bound, now)
	t.Run("valid proof", func(t *testing.T) {
		before := up.hits.Load()
		if a := send(t, nil, "GET", htu, "Authorization", "DPoP "+bound, "DPoP", first); a.status != http.StatusOK {
			t.Fatalf("status = %d, want 200 (%s)", a.status, a.body)
		}
		if hits := up.hits.Load() - before; hits != 1 {
			t.Errorf("upstream hits = %d, want 1", hits)
		}
	})
	t.Run("valid proof on the route that requires DPoP", func(t *testing.T) {
		u := g.URL("/required")
		if a := send(t, nil, "GET", u, "Authorization", "DPoP "+bound, "DPoP", proof(holder, "GET", u, bound, now)); a.status != http.StatusOK {
			t.Errorf("status = %d, want 200 (%s)", a.status, a.body)
		}
	})
	t.Run("unbound bearer token where DPoP is optional", func(t *testing.T) {
		if a := send(t, nil, "GET", htu, "Authorization", "Bearer "+plain); a.status != http.StatusOK {
			t.Errorf("status = %d, want 200 (%s)", a.status, a.body)
		}
	})

	proofError := refusal{status: 401, slug: "unauthenticated", challenge: []string{`error="invalid_dpop_proof"`}}
	anyError := refusal{status: 401, slug: "unauthenticated", challenge: []string{`error="`}}
	tests := []struct {
		name string
		url  string
		hdr  []string
		want refusal
	}{
		{name: "replayed proof", url: htu, hdr: []string{"Authorization", "DPoP " + bound, "DPoP", first}, want: proofError},
		{name: "proof for another method", url: htu,
			hdr: []string{"Authorization", "DPoP " + bound, "DPoP", proof(holder, "POST", htu, bound, now)}, want: proofError},
		{name: "proof for another URL", url: htu,
			hdr: []string{"Authorization", "DPoP " + bound, "DPoP", proof(holder, "GET", g.URL("/elsewhere"), bound, now)}, want: proofError},
		{name: "proof 10 minutes old", url: htu,
			hdr: []string{"Authorization", "DPoP " + bound, "DPoP", proof(holder, "GET", htu, bound, now.Add(-10*time.Minute))}, want: proofError},
		{name: "proof by another key than cnf.jkt", url: htu,
			hdr: []string{"Authorization", "DPoP " + bound, "DPoP", proof(thief, "GET", htu, bound, now)}, want: proofError},
		{name: "proof for another token", url: htu,
			hdr: []string{"Authorization", "DPoP " + bound, "DPoP", proof(holder, "GET", htu, plain, now)}, want: proofError},
		{name: "two proofs", url: htu,
			hdr:  []string{"Authorization", "DPoP " + bound, "DPoP", proof(holder, "GET", htu, bound, now), "DPoP", proof(holder, "GET", htu, bound, now)},
			want: proofError},
		{name: "DPoP scheme without a proof", url: htu, hdr: []string{"Authorization", "DPoP " + bound}, want: proofError},
		{name: "bound token as a bearer token", url: htu, hdr: []string{"Authorization", "Bearer " + bound}, want: anyError},
		{name: "bound token as a bearer token with a proof", url: htu,
			hdr: []string{"Authorization", "Bearer " + bound, "DPoP", proof(holder, "GET", htu, bound, now)}, want: anyError},
		{name: "unbound bearer token where DPoP is required", url: g.URL("/required"),
			hdr: []string{"Authorization", "Bearer " + plain}, want: anyError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.hits.Load()
			checkRefused(t, send(t, nil, "GET", tt.url, tt.hdr...), tt.want, up, before, bound)
		})
	}
}

func TestRevocation(t *testing.T) {
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	up := startUpstream(t, nil)
	revokedID := "5f2b7c1e-4d8a-4a3f-9e2b-7c1d4a6e0b9f"
	byJTI := signRS256(t, key, "a", claims("alice", "orders:read", func(c jwt.MapClaims) { c["jti"] = revokedID }))
	bySub := signRS256(t, key, "a", claims("mallory", "orders:read"))
	other := signRS256(t, key, "a", claims("carol", "orders:read"))
	otherJTI := mustClaims(t, other)["jti"].(string)
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url(), "revocation_file: revoked.txt")},
		routes:         []string{authRoute("r", "/orders/{id}", "[corp]")},
	}.yaml()
	g := startGateway(t, cfg, map[string][]byte{
		"revoked.txt": []byte("# incident 42\njti " + revokedID + "\nsub mallory\n"),
	})
	status := func(tok string) int {
		t.Helper()
		return send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tok).status
	}

	if got := status(other); got != 200 {
		t.Fatalf("a token not listed = %d, want 200", got)
	}
	for name, tok := range map[string]string{"revoked jti": byJTI, "revoked sub": bySub} {
		t.Run(name, func(t *testing.T) {
			before := up.hits.Load()
			checkRefused(t, send(t, nil, "GET", g.URL("/orders/1"), "Authorization", "Bearer "+tok), unauthenticated, up, before, tok)
		})
	}

	// Now the other token is revoked instead (it is in the verified-token
	// cache: revocation is checked after the cache).
	writeFile(t, filepath.Join(g.dir, "revoked.txt"), []byte("jti "+otherJTI+"\n"))
	g.reload(t, cfg)
	if got := g.metric(t, `bulwark_config_reloads_total{result="success"}`); got != 1 {
		t.Fatalf("successful reloads = %v, want 1\n%s", got, g.Logs())
	}
	for name, tok := range map[string]string{"jti no longer revoked": byJTI, "sub no longer revoked": bySub} {
		if got := status(tok); got != 200 {
			t.Errorf("%s: status = %d after the reload, want 200", name, got)
		}
	}
	if got := status(other); got != 401 {
		t.Errorf("a cached token revoked by the reload = %d, want 401", got)
	}
}

// mustClaims decodes a token's claims without verifying it.
func mustClaims(t testing.TB, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHashKey(t *testing.T) {
	t.Run("stdin", func(t *testing.T) {
		stdout, stderr, code := runCLIStdin(t, "key", "hash-key")
		if code != 0 {
			t.Fatalf("exit code = %d, want 0 (%s)", code, stderr)
		}
		if want := sha256Hex("key") + "\n"; stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
	})
	t.Run("generate", func(t *testing.T) {
		seen := map[string]bool{}
		for range 2 {
			stdout, stderr, code := runCLIStdin(t, "", "hash-key", "--generate")
			if code != 0 {
				t.Fatalf("exit code = %d, want 0 (%s)", code, stderr)
			}
			fields := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
				name, value, _ := strings.Cut(line, ":")
				fields[strings.TrimSpace(name)] = strings.TrimSpace(value)
			}
			key, hash := fields["key"], fields["sha256"]
			if key == "" || hash == "" {
				t.Fatalf("output lacks key: or sha256: lines:\n%s", stdout)
			}
			if hash != sha256Hex(key) {
				t.Errorf("sha256 %s is not the SHA-256 of the printed key", hash)
			}
			if seen[key] {
				t.Errorf("--generate printed the same key twice")
			}
			seen[key] = true
		}
	})
	t.Run("empty stdin", func(t *testing.T) {
		stdout, _, code := runCLIStdin(t, "", "hash-key")
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
	})
}

// TestAuthnSecretsStayOut drives every authenticator with good and bad
// credentials at debug level, and asserts that no token, API key, client
// secret or HMAC secret reaches the log or /metrics.
func TestAuthnSecretsStayOut(t *testing.T) {
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	hmacSecret, clientSecret := randomSecret(t)+randomSecret(t), randomSecret(t)
	activeOpaque, inactiveOpaque := "op_"+randomSecret(t), "op_"+randomSecret(t)
	idp := startIntrospectionServer(t, "gw", clientSecret, map[string]map[string]any{activeOpaque: {
		"active": true, "sub": "svc", "scope": "orders:read", "exp": time.Now().Add(10 * time.Minute).Unix()}})
	apiKey, wrongKey := "bwk_"+randomSecret(t), "bwk_"+randomSecret(t)
	up := startUpstream(t, nil)
	g := startGateway(t, authnSetup{
		upstream: up.addr,
		authenticators: []string{
			jwtAuthenticator("corp", keys.url()),
			fmt.Sprintf("  hmac:\n    type: jwt\n    issuer: %s\n    audiences: [%s]\n    algorithms: [HS256]\n    secret: \"${HMAC_SECRET}\"", testIssuer, testAudience),
			fmt.Sprintf("  opaque: { type: introspection, endpoint: %q, client_id: gw, client_secret: \"${INTROSPECT_SECRET}\" }", idp.srv.URL+"/introspect"),
			"  keys: { type: api_key, header: X-API-Key }",
		},
		top: fmt.Sprintf("consumers:\n  - { id: acme, scopes: [orders:read], api_keys: [ { id: k1, sha256: %q } ] }", sha256Hex(apiKey)),
		routes: []string{
			authRoute("jwt", "/jwt", "[corp]"),
			authRoute("hmac", "/hmac", "[hmac]"),
			authRoute("opaque", "/opaque", "[opaque]"),
			authRoute("key", "/key", "[keys]"),
			authRoute("watch", "/watch", "[corp, keys]", "authn: { mode: report }"),
		},
	}.yaml(), nil, "HMAC_SECRET="+hmacSecret, "INTROSPECT_SECRET="+clientSecret)

	goodJWT := signRS256(t, key, "a", claims("alice", "orders:read"))
	forgedJWT := signRS256(t, rsaKey(t, 1), "a", claims("alice", "orders:read"))
	goodHMAC := sign(t, jwt.SigningMethodHS256, []byte(hmacSecret), nil, claims("alice", "orders:read"))
	wrongHMAC := sign(t, jwt.SigningMethodHS256, []byte(randomSecret(t)+randomSecret(t)), nil, claims("alice", "orders:read"))
	secrets := map[string]string{
		"valid JWT": goodJWT, "forged JWT": forgedJWT, "valid HMAC JWT": goodHMAC, "wrong HMAC JWT": wrongHMAC,
		"HMAC secret": hmacSecret, "introspection client secret": clientSecret,
		"active opaque token": activeOpaque, "inactive opaque token": inactiveOpaque,
		"API key": apiKey, "wrong API key": wrongKey,
	}
	for _, tok := range []string{goodJWT, forgedJWT, goodHMAC, wrongHMAC} {
		secrets["signature of "+tok[:12]] = tok[strings.LastIndex(tok, ".")+1:]
	}

	requests := []struct {
		path string
		hdr  []string
		want int
	}{
		{path: "/jwt", hdr: []string{"Authorization", "Bearer " + goodJWT}, want: 200},
		{path: "/jwt", hdr: []string{"Authorization", "Bearer " + forgedJWT}, want: 401},
		{path: "/jwt?access_token=" + goodJWT, want: 400},
		{path: "/jwt", hdr: []string{"Authorization", "Bearer " + goodJWT, "Authorization", "Bearer " + forgedJWT}, want: 400},
		{path: "/hmac", hdr: []string{"Authorization", "Bearer " + goodHMAC}, want: 200},
		{path: "/hmac", hdr: []string{"Authorization", "Bearer " + wrongHMAC}, want: 401},
		{path: "/opaque", hdr: []string{"Authorization", "Bearer " + activeOpaque}, want: 200},
		{path: "/opaque", hdr: []string{"Authorization", "Bearer " + inactiveOpaque}, want: 401},
		{path: "/key", hdr: []string{"X-API-Key", apiKey}, want: 200},
		{path: "/key", hdr: []string{"X-API-Key", wrongKey}, want: 401},
		{path: "/key", hdr: []string{"X-API-Key", apiKey, "X-API-Key", wrongKey}, want: 400},
		{path: "/watch", hdr: []string{"Authorization", "Bearer " + forgedJWT}, want: 200},
		{path: "/watch", hdr: []string{"X-API-Key", wrongKey}, want: 200},
	}
	for _, r := range requests {
		if a := send(t, nil, "GET", g.URL(r.path), r.hdr...); a.status != r.want {
			t.Errorf("GET %s = %d, want %d (%s)", r.path, a.status, r.want, a.body)
		}
	}

	logs, metrics := g.Logs(), scrape(t, g)
	for name, value := range secrets {
		if strings.Contains(logs, value) {
			t.Errorf("the %s appears in the gateway log", name)
		}
		if strings.Contains(metrics, value) {
			t.Errorf("the %s appears in /metrics", name)
		}
	}
	// The log did record these requests, so the checks above cannot pass
	// on a silent log.
	for _, want := range []string{`"msg":"would deny"`, `"route":"watch"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not contain %s", want)
		}
	}
}
