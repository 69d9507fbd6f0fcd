package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const (
	dpopHTU    = "https://api.example.com/orders/1"
	dpopMethod = http.MethodGet
	dpopToken  = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl" // shape only
	dpopMaxAge = 60 * time.Second

	// Outcomes of verify, "" for an accepted proof.
	dpopAccepted  = ""
	dpopMissing   = "401 invalid_dpop_proof dpop_missing"
	dpopInvalid   = "401 invalid_dpop_proof dpop_invalid"
	dpopMismatch  = "401 invalid_dpop_proof dpop_key_mismatch"
	dpopReplayed  = "401 invalid_dpop_proof dpop_replayed"
	dpopStoreDown = "503 temporarily_unavailable dpop_replay_unavailable"
)

// dpopNow is the verifier's clock in these tests (whole seconds, as iat).
var dpopNow = time.Unix(1_760_000_000, 0)

// defaultDPoPAlgs is the config default of dpop_algorithms.
var defaultDPoPAlgs = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}

// dpopKeys are real keys generated once per test.
type dpopKeys struct {
	ec256, ec256b, ec384, ec521 *ecdsa.PrivateKey
	rsa2048, rsa1024            *rsa.PrivateKey
	ed                          ed25519.PrivateKey
}

func newDPoPKeys(t testing.TB) *dpopKeys {
	t.Helper()
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rs := func(bits int) *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKeys{
		ec256: ec(elliptic.P256()), ec256b: ec(elliptic.P256()), ec384: ec(elliptic.P384()), ec521: ec(elliptic.P521()),
		rsa2048: rs(2048), rsa1024: rs(1024), ed: ed,
	}
}

