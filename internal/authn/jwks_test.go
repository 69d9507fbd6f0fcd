package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// The helpers below are shared by jwt_test.go, jwks_test.go and
// jwt_bench_test.go. Their names start with jwt/jwks: the package has
// other authenticators' tests.

const (
	jwtTestIssuer   = "https://issuer.test"
	jwtTestAudience = "orders-api"
	jwtTestName     = "corp"
)

// jwtTestKey is a real generated signing key with its kid and alg.
type jwtTestKey struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
	use    jwkset.USE
	jwkAlg bool // publish alg in the JWK
}

func (k *jwtTestKey) public() crypto.PublicKey { return k.priv.Public() }

// jwtRSAPool generates RSA keys once per test binary: 2048-bit generation
// is slow under the race detector.
var jwtRSAPool = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	return keys
})

// newJWTTestKey returns a key for alg (RS256, PS256, ES256, ES384, EdDSA).
// RSA keys come from a small pool: rsaIndex picks one (0..3).
func newJWTTestKey(t testing.TB, kid, alg string, rsaIndex int) *jwtTestKey {
	t.Helper()
	k := &jwtTestKey{kid: kid, alg: alg, method: jwt.GetSigningMethod(alg), use: jwkset.UseSig, jwkAlg: true}
	var err error
	switch alg {
	case "RS256", "PS256":
		k.priv = jwtRSAPool()[rsaIndex]
	case "ES256":
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		k.priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("newJWTTestKey: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwk returns the public JWK of k as served by a JWKS.
func (k *jwtTestKey) jwk(t testing.TB) jwkset.JWKMarshal {
	t.Helper()
	meta := jwkset.JWKMetadataOptions{KID: k.kid, USE: k.use}
	if k.jwkAlg {
		meta.ALG = jwkset.ALG(k.alg)
	}
	j, err := jwkset.NewJWKFromKey(k.public(), jwkset.JWKOptions{Metadata: meta})
	if err != nil {
		t.Fatalf("jwk: %v", err)
	}
	return j.Marshal()
}

// jwtTestClaims are valid claims for the test authenticator; set
// overrides them (a nil value deletes the claim).
func jwtTestClaims(set map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss":   jwtTestIssuer,
		"aud":   []string{jwtTestAudience},
		"sub":   "alice",
		"azp":   "web-app",
		"scope": "orders:read orders:write",
		"iat":   now.Unix(),
		"exp":   now.Add(5 * time.Minute).Unix(),
		"jti":   rand.Text(),
	}
	for name, v := range set {
		if v == nil {
			delete(c, name)
			continue
		}
		c[name] = v
	}
	return c
}

// sign returns a token signed by k with claims; header entries are added
// to (or, when nil, removed from) the header, kid included.
func (k *jwtTestKey) sign(t testing.TB, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// jwksTestServer is a real JWKS endpoint on 127.0.0.1 whose keys and
// health change mid-test. It also serves an OpenID discovery document.
type jwksTestServer struct {
	*httptest.Server
	mu        sync.Mutex
	body      []byte // the JWKS answer
	status    int    // 200 unless the test breaks it
	discovery map[string]any
	hits      atomic.Int64 // JWKS fetches
	discHits  atomic.Int64 // discovery fetches
}

func newJWKSTestServer(t testing.TB, keys ...*jwtTestKey) *jwksTestServer {
	t.Helper()
	s := &jwksTestServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksTestServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body, status, disc := s.body, s.status, s.discovery
	s.mu.Unlock()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		s.discHits.Add(1)
		if disc == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(disc)
	case "/jwks":
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

// setKeys makes the JWKS serve exactly keys.
func (s *jwksTestServer) setKeys(t testing.TB, keys ...*jwtTestKey) {
	t.Helper()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk(t))
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.setBody(http.StatusOK, body)
}

func (s *jwksTestServer) setBody(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func (s *jwksTestServer) setDiscovery(doc map[string]any) {
	s.mu.Lock()
	s.discovery = doc
	s.mu.Unlock()
}

func (s *jwksTestServer) jwksURL() string { return s.URL + "/jwks" }

// jwtTestConfig is a validated-looking jwt config with the defaults of
// config.Authenticator; mod changes it.
func jwtTestConfig(mod func(*config.Authenticator)) config.Authenticator {
	cfg := config.Authenticator{
		Type:         "jwt",
		Issuer:       jwtTestIssuer,
		Audiences:    []string{jwtTestAudience},
		Algorithms:   []string{"RS256", "PS256", "ES256", "EdDSA"},
		MaxTokenSize: 8 << 10,
		ScopeClaims:  []string{"scope", "scp"},
		RolesClaim:   "roles",
		DPoP:         "off",
		Refresh:      config.Duration(time.Hour),
		MinRefresh:   config.Duration(time.Hour),
		CacheSize:    1000,
		CacheTTL:     config.Duration(5 * time.Minute),
		Timeout:      config.Duration(2 * time.Second),
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

// jwtTestDeps returns deps with a fresh refresh counter.
func jwtTestDeps(log *zap.Logger) (Deps, *prometheus.CounterVec) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_jwks_refresh_total", Help: "test"},
		[]string{"authenticator", "result"})
	if log == nil {
		log = zap.NewNop()
	}
	return Deps{Log: log, JWKSRefresh: vec}, vec
}

// newJWTForTest builds the authenticator and closes it when the test ends.
func newJWTForTest(t testing.TB, cfg config.Authenticator, deps Deps) *jwtAuth {
	t.Helper()
	a, err := newJWT(jwtTestName, cfg, deps)
	if err != nil {
		t.Fatalf("newJWT: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// jwtNoLeaks checks, after every other cleanup of the test (servers
// closed, authenticator closed), that the test left no goroutine behind.
// Call it first.
func jwtNoLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// jwtEventually polls cond for up to 10 s.
func jwtEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jwtWaitReady(t testing.TB, a *jwtAuth) {
	t.Helper()
	jwtEventually(t, "keys to load", func() bool { return a.Ready() == "" })
}

// jwtCheck authenticates token and returns the principal or the failure.
func jwtCheck(a *jwtAuth, token string) (*exchange.Principal, error) {
	return a.Authenticate(context.Background(), &Input{Token: token})
}

// jwtWantOK fails the test unless token is accepted.
func jwtWantOK(t testing.TB, a *jwtAuth, token, what string) *exchange.Principal {
	t.Helper()
	p, err := jwtCheck(a, token)
	if err != nil {
		t.Fatalf("%s: Authenticate() error = %v, want accepted", what, err)
	}
	return p
}

// jwtWantFailure fails the test unless err is a *Failure with status and
// reason.
func jwtWantFailure(t testing.TB, err error, status int, reason string) {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("Authenticate() error = %v, want a *Failure %d %s", err, status, reason)
	}
	if f.Status != status || f.Reason != reason {
		t.Fatalf("Authenticate() = %d %s (%s), want %d %s", f.Status, f.Reason, f.Description, status, reason)
	}
}

func jwksCount(vec *prometheus.CounterVec, result string) float64 {
	return testutil.ToFloat64(vec.WithLabelValues(jwtTestName, result))
}

// jwtRefreshNow runs the periodic refresh of a's key set now instead of
// waiting for the ticker: it asks the fetching goroutine for a fetch, as
// an unknown kid does, and waits for it.
func jwtRefreshNow(t testing.TB, a *jwtAuth) {
	t.Helper()
	r, ok := a.keys.(*jwtRemoteKeys)
	if !ok {
		t.Fatalf("keys are %T, want *jwtRemoteKeys", a.keys)
	}
	r.mu.Lock()
	ch := r.inflight
	if ch == nil {
		ch = make(chan struct{})
		r.inflight = ch
		r.kick <- struct{}{}
	}
	r.mu.Unlock()
	<-ch
}

// TestJWKSRotation: a key added and used is accepted after one fetch; a
// removed key is refused after the next refresh.
func TestJWKSRotation(t *testing.T) {
	jwtNoLeaks(t)
	oldKey := newJWTTestKey(t, "2026-01", "RS256", 0)
	newKey := newJWTTestKey(t, "2026-02", "ES256", 0)
	srv := newJWKSTestServer(t, oldKey)
	deps, vec := jwtTestDeps(nil)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) { c.JWKSURL = srv.jwksURL() }), deps)
	jwtWaitReady(t, a)
	jwtWantOK(t, a, oldKey.sign(t, jwtTestClaims(nil), nil), "old key")
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("JWKS hits after start = %d, want 1", got)
	}

	srv.setKeys(t, oldKey, newKey)
	p := jwtWantOK(t, a, newKey.sign(t, jwtTestClaims(nil), nil), "rotated-in key right after start")
	if p.KeyID != newKey.kid {
		t.Errorf("KeyID = %q, want %q", p.KeyID, newKey.kid)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS hits after rotation = %d, want 2 (one fetch for the new kid)", got)
	}

	srv.setKeys(t, newKey)
	jwtRefreshNow(t, a)
	_, err := jwtCheck(a, oldKey.sign(t, jwtTestClaims(nil), nil))
	jwtWantFailure(t, err, http.StatusUnauthorized, "unknown_key")
	jwtWantOK(t, a, newKey.sign(t, jwtTestClaims(nil), nil), "new key after removal of the old")
	if got := jwksCount(vec, "success"); got != 3 {
		t.Errorf("successful fetches = %v, want 3", got)
	}
}

// TestJWKSUnknownKidFlood: a flood of random kids costs at most one fetch
// per unknown_kid_refresh, however many arrive and however concurrently.
func TestJWKSUnknownKidFlood(t *testing.T) {
	jwtNoLeaks(t)
	key := newJWTTestKey(t, "k1", "ES256", 0)
	srv := newJWKSTestServer(t, key)
	deps, _ := jwtTestDeps(nil)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) { c.JWKSURL = srv.jwksURL() }), deps)
	jwtWaitReady(t, a)

	for wave := range 2 {
		tokens := make([]string, 50)
		for i := range tokens {
			forged := *key
			forged.kid = rand.Text() // signed by a real key, under a kid the JWKS lacks
			tokens[i] = forged.sign(t, jwtTestClaims(nil), nil)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(tokens))
		for i, token := range tokens {
			wg.Go(func() { _, errs[i] = jwtCheck(a, token) })
		}
		wg.Wait()
		for _, err := range errs {
			jwtWantFailure(t, err, http.StatusUnauthorized, "unknown_key")
		}
		if got := srv.hits.Load(); got != 2 {
			t.Fatalf("JWKS hits after wave %d of 50 random kids = %d, want 2 (start + one)", wave, got)
		}
	}
	jwtWantOK(t, a, key.sign(t, jwtTestClaims(nil), nil), "known kid during the flood")
}

