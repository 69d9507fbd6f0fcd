package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// testIssuer is the issuer of the identity providers in these tests: the
// one the upstream has on its default address.
const testIssuer = "http://127.0.0.1:9000/demo-idp"

// startIDP serves the orders API with an identity provider whose clock
// stands at now, until the test ends.
func startIDP(t testing.TB, now time.Time) *httptest.Server {
	t.Helper()
	provider, err := newIDP(testIssuer, func() time.Time { return now })
	if err != nil {
		t.Fatalf("newIDP: %v", err)
	}
	srv := httptest.NewServer(newAPI(newOrderStore(), 0, provider))
	t.Cleanup(srv.Close)
	return srv
}

// fetchJWKS returns the identity provider's key set as served.
func fetchJWKS(t testing.TB, srv *httptest.Server) jwkset.JWKSMarshal {
	t.Helper()
	status, body := do(t, srv, "GET", "/demo-idp/jwks.json", "")
	if status != http.StatusOK {
		t.Fatalf("GET /demo-idp/jwks.json status = %d, want %d", status, http.StatusOK)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("decode jwks: %v", err)
	}
	return set
}

// keyfunc returns a jwt.Keyfunc that picks the key by kid from set, the way
// the gateway does.
func keyfunc(t testing.TB, set jwkset.JWKSMarshal) jwt.Keyfunc {
	t.Helper()
	keys, err := set.JWKSlice()
	if err != nil {
		t.Fatalf("jwks keys: %v", err)
	}
	return func(tok *jwt.Token) (any, error) {
		for _, k := range keys {
			if k.Marshal().KID == tok.Header["kid"] {
				return k.Key(), nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}
}

func TestIDPJWKS(t *testing.T) {
	srv := startIDP(t, time.Now())
	resp, err := srv.Client().Get(srv.URL + "/demo-idp/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got, want := resp.Header.Get("Content-Type"), "application/jwk-set+json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("decode jwks: %v", err)
	}
	if len(raw.Keys) != 1 {
		t.Fatalf("jwks has %d keys, want 1", len(raw.Keys))
	}
	key := raw.Keys[0]
	for name, want := range map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"} {
		if got := key[name]; got != want {
			t.Errorf("jwk %s = %v, want %q", name, got, want)
		}
	}
	if _, ok := key["d"]; ok {
		t.Errorf("jwk has the private key (d), want only the public key")
	}
	// RFC 7638: SHA-256 of the required members in lexicographic order.
	canonical := `{"crv":"P-256","kty":"EC","x":"` + key["x"].(string) + `","y":"` + key["y"].(string) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	if got, want := key["kid"], base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("jwk kid = %v, want the RFC 7638 thumbprint %q", got, want)
	}
}

func TestIDPTokenVerifiesWithTheJWKS(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := startIDP(t, now)
	set := fetchJWKS(t, srv)

	resp, err := srv.Client().Get(srv.URL + "/demo-idp/token?sub=alice&scope=orders:read+orders:write")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /demo-idp/token status = %d, want %d (body %q)", resp.StatusCode, http.StatusOK, b)
	}
	if got, want := resp.Header.Get("Content-Type"), "text/plain; charset=utf-8"; got != want {
		t.Errorf("token Content-Type = %q, want %q", got, want)
	}
	if got, want := resp.Header.Get("Cache-Control"), "no-store"; got != want {
		t.Errorf("token Cache-Control = %q, want %q", got, want)
	}
	body := string(b)
	signed, ok := strings.CutSuffix(body, "\n")
	if !ok || strings.ContainsAny(signed, " \n") {
		t.Fatalf("token body = %q, want one token and a newline", body)
	}
	var claims accessClaims
	tok, err := jwt.ParseWithClaims(signed, &claims, keyfunc(t, set),
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(testIssuer),
		jwt.WithAudience("orders-api"),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now.Add(time.Minute) }),
	)
	if err != nil {
		t.Fatalf("parse token with the jwks key: %v", err)
	}
	if got, want := tok.Header["kid"], set.Keys[0].KID; got != want {
		t.Errorf("token kid = %v, want %q", got, want)
	}
	got := struct{ Sub, Scope, AZP, JTI string }{claims.Subject, claims.Scope, claims.AZP, claims.ID}
	want := struct{ Sub, Scope, AZP, JTI string }{"alice", "orders:read orders:write", "demo-cli", claims.ID}
	if got != want {
		t.Errorf("claims = %+v, want %+v", got, want)
	}
	if !claims.IssuedAt.Equal(now) || !claims.ExpiresAt.Equal(now.Add(15*time.Minute)) {
		t.Errorf("iat, exp = %v, %v, want %v, %v", claims.IssuedAt, claims.ExpiresAt, now, now.Add(15*time.Minute))
	}

	// A second token has a different jti.
	_, body2 := do(t, srv, "GET", "/demo-idp/token?sub=alice", "")
	var claims2 accessClaims
	if _, err := jwt.ParseWithClaims(strings.TrimSpace(body2), &claims2, keyfunc(t, set),
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
		t.Fatalf("parse second token: %v", err)
	}
	if claims.ID == "" || claims2.ID == claims.ID {
		t.Errorf("jti of two tokens = %q, %q, want two different non-empty ids", claims.ID, claims2.ID)
	}
	if claims2.Scope != "" {
		t.Errorf("scope without a scope parameter = %q, want none", claims2.Scope)
	}
}

