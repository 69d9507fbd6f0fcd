package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/bulwark-gateway/bulwark/internal/cache"
)

const (
	// maxDPoPProof caps a proof before anything decodes it: a proof is a
	// header with one public key and a few short claims (an RSA-4096 proof
	// is about 2 KiB).
	maxDPoPProof = 8 << 10
	// maxDPoPJTI caps the proof id: it is hashed into the replay key, and
	// a long one only costs the gateway.
	maxDPoPJTI = 256
	// minDPoPRSABits and maxDPoPRSABits bound an RSA proof key: smaller
	// is breakable (RFC 7518 §3.3 wants 2048), larger only makes each
	// verification cost more.
	minDPoPRSABits = 2048
	maxDPoPRSABits = 8192
	// dpopReplaySlack keeps a proof id a little past the end of its
	// acceptance window: iat has whole-second precision.
	dpopReplaySlack = time.Second
	// defaultDPoPReplaySize is the replay memory of a verifier built
	// without a store (the config default of dpop_replay_cache_size).
	defaultDPoPReplaySize = 100000
	// dpopKeyCacheSize and dpopKeyCacheTTL bound the memory of proof
	// headers already verified: a client signs every proof with the same
	// key, so its header (typ, alg, jwk) repeats, and the key need not be
	// parsed and thumbprinted again.
	dpopKeyCacheSize = 4096
	dpopKeyCacheTTL  = time.Hour
)

// dpopCurves maps the asymmetric JWS algorithms a proof may use to the key
// they need: the EC curve for ES*, nil for RSA (RS*, PS*) and Ed25519
// (EdDSA). Anything else (none, HS*) is never accepted, whatever the
// configuration says: a proof carries its own key, so a MAC proves nothing.
var dpopCurves = map[string]elliptic.Curve{
	"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521(),
	"RS256": nil, "RS384": nil, "RS512": nil,
	"PS256": nil, "PS384": nil, "PS512": nil,
	"EdDSA": nil,
}

// dpopVerifier checks DPoP proofs (RFC 9449 §4.3). Its state is the replay
// store and a bounded cache of verified proof headers; it is safe for
// concurrent use.
type dpopVerifier struct {
	algs   map[string]bool
	parser *jwt.Parser
	maxAge time.Duration
	replay replayStore
	// keys maps the SHA-256 of a proof's header segment to its checked
	// key; only headers of proofs whose signature verified get in.
	keys *cache.Cache[dpopKey]
}

// dpopKey is a proof header's public key and its RFC 7638 thumbprint.
type dpopKey struct {
	pub        crypto.PublicKey
	thumbprint string
}

// dpopClaims are the claims of a proof (RFC 9449 §4.2). Claims validation
// of golang-jwt is off: every check is done by verify, on these fields.
type dpopClaims struct {
	jwt.RegisteredClaims        // jti (ID), iat (IssuedAt)
	HTM                  string `json:"htm"`
	HTU                  string `json:"htu"`
	ATH                  string `json:"ath"`
}

// newDPoPVerifier returns a verifier that accepts proofs signed with one of
// algorithms, whose iat lies within maxAge of now (maxAge > 0; the config
// guarantees it), and whose id replay has not seen yet. Algorithms that are
// not asymmetric JWS algorithms are dropped (none and HS* can never sign a
// proof); with none left every proof is refused. A nil replay gets an
// in-memory store of the default size.
func newDPoPVerifier(algorithms []string, maxAge time.Duration, replay replayStore) *dpopVerifier {
	algs := make(map[string]bool, len(algorithms))
	valid := make([]string, 0, len(algorithms))
	for _, alg := range algorithms {
		if _, ok := dpopCurves[alg]; ok && !algs[alg] {
			algs[alg] = true
			valid = append(valid, alg)
		}
	}
	if replay == nil {
		replay = newMemoryReplayStore(defaultDPoPReplaySize)
	}
	return &dpopVerifier{
		algs: algs,
		// golang-jwt checks alg only when the list is non-nil; the
		// impossible name "-" keeps it non-nil whatever was configured.
		parser: jwt.NewParser(
			jwt.WithValidMethods(append(valid, "-")),
			jwt.WithoutClaimsValidation(),
			jwt.WithStrictDecoding(),
		),
		maxAge: maxAge,
		replay: replay,
		keys:   cache.New[dpopKey](dpopKeyCacheSize, nil),
	}
}

