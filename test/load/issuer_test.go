package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// testNow is the issue time of the tests' tokens.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// newTestIssuer returns an issuer whose token is issued at testNow and
// valid for an hour.
func newTestIssuer(t testing.TB) *issuer {
	t.Helper()
	iss, err := newIssuer(testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// startTestJWKS serves set until the test ends.
func startTestJWKS(t testing.TB, set []byte) *jwksServer {
	t.Helper()
	s, err := startJWKS(set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// testClient makes one connection per request, so that no idle
// connection outlives the test.
func testClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// fetchKeys gets the JWK Set at url, as bulwark does at start.
func fetchKeys(t testing.TB, url string) []jwkset.JWK {
	t.Helper()
	resp, err := testClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", url, resp.StatusCode)
	}
	var set jwkset.JWKSMarshal
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	keys, err := set.JWKSlice()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// keyByKID is a jwt.Keyfunc over keys: the public key the token's kid
// names, if its alg matches the token's.
func keyByKID(keys []jwkset.JWK) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header[jwkset.HeaderKID].(string)
		i := slices.IndexFunc(keys, func(k jwkset.JWK) bool { return k.Marshal().KID == kid })
		if i < 0 {
			return nil, fmt.Errorf("no key with kid %q", kid)
		}
		if m := keys[i].Marshal(); m.ALG.String() != tok.Method.Alg() || m.USE != jwkset.UseSig {
			return nil, fmt.Errorf("key %q is for %s/%s, not %s signatures", kid, m.ALG, m.USE, tok.Method.Alg())
		}
		return keys[i].Key(), nil
	}
}

func TestIssuerTokenVerifies(t *testing.T) {
	iss := newTestIssuer(t)
	served := fetchKeys(t, startTestJWKS(t, iss.jwks).url)
	other := fetchKeys(t, startTestJWKS(t, newTestIssuer(t).jwks).url)

	tests := []struct {
		name    string
		keys    []jwkset.JWK
		at      time.Time
		wantErr error
	}{
		{name: "served key set, during the run", keys: served, at: testNow.Add(30 * time.Minute)},
		{name: "served key set, after exp", keys: served, at: testNow.Add(time.Hour + time.Second), wantErr: jwt.ErrTokenExpired},
		{name: "another run's key set", keys: other, at: testNow, wantErr: jwt.ErrTokenUnverifiable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var claims benchClaims
			_, err := jwt.ParseWithClaims(iss.token, &claims, keyByKID(tt.keys),
				jwt.WithValidMethods([]string{"RS256"}),
				jwt.WithIssuer(benchIssuer),
				jwt.WithAudience(benchAudience),
				jwt.WithExpirationRequired(),
				jwt.WithIssuedAt(),
				jwt.WithTimeFunc(func() time.Time { return tt.at }))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseWithClaims(token) at %v = %v, want %v", tt.at, err, tt.wantErr)
			}
		})
	}
}

func TestIssuerToken(t *testing.T) {
	iss := newTestIssuer(t)
	var claims benchClaims
	// The signature is checked in TestIssuerTokenVerifies; here, what the
	// token says.
	tok, _, err := jwt.NewParser().ParseUnverified(iss.token, &claims)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Header[jwkset.HeaderKID]; got != iss.kid || !strings.HasPrefix(iss.kid, "bench-") {
		t.Errorf("kid = %v, want the issuer's %q", got, iss.kid)
	}
	if got := tok.Header["alg"]; got != "RS256" {
		t.Errorf("alg = %v, want RS256", got)
	}
	if got, want := claims.Subject, benchSubject; got != want {
		t.Errorf("sub = %q, want %q", got, want)
	}
	if got, want := claims.Scope, benchScope; got != want {
		t.Errorf("scope = %q, want %q", got, want)
	}
	if got, want := claims.ExpiresAt.Time, testNow.Add(time.Hour); !got.Equal(want) {
		t.Errorf("exp = %v, want %v", got, want)
	}
	if got, want := iss.key.N.BitLen(), 2048; got != want {
		t.Errorf("key size = %d bits, want %d", got, want)
	}
}

func TestIssuerKeysDiffer(t *testing.T) {
	a, b := newTestIssuer(t), newTestIssuer(t)
	if a.kid == b.kid || a.token == b.token {
		t.Errorf("two issuers share kid %q or a token, want a fresh key each", a.kid)
	}
}

func TestTokenLifetime(t *testing.T) {
	tests := []struct {
		name    string
		o       options
		targets int
	}{
		{name: "defaults", o: options{rounds: 3, duration: 10 * time.Second, warmup: 2 * time.Second}, targets: 5},
		{name: "long run", o: options{rounds: 50, duration: 5 * time.Minute, warmup: time.Minute}, targets: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The slowest the run can be: every target waits out
			// readyTimeout, then is warmed up and measured.
			run := time.Duration(tt.o.rounds*tt.targets) * (readyTimeout + tt.o.warmup + tt.o.duration)
			if got, want := tokenLifetime(tt.o, tt.targets), run+2*time.Hour; got < want {
				t.Errorf("tokenLifetime(%+v, %d) = %v, want at least %v", tt.o, tt.targets, got, want)
			}
		})
	}
}

func TestJWKSServer(t *testing.T) {
	set := []byte(`{"keys":[]}`)
	s := startTestJWKS(t, set)
	base := strings.TrimSuffix(s.url, jwksPath)
	if !strings.HasPrefix(s.url, "http://127.0.0.1:") {
		t.Errorf("url = %q, want a loopback http URL", s.url)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{name: "key set", method: http.MethodGet, path: jwksPath, wantStatus: http.StatusOK, wantType: "application/jwk-set+json", wantBody: string(set)},
		{name: "other path", method: http.MethodGet, path: "/other", wantStatus: http.StatusNotFound, wantType: "text/plain; charset=utf-8", wantBody: "404 page not found\n"},
		{name: "other method", method: http.MethodPost, path: jwksPath, wantStatus: http.StatusMethodNotAllowed, wantType: "text/plain; charset=utf-8", wantBody: "Method Not Allowed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := testClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != tt.wantType || string(body) != tt.wantBody {
				t.Errorf("%s %s = %d %q %q, want %d %q %q", tt.method, tt.path,
					resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.wantStatus, tt.wantType, tt.wantBody)
			}
		})
	}
}

func TestJWKSServerStops(t *testing.T) {
	s, err := startJWKS([]byte(`{"keys":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	// An open keep-alive connection, as bulwark's client may hold one,
	// must not keep the server alive.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get(s.url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	s.stop()
	s.stop() // a second stop is harmless
	if resp, err := testClient().Get(s.url); err == nil {
		resp.Body.Close()
		t.Errorf("GET %s after stop = %d, want a connection error", s.url, resp.StatusCode)
	}
	// goleak (TestMain) checks that the server's goroutines are gone.
}
