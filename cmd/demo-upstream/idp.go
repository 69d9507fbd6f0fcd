package main

// The demo identity provider stands in for Keycloak, Auth0 and the like, so
// that `make demo` can show JWT authentication without an outside service.
// It signs an access token for anyone who asks, with whatever subject and
// scopes they ask for. That is only acceptable because it is a demo on a
// loopback address: run refuses any other listen address, the gateway has no
// route to /demo-idp/ (clients fetch tokens from the upstream port
// directly), and the signing key is generated at start and lives only in
// memory, so a restart invalidates every token it issued.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const (
	// idpPrefix is the path under which the identity provider serves.
	idpPrefix = "/demo-idp"
	// tokenAudience is the aud of every token: configs/demo.yaml's
	// demo-idp authenticator accepts it.
	tokenAudience = "orders-api"
	// tokenClient is the azp of every token; the gateway sends it upstream
	// as the consumer.
	tokenClient = "demo-cli"
	// tokenLifetime is how long a token is valid after it was issued.
	tokenLifetime = 15 * time.Minute
	// maxSubject and maxScope bound the sub and scope parameters.
	maxSubject = 64
	maxScope   = 256
)

// idp is the demo identity provider: GET /demo-idp/jwks.json and GET
// /demo-idp/token. It is safe for concurrent use.
type idp struct {
	issuer string
	key    *ecdsa.PrivateKey
	kid    string
	jwks   []byte // the public key as a JWK Set, encoded once
	now    func() time.Time
}

// accessClaims are the claims of a demo access token.
type accessClaims struct {
	Scope string `json:"scope,omitempty"`
	AZP   string `json:"azp"`
	jwt.RegisteredClaims
}

// newIDP returns an identity provider with a new P-256 key whose tokens
// carry issuer as iss. now is its clock (time.Now outside tests).
func newIDP(issuer string, now func() time.Time) (*idp, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgES256, USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, fmt.Errorf("public key as jwk: %w", err)
	}
	pub := jwk.Marshal()
	if pub.KID, err = thumbprint(pub); err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{pub}})
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return &idp{issuer: issuer, key: key, kid: pub.KID, jwks: append(jwks, '\n'), now: now}, nil
}

// issuerFor returns the issuer URL of an identity provider served on addr:
// http://127.0.0.1:9000/demo-idp for 127.0.0.1:9000.
func issuerFor(addr net.Addr) string {
	return "http://" + addr.String() + idpPrefix
}

// thumbprint returns the RFC 7638 thumbprint of an EC public key, used as
// its kid: base64url of the SHA-256 of its required members, in
// lexicographic order and without whitespace (json.Marshal keeps the
// struct's field order).
func thumbprint(pub jwkset.JWKMarshal) (string, error) {
	b, err := json.Marshal(struct {
		CRV string `json:"crv"`
		KTY string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}{string(pub.CRV), string(pub.KTY), pub.X, pub.Y})
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// register adds the identity provider's endpoints to mux.
func (p *idp) register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+idpPrefix+"/jwks.json", p.serveJWKS)
	mux.HandleFunc("GET "+idpPrefix+"/token", p.serveToken)
}

func (p *idp) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(p.jwks)
}

// serveToken answers GET /demo-idp/token?sub=alice&scope=orders:read+orders:write
// with a signed access token as text/plain (the token and a newline), so
// that TOKEN=$(curl -s ...) works.
func (p *idp) serveToken(w http.ResponseWriter, r *http.Request) {
	sub, scope, err := parseTokenQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := p.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, accessClaims{
		Scope: scope,
		AZP:   tokenClient,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    p.issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{tokenAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(tokenLifetime)),
			ID:        rand.Text(),
		},
	})
	tok.Header["kid"] = p.kid
	signed, err := tok.SignedString(p.key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot sign the token")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // RFC 6749 §5.1: tokens are not cached
	_, _ = io.WriteString(w, signed+"\n")
}

// parseTokenQuery returns the sub and scope parameters of a token request.
// sub is required: 1 to maxSubject printable ASCII characters without
// spaces. scope is optional: space-separated scope tokens (RFC 6749 §3.3),
// at most maxScope bytes in all. Any other parameter, or one given twice,
// is an error, so a typo (scopes=) does not silently mint a token without
// scopes.
func parseTokenQuery(raw string) (sub, scope string, err error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", "", errors.New("the query is not valid URL encoding")
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case k != "sub" && k != "scope":
			return "", "", errors.New("unknown parameter: only sub and scope are accepted")
		case len(q[k]) > 1:
			return "", "", fmt.Errorf("%s: given more than once", k)
		}
	}
	sub, scope = q.Get("sub"), q.Get("scope")
	if sub == "" || len(sub) > maxSubject || !scopeToken(sub) {
		return "", "", fmt.Errorf("sub: required, 1 to %d printable ASCII characters without spaces", maxSubject)
	}
	if len(scope) > maxScope {
		return "", "", fmt.Errorf("scope: at most %d characters", maxScope)
	}
	if scope != "" {
		for word := range strings.SplitSeq(scope, " ") {
			if word == "" || !scopeToken(word) {
				return "", "", errors.New("scope: scope tokens separated by single spaces (+ in a URL), e.g. orders:read+orders:write")
			}
		}
	}
	return sub, scope, nil
}

// scopeToken reports whether s has only the characters of an RFC 6749
// scope-token: printable ASCII except space, '"' and '\'. Both sub and
// the scopes go upstream in headers, where these are safe.
func scopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