// dpopRefusal returns the 401 for a refused proof. Reasons: dpop_missing,
// dpop_invalid, dpop_key_mismatch, dpop_replayed. The description stays
// coarse: which check failed is for the audit log (the reason), not for
// the client tuning a forgery.
func dpopRefusal(reason string) *Failure {
	description := "the DPoP proof is invalid"
	switch reason {
	case "dpop_missing":
		description = "a DPoP proof is required"
	case "dpop_replayed":
		description = "the DPoP proof was already used"
	case "dpop_key_mismatch":
		description = "the DPoP proof key is not the key bound to the access token"
	}
	return &Failure{Status: http.StatusUnauthorized, Reason: reason, Code: "invalid_dpop_proof", Description: description}
}

// verify checks the request's DPoP proof: proofs is r.Header.Values("DPoP"),
// method and htu are the request's method and URL as the client addressed it
// (scheme://host[:port]/path, no query, no fragment), accessToken is the
// bearer token (the proof's ath must be its base64url SHA-256; "" when the
// proof is not presented with a token), jkt is the token's cnf.jkt ("" when
// the token is unbound: then the proof only has to be valid).
//
// It returns nil, a 401 *Failure with Code invalid_dpop_proof and Reason
// dpop_missing, dpop_invalid, dpop_key_mismatch or dpop_replayed, or a 503
// (Reason dpop_replay_unavailable) when the replay store cannot answer:
// without it a proof could be replayed, so the request is refused.
func (v *dpopVerifier) verify(ctx context.Context, proofs []string, method, htu, accessToken, jkt string, now time.Time) *Failure {
	switch {
	case len(proofs) == 0:
		return dpopRefusal("dpop_missing")
	case len(proofs) > 1, v == nil:
		return dpopRefusal("dpop_invalid")
	}
	proof := proofs[0]
	// Cheap shape checks before any decoding: size, then compact JWS
	// (three segments; JSON serialization and JWE are refused here).
	if len(proof) > maxDPoPProof || strings.Count(proof, ".") != 2 {
		return dpopRefusal("dpop_invalid")
	}
	// Everything proofKey checks is a function of the header segment, so
	// its answer for a header whose signature once verified is reused.
	headerID := sha256.Sum256([]byte(proof[:strings.IndexByte(proof, '.')]))
	key, cached := v.keys.Get(headerID)
	var claims dpopClaims
	// The keyfunc runs after golang-jwt checked alg against the allowed
	// list; it checks the rest of the header and returns the embedded key.
	_, err := v.parser.ParseWithClaims(proof, &claims, func(t *jwt.Token) (any, error) {
		if cached {
			return key.pub, nil
		}
		pub, err := v.proofKey(t)
		if err != nil {
			return nil, err
		}
		tp, err := thumbprint(pub)
		key = dpopKey{pub: pub, thumbprint: tp}
		return pub, err
	})
	if err != nil || key.pub == nil {
		return dpopRefusal("dpop_invalid")
	}
	if !cached {
		v.keys.Put(headerID, key, time.Now().Add(dpopKeyCacheTTL))
	}
	if !v.claimsValid(&claims, method, htu, accessToken, now) {
		return dpopRefusal("dpop_invalid")
	}
	tp := key.thumbprint
	if jkt != "" && tp != jkt {
		return dpopRefusal("dpop_key_mismatch")
	}
	// Last, on an otherwise valid proof only: garbage cannot fill the
	// store, and a refused proof does not burn its id. The id is scoped to
	// the key, so two clients that pick the same jti do not collide.
	h := sha256.New()
	h.Write([]byte(tp))
	h.Write([]byte{0})
	h.Write([]byte(claims.ID))
	var sum [sha256.Size]byte
	var id [43]byte // base64url of 32 bytes, no padding
	base64.RawURLEncoding.Encode(id[:], h.Sum(sum[:0]))
	until := claims.IssuedAt.Add(v.maxAge + dpopReplaySlack)
	seen, err := v.replay.seen(ctx, string(id[:]), until)
	switch {
	case err != nil:
		return unavailable("dpop_replay_unavailable", "the DPoP proof cannot be checked now")
	case seen:
		return dpopRefusal("dpop_replayed")
	}
	return nil
}

