package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/bulwark-gateway/bulwark/internal/cache"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// jwtRawToken assembles a token from a header, claims and raw signature
// bytes, for forgeries no signing library would produce.
func jwtRawToken(t testing.TB, header map[string]any, claims jwt.MapClaims, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// jwtSelfSigned returns a self-signed certificate (DER) for key.
func jwtSelfSigned(t testing.TB, key *jwtTestKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.public(), key.priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestJWTAttacks runs known JWT attacks against a JWKS-backed
// authenticator; each must be refused with its reason, and nothing the
// token names may be fetched.
func TestJWTAttacks(t *testing.T) {
	jwtNoLeaks(t)
	rsaKey := newJWTTestKey(t, "rsa-1", "RS256", 0)
	ecKey := newJWTTestKey(t, "ec-1", "ES256", 0)
	edKey := newJWTTestKey(t, "ed-1", "EdDSA", 0)
	srv := newJWKSTestServer(t, rsaKey, ecKey, edKey)

	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(attacker.Close)
	evil := newJWTTestKey(t, "evil-1", "RS256", 1) // never in the JWKS
	evilAsLegit := *evil
	evilAsLegit.kid = rsaKey.kid
	evilJWK := evil.jwk(t)
	evilCert := base64.StdEncoding.EncodeToString(jwtSelfSigned(t, evil))

	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey.public())
	if err != nil {
		t.Fatal(err)
	}
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	confusion := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtTestClaims(nil))
	confusion.Header["kid"] = rsaKey.kid
	confused, err := confusion.SignedString(rsaPubPEM)
	if err != nil {
		t.Fatal(err)
	}
	valid := rsaKey.sign(t, jwtTestClaims(nil), nil)
	now := time.Now()

	deps, _ := jwtTestDeps(nil)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) { c.JWKSURL = srv.jwksURL() }), deps)
	jwtWaitReady(t, a)

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "alg none", reason: "bad_signature",
			token: jwtRawToken(t, map[string]any{"alg": "none", "kid": rsaKey.kid}, jwtTestClaims(nil), nil)},
		{name: "alg None", reason: "bad_signature",
			token: jwtRawToken(t, map[string]any{"alg": "None", "kid": rsaKey.kid}, jwtTestClaims(nil), nil)},
		{name: "alg NONE", reason: "bad_signature",
			token: jwtRawToken(t, map[string]any{"alg": "NONE", "kid": rsaKey.kid}, jwtTestClaims(nil), nil)},
		{name: "alg none with a signature part", reason: "bad_signature",
			token: strings.Join(append(strings.Split(jwtRawToken(t, map[string]any{"alg": "none"}, jwtTestClaims(nil), nil), ".")[:2], strings.Split(valid, ".")[2]), ".")},
		{name: "HS256 signed with the RSA public key (key confusion)", reason: "bad_signature", token: confused},
		{name: "unknown kid", reason: "unknown_key", token: evil.sign(t, jwtTestClaims(nil), nil)},
		{name: "kid path traversal", reason: "unknown_key",
			token: rsaKey.sign(t, jwtTestClaims(nil), map[string]any{"kid": "../../etc/passwd"})},
		{name: "kid SQL injection", reason: "unknown_key",
			token: rsaKey.sign(t, jwtTestClaims(nil), map[string]any{"kid": "' OR 1=1 --"})},
		{name: "kid command injection", reason: "unknown_key",
			token: rsaKey.sign(t, jwtTestClaims(nil), map[string]any{"kid": "$(id)"})},
		{name: "jku to the attacker", reason: "unknown_key",
			token: evil.sign(t, jwtTestClaims(nil), map[string]any{"jku": attacker.URL + "/jwks"})},
		{name: "jku to the attacker, legit kid", reason: "bad_signature",
			token: evilAsLegit.sign(t, jwtTestClaims(nil), map[string]any{"jku": attacker.URL + "/jwks"})},
		{name: "x5u to the attacker", reason: "bad_signature",
			token: evilAsLegit.sign(t, jwtTestClaims(nil), map[string]any{"x5u": attacker.URL + "/cert.pem"})},
		{name: "embedded jwk, no kid", reason: "unknown_key",
			token: evil.sign(t, jwtTestClaims(nil), map[string]any{"kid": nil, "jwk": evilJWK})},
		{name: "embedded jwk, legit kid", reason: "bad_signature",
			token: evilAsLegit.sign(t, jwtTestClaims(nil), map[string]any{"jwk": evilJWK})},
		{name: "x5c of the attacker", reason: "bad_signature",
			token: evilAsLegit.sign(t, jwtTestClaims(nil), map[string]any{"x5c": []string{evilCert}, "x5u": attacker.URL})},
		{name: "ES256 r = s = 0 (CVE-2022-21449)", reason: "bad_signature",
			token: jwtRawToken(t, map[string]any{"alg": "ES256", "kid": ecKey.kid}, jwtTestClaims(nil), make([]byte, 64))},
		{name: "ES256 signature by another EC key", reason: "bad_signature",
			token: func() string { k := newJWTTestKey(t, ecKey.kid, "ES256", 0); return k.sign(t, jwtTestClaims(nil), nil) }()},
		{name: "EdDSA signature by another key", reason: "bad_signature",
			token: func() string { k := newJWTTestKey(t, edKey.kid, "EdDSA", 0); return k.sign(t, jwtTestClaims(nil), nil) }()},
		{name: "RSA key used under the EC kid", reason: "bad_signature",
			token: func() string { k := *rsaKey; k.kid = ecKey.kid; return k.sign(t, jwtTestClaims(nil), nil) }()},
		{name: "expired", reason: "expired",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()}), nil)},
		{name: "nbf in the future", reason: "not_yet_valid",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"nbf": now.Add(time.Hour).Unix()}), nil)},
		{name: "iat far in the future", reason: "issued_in_future",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"iat": now.Add(24 * time.Hour).Unix(), "exp": now.Add(25 * time.Hour).Unix()}), nil)},
		{name: "wrong iss", reason: "bad_issuer",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"iss": "https://evil.example"}), nil)},
		{name: "wrong aud", reason: "bad_audience",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"aud": "billing-api"}), nil)},
		{name: "missing exp", reason: "missing_claim",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"exp": nil}), nil)},
		{name: "missing aud", reason: "missing_claim",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"aud": nil}), nil)},
		{name: "exp not a number", reason: "malformed",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"exp": "tomorrow"}), nil)},
		{name: "over the size cap", reason: "too_large",
			token: rsaKey.sign(t, jwtTestClaims(map[string]any{"pad": strings.Repeat("x", 9<<10)}), nil)},
		{name: "truncated", reason: "malformed", token: valid[:strings.LastIndexByte(valid, '.')]},
		{name: "truncated signature", reason: "bad_signature", token: valid[:len(valid)-10]},
		{name: "garbage base64", reason: "malformed", token: "!!!." + strings.Split(valid, ".")[1] + ".###"},
		{name: "not a JWT", reason: "malformed", token: "opaque-token-0123456789"},
		{name: "payload not JSON", reason: "malformed",
			token: strings.Split(valid, ".")[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + strings.Split(valid, ".")[2]},
		{name: "valid token signed by a key not in the JWKS", reason: "bad_signature",
			token: evilAsLegit.sign(t, jwtTestClaims(nil), nil)},
		{name: "payload swapped under a valid signature", reason: "bad_signature",
			token: strings.Split(valid, ".")[0] + "." + strings.Split(rsaKey.sign(t, jwtTestClaims(map[string]any{"sub": "admin"}), nil), ".")[1] + "." + strings.Split(valid, ".")[2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := jwtCheck(a, tt.token)
			if p != nil {
				t.Errorf("Authenticate() principal = %+v, want nil", p)
			}
			jwtWantFailure(t, err, http.StatusUnauthorized, tt.reason)
			var f *Failure
			errors.As(err, &f)
			if f.Code != "invalid_token" {
				t.Errorf("Code = %q, want invalid_token", f.Code)
			}
			for _, leak := range []string{rsaKey.kid, "kid", "key", "signature", "RS256", "ES256", "alg", attacker.URL} {
				if strings.Contains(f.Description, leak) {
					t.Errorf("Description %q names %q", f.Description, leak)
				}
			}
		})
	}
	jwtWantOK(t, a, valid, "the untampered token")
	if got := attackerHits.Load(); got != 0 {
		t.Errorf("attacker server hits = %d, want 0", got)
	}
	if got := srv.hits.Load(); got > 2 {
		t.Errorf("JWKS hits = %d, want at most 2 (start + one unknown-kid refresh)", got)
	}
}