// dpopJWK returns key's JWK as a JSON object (private members only when
// private is set and key is a private key).
func dpopJWK(t testing.TB, key any, private bool) map[string]any {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Marshal: jwkset.JWKMarshalOptions{Private: private}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func dpopATH(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func dpopJTI(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// dpopEdit changes a proof's header and claims before it is signed.
type dpopEdit func(h map[string]any, c jwt.MapClaims)

// signProof returns a proof for dpopMethod and dpopHTU at dpopNow, bound to
// dpopToken, signed with key under alg, with key's public JWK in the
// header; edit (optional) changes it before signing.
func signProof(t testing.TB, alg string, key crypto.Signer, edit dpopEdit) string {
	t.Helper()
	return signProofWith(t, alg, key, key.Public(), edit)
}

// signProofWith is signProof with a signing key (any type golang-jwt takes)
// apart from the public key put in the header.
func signProofWith(t testing.TB, alg string, signKey any, pub crypto.PublicKey, edit dpopEdit) string {
	t.Helper()
	c := jwt.MapClaims{"jti": dpopJTI(t), "htm": dpopMethod, "htu": dpopHTU, "iat": dpopNow.Unix(), "ath": dpopATH(dpopToken)}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = dpopJWK(t, pub, false)
	if edit != nil {
		edit(tok.Header, c)
	}
	s, err := tok.SignedString(signKey)
	if err != nil {
		t.Fatalf("sign %s proof: %v", alg, err)
	}
	return s
}

func dpopClaim(name string, v any) dpopEdit {
	return func(_ map[string]any, c jwt.MapClaims) { c[name] = v }
}

func dpopDropClaim(name string) dpopEdit {
	return func(_ map[string]any, c jwt.MapClaims) { delete(c, name) }
}

func dpopHeader(name string, v any) dpopEdit {
	return func(h map[string]any, _ jwt.MapClaims) { h[name] = v }
}

func dpopDropHeader(name string) dpopEdit {
	return func(h map[string]any, _ jwt.MapClaims) { delete(h, name) }
}

// newDPoPTestVerifier returns a verifier with the default algorithms and a
// memory replay store whose clock is dpopNow.
func newDPoPTestVerifier(t testing.TB, algs []string) (*dpopVerifier, *memoryReplayStore) {
	t.Helper()
	store := newMemoryReplayStore(1000).(*memoryReplayStore)
	store.now = func() time.Time { return dpopNow }
	return newDPoPVerifier(algs, dpopMaxAge, store), store
}

// dpopOutcome renders verify's answer for comparison.
func dpopOutcome(f *Failure) string {
	if f == nil {
		return dpopAccepted
	}
	return fmt.Sprintf("%d %s %s", f.Status, f.Code, f.Reason)
}

func dpopThumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// dpopSegments replaces the segments of proof with the non-empty ones given.
func dpopSegments(proof, head, claims, sig string) string {
	p := strings.Split(proof, ".")
	for i, s := range []string{head, claims, sig} {
		if s != "" {
			p[i] = s
		}
	}
	return strings.Join(p, ".")
}

func TestDPoPVerify(t *testing.T) {
	k := newDPoPKeys(t)
	one := func(p string) []string { return []string{p} }
	tests := []struct {
		name   string
		algs   []string // default: defaultDPoPAlgs
		proofs func(t testing.TB) []string
		method string // default: dpopMethod
		htu    string // default: dpopHTU
		token  string // default: dpopToken; "-" for none
		jkt    func(t testing.TB) string
		want   string
	}{
		// Accepted proofs.
		{name: "valid ES256", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, nil)) }, want: dpopAccepted},
		{name: "valid ES384", proofs: func(t testing.TB) []string { return one(signProof(t, "ES384", k.ec384, nil)) }, want: dpopAccepted},
		{name: "valid RS256", proofs: func(t testing.TB) []string { return one(signProof(t, "RS256", k.rsa2048, nil)) }, want: dpopAccepted},
		{name: "valid PS256", proofs: func(t testing.TB) []string { return one(signProof(t, "PS256", k.rsa2048, nil)) }, want: dpopAccepted},
		{name: "valid EdDSA", proofs: func(t testing.TB) []string { return one(signProof(t, "EdDSA", k.ed, nil)) }, want: dpopAccepted},
		{name: "valid ES512 when configured", algs: []string{"ES512"}, proofs: func(t testing.TB) []string { return one(signProof(t, "ES512", k.ec521, nil)) }, want: dpopAccepted},
		{name: "valid bound to cnf.jkt", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, nil)) },
			jkt: func(t testing.TB) string { return dpopThumbprint(t, k.ec256.Public()) }, want: dpopAccepted},
		{name: "valid EdDSA bound to cnf.jkt", proofs: func(t testing.TB) []string { return one(signProof(t, "EdDSA", k.ed, nil)) },
			jkt: func(t testing.TB) string { return dpopThumbprint(t, k.ed.Public()) }, want: dpopAccepted},
		{name: "valid without access token or ath", token: "-", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropClaim("ath"))) }, want: dpopAccepted},
		{name: "valid htu with query and fragment", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", dpopHTU+"?page=2#top")))
		}, want: dpopAccepted},
		{name: "valid htu scheme and host case, default port", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "HTTPS://API.Example.COM:443/orders/1")))
		}, want: dpopAccepted},
		{name: "valid request htu with default port", htu: "https://api.example.com:443/orders/1", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, nil))
		}, want: dpopAccepted},
		{name: "valid http default port", htu: "http://api.example.com/orders/1", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "http://api.example.com:80/orders/1")))
		}, want: dpopAccepted},
		{name: "valid percent-encoded unreserved character", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "https://api.example.com/orders/%31")))
		}, want: dpopAccepted},
		{name: "valid iat at the start of the window", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("iat", dpopNow.Add(-dpopMaxAge).Unix())))
		}, want: dpopAccepted},
		{name: "valid iat at the end of the window", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("iat", dpopNow.Add(dpopMaxAge).Unix())))
		}, want: dpopAccepted},
		{name: "valid jti of 256 bytes", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("jti", strings.Repeat("j", 256))))
		}, want: dpopAccepted},
		{name: "valid just under the size cap", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("pad", strings.Repeat("p", 5500))))
		}, want: dpopAccepted},

		// The DPoP header.
		{name: "no DPoP header", proofs: func(testing.TB) []string { return nil }, want: dpopMissing},
		{name: "two DPoP headers", proofs: func(t testing.TB) []string {
			return []string{signProof(t, "ES256", k.ec256, nil), signProof(t, "ES256", k.ec256, nil)}
		}, want: dpopInvalid},
		{name: "empty DPoP header", proofs: func(testing.TB) []string { return one("") }, want: dpopInvalid},
		{name: "over the size cap", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("pad", strings.Repeat("p", 6500))))
		}, want: dpopInvalid},
		{name: "two segments", proofs: func(t testing.TB) []string {
			p := signProof(t, "ES256", k.ec256, nil)
			return one(p[:strings.LastIndexByte(p, '.')])
		}, want: dpopInvalid},
		{name: "JWS JSON serialization", proofs: func(t testing.TB) []string {
			p := strings.Split(signProof(t, "ES256", k.ec256, nil), ".")
			return one(`{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`)
		}, want: dpopInvalid},
		{name: "five segments (JWE shape)", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, nil) + ".a.b") }, want: dpopInvalid},

		// The header.
		{name: "typ missing", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropHeader("typ"))) }, want: dpopInvalid},
		{name: "typ JWT", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopHeader("typ", "JWT"))) }, want: dpopInvalid},
		{name: "typ in other case", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopHeader("typ", "DPoP+JWT"))) }, want: dpopInvalid},
		{name: "typ of an access token", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopHeader("typ", "at+jwt"))) }, want: dpopInvalid},
		{name: "alg none", proofs: func(t testing.TB) []string {
			return one(signProofWith(t, "none", jwt.UnsafeAllowNoneSignatureType, k.ec256.Public(), nil))
		}, want: dpopInvalid},
		{name: "alg none even when configured", algs: []string{"none", "ES256"}, proofs: func(t testing.TB) []string {
			return one(signProofWith(t, "none", jwt.UnsafeAllowNoneSignatureType, k.ec256.Public(), nil))
		}, want: dpopInvalid},
		{name: "alg HS256", proofs: func(t testing.TB) []string {
			return one(signProofWith(t, "HS256", []byte("a shared secret of thirty-two bytes"), k.ec256.Public(), nil))
		}, want: dpopInvalid},
		{name: "alg HS256 even when configured", algs: []string{"HS256", "ES256"}, proofs: func(t testing.TB) []string {
			return one(signProofWith(t, "HS256", []byte("a shared secret of thirty-two bytes"), k.ec256.Public(), nil))
		}, want: dpopInvalid},
		{name: "no usable algorithm configured", algs: []string{"HS256"}, proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, nil))
		}, want: dpopInvalid},
		{name: "alg not in the allowed list", proofs: func(t testing.TB) []string { return one(signProof(t, "ES512", k.ec521, nil)) }, want: dpopInvalid},
		{name: "alg RS256 with an EC jwk", proofs: func(t testing.TB) []string {
			return one(signProofWith(t, "RS256", k.rsa2048, k.ec256.Public(), nil))
		}, want: dpopInvalid},
		{name: "alg ES384 with a P-256 jwk", proofs: func(t testing.TB) []string {
			return one(signProofWith(t, "ES384", k.ec384, k.ec256.Public(), nil))
		}, want: dpopInvalid},
		{name: "crit header", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopHeader("crit", []string{"exp"})))
		}, want: dpopInvalid},
		{name: "jwk missing", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropHeader("jwk"))) }, want: dpopInvalid},
		{name: "jwk not an object", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopHeader("jwk", "key"))) }, want: dpopInvalid},
		{name: "jwk with the private EC key", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopHeader("jwk", dpopJWK(t, k.ec256, true))))
		}, want: dpopInvalid},
		{name: "jwk with the private RSA key", proofs: func(t testing.TB) []string {
			return one(signProof(t, "RS256", k.rsa2048, dpopHeader("jwk", dpopJWK(t, k.rsa2048, true))))
		}, want: dpopInvalid},
		{name: "jwk with the private Ed25519 key", proofs: func(t testing.TB) []string {
			return one(signProof(t, "EdDSA", k.ed, dpopHeader("jwk", dpopJWK(t, k.ed, true))))
		}, want: dpopInvalid},
		{name: "jwk symmetric", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopHeader("jwk", map[string]any{"kty": "oct", "k": "c2VjcmV0"})))
		}, want: dpopInvalid},
		{name: "jwk of another key than the signer", proofs: func(t testing.TB) []string {
			return one(signProofWith(t, "ES256", k.ec256, k.ec256b.Public(), nil))
		}, want: dpopInvalid},
		{name: "jwk RSA key of 1024 bits", proofs: func(t testing.TB) []string { return one(signProof(t, "RS256", k.rsa1024, nil)) }, want: dpopInvalid},

		// The signature.
		{name: "signature of another proof", proofs: func(t testing.TB) []string {
			other := strings.Split(signProof(t, "ES256", k.ec256, nil), ".")[2]
			return one(dpopSegments(signProof(t, "ES256", k.ec256, nil), "", "", other))
		}, want: dpopInvalid},
		{name: "claims swapped after signing", proofs: func(t testing.TB) []string {
			post := strings.Split(signProof(t, "ES256", k.ec256, dpopClaim("htm", "POST")), ".")[1]
			return one(dpopSegments(signProof(t, "ES256", k.ec256, nil), "", post, ""))
		}, want: dpopInvalid},

		// The claims.
		{name: "jti missing", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropClaim("jti"))) }, want: dpopInvalid},
		{name: "jti empty", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopClaim("jti", ""))) }, want: dpopInvalid},
		{name: "jti of 257 bytes", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("jti", strings.Repeat("j", 257))))
		}, want: dpopInvalid},
		{name: "htm of another method", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopClaim("htm", "POST"))) }, want: dpopInvalid},
		{name: "htm in lower case", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopClaim("htm", "get"))) }, want: dpopInvalid},
		{name: "htm missing", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropClaim("htm"))) }, want: dpopInvalid},
		{name: "request for another method", method: http.MethodDelete, proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, nil))
		}, want: dpopInvalid},
		{name: "htu of another path", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "https://api.example.com/orders/2")))
		}, want: dpopInvalid},
		{name: "htu path in other case", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "https://api.example.com/Orders/1")))
		}, want: dpopInvalid},
		{name: "htu of another host", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "https://evil.example.com/orders/1")))
		}, want: dpopInvalid},
		{name: "htu of another scheme", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "http://api.example.com/orders/1")))
		}, want: dpopInvalid},
		{name: "htu of another port", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "https://api.example.com:8443/orders/1")))
		}, want: dpopInvalid},
		{name: "htu relative", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopClaim("htu", "/orders/1"))) }, want: dpopInvalid},
		{name: "htu missing", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropClaim("htu"))) }, want: dpopInvalid},
		{name: "request for another URL", htu: "https://api.example.com/orders/1/cancel", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, nil))
		}, want: dpopInvalid},
		{name: "iat missing", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropClaim("iat"))) }, want: dpopInvalid},
		{name: "iat stale", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("iat", dpopNow.Add(-dpopMaxAge-time.Second).Unix())))
		}, want: dpopInvalid},
		{name: "iat in the future", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("iat", dpopNow.Add(dpopMaxAge+time.Second).Unix())))
		}, want: dpopInvalid},
		{name: "iat not a number", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopClaim("iat", "now"))) }, want: dpopInvalid},
		{name: "ath missing", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopDropClaim("ath"))) }, want: dpopInvalid},
		{name: "ath of another token", proofs: func(t testing.TB) []string {
			return one(signProof(t, "ES256", k.ec256, dpopClaim("ath", dpopATH(dpopToken+"x"))))
		}, want: dpopInvalid},
		{name: "ath as the token itself", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256, dpopClaim("ath", dpopToken))) }, want: dpopInvalid},

		// The binding.
		{name: "signed by another key than cnf.jkt", proofs: func(t testing.TB) []string { return one(signProof(t, "ES256", k.ec256b, nil)) },
			jkt: func(t testing.TB) string { return dpopThumbprint(t, k.ec256.Public()) }, want: dpopMismatch},
		{name: "RSA proof for an EC-bound token", proofs: func(t testing.TB) []string { return one(signProof(t, "RS256", k.rsa2048, nil)) },
			jkt: func(t testing.TB) string { return dpopThumbprint(t, k.ec256.Public()) }, want: dpopMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algs, method, htu, token, jkt := defaultDPoPAlgs, dpopMethod, dpopHTU, dpopToken, ""
			if tt.algs != nil {
				algs = tt.algs
			}
			if tt.method != "" {
				method = tt.method
			}
			if tt.htu != "" {
				htu = tt.htu
			}
			if tt.token == "-" {
				token = ""
			}
			if tt.jkt != nil {
				jkt = tt.jkt(t)
			}
			v, store := newDPoPTestVerifier(t, algs)
			proofs := tt.proofs(t)
			f := v.verify(context.Background(), proofs, method, htu, token, jkt, dpopNow)
			if got := dpopOutcome(f); got != tt.want {
				t.Fatalf("verify() = %q, want %q", got, tt.want)
			}
			// Only an accepted proof is remembered (garbage cannot fill the
			// store), and a refusal never echoes the proof or the token.
			wantLen := 0
			if tt.want == dpopAccepted {
				wantLen = 1
			}
			if got := store.len(); got != wantLen {
				t.Errorf("replay store holds %d ids, want %d", got, wantLen)
			}
			for _, p := range proofs {
				for _, seg := range append(strings.Split(p, "."), token) {
					if f != nil && len(seg) > 8 && strings.Contains(f.Error(), seg) {
						t.Errorf("failure %q holds part of the request's credentials", f.Error())
					}
				}
			}
		})
	}
}