// proofKey checks the proof's JOSE header and returns its embedded public
// key: typ exactly dpop+jwt, no crit (no extension is understood), jwk a
// public key only, of the type and size alg needs.
func (v *dpopVerifier) proofKey(t *jwt.Token) (crypto.PublicKey, error) {
	if typ, _ := t.Header["typ"].(string); typ != "dpop+jwt" {
		return nil, errors.New("typ is not dpop+jwt")
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("crit is not supported")
	}
	alg := t.Method.Alg()
	curve, ok := dpopCurves[alg]
	if !ok || !v.algs[alg] {
		return nil, errors.New("alg not allowed")
	}
	members, ok := t.Header["jwk"].(map[string]any)
	if !ok {
		return nil, errors.New("jwk missing")
	}
	// RFC 9449 §4.2: the jwk "MUST NOT contain a private key". jwkset
	// would silently drop these members; refuse instead, since a client
	// that leaks its key has lost the binding.
	for _, m := range [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := members[m]; ok {
			return nil, errors.New("jwk holds private key material")
		}
	}
	raw, err := json.Marshal(members)
	if err != nil {
		return nil, err
	}
	// Private: false makes jwkset refuse symmetric (oct) keys and never
	// build a private key.
	jwk, err := jwkset.NewJWKFromRawJSON(raw, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, err
	}
	switch k := jwk.Key().(type) {
	case *ecdsa.PublicKey:
		if curve == nil || k.Curve != curve {
			return nil, errors.New("jwk does not fit alg")
		}
		return k, nil
	case *rsa.PublicKey:
		if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			return nil, errors.New("jwk does not fit alg")
		}
		if bits := k.N.BitLen(); bits < minDPoPRSABits || bits > maxDPoPRSABits {
			return nil, errors.New("RSA key size out of range")
		}
		return k, nil
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return nil, errors.New("jwk does not fit alg")
		}
		return k, nil
	default:
		// X25519 (ecdh) cannot sign.
		return nil, errors.New("unsupported jwk")
	}
}

// claimsValid checks jti, htm, htu, iat and ath (RFC 9449 §4.3 steps 9-12).
func (v *dpopVerifier) claimsValid(c *dpopClaims, method, htu, accessToken string, now time.Time) bool {
	if c.ID == "" || len(c.ID) > maxDPoPJTI {
		return false
	}
	if method == "" || c.HTM != method {
		return false
	}
	if !sameHTU(c.HTU, htu) {
		return false
	}
	if c.IssuedAt == nil {
		return false
	}
	if age := now.Sub(c.IssuedAt.Time); age > v.maxAge || age < -v.maxAge {
		return false
	}
	if accessToken != "" {
		var sum [sha256.Size]byte
		h := sha256.New()
		h.Write([]byte(accessToken))
		var ath [43]byte
		base64.RawURLEncoding.Encode(ath[:], h.Sum(sum[:0]))
		if c.ATH != string(ath[:]) {
			return false
		}
	}
	return true
}

// sameHTU reports whether a proof's htu names the request URL, after the
// normalization RFC 9449 §4.3 asks for (RFC 3986 §6.2.2 and §6.2.3): scheme
// and host compare case-insensitively, a default port (:443 for https, :80
// for http) equals no port, an empty path equals "/", percent-encodings
// compare by value for unreserved characters and case-insensitively
// otherwise; the proof's query and fragment are ignored. Only http and https
// URLs with a host and no userinfo match.
func sameHTU(proof, request string) bool {
	p, ok := canonicalHTU(proof)
	if !ok {
		return false
	}
	r, ok := canonicalHTU(request)
	return ok && p == r
}

// canonicalHTU returns the normalized form sameHTU compares.
func canonicalHTU(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + normalizePercent(path), true
}

// normalizePercent decodes percent-encoded unreserved characters and
// upper-cases the hex digits of the others (RFC 3986 §6.2.2.1, §6.2.2.2).
func normalizePercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' || i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			b.WriteByte(c)
			continue
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(d) {
			b.WriteByte(d)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex(p[i+1]))
			b.WriteByte(upperHex(p[i+2]))
		}
		i += 2
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// thumbprint returns the RFC 7638 JWK SHA-256 thumbprint (base64url, no
// padding) of a public key (*ecdsa.PublicKey, *rsa.PublicKey,
// ed25519.PublicKey; a private key gives its public key's thumbprint). The
// members come from jwkset's encoding of the key, so the thumbprint does not
// depend on how a client spelled its JWK (padding, leading zeros).
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	m := jwk.Marshal()
	// RFC 7638 §3.2: the required members only, in lexicographic order,
	// no whitespace.
	b := make([]byte, 0, 64+len(m.N)+len(m.X)+len(m.Y))
	switch m.KTY {
	case jwkset.KtyEC:
		b = append(b, `{"crv":`...)
		b = appendJSONString(b, string(m.CRV))
		b = append(b, `,"kty":"EC","x":`...)
		b = appendJSONString(b, m.X)
		b = append(b, `,"y":`...)
		b = appendJSONString(b, m.Y)
	case jwkset.KtyRSA:
		b = append(b, `{"e":`...)
		b = appendJSONString(b, m.E)
		b = append(b, `,"kty":"RSA","n":`...)
		b = appendJSONString(b, m.N)
	case jwkset.KtyOKP:
		b = append(b, `{"crv":`...)
		b = appendJSONString(b, string(m.CRV))
		b = append(b, `,"kty":"OKP","x":`...)
		b = appendJSONString(b, m.X)
	default:
		return "", fmt.Errorf("thumbprint: unsupported key type %q", m.KTY)
	}
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// appendJSONString appends s as a JSON string. The members of a public key
// are base64url and curve names, which need no escaping; anything else goes
// through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isUnreserved(c) {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// replayStore remembers proof ids; seen reports whether id was already used,
// and remembers it until `until`. Implementations are safe for concurrent
// use: a bounded in-memory one per authenticator, and a shared one on the
// Redis rate-limit store (ReplayStore). On an error the caller refuses the
// proof.
type replayStore interface {
	seen(ctx context.Context, id string, until time.Time) (bool, error)
}