// jwtWriteFile writes data to name in a temp dir and returns the path.
func jwtWriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func jwtPublicPEM(t testing.TB, k *jwtTestKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func jwtJWKSet(t testing.TB, keys ...*jwtTestKey) []byte {
	t.Helper()
	set := jwkset.JWKSMarshal{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk(t))
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJWTKeyFile verifies tokens with static keys from PEM and JWK files.
func TestJWTKeyFile(t *testing.T) {
	rsaKey := newJWTTestKey(t, "rsa-file", "RS256", 2)
	ecKey := newJWTTestKey(t, "ec-file", "ES256", 0)
	edKey := newJWTTestKey(t, "ed-file", "EdDSA", 0)
	ecCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: jwtSelfSigned(t, ecKey)})
	caCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: jwtSelfSigned(t, edKey)})
	ecJWK, err := json.Marshal(ecKey.jwk(t))
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaKey.public().(*rsa.PublicKey))})
	tests := []struct {
		name     string
		file     []byte
		key      *jwtTestKey
		noKIDOK  bool // a token without kid is accepted
		otherKID bool // a token with a kid the file lacks is accepted
	}{
		{name: "PEM RSA public key", file: jwtPublicPEM(t, rsaKey), key: rsaKey, noKIDOK: true, otherKID: true},
		{name: "PEM PKCS#1 RSA public key", file: pkcs1, key: rsaKey, noKIDOK: true, otherKID: true},
		{name: "PEM EC certificate chain", file: append(ecCert, caCert...), key: ecKey, noKIDOK: true, otherKID: true},
		{name: "PEM Ed25519 public key", file: jwtPublicPEM(t, edKey), key: edKey, noKIDOK: true, otherKID: true},
		{name: "JWK", file: ecJWK, key: ecKey, noKIDOK: true},
		{name: "JWK Set of one", file: jwtJWKSet(t, edKey), key: edKey, noKIDOK: true},
		{name: "JWK Set of three", file: jwtJWKSet(t, rsaKey, ecKey, edKey), key: ecKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := jwtWriteFile(t, "keys", tt.file)
			a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) { c.KeyFile = config.Path(path) }), Deps{})
			if a.Ready() != "" {
				t.Errorf("Ready() = %q, want \"\"", a.Ready())
			}
			if _, ok := a.KeySetAge(); !ok {
				t.Error("KeySetAge() ok = false for static keys")
			}
			jwtWantOK(t, a, tt.key.sign(t, jwtTestClaims(nil), nil), "token with kid")

			_, err := jwtCheck(a, tt.key.sign(t, jwtTestClaims(nil), map[string]any{"kid": nil}))
			if tt.noKIDOK != (err == nil) {
				t.Errorf("token without kid: error = %v, want accepted = %v", err, tt.noKIDOK)
			}
			if !tt.noKIDOK {
				jwtWantFailure(t, err, http.StatusUnauthorized, "unknown_key")
			}

			_, err = jwtCheck(a, tt.key.sign(t, jwtTestClaims(nil), map[string]any{"kid": "other"}))
			if tt.otherKID != (err == nil) {
				t.Errorf("token with another kid: error = %v, want accepted = %v", err, tt.otherKID)
			}

			forger := newJWTTestKey(t, tt.key.kid, tt.key.alg, 3)
			_, err = jwtCheck(a, forger.sign(t, jwtTestClaims(nil), nil))
			jwtWantFailure(t, err, http.StatusUnauthorized, "bad_signature")
		})
	}
}