// TestJWKSDownAtStart: no key set yet means 503 (fail closed) and not
// ready; once the JWKS answers, tokens pass.
func TestJWKSDownAtStart(t *testing.T) {
	jwtNoLeaks(t)
	key := newJWTTestKey(t, "k1", "RS256", 1)
	srv := newJWKSTestServer(t, key)
	srv.setBody(http.StatusServiceUnavailable, []byte(`{"error":"down"}`))
	deps, vec := jwtTestDeps(nil)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) { c.JWKSURL = srv.jwksURL() }), deps)

	token := key.sign(t, jwtTestClaims(nil), nil)
	jwtEventually(t, "a failed fetch", func() bool { return jwksCount(vec, "failure") >= 1 })
	if a.Ready() == "" {
		t.Fatal("Ready() = \"\" with no key set loaded, want a reason")
	}
	if _, ok := a.KeySetAge(); ok {
		t.Error("KeySetAge() ok = true before any load")
	}
	_, err := jwtCheck(a, token)
	jwtWantFailure(t, err, http.StatusServiceUnavailable, "keys_unavailable")

	srv.setKeys(t, key)
	jwtWaitReady(t, a)
	jwtWantOK(t, a, token, "after the JWKS came up")
	if age, ok := a.KeySetAge(); !ok || age < 0 || age > time.Minute {
		t.Errorf("KeySetAge() = %v, %v, want a small age, true", age, ok)
	}
	if got := jwksCount(vec, "success"); got != 1 {
		t.Errorf("successful fetches = %v, want 1", got)
	}
}

