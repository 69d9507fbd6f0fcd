package authn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/cache"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// Discovery retries start after discoveryRetryMin and double up to
// discoveryRetryMax, so a restarting identity provider is not hammered.
const (
	discoveryRetryMin = 250 * time.Millisecond
	discoveryRetryMax = 30 * time.Second
)

// introspectionAuth verifies opaque bearer tokens by asking the
// authorization server (RFC 7662). It is safe for concurrent use.
//
// Answers are cached by the token's SHA-256: active ones until the token's
// exp or cache_ttl, whichever comes first; refusals (inactive, expired,
// wrong issuer, audience or client) for negative_cache_ttl. Positive and
// negative answers live in separate caches, so a flood of bogus tokens
// cannot evict the verified ones. Errors (endpoint down, timeout, bad
// answer) are never cached. Concurrent requests with the same uncached
// token share one call.
type introspectionAuth struct {
	name      string
	cfg       config.Authenticator
	log       *zap.Logger
	client    *http.Client  // introspection calls: redirects are refused
	discovery *http.Client  // discovery document fetches
	basic     config.Secret // the Authorization header value; Secret so it never prints
	now       func() time.Time

	// endpoint is nil until discovery found it (set from the start when
	// the config names it).
	endpoint atomic.Pointer[string]

	pos *cache.Cache[*exchange.Principal]
	neg *cache.Cache[*Failure]

	mu       sync.Mutex
	inflight map[[32]byte]*introspectionCall

	stop      context.CancelFunc
	done      chan struct{} // closed when background discovery has ended
	closeOnce sync.Once
}

// introspectionCall is one call to the endpoint that concurrent requests
// for the same token wait on; p and err are set before done closes.
type introspectionCall struct {
	done chan struct{}
	p    *exchange.Principal
	err  error
}

var _ Authenticator = (*introspectionAuth)(nil)

// newIntrospection builds an introspection authenticator. With discovery,
// it starts finding the endpoint in the background (retrying until Close);
// until then Authenticate fails closed with 503 and Ready says why.
func newIntrospection(name string, cfg config.Authenticator, deps Deps) (*introspectionAuth, error) {
	if cfg.Timeout <= 0 {
		return nil, errors.New("introspection: timeout must be greater than 0")
	}
	if cfg.MaxTokenSize <= 0 {
		return nil, errors.New("introspection: max_token_size must be greater than 0")
	}
	if cfg.CacheTTL <= 0 {
		return nil, errors.New("introspection: cache_ttl must be greater than 0")
	}
	if cfg.NegativeCacheTTL < 0 {
		return nil, errors.New("introspection: negative_cache_ttl must not be negative")
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("introspection: client_id and client_secret are required")
	}
	switch {
	case cfg.Endpoint == "" && !cfg.Discovery:
		return nil, errors.New("introspection: endpoint (or discovery with issuer) is required")
	case cfg.Endpoint != "" && cfg.Discovery:
		return nil, errors.New("introspection: use endpoint or discovery, not both")
	case cfg.Discovery && cfg.Issuer == "":
		return nil, errors.New("introspection: discovery needs issuer")
	case cfg.Endpoint != "":
		if err := config.CheckIdPURL(cfg.Endpoint); err != nil {
			return nil, fmt.Errorf("introspection: endpoint: %w", err)
		}
	}
	base, err := newIdPClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	// The POST carries the token and the client credentials: never replay
	// it to wherever a redirect points. A redirect is a non-200 answer.
	client := *base
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	log := deps.Log
	if log == nil {
		log = zap.NewNop()
	}
	// RFC 6749 §2.3.1: client id and secret are form-url-encoded before
	// they go into HTTP Basic (a ':' in the id would otherwise split it).
	cred := url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(string(cfg.ClientSecret))
	a := &introspectionAuth{
		name:      name,
		cfg:       cfg,
		log:       log, // the registry already names the authenticator
		client:    &client,
		discovery: base,
		basic:     config.Secret("Basic " + base64.StdEncoding.EncodeToString([]byte(cred))),
		now:       time.Now,
		pos:       cache.New[*exchange.Principal](cfg.CacheSize, nil),
		neg:       cache.New[*Failure](cfg.CacheSize, nil),
		inflight:  make(map[[32]byte]*introspectionCall),
		done:      make(chan struct{}),
	}
	if !cfg.Discovery {
		endpoint := cfg.Endpoint
		a.endpoint.Store(&endpoint)
		a.stop = func() {}
		close(a.done)
		return a, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	go a.discover(ctx)
	return a, nil
}

// Authenticate introspects the request's bearer token (or its cookie, when
// configured). It returns ErrNoCredentials without a token, a 401 *Failure
// for a token the server does not vouch for, and a 503 *Failure when the
// endpoint cannot be asked (fail closed).
func (a *introspectionAuth) Authenticate(ctx context.Context, in *Input) (*exchange.Principal, error) {
	token := a.token(in)
	if token == "" {
		return nil, ErrNoCredentials
	}
	if int64(len(token)) > int64(a.cfg.MaxTokenSize) {
		return nil, invalidToken("too_large", "the access token is too large")
	}
	key := sha256.Sum256([]byte(token))
	if p, f := a.cached(key); p != nil || f != nil {
		return resultOf(p, f)
	}
	endpoint := a.endpoint.Load()
	if endpoint == nil {
		return nil, unavailable("introspection_error", "the access token cannot be checked now")
	}

	a.mu.Lock()
	// Look again under the lock: a call that just ended stored its answer
	// before it left the in-flight map, so this never calls twice.
	if p, f := a.cached(key); p != nil || f != nil {
		a.mu.Unlock()
		return resultOf(p, f)
	}
	if c, ok := a.inflight[key]; ok {
		a.mu.Unlock()
		select {
		case <-c.done:
			return c.p, c.err
		case <-ctx.Done():
			return nil, unavailable("introspection_error", "the access token cannot be checked now")
		}
	}
	c := &introspectionCall{done: make(chan struct{})}
	a.inflight[key] = c
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.inflight, key)
		a.mu.Unlock()
		close(c.done)
	}()

	// The call outlives this request's cancellation (bounded by the
	// timeout): other requests with the same token may be waiting on it.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Timeout.D())
	defer cancel()
	c.p, c.err = a.introspect(callCtx, key, token, *endpoint)
	return c.p, c.err
}