func TestDPoPReplay(t *testing.T) {
	k := newDPoPKeys(t)
	v, _ := newDPoPTestVerifier(t, defaultDPoPAlgs)
	ctx := context.Background()
	check := func(name string, proof, jkt, want string) {
		t.Helper()
		if got := dpopOutcome(v.verify(ctx, []string{proof}, dpopMethod, dpopHTU, dpopToken, jkt, dpopNow)); got != want {
			t.Errorf("%s: verify() = %q, want %q", name, got, want)
		}
	}
	proof := signProof(t, "ES256", k.ec256, nil)
	check("first use", proof, "", dpopAccepted)
	check("second use", proof, "", dpopReplayed)
	check("second use bound", proof, dpopThumbprint(t, k.ec256.Public()), dpopReplayed)

	// The same jti from another key is another proof: ids are per key.
	jti := dpopClaim("jti", "shared-jti")
	check("jti under key a", signProof(t, "ES256", k.ec256, jti), "", dpopAccepted)
	check("jti under key b", signProof(t, "ES256", k.ec256b, jti), "", dpopAccepted)
	check("a fresh proof reusing the jti", signProof(t, "ES256", k.ec256b, jti), "", dpopReplayed)

	// A refused proof does not burn its id.
	bound := signProof(t, "ES256", k.ec256, nil)
	check("refused for the wrong key", bound, dpopThumbprint(t, k.ec256b.Public()), dpopMismatch)
	check("then used with the right key", bound, dpopThumbprint(t, k.ec256.Public()), dpopAccepted)
}