// TestJWTConstructorErrors: a config or key file that cannot be built is
// an error from newJWT, never a panic or an authenticator that fails open.
func TestJWTConstructorErrors(t *testing.T) {
	ecKey := newJWTTestKey(t, "ec", "ES256", 0)
	ecPriv, err := x509.MarshalPKCS8PrivateKey(ecKey.priv)
	if err != nil {
		t.Fatal(err)
	}
	privJWK, err := jwkset.NewJWKFromKey(ecKey.priv, jwkset.JWKOptions{Marshal: jwkset.JWKMarshalOptions{Private: true}})
	if err != nil {
		t.Fatal(err)
	}
	privJWKJSON, err := json.Marshal(privJWK.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	file := func(data []byte) func(*config.Authenticator) {
		path := jwtWriteFile(t, "key", data)
		return func(c *config.Authenticator) { c.KeyFile = config.Path(path) }
	}
	tests := []struct {
		name string
		mod  func(*config.Authenticator)
	}{
		{name: "missing key file", mod: func(c *config.Authenticator) { c.KeyFile = config.Path(filepath.Join(t.TempDir(), "nope.pem")) }},
		{name: "garbage key file", mod: file([]byte("not a key"))},
		{name: "broken PEM", mod: file(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))},
		{name: "PEM private key", mod: file(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPriv}))},
		{name: "two PEM public keys", mod: file(append(jwtPublicPEM(t, ecKey), jwtPublicPEM(t, ecKey)...))},
		{name: "JWK with private key", mod: file(privJWKJSON)},
		{name: "empty JWK Set", mod: file([]byte(`{"keys":[]}`))},
		{name: "JWK Set of encryption keys", mod: func(c *config.Authenticator) {
			enc := *ecKey
			enc.use = jwkset.UseEnc
			file(jwtJWKSet(t, &enc))(c)
		}},
		{name: "JWK of unknown type", mod: file([]byte(`{"kty":"XYZ","kid":"x"}`))},
		{name: "broken JSON", mod: file([]byte(`{"keys":[`))},
		{name: "symmetric JWK in key file", mod: file([]byte(`{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`))},
		{name: "EC key with only RS256", mod: func(c *config.Authenticator) {
			file(jwtPublicPEM(t, ecKey))(c)
			c.Algorithms = []string{"RS256"}
		}},
		{name: "alg none", mod: func(c *config.Authenticator) {
			file(jwtPublicPEM(t, ecKey))(c)
			c.Algorithms = []string{"ES256", "none"}
		}},
		{name: "HS256 with public keys", mod: func(c *config.Authenticator) {
			file(jwtPublicPEM(t, ecKey))(c)
			c.Algorithms = []string{"ES256", "HS256"}
		}},
		{name: "RS256 with a secret", mod: func(c *config.Authenticator) {
			c.Secret = config.Secret(strings.Repeat("s", 32))
			c.Algorithms = []string{"HS256", "RS256"}
		}},
		{name: "no key source", mod: func(*config.Authenticator) {}},
		{name: "two key sources", mod: func(c *config.Authenticator) {
			file(jwtPublicPEM(t, ecKey))(c)
			c.JWKSURL = "https://keys.example/jwks"
		}},
		{name: "no issuer", mod: func(c *config.Authenticator) { file(jwtPublicPEM(t, ecKey))(c); c.Issuer = "" }},
		{name: "no audience", mod: func(c *config.Authenticator) { file(jwtPublicPEM(t, ecKey))(c); c.Audiences = nil }},
		{name: "no algorithms", mod: func(c *config.Authenticator) { file(jwtPublicPEM(t, ecKey))(c); c.Algorithms = nil }},
		{name: "unknown algorithm", mod: func(c *config.Authenticator) { file(jwtPublicPEM(t, ecKey))(c); c.Algorithms = []string{"ES257"} }},
		{name: "http JWKS to a remote host", mod: func(c *config.Authenticator) { c.JWKSURL = "http://keys.example/jwks" }},
		{name: "zero refresh interval", mod: func(c *config.Authenticator) {
			c.JWKSURL = "https://keys.example/jwks"
			c.Refresh = 0
		}},
		{name: "zero unknown kid refresh", mod: func(c *config.Authenticator) {
			c.JWKSURL = "https://keys.example/jwks"
			c.MinRefresh = 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwtNoLeaks(t)
			a, err := newJWT(jwtTestName, jwtTestConfig(tt.mod), Deps{})
			if err == nil {
				a.Close()
				t.Fatal("newJWT() error = nil, want an error")
			}
			t.Logf("newJWT() error: %v", err)
			if a != nil {
				t.Errorf("newJWT() = %v, want nil with the error", a)
			}
		})
	}
}