// token returns the bearer token, else the configured cookie's value.
func (a *introspectionAuth) token(in *Input) string {
	if in == nil {
		return ""
	}
	if in.Token != "" {
		return in.Token
	}
	if a.cfg.CookieName == "" || in.Request == nil {
		return ""
	}
	if c, err := in.Request.Cookie(a.cfg.CookieName); err == nil {
		return c.Value
	}
	return ""
}

// cached returns the cached verdict on the token hash key, if any.
func (a *introspectionAuth) cached(key [32]byte) (*exchange.Principal, *Failure) {
	if p, ok := a.pos.Get(key); ok {
		return p, nil
	}
	if f, ok := a.neg.Get(key); ok {
		return nil, f
	}
	return nil, nil
}

// resultOf turns a verdict into Authenticate's results without a typed nil
// error.
func resultOf(p *exchange.Principal, f *Failure) (*exchange.Principal, error) {
	if f != nil {
		return nil, f
	}
	return p, nil
}

// introspect asks the endpoint about token, judges the answer and caches
// the verdict (never an error).
func (a *introspectionAuth) introspect(ctx context.Context, key [32]byte, token, endpoint string) (*exchange.Principal, error) {
	answer, err := a.post(ctx, endpoint, token)
	if err != nil {
		if ce := a.log.Check(zap.WarnLevel, "token introspection failed"); ce != nil {
			ce.Write(zap.String("reason", "introspection_error"), zap.String("cause", introspectionCause(err)))
		}
		return nil, unavailable("introspection_error", "the access token cannot be checked now")
	}
	now := a.now()
	p, f, err := a.judge(answer, now)
	if err != nil {
		if ce := a.log.Check(zap.WarnLevel, "token introspection answer refused"); ce != nil {
			ce.Write(zap.String("reason", "introspection_error"), zap.String("cause", err.Error()))
		}
		return nil, unavailable("introspection_error", "the access token cannot be checked now")
	}
	if f != nil {
		a.neg.Put(key, f, now.Add(a.cfg.NegativeCacheTTL.D()))
		return nil, f
	}
	expires := now.Add(a.cfg.CacheTTL.D())
	if !p.Expiry.IsZero() && p.Expiry.Before(expires) {
		expires = p.Expiry
	}
	a.pos.Put(key, p, expires)
	return p, nil
}