// TestJWKSDownAfterStart: a failed refresh keeps the last good key set
// (fresh tokens, not cached ones, keep passing) and is counted.
func TestJWKSDownAfterStart(t *testing.T) {
	key := newJWTTestKey(t, "k1", "EdDSA", 0)
	tests := []struct {
		name   string
		status int
		body   []byte
	}{
		{name: "503", status: http.StatusServiceUnavailable, body: []byte("down")},
		{name: "html answer", status: http.StatusOK, body: []byte("<html>maintenance</html>")},
		{name: "empty key set", status: http.StatusOK, body: []byte(`{"keys":[]}`)},
		{name: "only an encryption key", status: http.StatusOK, body: func() []byte {
			enc := *key
			enc.use = jwkset.UseEnc
			b, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{enc.jwk(t)}})
			return b
		}()},
		{name: "valid set over 1MiB", status: http.StatusOK, body: func() []byte {
			b, _ := json.Marshal(map[string]any{"keys": []jwkset.JWKMarshal{key.jwk(t)}, "pad": strings.Repeat("x", 2<<20)})
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwtNoLeaks(t)
			srv := newJWKSTestServer(t, key)
			deps, vec := jwtTestDeps(nil)
			a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
				c.JWKSURL = srv.jwksURL()
				c.Refresh = config.Duration(20 * time.Millisecond)
				c.CacheSize = 0 // every check below verifies a signature
			}), deps)
			jwtWaitReady(t, a)
			srv.setBody(tt.status, tt.body)
			jwtEventually(t, "a failed refresh", func() bool { return jwksCount(vec, "failure") >= 2 })
			jwtWantOK(t, a, key.sign(t, jwtTestClaims(nil), nil), "fresh token with the kept key set")
			if a.Ready() != "" {
				t.Errorf("Ready() = %q after a failed refresh, want \"\" (keys were loaded)", a.Ready())
			}
		})
	}
}