// TestJWTSecret verifies HMAC tokens with the configured secret only.
func TestJWTSecret(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef-secret")
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
		c.Secret = config.Secret(secret)
		c.Algorithms = []string{"HS256", "HS512"}
	}), Deps{})
	hs := func(method jwt.SigningMethod, key []byte, header map[string]any) string {
		tok := jwt.NewWithClaims(method, jwtTestClaims(nil))
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey := newJWTTestKey(t, "r", "RS256", 0)
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "HS256", token: hs(jwt.SigningMethodHS256, secret, nil)},
		{name: "HS512 with a kid", token: hs(jwt.SigningMethodHS512, secret, map[string]any{"kid": "any"})},
		{name: "wrong secret", token: hs(jwt.SigningMethodHS256, []byte("0123456789abcdef0123456789abcdef-wrong!"), nil), reason: "bad_signature"},
		{name: "HS384 not configured", token: hs(jwt.SigningMethodHS384, secret, nil), reason: "bad_signature"},
		{name: "RS256", token: rsaKey.sign(t, jwtTestClaims(nil), nil), reason: "bad_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jwtCheck(a, tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Authenticate() = %v, want accepted", err)
				}
				return
			}
			jwtWantFailure(t, err, http.StatusUnauthorized, tt.reason)
		})
	}
}