func TestDPoPReplayConcurrent(t *testing.T) {
	k := newDPoPKeys(t)
	v, _ := newDPoPTestVerifier(t, defaultDPoPAlgs)
	proof := signProof(t, "ES256", k.ec256, nil)
	var ok, replays atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			switch dpopOutcome(v.verify(context.Background(), []string{proof}, dpopMethod, dpopHTU, dpopToken, "", dpopNow)) {
			case dpopAccepted:
				ok.Add(1)
			case dpopReplayed:
				replays.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replays.Load() != 15 {
		t.Errorf("16 concurrent uses: %d accepted, %d replays; want 1 and 15", ok.Load(), replays.Load())
	}
}

// failingReplayStore stands for a remote store that is down.
type failingReplayStore struct{}

func (failingReplayStore) seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("connection refused")
}

func TestDPoPReplayStoreDown(t *testing.T) {
	k := newDPoPKeys(t)
	v := newDPoPVerifier(defaultDPoPAlgs, dpopMaxAge, failingReplayStore{})
	valid := signProof(t, "ES256", k.ec256, nil)
	if got := dpopOutcome(v.verify(context.Background(), []string{valid}, dpopMethod, dpopHTU, dpopToken, "", dpopNow)); got != dpopStoreDown {
		t.Errorf("verify() with the store down = %q, want %q (fail closed)", got, dpopStoreDown)
	}
	// An invalid proof is refused before the store is asked.
	stale := signProof(t, "ES256", k.ec256, dpopClaim("iat", dpopNow.Add(-time.Hour).Unix()))
	if got := dpopOutcome(v.verify(context.Background(), []string{stale}, dpopMethod, dpopHTU, dpopToken, "", dpopNow)); got != dpopInvalid {
		t.Errorf("verify(stale) with the store down = %q, want %q", got, dpopInvalid)
	}
}

