package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The identity provider the jwt authenticators of these tests trust.
const (
	testIssuer   = "https://idp.test"
	testAudience = "orders-api"
	testClient   = "orders-web" // the azp of the tokens minted here
)

// b64 is unpadded base64url, the encoding of every JOSE part.
var b64 = base64.RawURLEncoding

// ---- keys -------------------------------------------------------------

// rsaKeys holds RSA keys generated once for the whole run: generating a
// 2048-bit key under the race detector is slow, and no test needs a key
// that no other test has seen (each test has its own key server).
var rsaKeys struct {
	once sync.Once
	keys []*rsa.PrivateKey
	err  error
}

// rsaKey returns the i-th test RSA key (0 <= i < 4).
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaKeys.once.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				rsaKeys.err = err
				return
			}
			rsaKeys.keys = append(rsaKeys.keys, k)
		}
	})
	if rsaKeys.err != nil {
		t.Fatalf("generate RSA keys: %v", rsaKeys.err)
	}
	return rsaKeys.keys[i]
}

// rsaJWK is the public JWK of key (RS256, use sig).
func rsaJWK(kid string, key *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64.EncodeToString(key.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}
}

// ecPoint returns the unpadded base64url x and y coordinates of a P-256 key.
func ecPoint(t testing.TB, key *ecdsa.PublicKey) (x, y string) {
	t.Helper()
	pub, err := key.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y, each 32 bytes
	if len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("unexpected P-256 point encoding of %d bytes", len(raw))
	}
	return b64.EncodeToString(raw[1:33]), b64.EncodeToString(raw[33:])
}

// ecJWK is the public JWK of a P-256 key; kid and alg are left out when
// empty (a DPoP proof's jwk header carries neither).
func ecJWK(t testing.TB, kid, alg string, key *ecdsa.PublicKey) map[string]any {
	t.Helper()
	x, y := ecPoint(t, key)
	j := map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y}
	if kid != "" {
		j["kid"] = kid
	}
	if alg != "" {
		j["alg"], j["use"] = alg, "sig"
	}
	return j
}

// jwkThumbprint is the RFC 7638 SHA-256 thumbprint of a P-256 public key,
// computed here from the RFC's recipe (members in lexical order, no
// whitespace) rather than with the gateway's code.
func jwkThumbprint(t testing.TB, key *ecdsa.PublicKey) string {
	t.Helper()
	x, y := ecPoint(t, key)
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return b64.EncodeToString(sum[:])
}

// certThumbprint is the RFC 8705 x5t#S256 of a certificate.
func certThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return b64.EncodeToString(sum[:])
}

// selfSigned returns a self-signed certificate (DER) for key, for the x5c
// header of a forged token.
func selfSigned(t testing.TB, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "idp.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ---- tokens -----------------------------------------------------------

// claims returns the claims of a token that corp accepts: issued now for
// ten minutes by testIssuer for testAudience, with a fresh jti. mutate
// edits them (delete a claim, move a time, ...).
func claims(sub, scope string, mutate ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   sub,
		"azp":   testClient,
		"scope": scope,
		"iat":   now.Unix(),
		"exp":   now.Add(10 * time.Minute).Unix(),
		"jti":   randomID(),
	}
	for _, m := range mutate {
		m(c)
	}
	return c
}

// sign signs c with key under method, with header fields hdr added (kid
// among them, usually).
func sign(t testing.TB, method jwt.SigningMethod, key any, hdr map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// signRS256 is a token signed by key with header kid.
func signRS256(t testing.TB, key *rsa.PrivateKey, kid string, c jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodRS256, key, map[string]any{"kid": kid}, c)
}

// rawJWT assembles a JWS from a header, claims and signature bytes exactly
// as given: for tokens that no library would produce.
func rawJWT(t testing.TB, header map[string]any, c jwt.MapClaims, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(p) + "." + b64.EncodeToString(sig)
}