// TestJWTHardening covers typ, client_ids, max_lifetime and
// required_claims.
func TestJWTHardening(t *testing.T) {
	key := newJWTTestKey(t, "h1", "ES256", 0)
	path := jwtWriteFile(t, "key.pem", jwtPublicPEM(t, key))
	now := time.Now()
	tests := []struct {
		name   string
		mod    func(*config.Authenticator)
		claims map[string]any
		header map[string]any
		reason string // "" = accepted
	}{
		{name: "typ at+jwt", mod: func(c *config.Authenticator) { c.Typ = "at+jwt" }, header: map[string]any{"typ": "at+jwt"}},
		{name: "typ application/at+jwt", mod: func(c *config.Authenticator) { c.Typ = "at+jwt" }, header: map[string]any{"typ": "application/at+jwt"}},
		{name: "typ AT+JWT", mod: func(c *config.Authenticator) { c.Typ = "application/at+jwt" }, header: map[string]any{"typ": "AT+JWT"}},
		{name: "typ JWT (an ID token)", mod: func(c *config.Authenticator) { c.Typ = "at+jwt" }, header: map[string]any{"typ": "JWT"}, reason: "bad_type"},
		{name: "typ missing", mod: func(c *config.Authenticator) { c.Typ = "at+jwt" }, header: map[string]any{"typ": nil}, reason: "bad_type"},
		{name: "typ with another prefix", mod: func(c *config.Authenticator) { c.Typ = "at+jwt" }, header: map[string]any{"typ": "text/at+jwt"}, reason: "bad_type"},
		{name: "azp allowed", mod: func(c *config.Authenticator) { c.ClientIDs = []string{"web-app"} }},
		{name: "client_id allowed", mod: func(c *config.Authenticator) { c.ClientIDs = []string{"cli"} },
			claims: map[string]any{"azp": nil, "client_id": "cli"}},
		{name: "azp not allowed", mod: func(c *config.Authenticator) { c.ClientIDs = []string{"cli"} }, reason: "bad_client"},
		{name: "no client", mod: func(c *config.Authenticator) { c.ClientIDs = []string{"web-app"} },
			claims: map[string]any{"azp": nil}, reason: "bad_client"},
		{name: "lifetime within max", mod: func(c *config.Authenticator) { c.MaxLifetime = config.Duration(time.Hour) },
			claims: map[string]any{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}},
		{name: "lifetime over max", mod: func(c *config.Authenticator) { c.MaxLifetime = config.Duration(time.Hour) },
			claims: map[string]any{"iat": now.Unix(), "exp": now.Add(time.Hour + time.Second).Unix()}, reason: "too_long_lived"},
		{name: "lifetime without iat", mod: func(c *config.Authenticator) { c.MaxLifetime = config.Duration(time.Hour) },
			claims: map[string]any{"iat": nil}, reason: "missing_claim"},
		{name: "required claims present", mod: func(c *config.Authenticator) { c.RequiredClaims = []string{"jti", "tenant"} },
			claims: map[string]any{"tenant": "acme"}},
		{name: "required claim missing", mod: func(c *config.Authenticator) { c.RequiredClaims = []string{"jti", "tenant"} },
			reason: "missing_claim"},
		{name: "leeway lets a just-expired token pass", mod: func(c *config.Authenticator) { c.Leeway = config.Duration(time.Minute) },
			claims: map[string]any{"exp": now.Add(-30 * time.Second).Unix()}},
		{name: "leeway lets an iat a little ahead pass", mod: func(c *config.Authenticator) { c.Leeway = config.Duration(time.Minute) },
			claims: map[string]any{"iat": now.Add(30 * time.Second).Unix()}},
		{name: "second audience accepted", mod: func(c *config.Authenticator) { c.Audiences = []string{"billing-api", jwtTestAudience} }},
		{name: "one of several token audiences", claims: map[string]any{"aud": []string{"billing-api", jwtTestAudience}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
				c.KeyFile = config.Path(path)
				if tt.mod != nil {
					tt.mod(c)
				}
			}), Deps{})
			_, err := jwtCheck(a, key.sign(t, jwtTestClaims(tt.claims), tt.header))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Authenticate() = %v, want accepted", err)
				}
				return
			}
			jwtWantFailure(t, err, http.StatusUnauthorized, tt.reason)
		})
	}
}

