package authn

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// The first key set load (and discovery) retries after jwksRetryMin,
// doubling up to jwksRetryMax (or the refresh interval when shorter), with
// jitter so that gateways restarted together do not fetch in step.
const (
	jwksRetryMin = 100 * time.Millisecond
	jwksRetryMax = 30 * time.Second
)

var (
	// errJWTUnknownKey: the token names no key of the key set (or names
	// none when the source needs a kid).
	errJWTUnknownKey = errors.New("no verification key for the token")
	// errJWTKeysUnavailable: the key set was never loaded; fail closed.
	errJWTKeysUnavailable = errors.New("verification keys not loaded")
	// errJWTKeyMismatch: the key found may not verify this token (its alg
	// or use forbid it).
	errJWTKeyMismatch = errors.New("verification key not usable for the token")
	// errJWKSNoKeys: a fetched key set holds no usable signature key; it
	// is treated as a failed fetch and the last good set is kept.
	errJWKSNoKeys = errors.New("the key set holds no usable signature key")
)

// jwtUseWhitelist are the JWK "use" values that may verify a signature:
// sig, or no use at all (RFC 7517 §4.2 makes it optional). use:enc keys
// never verify.
var jwtUseWhitelist = []jwkset.USE{jwkset.UseSig, ""}

// jwtKeys finds the key that verifies a token. Implementations are safe
// for concurrent use.
type jwtKeys interface {
	// key returns the verification key for token (whose alg the parser
	// already checked against the configured algorithms). Errors wrap
	// errJWTUnknownKey, errJWTKeysUnavailable, errJWTKeyMismatch or
	// keyfunc.ErrKeyfunc. The token's jku, x5u, jwk and x5c headers are
	// never read: only the configured source is trusted.
	key(ctx context.Context, token *jwt.Token) (any, error)
	// ready returns "" once keys are loaded, else why not.
	ready() string
	// age returns the time since the key set was last loaded.
	age() (time.Duration, bool)
	close()
}

// jwtKID returns the token's kid header; an absent, empty or non-string
// kid is no kid.
func jwtKID(token *jwt.Token) (string, bool) {
	kid, ok := token.Header[jwkset.HeaderKID].(string)
	return kid, ok && kid != ""
}

// jwtAlg returns the token's alg header (the parser has checked it).
func jwtAlg(token *jwt.Token) string {
	alg, _ := token.Header["alg"].(string)
	return alg
}

// jwtKeyUsable reports whether a JWK may verify signatures at all: its use
// is sig or absent, and its key is asymmetric unless symmetric keys are
// expected (secret). An HMAC key in a JWKS or key file is never used: with
// public key sources, that is the key-confusion attack.
func jwtKeyUsable(k jwkset.JWK, symmetric bool) bool {
	if use := k.Marshal().USE; use != jwkset.UseSig && use != "" {
		return false
	}
	switch k.Key().(type) {
	case []byte:
		return symmetric
	case *rsa.PublicKey, *rsa.PrivateKey, *ecdsa.PublicKey, *ecdsa.PrivateKey, ed25519.PublicKey, ed25519.PrivateKey:
		return !symmetric
	}
	return false
}

// jwtCheckKey applies keyfunc's checks (the JWK's alg, when set, must be
// the token's; its use must allow signatures) to a key found without a
// kid, and returns the public key.
func jwtCheckKey(k jwkset.JWK, alg string) (any, error) {
	m := k.Marshal()
	if m.ALG != "" && m.ALG.String() != alg {
		return nil, errJWTKeyMismatch
	}
	if m.USE != jwkset.UseSig && m.USE != "" {
		return nil, errJWTKeyMismatch
	}
	key := k.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	return key, nil
}

// jwtKeyFits reports whether key can verify tokens signed with alg.
func jwtKeyFits(k jwkset.JWK, alg string) bool {
	if a := k.Marshal().ALG; a != "" && a.String() != alg {
		return false
	}
	key := k.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	switch key := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case []byte:
		return strings.HasPrefix(alg, "HS")
	}
	return false
}

// jwtStaticKeys are keys from key_file or secret, loaded once.
type jwtStaticKeys struct {
	kf     keyfunc.Keyfunc
	single *jwkset.JWK // the only key, when there is exactly one
	loaded time.Time
}