// TestJWKSLogRedactsURL: a failed fetch is logged without the URL, whose
// query could hold a credential.
func TestJWKSLogRedactsURL(t *testing.T) {
	jwtNoLeaks(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	u := dead.URL + "/jwks?access_key=hunter2-secret"
	dead.Close()
	core, logs := observer.New(zap.DebugLevel)
	deps, vec := jwtTestDeps(zap.New(core))
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) { c.JWKSURL = u }), deps)
	jwtEventually(t, "a failed fetch", func() bool { return jwksCount(vec, "failure") >= 1 })
	a.Close()
	entries := logs.All()
	if len(entries) == 0 {
		t.Fatal("no log entry for a failed fetch")
	}
	for _, e := range entries {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, "hunter2") {
			t.Errorf("log entry %q holds the URL's credential", line)
		}
	}
}

// TestJWKSDiscovery finds jwks_uri in the issuer's discovery document and
// refuses a document that names another issuer or an http jwks_uri.
func TestJWKSDiscovery(t *testing.T) {
	key := newJWTTestKey(t, "d1", "ES256", 0)
	t.Run("found", func(t *testing.T) {
		jwtNoLeaks(t)
		srv := newJWKSTestServer(t, key)
		srv.setDiscovery(map[string]any{"issuer": srv.URL, "jwks_uri": srv.jwksURL()})
		deps, _ := jwtTestDeps(nil)
		a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
			c.Discovery = true
			c.Issuer = srv.URL
		}), deps)
		jwtWaitReady(t, a)
		p := jwtWantOK(t, a, key.sign(t, jwtTestClaims(map[string]any{"iss": srv.URL}), nil), "discovered keys")
		if p.Issuer != srv.URL {
			t.Errorf("Issuer = %q, want %q", p.Issuer, srv.URL)
		}
		if got := srv.discHits.Load(); got != 1 {
			t.Errorf("discovery hits = %d, want 1", got)
		}
	})
	refused := []struct {
		name string
		doc  func(srv *jwksTestServer) map[string]any
	}{
		{name: "issuer mismatch", doc: func(srv *jwksTestServer) map[string]any {
			return map[string]any{"issuer": "https://evil.example", "jwks_uri": srv.jwksURL()}
		}},
		{name: "plain http jwks_uri", doc: func(srv *jwksTestServer) map[string]any {
			return map[string]any{"issuer": srv.URL, "jwks_uri": "http://keys.example.com/jwks"}
		}},
		{name: "no document", doc: func(*jwksTestServer) map[string]any { return nil }},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			jwtNoLeaks(t)
			srv := newJWKSTestServer(t, key)
			srv.setDiscovery(tt.doc(srv))
			deps, vec := jwtTestDeps(nil)
			a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
				c.Discovery = true
				c.Issuer = srv.URL
			}), deps)
			jwtEventually(t, "two failed discoveries", func() bool { return jwksCount(vec, "failure") >= 2 })
			if a.Ready() == "" {
				t.Error("Ready() = \"\", want a reason")
			}
			_, err := jwtCheck(a, key.sign(t, jwtTestClaims(map[string]any{"iss": srv.URL}), nil))
			jwtWantFailure(t, err, http.StatusServiceUnavailable, "keys_unavailable")
			if got := srv.hits.Load(); got != 0 {
				t.Errorf("JWKS hits = %d, want 0", got)
			}
		})
	}
}