// TestJWTPrincipal checks what a verified token turns into.
func TestJWTPrincipal(t *testing.T) {
	key := newJWTTestKey(t, "p1", "EdDSA", 0)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
		c.KeyFile = config.Path(jwtWriteFile(t, "k.json", jwtJWKSet(t, key)))
		c.RolesClaim = "realm_access.roles"
	}), Deps{})
	exp := time.Now().Add(3 * time.Minute).Truncate(time.Second)
	p := jwtWantOK(t, a, key.sign(t, jwtTestClaims(map[string]any{
		"exp":          exp.Unix(),
		"jti":          "token-1",
		"scp":          []string{"admin"},
		"realm_access": map[string]any{"roles": []string{"ops"}},
		"cnf":          map[string]any{"jkt": "thumb"},
	}), nil), "token")
	checks := []struct {
		name      string
		got, want any
	}{
		{"Subject", p.Subject, "alice"},
		{"Issuer", p.Issuer, jwtTestIssuer},
		{"Consumer", p.Consumer, "web-app"},
		{"Scopes", strings.Join(p.Scopes, " "), "orders:read orders:write admin"},
		{"Roles", strings.Join(p.Roles, " "), "ops"},
		{"Method", p.Method, "jwt"},
		{"Authenticator", p.Authenticator, jwtTestName},
		{"KeyID", p.KeyID, "p1"},
		{"TokenID", p.TokenID, "token-1"},
		{"Expiry", p.Expiry.Unix(), exp.Unix()},
		{"Confirmation.JKT", p.Confirmation.JKT, "thumb"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if a.Challenge() != `Bearer realm="bulwark"` {
		t.Errorf("Challenge() = %q, want %q", a.Challenge(), `Bearer realm="bulwark"`)
	}
}

// TestJWTCredentialSources: the bearer token, else the opted-in cookie,
// else no credentials.
func TestJWTCredentialSources(t *testing.T) {
	key := newJWTTestKey(t, "c1", "ES256", 0)
	path := jwtWriteFile(t, "key.pem", jwtPublicPEM(t, key))
	good := key.sign(t, jwtTestClaims(nil), nil)
	req := func(cookie string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/orders", nil)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: "session", Value: cookie})
		}
		return r
	}
	tests := []struct {
		name   string
		cookie string // the authenticator's cookie name
		in     *Input
		want   string // "ok", "none" or a failure reason
	}{
		{name: "bearer", in: &Input{Token: good}, want: "ok"},
		{name: "no token", in: &Input{Request: req("")}, want: "none"},
		{name: "nil input", want: "none"},
		{name: "cookie not opted in", in: &Input{Request: req(good)}, want: "none"},
		{name: "cookie", cookie: "session", in: &Input{Request: req(good)}, want: "ok"},
		{name: "cookie absent", cookie: "session", in: &Input{Request: req("")}, want: "none"},
		{name: "bearer wins over cookie", cookie: "session", in: &Input{Token: good, Request: req("garbage")}, want: "ok"},
		{name: "bad cookie", cookie: "session", in: &Input{Request: req("garbage")}, want: "malformed"},
		{name: "huge cookie", cookie: "session", in: &Input{Request: req(strings.Repeat("a", 9<<10))}, want: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
				c.KeyFile = config.Path(path)
				c.CookieName = tt.cookie
			}), Deps{})
			p, err := a.Authenticate(context.Background(), tt.in)
			switch tt.want {
			case "ok":
				if err != nil || p == nil {
					t.Fatalf("Authenticate() = %v, %v, want a principal", p, err)
				}
			case "none":
				if !errors.Is(err, ErrNoCredentials) {
					t.Fatalf("Authenticate() error = %v, want ErrNoCredentials", err)
				}
			default:
				jwtWantFailure(t, err, http.StatusUnauthorized, tt.want)
			}
		})
	}
}