// newJWTStaticKeys loads the key_file or the secret of cfg.
func newJWTStaticKeys(cfg *config.Authenticator) (*jwtStaticKeys, error) {
	var (
		keys []jwkset.JWK
		err  error
	)
	if cfg.Secret != "" {
		var k jwkset.JWK
		k, err = jwkset.NewJWKFromKey([]byte(cfg.Secret), jwkset.JWKOptions{Marshal: jwkset.JWKMarshalOptions{Private: true}})
		if err != nil {
			// jwkset's message names no key material, but stay coarse.
			return nil, errors.New("secret: cannot be used as an HMAC key")
		}
		keys = []jwkset.JWK{k}
	} else {
		keys, err = jwtLoadKeyFile(string(cfg.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
	}
	// Keep the signature keys (use:enc keys never verify); at least one
	// must fit a configured algorithm, or every token would be refused.
	usable := make([]jwkset.JWK, 0, len(keys))
	fits := false
	for _, k := range keys {
		if !jwtKeyUsable(k, cfg.Secret != "") {
			continue
		}
		usable = append(usable, k)
		for _, alg := range cfg.Algorithms {
			fits = fits || jwtKeyFits(k, alg)
		}
	}
	if !fits {
		return nil, errors.New("no signature key fits the configured algorithms")
	}
	keys = usable
	store := jwkset.NewMemoryStorage()
	for _, k := range keys {
		if err := store.KeyWrite(context.Background(), k); err != nil {
			return nil, fmt.Errorf("store keys: %w", err)
		}
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store, UseWhitelist: jwtUseWhitelist})
	if err != nil {
		return nil, fmt.Errorf("keyfunc: %w", err)
	}
	s := &jwtStaticKeys{kf: kf, loaded: time.Now()}
	if len(keys) == 1 {
		s.single = &keys[0]
	}
	return s, nil
}

func (s *jwtStaticKeys) key(ctx context.Context, token *jwt.Token) (any, error) {
	_, hasKID := jwtKID(token)
	// One key without a kid verifies every token (there is nothing to
	// match); one key with a kid also verifies tokens without a kid.
	if s.single != nil && (!hasKID || s.single.Marshal().KID == "") {
		return jwtCheckKey(*s.single, jwtAlg(token))
	}
	if !hasKID {
		return nil, errJWTUnknownKey
	}
	key, err := s.kf.KeyfuncCtx(ctx)(token)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		return nil, errJWTUnknownKey
	}
	return key, err
}

func (s *jwtStaticKeys) ready() string              { return "" }
func (s *jwtStaticKeys) age() (time.Duration, bool) { return time.Since(s.loaded), true }
func (s *jwtStaticKeys) close()                     {}

// jwtLoadKeyFile reads a PEM public key or certificate, a JWK or a JWK Set.
// Private key material is refused: the gateway only verifies. Errors name
// no key material.
func jwtLoadKeyFile(path string) ([]jwkset.JWK, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		return jwtParseJWKJSON(trimmed)
	}
	return jwtParsePEM(data)
}