func TestDPoPReplayRemembersUntilWindowEnds(t *testing.T) {
	k := newDPoPKeys(t)
	store := newMemoryReplayStore(100).(*memoryReplayStore)
	now := dpopNow
	store.now = func() time.Time { return now }
	v := newDPoPVerifier(defaultDPoPAlgs, dpopMaxAge, store)
	// A proof from the future end of the window stays acceptable (by iat)
	// until iat+maxAge: the store must remember it that long.
	proof := signProof(t, "ES256", k.ec256, dpopClaim("iat", dpopNow.Add(dpopMaxAge).Unix()))
	if got := dpopOutcome(v.verify(context.Background(), []string{proof}, dpopMethod, dpopHTU, dpopToken, "", now)); got != dpopAccepted {
		t.Fatalf("first use = %q, want accepted", got)
	}
	now = dpopNow.Add(2 * dpopMaxAge) // the last instant iat is acceptable
	if got := dpopOutcome(v.verify(context.Background(), []string{proof}, dpopMethod, dpopHTU, dpopToken, "", now)); got != dpopReplayed {
		t.Errorf("replay at the end of the window = %q, want %q", got, dpopReplayed)
	}
}

func TestDPoPMemoryReplayStoreBounded(t *testing.T) {
	const size = 1000
	store := newMemoryReplayStore(size).(*memoryReplayStore)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for i := range size + 100 {
		if seen, err := store.seen(ctx, fmt.Sprint("id-", i), until); seen || err != nil {
			t.Fatalf("seen(id-%d) = %v, %v on first use, want false, nil", i, seen, err)
		}
	}
	if got := store.len(); got > size {
		t.Errorf("len() = %d after %d ids, want at most %d", got, size+100, size)
	}
	// FIFO: the newest ids are remembered, the oldest forgotten.
	if seen, _ := store.seen(ctx, fmt.Sprint("id-", size+99), until); !seen {
		t.Error("the newest id was forgotten")
	}
	if seen, _ := store.seen(ctx, "id-0", until); seen {
		t.Error("the oldest id is still remembered in a full store")
	}
	if got := store.len(); got > size {
		t.Errorf("len() = %d, want at most %d", got, size)
	}
}

func TestDPoPMemoryReplayStoreExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemoryReplayStore(10).(*memoryReplayStore)
		ctx := context.Background()
		if seen, _ := store.seen(ctx, "a", time.Now().Add(time.Second)); seen {
			t.Fatal("seen(a) = true on first use")
		}
		if seen, _ := store.seen(ctx, "a", time.Now().Add(time.Second)); !seen {
			t.Fatal("seen(a) = false on second use within its time")
		}
		time.Sleep(2 * time.Second)
		if seen, _ := store.seen(ctx, "a", time.Now().Add(time.Second)); seen {
			t.Error("seen(a) = true after it expired")
		}
		// Expired ids at the head are dropped as new ones come.
		time.Sleep(2 * time.Second)
		store.seen(ctx, "b", time.Now().Add(time.Second))
		if got := store.len(); got != 1 {
			t.Errorf("len() = %d after the only other id expired, want 1", got)
		}
	})
}

func TestDPoPHTU(t *testing.T) {
	tests := []struct {
		name           string
		proof, request string
		want           bool
	}{
		{name: "equal", proof: dpopHTU, request: dpopHTU, want: true},
		{name: "empty path is /", proof: "https://api.example.com", request: "https://api.example.com/", want: true},
		{name: "ipv6 with default port", proof: "https://[::1]:443/x", request: "https://[::1]/x", want: true},
		{name: "ipv6 other port", proof: "https://[::1]:8443/x", request: "https://[::1]/x", want: false},
		{name: "percent hex case", proof: "https://h/a%2fb", request: "https://h/a%2Fb", want: true},
		{name: "encoded slash is not a slash", proof: "https://h/a%2Fb", request: "https://h/a/b", want: false},
		{name: "trailing slash differs", proof: "https://h/a/", request: "https://h/a", want: false},
		{name: "https default port on http", proof: "http://h:443/a", request: "http://h/a", want: false},
		{name: "userinfo", proof: "https://user@h/a", request: "https://h/a", want: false},
		{name: "other scheme", proof: "ftp://h/a", request: "ftp://h/a", want: false},
		{name: "no host", proof: "https:///a", request: "https:///a", want: false},
		{name: "opaque", proof: "https:h/a", request: "https:h/a", want: false},
		{name: "empty", proof: "", request: "", want: false},
		{name: "malformed", proof: "https://h/%zz", request: "https://h/%zz", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameHTU(tt.proof, tt.request); got != tt.want {
				t.Errorf("sameHTU(%q, %q) = %v, want %v", tt.proof, tt.request, got, tt.want)
			}
		})
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "dpop", "rfc7638_rsa.json"))
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromRawJSON(raw, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" // RFC 7638 §3.1
	if got := dpopThumbprint(t, jwk.Key()); got != want {
		t.Errorf("thumbprint(RFC 7638 §3.1 key) = %q, want %q", got, want)
	}
}