// jwtTestClock is a settable clock for the claim checks and the cache.
type jwtTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *jwtTestClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *jwtTestClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestJWTVerifiedCache: a cached token skips signature verification (it
// passes after its key left the JWKS, while a fresh token with that key
// does not), and an entry never outlives exp or cache_ttl.
func TestJWTVerifiedCache(t *testing.T) {
	jwtNoLeaks(t)
	key := newJWTTestKey(t, "k1", "ES256", 0)
	next := newJWTTestKey(t, "k2", "ES256", 0)
	srv := newJWKSTestServer(t, key, next)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
		c.JWKSURL = srv.jwksURL()
		c.CacheTTL = config.Duration(2 * time.Minute)
	}), Deps{})
	clock := &jwtTestClock{t: time.Now()}
	a.now, a.cache = clock.now, cache.New[*exchange.Principal](a.cfg.CacheSize, clock.now)
	jwtWaitReady(t, a)

	now := clock.now()
	long := key.sign(t, jwtTestClaims(map[string]any{"exp": now.Add(time.Hour).Unix()}), nil)
	short := key.sign(t, jwtTestClaims(map[string]any{"exp": now.Add(30 * time.Second).Unix()}), nil)
	first := jwtWantOK(t, a, long, "first check")
	jwtWantOK(t, a, short, "short-lived token")

	clock.advance(31 * time.Second) // past the short token's exp, within cache_ttl
	_, err := jwtCheck(a, short)
	jwtWantFailure(t, err, http.StatusUnauthorized, "expired")

	srv.setKeys(t, next) // key k1 leaves the JWKS
	jwtRefreshNow(t, a)
	_, err = jwtCheck(a, key.sign(t, jwtTestClaims(map[string]any{"iat": clock.now().Unix()}), nil))
	jwtWantFailure(t, err, http.StatusUnauthorized, "unknown_key")
	if again := jwtWantOK(t, a, long, "cached token"); again != first {
		t.Error("second check returned another principal, want the cached one")
	}

	clock.advance(90 * time.Second) // past cache_ttl: verified again, and k1 is gone
	_, err = jwtCheck(a, long)
	jwtWantFailure(t, err, http.StatusUnauthorized, "unknown_key")
}