// TestJWKSKeyAlgAndUse: a JWK's alg binds it to that algorithm, and
// use:enc keys never verify.
func TestJWKSKeyAlgAndUse(t *testing.T) {
	jwtNoLeaks(t)
	rsaKey := newJWTTestKey(t, "rs", "RS256", 2)
	encKey := newJWTTestKey(t, "enc", "RS256", 3)
	encKey.use = jwkset.UseEnc
	noAlg := newJWTTestKey(t, "noalg", "ES256", 0)
	noAlg.jwkAlg = false
	noAlgEd := newJWTTestKey(t, "noalg-ed", "EdDSA", 0)
	noAlgEd.jwkAlg = false
	srv := newJWKSTestServer(t, rsaKey, encKey, noAlg, noAlgEd)
	deps, _ := jwtTestDeps(nil)
	a := newJWTForTest(t, jwtTestConfig(func(c *config.Authenticator) {
		c.JWKSURL = srv.jwksURL()
		c.MinRefresh = config.Duration(time.Nanosecond) // every unknown kid may fetch
	}), deps)
	jwtWaitReady(t, a)

	ps := *rsaKey
	ps.alg, ps.method = "PS256", jwt.SigningMethodPS256
	tests := []struct {
		name   string
		token  string
		reason string // "" = accepted
	}{
		{name: "RS256 key, RS256 token", token: rsaKey.sign(t, jwtTestClaims(nil), nil)},
		{name: "RS256 key, PS256 token", token: ps.sign(t, jwtTestClaims(nil), nil), reason: "bad_signature"},
		{name: "use enc key", token: encKey.sign(t, jwtTestClaims(nil), nil), reason: "unknown_key"},
		{name: "EC key without alg", token: noAlg.sign(t, jwtTestClaims(nil), nil)},
		{name: "Ed25519 key without alg", token: noAlgEd.sign(t, jwtTestClaims(nil), nil)},
		{name: "EC key without alg, RSA signature", reason: "bad_signature",
			token: func() string { k := *rsaKey; k.kid = noAlg.kid; return k.sign(t, jwtTestClaims(nil), nil) }()},
		{name: "no kid with a JWKS", token: rsaKey.sign(t, jwtTestClaims(nil), map[string]any{"kid": nil}), reason: "unknown_key"},
		{name: "numeric kid", token: rsaKey.sign(t, jwtTestClaims(nil), map[string]any{"kid": 7}), reason: "unknown_key"},
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

// TestJWKSCloseStops: Close ends the refresh goroutines even while the
// first load is still retrying.
func TestJWKSCloseStops(t *testing.T) {
	jwtNoLeaks(t)
	srv := newJWKSTestServer(t)
	srv.setBody(http.StatusInternalServerError, nil)
	deps, vec := jwtTestDeps(nil)
	a, err := newJWT(jwtTestName, jwtTestConfig(func(c *config.Authenticator) { c.JWKSURL = srv.jwksURL() }), deps)
	if err != nil {
		t.Fatal(err)
	}
	jwtEventually(t, "a failed fetch", func() bool { return jwksCount(vec, "failure") >= 1 })
	a.Close()
	a.Close() // idempotent
	hits := srv.hits.Load()
	time.Sleep(300 * time.Millisecond) // several retry delays
	if got := srv.hits.Load(); got != hits {
		t.Errorf("JWKS hits after Close went from %d to %d, want no more fetches", hits, got)
	}
}