// TestThumbprintAgreesWithEncodingJSON checks thumbprint against the RFC 7638
// recipe done by encoding/json (which sorts map keys and adds no
// whitespace) on the required members of the key's JWK.
func TestThumbprintAgreesWithEncodingJSON(t *testing.T) {
	k := newDPoPKeys(t)
	required := map[string][]string{"EC": {"crv", "kty", "x", "y"}, "RSA": {"e", "kty", "n"}, "OKP": {"crv", "kty", "x"}}
	for name, pub := range map[string]crypto.PublicKey{
		"P-256": k.ec256.Public(), "P-384": k.ec384.Public(), "P-521": k.ec521.Public(),
		"RSA-2048": k.rsa2048.Public(), "Ed25519": k.ed.Public(),
	} {
		t.Run(name, func(t *testing.T) {
			all := dpopJWK(t, pub, false)
			members := map[string]any{}
			for _, m := range required[all["kty"].(string)] {
				members[m] = all[m]
			}
			canonical, err := json.Marshal(members)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(canonical)
			want := base64.RawURLEncoding.EncodeToString(sum[:])
			if got := dpopThumbprint(t, pub); got != want {
				t.Errorf("thumbprint() = %q, want %q (of %s)", got, want, canonical)
			}
		})
	}
	// A private key has its public key's thumbprint.
	if got, want := dpopThumbprint(t, k.ec256), dpopThumbprint(t, k.ec256.Public()); got != want {
		t.Errorf("thumbprint(private) = %q, want %q", got, want)
	}
	if a, b := dpopThumbprint(t, k.ec256.Public()), dpopThumbprint(t, k.ec256b.Public()); a == b {
		t.Errorf("two keys share thumbprint %q", a)
	}
}

func TestThumbprintUnsupported(t *testing.T) {
	for name, key := range map[string]crypto.PublicKey{"nil": nil, "symmetric": []byte("secret"), "string": "key"} {
		if tp, err := thumbprint(key); err == nil {
			t.Errorf("thumbprint(%s) = %q, nil; want an error", name, tp)
		}
	}
}

// FuzzDPoPVerify feeds arbitrary proofs to verify. Property: only the
// proofs this test signed are ever accepted (a forgery would need the
// private key), and every refusal is a 401 with a known reason.
func FuzzDPoPVerify(f *testing.F) {
	k := newDPoPKeys(f)
	valid := map[string]bool{}
	for _, p := range []string{
		signProof(f, "ES256", k.ec256, nil), // accepted as is
		signProof(f, "EdDSA", k.ed, nil),    // accepted as is
		signProof(f, "RS256", k.rsa2048, nil),
	} {
		valid[p] = true
		f.Add(p)
	}
	f.Add(signProof(f, "ES256", k.ec256, dpopClaim("htm", "POST")))                                     // wrong method
	f.Add(signProofWith(f, "none", jwt.UnsafeAllowNoneSignatureType, k.ec256.Public(), nil))            // unsigned
	f.Add(signProofWith(f, "HS256", []byte("a shared secret of thirty-two bytes"), k.ed.Public(), nil)) // MAC
	f.Add("")                                                                                           // empty
	f.Add("..")                                                                                         // empty segments
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.")                                                              // header only
	f.Add(strings.Repeat("a.", 3000))                                                                   // many dots
	reasons := map[string]bool{dpopInvalid: true, dpopReplayed: true}
	f.Fuzz(func(t *testing.T, proof string) {
		v, _ := newDPoPTestVerifier(t, defaultDPoPAlgs)
		got := dpopOutcome(v.verify(context.Background(), []string{proof}, dpopMethod, dpopHTU, dpopToken, "", dpopNow))
		if got == dpopAccepted && !valid[proof] {
			t.Fatalf("verify accepted a proof this test did not sign: %q", proof)
		}
		if got != dpopAccepted && !reasons[got] {
			t.Fatalf("verify() = %q, not a known refusal", got)
		}
	})
}

func BenchmarkDPoPVerify(b *testing.B) {
	k := newDPoPKeys(b)
	// More distinct proofs than the store holds: FIFO eviction forgets each
	// one before it comes round again, so every verification succeeds and
	// pays for the replay store too.
	const proofs, storeSize = 1024, 512
	ps := make([]string, proofs)
	for i := range ps {
		ps[i] = signProof(b, "ES256", k.ec256, nil)
	}
	store := newMemoryReplayStore(storeSize).(*memoryReplayStore)
	store.now = func() time.Time { return dpopNow }
	v := newDPoPVerifier(defaultDPoPAlgs, dpopMaxAge, store)
	jkt := dpopThumbprint(b, k.ec256.Public())
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if f := v.verify(ctx, ps[i%proofs:i%proofs+1], dpopMethod, dpopHTU, dpopToken, jkt, dpopNow); f != nil {
			b.Fatalf("verify() = %q", dpopOutcome(f))
		}
		i++
	}
}