// jwtParseJWKJSON parses a JWK or a JWK Set with jwkset, public parts only.
func jwtParseJWKJSON(data []byte) ([]jwkset.JWK, error) {
	var set struct {
		Keys *[]jwkset.JWKMarshal `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errors.New("not valid JSON")
	}
	var marshals []jwkset.JWKMarshal
	if set.Keys != nil {
		marshals = *set.Keys
	} else {
		var m jwkset.JWKMarshal
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, errors.New("not a JWK")
		}
		marshals = []jwkset.JWKMarshal{m}
	}
	if len(marshals) == 0 {
		return nil, errors.New("the JWK Set is empty")
	}
	keys := make([]jwkset.JWK, 0, len(marshals))
	for i, m := range marshals {
		if m.D != "" || m.K != "" {
			return nil, fmt.Errorf("key %d holds private or symmetric key material: give only public keys (HMAC secrets go in secret)", i)
		}
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// jwtParsePEM parses one PEM public key ("PUBLIC KEY" or "RSA PUBLIC KEY")
// or certificate. A certificate chain may follow the first certificate;
// several public keys need kids, so they belong in a JWK Set.
func jwtParsePEM(data []byte) ([]jwkset.JWK, error) {
	var (
		pub   any
		certs bool
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, errors.New("holds a private key: give the public key or certificate")
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "CERTIFICATE":
			if certs {
				continue // the rest of the chain
			}
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				k, certs = cert.PublicKey, true
			}
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			continue // e.g. EC PARAMETERS
		}
		if err != nil {
			return nil, fmt.Errorf("PEM %s: %w", block.Type, err)
		}
		if pub != nil {
			return nil, errors.New("holds several keys: use a JWK Set with a kid for each")
		}
		pub = k
	}
	if pub == nil {
		return nil, errors.New("no PEM public key, certificate, JWK or JWK Set in it")
	}
	k, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		return nil, fmt.Errorf("unsupported key: %w", err)
	}
	return []jwkset.JWK{k}, nil
}

// jwksStore is the key set of a remote source: jwkset's memory storage,
// except that a fetched set is filtered to signature keys first, and a set
// left empty is refused, so the last good set stays.
type jwksStore struct{ *jwkset.MemoryJWKSet }

func (s jwksStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	keep := make([]jwkset.JWK, 0, len(given))
	for _, k := range given {
		if jwtKeyUsable(k, false) {
			keep = append(keep, k)
		}
	}
	if len(keep) == 0 {
		return errJWKSNoKeys
	}
	return s.MemoryJWKSet.KeyReplaceAll(ctx, keep)
}

// jwtRemoteKeys is a key set fetched from jwks_url (or from the jwks_uri
// that discovery finds): loaded in the background at start with retries,
// refreshed every refresh_interval, and fetched again for an unknown kid
// at most once per unknown_kid_refresh. A failed fetch keeps the last good
// set. Until a set was loaded once, key fails closed.
//
// One goroutine (run) makes every fetch, so fetches never overlap. Each
// fetch is one jwkset.NewStorageFromHTTP call without a refresh interval:
// jwkset fetches and parses the set once into our storage and starts no
// goroutine. Its own scheduling is not used: it would block construction
// on the first fetch, its refresh goroutine cannot be waited for, and
// keyfunc's unknown-kid limiter makes requests wait for a token (up to a
// minute by default) and reuses that wait as the fetch timeout.
type jwtRemoteKeys struct {
	issuer    string // discovery only
	refresh   time.Duration
	timeout   time.Duration
	retryMax  time.Duration
	client    *http.Client
	log       *zap.Logger
	succeeded prometheus.Counter // nil when not counted
	failed    prometheus.Counter

	store jwksStore
	kf    keyfunc.Keyfunc
	// gate admits one unknown-kid fetch per unknown_kid_refresh. It starts
	// full and the start-up load does not take from it, so a key rotated
	// in right after start is fetched at once.
	gate     *rate.Limiter
	loadedAt atomic.Int64 // unix nanoseconds of the last good load; 0 = never

	// url is the JWKS URL, "" until discovery found it; only run uses it.
	url string

	mu       sync.Mutex
	inflight chan struct{} // closed when the asked unknown-kid fetch ends
	closed   bool          // run has ended: no fetch will come
	kick     chan struct{} // asks run for an unknown-kid fetch

	stop context.CancelFunc
	done chan struct{} // closed when run has ended
}

// newJWTRemoteKeys starts loading the key set in the background.
func newJWTRemoteKeys(name string, cfg *config.Authenticator, deps Deps, log *zap.Logger) (*jwtRemoteKeys, error) {
	switch {
	case cfg.Refresh <= 0:
		return nil, errors.New("refresh_interval must be greater than 0")
	case cfg.MinRefresh <= 0:
		return nil, errors.New("unknown_kid_refresh must be greater than 0")
	case cfg.Timeout <= 0:
		return nil, errors.New("timeout must be greater than 0")
	case cfg.Discovery && cfg.Issuer == "":
		return nil, errors.New("discovery needs issuer")
	}
	if cfg.JWKSURL != "" {
		if err := config.CheckIdPURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("jwks_url: %w", err)
		}
	}
	client, err := newIdPClient(*cfg)
	if err != nil {
		return nil, err
	}
	client.Transport = jwksBodyLimit{next: client.Transport}
	r := &jwtRemoteKeys{
		refresh:  cfg.Refresh.D(),
		timeout:  cfg.Timeout.D(),
		retryMax: min(jwksRetryMax, cfg.Refresh.D()),
		client:   client,
		log:      log,
		store:    jwksStore{jwkset.NewMemoryStorage()},
		gate:     rate.NewLimiter(rate.Every(cfg.MinRefresh.D()), 1),
		url:      cfg.JWKSURL,
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if cfg.Discovery {
		r.issuer = cfg.Issuer
	}
	if deps.JWKSRefresh != nil {
		r.succeeded = deps.JWKSRefresh.WithLabelValues(name, "success")
		r.failed = deps.JWKSRefresh.WithLabelValues(name, "failure")
	}
	r.kf, err = keyfunc.New(keyfunc.Options{Storage: r.store, UseWhitelist: jwtUseWhitelist})
	if err != nil {
		return nil, fmt.Errorf("keyfunc: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go r.run(ctx)
	return r, nil
}

// run loads the key set until it succeeds once, then refreshes it every
// refresh interval and when an unknown kid asks, until ctx ends.
func (r *jwtRemoteKeys) run(ctx context.Context) {
	defer close(r.done)
	defer func() {
		// Release requests waiting on a fetch that will not come.
		r.mu.Lock()
		r.closed = true
		if r.inflight != nil {
			close(r.inflight)
			r.inflight = nil
		}
		r.mu.Unlock()
	}()
	for delay := jwksRetryMin; !r.load(ctx); delay = min(2*delay, r.retryMax) {
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	ticker := time.NewTicker(r.refresh)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.load(ctx)
		case <-r.kick:
			r.load(ctx)
			r.mu.Lock()
			if r.inflight != nil {
				close(r.inflight)
				r.inflight = nil
			}
			r.mu.Unlock()
		}
	}
}

// load fetches the key set once (after discovery, when it has not found
// the URL yet) and reports whether it succeeded. Every attempt is counted.
func (r *jwtRemoteKeys) load(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if r.url == "" {
		d, err := discover(ctx, r.client, r.issuer)
		if err == nil {
			err = config.CheckIdPURL(d.JWKSURI)
		}
		if err != nil {
			r.fail(ctx, "discovery", err)
			return false
		}
		r.url = d.JWKSURI
	}
	// Without a refresh interval, NewStorageFromHTTP fetches once into
	// r.store (replacing the set only when the whole set parsed) and
	// starts no goroutine.
	_, err := jwkset.NewStorageFromHTTP(r.url, jwkset.HTTPClientStorageOptions{
		Client:      r.client,
		Ctx:         ctx,
		HTTPTimeout: r.timeout,
		Storage:     r.store,
	})
	if err != nil {
		r.fail(ctx, "jwks", err)
		return false
	}
	if r.loadedAt.Swap(time.Now().UnixNano()) == 0 {
		r.log.Info("jwks loaded")
	}
	if r.succeeded != nil {
		r.succeeded.Inc()
	}
	return true
}

func (r *jwtRemoteKeys) fail(ctx context.Context, step string, err error) {
	if errors.Is(ctx.Err(), context.Canceled) {
		return // cut short by close: not the identity provider's failure
	}
	if r.failed != nil {
		r.failed.Inc()
	}
	r.log.Warn("jwks fetch failed; keeping the last good key set",
		zap.String("step", step), zap.String("error", jwksSafeError(err)), zap.Bool("keys_loaded", r.loadedAt.Load() != 0))
}

func (r *jwtRemoteKeys) key(ctx context.Context, token *jwt.Token) (any, error) {
	if r.loadedAt.Load() == 0 {
		return nil, errJWTKeysUnavailable
	}
	// A JWKS holds several keys: a token must say which (keyfunc would
	// otherwise try them all, without its alg and use checks).
	if _, ok := jwtKID(token); !ok {
		return nil, errJWTUnknownKey
	}
	key, err := r.kf.KeyfuncCtx(ctx)(token)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return key, err
	}
	if !r.refreshUnknown(ctx) {
		return nil, errJWTUnknownKey
	}
	key, err = r.kf.KeyfuncCtx(ctx)(token)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		return nil, errJWTUnknownKey
	}
	return key, err
}

// refreshUnknown asks run for a fetch of the key set, for a kid it does
// not hold, when the gate allows, and waits for it. Requests that arrive
// while such a fetch is asked for or runs wait for it instead of asking
// again, so a key rotated in is found by all of them. It reports whether
// a fetch ended.
func (r *jwtRemoteKeys) refreshUnknown(ctx context.Context) bool {
	r.mu.Lock()
	ch := r.inflight
	if ch == nil {
		if r.closed || !r.gate.Allow() {
			r.mu.Unlock()
			return false
		}
		ch = make(chan struct{})
		r.inflight = ch
		select {
		case r.kick <- struct{}{}:
		default: // a kick is already pending; it will close ch
		}
	}
	r.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *jwtRemoteKeys) ready() string {
	if r.loadedAt.Load() == 0 {
		return "signing keys not loaded yet"
	}
	return ""
}

func (r *jwtRemoteKeys) age() (time.Duration, bool) {
	at := r.loadedAt.Load()
	if at == 0 {
		return 0, false
	}
	return time.Since(time.Unix(0, at)), true
}

// close stops run and waits for it; safe to call more than once.
func (r *jwtRemoteKeys) close() {
	r.stop()
	<-r.done
	r.client.CloseIdleConnections()
}

// jwksSafeError is err for the log without URLs (a query string could
// hold a credential): a failed request is reported by its cause only.
func jwksSafeError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return "request failed: " + ue.Err.Error()
	}
	return err.Error()
}

// jwksBodyLimit caps every identity provider response body at
// maxIdPResponse: jwkset decodes the body without a limit.
type jwksBodyLimit struct{ next http.RoundTripper }

func (t jwksBodyLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = http.MaxBytesReader(nil, resp.Body, maxIdPResponse)
	return resp, nil
}