// TestJWTCacheNotForFailures: refused tokens are not cached, and a token
// presented again after a refusal is checked again.
func TestJWTCacheNotForFailures(t *testing.T) {
	key := newJWTTestKey(t, "k1", "ES256", 0)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
		c.KeyFile = config.Path(jwtWriteFile(t, "k.pem", jwtPublicPEM(t, key)))
	}), Deps{})
	clock := &jwtTestClock{t: time.Now()}
	a.now, a.cache = clock.now, cache.New[*exchange.Principal](a.cfg.CacheSize, clock.now)
	token := key.sign(t, jwtTestClaims(map[string]any{"nbf": clock.now().Add(time.Minute).Unix()}), nil)
	_, err := jwtCheck(a, token)
	jwtWantFailure(t, err, http.StatusUnauthorized, "not_yet_valid")
	if n := a.cache.Len(); n != 0 {
		t.Errorf("cache entries after a refusal = %d, want 0", n)
	}
	clock.advance(2 * time.Minute)
	jwtWantOK(t, a, token, "once nbf passed")
	if n := a.cache.Len(); n != 1 {
		t.Errorf("cache entries after a success = %d, want 1", n)
	}
}

// TestJWTConcurrent verifies many tokens at once (run with -race).
func TestJWTConcurrent(t *testing.T) {
	jwtNoLeaks(t)
	keys := []*jwtTestKey{newJWTTestKey(t, "a", "RS256", 0), newJWTTestKey(t, "b", "ES256", 0), newJWTTestKey(t, "c", "EdDSA", 0)}
	srv := newJWKSTestServer(t, keys...)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
		c.JWKSURL = srv.jwksURL()
		c.CacheSize = 8 // evictions under load
	}), Deps{})
	jwtWaitReady(t, a)
	tokens := make([]string, 30)
	for i := range tokens {
		tokens[i] = keys[i%len(keys)].sign(t, jwtTestClaims(map[string]any{"sub": "user-" + string(rune('a'+i))}), nil)
	}
	var wg sync.WaitGroup
	subjects := make([][]string, 4)
	for g := range subjects {
		wg.Go(func() {
			for range 3 {
				for _, tok := range tokens {
					p, err := jwtCheck(a, tok)
					if err != nil {
						subjects[g] = append(subjects[g], "error: "+err.Error())
						continue
					}
					subjects[g] = append(subjects[g], p.Subject)
				}
			}
		})
	}
	wg.Wait()
	for g, got := range subjects {
		for i, s := range got {
			if want := "user-" + string(rune('a'+i%len(tokens))); s != want {
				t.Fatalf("goroutine %d check %d: subject %q, want %q", g, i, s, want)
			}
		}
	}
	if !slices.Equal(subjects[0], subjects[3]) {
		t.Error("goroutines saw different subjects")
	}
}