// TestDPoPProofKeyFitsAlg checks the header rules that a real signature
// cannot reach: golang-jwt already refuses most of these when it verifies,
// and proofKey refuses them first, whatever the signing library does.
func TestDPoPProofKeyFitsAlg(t *testing.T) {
	k := newDPoPKeys(t)
	v := newDPoPVerifier([]string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}, dpopMaxAge, nil)
	tests := []struct {
		name string
		alg  string
		pub  crypto.PublicKey
		ok   bool
	}{
		{name: "ES256 with P-256", alg: "ES256", pub: k.ec256.Public(), ok: true},
		{name: "ES384 with P-384", alg: "ES384", pub: k.ec384.Public(), ok: true},
		{name: "PS256 with RSA", alg: "PS256", pub: k.rsa2048.Public(), ok: true},
		{name: "EdDSA with Ed25519", alg: "EdDSA", pub: k.ed.Public(), ok: true},
		{name: "ES256 with P-384", alg: "ES256", pub: k.ec384.Public()},
		{name: "ES384 with P-256", alg: "ES384", pub: k.ec256.Public()},
		{name: "ES256 with RSA", alg: "ES256", pub: k.rsa2048.Public()},
		{name: "RS256 with Ed25519", alg: "RS256", pub: k.ed.Public()},
		{name: "EdDSA with P-256", alg: "EdDSA", pub: k.ec256.Public()},
		{name: "ES512 not allowed", alg: "ES512", pub: k.ec521.Public()},
		{name: "HS256 never", alg: "HS256", pub: k.ec256.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := &jwt.Token{
				Method: jwt.GetSigningMethod(tt.alg),
				Header: map[string]any{"alg": tt.alg, "typ": "dpop+jwt", "jwk": dpopJWK(t, tt.pub, false)},
			}
			key, err := v.proofKey(tok)
			if got := err == nil; got != tt.ok {
				t.Fatalf("proofKey(%s) error = %v, want ok %v", tt.name, err, tt.ok)
			}
			if tt.ok && dpopThumbprint(t, key) != dpopThumbprint(t, tt.pub) {
				t.Errorf("proofKey(%s) returned another key", tt.name)
			}
		})
	}
}

// TestDPoPKeyCache checks that reusing the checked key of a repeated proof
// header never skips the signature: only headers of verified proofs are
// remembered, and a cached header with a forged signature is refused.
func TestDPoPKeyCache(t *testing.T) {
	k := newDPoPKeys(t)
	v, _ := newDPoPTestVerifier(t, defaultDPoPAlgs)
	check := func(name, proof, jkt, want string) {
		t.Helper()
		if got := dpopOutcome(v.verify(context.Background(), []string{proof}, dpopMethod, dpopHTU, dpopToken, jkt, dpopNow)); got != want {
			t.Errorf("%s: verify() = %q, want %q", name, got, want)
		}
	}
	headerOf := func(p string) string { return strings.Split(p, ".")[0] }

	first := signProof(t, "ES256", k.ec256, nil)
	forgedFirst := dpopSegments(first, "", "", strings.Split(signProof(t, "ES256", k.ec256b, nil), ".")[2])
	check("forged signature before the header is cached", forgedFirst, "", dpopInvalid)
	if got := v.keys.Len(); got != 0 {
		t.Fatalf("key cache holds %d headers after a forged proof, want 0", got)
	}
	check("first proof", first, "", dpopAccepted)
	second := signProof(t, "ES256", k.ec256, nil)
	if headerOf(second) != headerOf(first) {
		t.Fatal("two proofs of one key have different headers; the cache is not exercised")
	}
	check("second proof, cached header", second, dpopThumbprint(t, k.ec256.Public()), dpopAccepted)
	if got := v.keys.Len(); got != 1 {
		t.Errorf("key cache holds %d headers, want 1", got)
	}
	// The cached header with claims signed by another key.
	other := strings.Split(signProof(t, "ES256", k.ec256b, nil), ".")
	check("cached header, foreign signature", dpopSegments(first, "", other[1], other[2]), "", dpopInvalid)
	check("cached header, bound to another key", signProof(t, "ES256", k.ec256, nil), dpopThumbprint(t, k.ec256b.Public()), dpopMismatch)
	check("cached header, stale claims", signProof(t, "ES256", k.ec256, dpopClaim("iat", dpopNow.Add(-time.Hour).Unix())), "", dpopInvalid)
}