// dpopProof is a DPoP proof (RFC 9449 §4.2) signed by key for a request
// with method htm to htu, made at iat, for accessToken (ath).
func dpopProof(t testing.TB, key *ecdsa.PrivateKey, htm, htu, accessToken string, iat time.Time) string {
	t.Helper()
	ath := sha256.Sum256([]byte(accessToken))
	return sign(t, jwt.SigningMethodES256, key,
		map[string]any{"typ": "dpop+jwt", "jwk": ecJWK(t, "", "", &key.PublicKey)},
		jwt.MapClaims{"jti": randomID(), "htm": htm, "htu": htu, "iat": iat.Unix(), "ath": b64.EncodeToString(ath[:])})
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// sha256Hex is how consumers' API keys appear in the config.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ---- key and introspection servers -----------------------------------

// keyServer is a JWKS endpoint on 127.0.0.1 whose key set a test changes
// while the gateway runs. It counts the fetches it answers.
type keyServer struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu   sync.Mutex
	keys []map[string]any
}

func startKeyServer(t testing.TB, keys ...map[string]any) *keyServer {
	t.Helper()
	return startKeyServerOn(t, listenLoopback(t), keys...)
}

// startKeyServerOn is startKeyServer on a listener the test chose (an
// address the gateway was already told about).
func startKeyServerOn(t testing.TB, ln net.Listener, keys ...map[string]any) *keyServer {
	t.Helper()
	s := &keyServer{keys: keys}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		body, err := json.Marshal(map[string]any{"keys": s.keys})
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	_ = s.srv.Listener.Close() // the one httptest made; ln replaces it
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// url is the address of the key set.
func (s *keyServer) url() string { return s.srv.URL + "/jwks" }

// setKeys replaces the key set.
func (s *keyServer) setKeys(keys ...map[string]any) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// attackerServer is a server the attacker controls: it serves the
// attacker's JWKS and certificate to anyone who asks, and counts every
// request (the gateway must never make one).
type attackerServer struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func startAttackerServer(t testing.TB, jwks map[string]any, certDER []byte) *attackerServer {
	t.Helper()
	a := &attackerServer{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		switch r.URL.Path {
		case "/jwks":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwks}})
		case "/cert.pem":
			_, _ = w.Write(pemCert(certDER))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func pemCert(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END CERTIFICATE-----\n")
}

// introspectionServer is an RFC 7662 endpoint on 127.0.0.1: it requires
// HTTP Basic client authentication with clientID and secret, answers
// active for the tokens in active and inactive for any other, and counts
// the calls it answers.
type introspectionServer struct {
	srv  *httptest.Server
	hits atomic.Int64
	bad  atomic.Int64 // calls refused for their client authentication or form
}

func startIntrospectionServer(t testing.TB, clientID, secret string, active map[string]map[string]any) *introspectionServer {
	t.Helper()
	s := &introspectionServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		user, pass, ok := r.BasicAuth()
		if !ok || user != clientID || pass != secret || r.Method != http.MethodPost || r.URL.Path != "/introspect" {
			s.bad.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="idp"`)
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
			s.bad.Add(1)
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		answer, ok := active[r.PostForm.Get("token")]
		if !ok {
			answer = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// ---- config -----------------------------------------------------------

// authnSetup is the parts of a config for the authentication tests.
type authnSetup struct {
	upstream       string   // host:port of the "api" upstream
	server         []string // extra lines under server: (indented by the caller, 2 spaces)
	authenticators []string // entries under authenticators: (from jwtAuthenticator, ...)
	top            string   // more top-level YAML: consumers:, principal_headers:, mode:
	routes         []string // entries under routes: (from authRoute)
}

func (s authnSetup) yaml() string {
	var b strings.Builder
	b.WriteString("server:\n  listen: \"127.0.0.1:0\"\n")
	for _, l := range s.server {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "admin:\n  listen: \"127.0.0.1:0\"\nlog:\n  level: debug\nupstreams:\n  api:\n    url: %q\n", "http://"+s.upstream)
	if len(s.authenticators) > 0 {
		b.WriteString("authenticators:\n" + strings.Join(s.authenticators, "\n") + "\n")
	}
	if s.top != "" {
		b.WriteString(strings.TrimRight(s.top, "\n") + "\n")
	}
	b.WriteString("routes:\n" + strings.Join(s.routes, "\n") + "\n")
	return b.String()
}

// jwtAuthenticator is a jwt authenticator entry trusting testIssuer's
// RS256 keys at jwksURL; extra are more keys ("leeway: 10s").
func jwtAuthenticator(name, jwksURL string, extra ...string) string {
	s := fmt.Sprintf("  %s:\n    type: jwt\n    issuer: %s\n    audiences: [%s]\n    algorithms: [RS256]\n    jwks_url: %q",
		name, testIssuer, testAudience, jwksURL)
	for _, e := range extra {
		s += "\n    " + e
	}
	return s
}

// authRoute is one GET route to the api upstream authenticated by auth
// (a YAML value: "[corp]" or "none"); extra are more route keys.
func authRoute(name, path, auth string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    method: GET\n    path: %q\n    upstream: api\n    auth: %s", name, path, auth)
	for _, e := range extra {
		s += "\n    " + e
	}
	return s
}

// readyStatus is the status of the gateway's /readyz.
func (g *gateway) readyStatus(t testing.TB) int {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// metricSum adds up the samples of metric name whose labels include every
// one of labels (`route="r"`, ...): for counters where one label (the
// reason, say) is not what the test is about. It is -1 when none matches.
func metricSum(t testing.TB, g *gateway, name string, labels ...string) float64 {
	t.Helper()
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(scrape(t, g)))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		set, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && (strings.Contains(","+set+",", ","+l+","))
		}
		if !all {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return -1
	}
	return sum
}

// ---- requests ---------------------------------------------------------

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// authClient is the client of the plain-HTTP tests: a timeout, so that a
// stalled gateway fails the test instead of hanging it.
var authClient = &http.Client{Timeout: 15 * time.Second}

// send makes a request with c (nil: authClient) and returns the answer.
// hdr are header name/value pairs, added in order: a name given twice is
// sent twice. A name given in lower case is sent in lower case.
func send(t testing.TB, c *http.Client, method, url string, hdr ...string) answer {
	t.Helper()
	if c == nil {
		c = authClient
	}
	if len(hdr)%2 != 0 {
		t.Fatalf("send: odd header list %q", hdr)
	}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(hdr); i += 2 {
		name := hdr[i]
		if name == strings.ToLower(name) {
			req.Header[name] = append(req.Header[name], hdr[i+1])
		} else {
			req.Header.Add(name, hdr[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// challenge is the answer's WWW-Authenticate values, joined.
func (a answer) challenge() string {
	return strings.Join(a.header.Values("Www-Authenticate"), ", ")
}

// problem checks that a is a problem+json answer with status and type
// slug (checkProblem) and returns its body.
func (a answer) problem(t testing.TB, status int, slug string) problemBody {
	t.Helper()
	resp := &http.Response{StatusCode: a.status, Header: a.header, Body: io.NopCloser(bytes.NewReader(a.body))}
	p := checkProblem(t, resp, status, slug)
	if p.Title == "" || p.RequestID == "" {
		t.Errorf("problem lacks title or request_id: %s", a.body)
	}
	return p
}

// runCLIStdin runs the binary with args and stdin.
func runCLIStdin(t testing.TB, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// discoveryServer is an OpenID provider on 127.0.0.1: its discovery
// document names issuer (its own URL when empty) and its JWKS.
type discoveryServer struct {
	srv  *httptest.Server
	jwks atomic.Int64 // key set fetches
}

func startDiscoveryServer(t testing.TB, issuer string, keys ...map[string]any) *discoveryServer {
	t.Helper()
	d := &discoveryServer{}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer": cmpOr(issuer, d.srv.URL), "jwks_uri": d.srv.URL + "/jwks",
				"id_token_signing_alg_values_supported": []string{"RS256"},
			})
		case "/jwks":
			d.jwks.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(d.srv.Close)
	return d
}