func TestIDPTokenRequests(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string
	}{
		{name: "subject and scopes", method: "GET", target: "/demo-idp/token?sub=alice&scope=orders:read+orders:write", wantStatus: 200, wantBody: "eyJ"},
		{name: "encoded space in scope", method: "GET", target: "/demo-idp/token?sub=bob&scope=orders:read%20orders:write", wantStatus: 200, wantBody: "eyJ"},
		{name: "subject only", method: "GET", target: "/demo-idp/token?sub=bob", wantStatus: 200, wantBody: "eyJ"},
		{name: "longest subject", method: "GET", target: "/demo-idp/token?sub=" + strings.Repeat("a", 64), wantStatus: 200, wantBody: "eyJ"},
		{name: "no subject", method: "GET", target: "/demo-idp/token?scope=orders:read", wantStatus: 400, wantBody: "sub: required"},
		{name: "empty subject", method: "GET", target: "/demo-idp/token?sub=", wantStatus: 400, wantBody: "sub: required"},
		{name: "subject too long", method: "GET", target: "/demo-idp/token?sub=" + strings.Repeat("a", 65), wantStatus: 400, wantBody: "sub: required"},
		{name: "space in subject", method: "GET", target: "/demo-idp/token?sub=alice+admin", wantStatus: 400, wantBody: "sub: required"},
		{name: "newline in subject", method: "GET", target: "/demo-idp/token?sub=alice%0AX-Admin:1", wantStatus: 400, wantBody: "sub: required"},
		{name: "non-ASCII subject", method: "GET", target: "/demo-idp/token?sub=%C3%A9", wantStatus: 400, wantBody: "sub: required"},
		{name: "quote in scope", method: "GET", target: "/demo-idp/token?sub=a&scope=%22x", wantStatus: 400, wantBody: "scope: scope tokens"},
		{name: "double space in scope", method: "GET", target: "/demo-idp/token?sub=a&scope=a++b", wantStatus: 400, wantBody: "scope: scope tokens"},
		{name: "trailing space in scope", method: "GET", target: "/demo-idp/token?sub=a&scope=a+", wantStatus: 400, wantBody: "scope: scope tokens"},
		{name: "scope too long", method: "GET", target: "/demo-idp/token?sub=a&scope=" + strings.Repeat("s", 257), wantStatus: 400, wantBody: "scope: at most"},
		{name: "subject twice", method: "GET", target: "/demo-idp/token?sub=a&sub=b", wantStatus: 400, wantBody: "sub: given more than once"},
		{name: "unknown parameter", method: "GET", target: "/demo-idp/token?sub=a&scopes=orders:write", wantStatus: 400, wantBody: "only sub and scope"},
		{name: "bad encoding", method: "GET", target: "/demo-idp/token?sub=%zz", wantStatus: 400, wantBody: "URL encoding"},
		{name: "POST is not served", method: "POST", target: "/demo-idp/token?sub=a", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "unknown endpoint", method: "GET", target: "/demo-idp/authorize", wantStatus: 404, wantBody: `"error":"not found"`},
		{name: "dot segments are not cleaned", method: "GET", target: "/demo-idp/../demo-idp/token?sub=a", wantStatus: 404, wantBody: `"error":"not found"`},
	}
	srv := startIDP(t, time.Now())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, srv, tt.method, tt.target, "")
			if status != tt.wantStatus {
				t.Errorf("%s %s status = %d, want %d (body %q)", tt.method, tt.target, status, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s %s body = %q, want it to contain %q", tt.method, tt.target, body, tt.wantBody)
			}
		})
	}
}

func TestIssuerFor(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want string
	}{
		{name: "IPv4", addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000}, want: "http://127.0.0.1:9000/demo-idp"},
		{name: "IPv6", addr: &net.TCPAddr{IP: net.IPv6loopback, Port: 19000}, want: "http://[::1]:19000/demo-idp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := issuerFor(tt.addr); got != tt.want {
				t.Errorf("issuerFor(%v) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

// FuzzParseTokenQuery checks that an accepted query gives what the
// standard library reads from it, within the documented limits.
func FuzzParseTokenQuery(f *testing.F) {
	f.Add("sub=alice&scope=orders:read+orders:write") // the demo's request
	f.Add("sub=alice")                                // no scope
	f.Add("scope=orders:read&sub=bob")                // any order
	f.Add("sub=a%0Ab")                                // a newline, which would split a header
	f.Add("sub=a&sub=b")                              // a parameter twice
	f.Add("sub=a;scope=b")                            // a semicolon, no longer a separator
	f.Add("sub=%ZZ")                                  // bad escape
	f.Add("sub=a&scope=+x")                           // empty scope token
	f.Fuzz(func(t *testing.T, raw string) {
		sub, scope, err := parseTokenQuery(raw)
		if err != nil {
			return
		}
		q, qerr := url.ParseQuery(raw)
		if qerr != nil {
			t.Fatalf("parseTokenQuery(%q) accepted a query url.ParseQuery refuses: %v", raw, qerr)
		}
		if sub != q.Get("sub") || scope != q.Get("scope") {
			t.Errorf("parseTokenQuery(%q) = %q, %q, want %q, %q", raw, sub, scope, q.Get("sub"), q.Get("scope"))
		}
		if sub == "" || len(sub) > maxSubject || !scopeToken(sub) || len(scope) > maxScope {
			t.Errorf("parseTokenQuery(%q) accepted sub %q, scope %q outside the limits", raw, sub, scope)
		}
		for word := range strings.SplitSeq(scope, " ") {
			if scope != "" && (word == "" || !scopeToken(word)) {
				t.Errorf("parseTokenQuery(%q) accepted scope %q with a bad word %q", raw, scope, word)
			}
		}
	})
}