// memoryReplayStore is a bounded in-process replayStore. When full it
// forgets the oldest id first (FIFO): ids live at most a proof's acceptance
// window, so the oldest is the nearest to expiring anyway, and a replay
// slips through only when more than size proofs arrive within one window.
// A random eviction (as in cache) could forget a fresh id at any load.
// Memory is about 100 bytes per id, and grows only with use.
type memoryReplayStore struct {
	mu      sync.Mutex
	expires map[[sha256.Size]byte]int64 // unix nanoseconds
	ring    [][sha256.Size]byte         // ids in insertion order, from head
	head, n int
	size    int
	now     func() time.Time
}

// newMemoryReplayStore returns an in-memory replayStore that holds at most
// size ids (at least 1).
func newMemoryReplayStore(size int) replayStore {
	size = max(size, 1)
	return &memoryReplayStore{
		expires: make(map[[sha256.Size]byte]int64, min(size, 1024)),
		size:    size,
		now:     time.Now,
	}
}

func (s *memoryReplayStore) seen(_ context.Context, id string, until time.Time) (bool, error) {
	// A fixed-size key: memory per id does not depend on the caller.
	k := sha256.Sum256([]byte(id))
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.expires[k]; ok {
		if now < exp {
			return true, nil
		}
		s.expires[k] = until.UnixNano() // expired: a new use, same ring slot
		return false, nil
	}
	// Forget a few expired ids at the head, so an idle store shrinks, then
	// the oldest one if still full.
	for i := 0; i < 4 && s.n > 0 && s.expires[s.ring[s.head]] <= now; i++ {
		s.pop()
	}
	if s.n >= s.size {
		s.pop()
	}
	s.push(k)
	s.expires[k] = until.UnixNano()
	return false, nil
}

// push appends k to the ring, growing it (up to size) when full.
func (s *memoryReplayStore) push(k [sha256.Size]byte) {
	if s.n == len(s.ring) {
		grown := make([][sha256.Size]byte, min(max(2*len(s.ring), 64), s.size))
		for i := range s.n {
			grown[i] = s.ring[(s.head+i)%len(s.ring)]
		}
		s.ring, s.head = grown, 0
	}
	s.ring[(s.head+s.n)%len(s.ring)] = k
	s.n++
}

// pop forgets the oldest id.
func (s *memoryReplayStore) pop() {
	delete(s.expires, s.ring[s.head])
	s.head = (s.head + 1) % len(s.ring)
	s.n--
}

// len returns the number of ids held, expired ones included.
func (s *memoryReplayStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.expires)
}

// ReplayStore is a replay memory shared by every gateway instance (the
// Redis rate-limit store): Remember records key until the given time and
// reports whether it was new.
type ReplayStore interface {
	Remember(ctx context.Context, key string, until time.Time) (bool, error)
}

// sharedReplay checks proof ids in a shared store. When the store fails
// and fallback is set (rate_limits.failure_mode: open), it uses this
// instance's memory instead; otherwise the error refuses the proof.
type sharedReplay struct {
	shared   ReplayStore
	local    replayStore
	fallback bool
}

func (s *sharedReplay) seen(ctx context.Context, id string, until time.Time) (bool, error) {
	first, err := s.shared.Remember(ctx, "dpop:"+id, until)
	if err != nil {
		if s.fallback {
			return s.local.seen(ctx, id, until)
		}
		return false, err
	}
	// Remember it locally too, so a fallback right after still knows it.
	_, _ = s.local.seen(ctx, id, until)
	return !first, nil
}