// judge turns an introspection answer into a principal or a 401 verdict.
// An error means the answer itself is unusable (fail closed, not cached).
func (a *introspectionAuth) judge(answer map[string]any, now time.Time) (*exchange.Principal, *Failure, error) {
	if active, _ := answer["active"].(bool); !active {
		return nil, invalidToken("inactive", "the access token is not active"), nil
	}
	if v, ok := answer["exp"]; ok {
		if _, isNumber := v.(float64); !isNumber {
			return nil, nil, errors.New("exp is not a number")
		}
	}
	p := principalFromClaims(a.name, "introspection", &a.cfg, answer)
	if !p.Expiry.IsZero() && !now.Before(p.Expiry) {
		return nil, invalidToken("expired", "the access token expired"), nil
	}
	if a.cfg.Issuer != "" && p.Issuer != a.cfg.Issuer {
		return nil, invalidToken("bad_issuer", "the access token is not from an accepted issuer"), nil
	}
	if len(a.cfg.Audiences) > 0 && !introspectionAudience(answer["aud"], a.cfg.Audiences) {
		return nil, invalidToken("bad_audience", "the access token is not for this API"), nil
	}
	if len(a.cfg.ClientIDs) > 0 && !slices.Contains(a.cfg.ClientIDs, stringClaim(answer, "client_id")) {
		return nil, invalidToken("bad_client", "the access token was issued to a client that is not accepted"), nil
	}
	return p, nil, nil
}

// introspectionAudience reports whether aud (a string or an array of strings)
// names one of want.
func introspectionAudience(aud any, want []string) bool {
	switch aud := aud.(type) {
	case string:
		return slices.Contains(want, aud)
	case []any:
		for _, v := range aud {
			if s, ok := v.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}

// post sends the introspection request and decodes a JSON object of at
// most maxIdPResponse bytes. Errors never hold the token or the body.
func (a *introspectionAuth) post(ctx context.Context, endpoint, token string) (map[string]any, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, errors.New("bad endpoint URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", string(a.basic))
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Read a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIdPResponse+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxIdPResponse {
		return nil, errors.New("response too large")
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil || answer == nil {
		return nil, errors.New("response is not a JSON object")
	}
	return answer, nil
}

// introspectionCause returns a loggable cause of a failed call: the transport
// error without the URL (*url.Error repeats it), or "timeout".
func introspectionCause(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout"
		}
		return ue.Err.Error()
	}
	return err.Error()
}

// discover finds the introspection endpoint in the issuer's discovery
// document, retrying with backoff until it succeeds or ctx ends.
func (a *introspectionAuth) discover(ctx context.Context) {
	defer close(a.done)
	wait := discoveryRetryMin
	for {
		d, err := discover(ctx, a.discovery, a.cfg.Issuer)
		if err == nil {
			err = config.CheckIdPURL(d.IntrospectionEndpoint)
			if err != nil {
				err = fmt.Errorf("discovery: introspection_endpoint: %w", err)
			}
		}
		if err == nil {
			endpoint := d.IntrospectionEndpoint
			a.endpoint.Store(&endpoint)
			a.log.Info("introspection endpoint discovered", zap.String("iss", a.cfg.Issuer))
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("introspection endpoint discovery failed", zap.String("iss", a.cfg.Issuer),
			zap.String("cause", introspectionCause(err)), zap.Duration("retry_in", wait))
		// Jitter spreads the retries of many gateway instances.
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, discoveryRetryMax)
	}
}

// Challenge returns the Bearer challenge.
func (a *introspectionAuth) Challenge() string { return `Bearer realm="` + Realm + `"` }

// Ready returns "" once the introspection endpoint is known.
func (a *introspectionAuth) Ready() string {
	if a.endpoint.Load() == nil {
		return "introspection endpoint not discovered yet"
	}
	return ""
}

// Close stops background discovery, waits for it to end and closes idle
// connections. Calls in flight finish. It is safe to call more than once.
func (a *introspectionAuth) Close() {
	a.closeOnce.Do(func() {
		a.stop()
		<-a.done
		a.discovery.CloseIdleConnections()
	})
}
