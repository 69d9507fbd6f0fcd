package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-gateway/bulwark/internal/cache"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// The client credentials hold ':' and characters that RFC 6749 §2.3.1
// form-url-encodes, so a client that skips the encoding fails the check.
const (
	introspectionClientID     = "gateway:edge"
	introspectionClientSecret = "s3cr3t/+ &%:x"
)

// introspectionClock is a settable clock for the authenticator and its
// caches (the HTTP calls themselves run in real time).
type introspectionClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *introspectionClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *introspectionClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// introspectionServer is a real RFC 7662 endpoint on 127.0.0.1 that checks
// every request (method, form, Basic credentials) and counts the hits.
type introspectionServer struct {
	*httptest.Server
	hits atomic.Int64
}

// startIntrospectionServer starts an endpoint that hands each well-formed
// request's token to respond. respond runs on the server's goroutines.
func startIntrospectionServer(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, token string)) *introspectionServer {
	t.Helper()
	s := &introspectionServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !introspectionRequestOK(t, r) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		s.hits.Add(1)
		respond(w, r, r.PostForm.Get("token"))
	}))
	t.Cleanup(s.Close)
	return s
}

// introspectionRequestOK checks one introspection request as RFC 7662 and
// RFC 6749 §2.3.1 describe it, reporting each mismatch.
func introspectionRequestOK(t testing.TB, r *http.Request) bool {
	ok := true
	check := func(what, got, want string) {
		if got != want {
			t.Errorf("introspection request %s = %q, want %q", what, got, want)
			ok = false
		}
	}
	check("method", r.Method, http.MethodPost)
	check("Content-Type", r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
	check("Accept", r.Header.Get("Accept"), "application/json")
	user, pass, _ := r.BasicAuth()
	id, _ := url.QueryUnescape(user)
	secret, _ := url.QueryUnescape(pass)
	check("client_id (Basic, form-url-decoded)", id, introspectionClientID)
	check("client_secret (Basic, form-url-decoded)", secret, introspectionClientSecret)
	if err := r.ParseForm(); err != nil {
		t.Errorf("introspection request form: %v", err)
		return false
	}
	check("token_type_hint", r.PostForm.Get("token_type_hint"), "access_token")
	if r.PostForm.Get("token") == "" {
		t.Errorf("introspection request has no token")
		ok = false
	}
	return ok
}

func introspectionJSON(t testing.TB, w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		t.Errorf("encode answer: %v", err)
	}
}

// introspectionConfig is an introspection authenticator config with the
// defaults the config loader applies.
func introspectionConfig(endpoint string) config.Authenticator {
	return config.Authenticator{
		Type:             "introspection",
		Endpoint:         endpoint,
		ClientID:         introspectionClientID,
		ClientSecret:     config.Secret(introspectionClientSecret),
		Timeout:          config.Duration(2 * time.Second),
		CacheSize:        10000,
		CacheTTL:         config.Duration(5 * time.Minute),
		NegativeCacheTTL: config.Duration(10 * time.Second),
		MaxTokenSize:     8 << 10,
		ScopeClaims:      []string{"scope", "scp"},
		RolesClaim:       "roles",
	}
}

// newTestIntrospection builds the authenticator on clk (nil: real time)
// and closes it when the test ends.
func newTestIntrospection(t testing.TB, cfg config.Authenticator, clk *introspectionClock) *introspectionAuth {
	t.Helper()
	a, err := newIntrospection("corp-opaque", cfg, Deps{})
	if err != nil {
		t.Fatalf("newIntrospection: %v", err)
	}
	t.Cleanup(a.Close)
	if clk != nil {
		a.now = clk.Now
		a.pos = cache.New[*exchange.Principal](cfg.CacheSize, clk.Now)
		a.neg = cache.New[*Failure](cfg.CacheSize, clk.Now)
	}
	return a
}

func newIntrospectionClock() *introspectionClock {
	return &introspectionClock{now: time.Now().Truncate(time.Second)}
}

// introspectionFailure returns the *Failure's status and reason, or 0 and the
// error text for any other error.
func introspectionFailure(err error) (int, string) {
	var f *Failure
	if errors.As(err, &f) {
		return f.Status, f.Reason
	}
	if err == nil {
		return 0, ""
	}
	return 0, err.Error()
}

func TestIntrospectActive(t *testing.T) {
	clk := newIntrospectionClock()
	exp := clk.Now().Add(time.Hour)
	srv := startIntrospectionServer(t, func(w http.ResponseWriter, _ *http.Request, token string) {
		if token != "opaque-alice" {
			introspectionJSON(t, w, map[string]any{"active": false})
			return
		}
		introspectionJSON(t, w, map[string]any{
			"active": true, "sub": "alice", "scope": "orders:read orders:write", "client_id": "web-app",
			"iss": "https://idp.example.com", "exp": exp.Unix(), "jti": "t-1", "roles": []string{"admin"},
			"token_type": "Bearer",
		})
	})
	a := newTestIntrospection(t, introspectionConfig(srv.URL), clk)

	for i := range 3 {
		p, err := a.Authenticate(context.Background(), &Input{Token: "opaque-alice"})
		if err != nil {
			t.Fatalf("Authenticate #%d: %v", i+1, err)
		}
		got := []string{p.Subject, p.Method, p.Authenticator, p.Consumer, p.Issuer, p.TokenID}
		want := []string{"alice", "introspection", "corp-opaque", "web-app", "https://idp.example.com", "t-1"}
		if !slices.Equal(got, want) {
			t.Errorf("principal subject, method, authenticator, consumer, issuer, jti = %q, want %q", got, want)
		}
		if !slices.Equal(p.Scopes, []string{"orders:read", "orders:write"}) {
			t.Errorf("Scopes = %q, want [orders:read orders:write]", p.Scopes)
		}
		if !slices.Equal(p.Roles, []string{"admin"}) {
			t.Errorf("Roles = %q, want [admin]", p.Roles)
		}
		if !p.Expiry.Equal(exp) {
			t.Errorf("Expiry = %v, want %v", p.Expiry, exp)
		}
		clk.Advance(time.Minute)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("endpoint hits after 3 requests with one token = %d, want 1 (cached)", got)
	}
}

func TestIntrospectNegativeCache(t *testing.T) {
	tests := []struct {
		name     string
		negTTL   time.Duration
		advance  time.Duration
		wantHits int64
	}{
		{name: "within negative ttl", negTTL: 10 * time.Second, advance: 9 * time.Second, wantHits: 1},
		{name: "after negative ttl", negTTL: 10 * time.Second, advance: 10 * time.Second, wantHits: 2},
		{name: "negative cache off", negTTL: 0, advance: 0, wantHits: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newIntrospectionClock()
			srv := startIntrospectionServer(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
				introspectionJSON(t, w, map[string]any{"active": false})
			})
			cfg := introspectionConfig(srv.URL)
			cfg.NegativeCacheTTL = config.Duration(tt.negTTL)
			a := newTestIntrospection(t, cfg, clk)
			for i := range 2 {
				_, err := a.Authenticate(context.Background(), &Input{Token: "revoked-token"})
				if status, reason := introspectionFailure(err); status != http.StatusUnauthorized || reason != "inactive" {
					t.Errorf("Authenticate #%d = %d %q, want 401 inactive", i+1, status, reason)
				}
				clk.Advance(tt.advance)
			}
			if got := srv.hits.Load(); got != tt.wantHits {
				t.Errorf("endpoint hits = %d, want %d", got, tt.wantHits)
			}
		})
	}
}

// TestIntrospectCacheLifetime checks that a cached answer is used until
// min(exp, now + cache_ttl) and never after.
func TestIntrospectCacheLifetime(t *testing.T) {
	tests := []struct {
		name       string
		exp        time.Duration // from the first request; 0: no exp member
		advance    time.Duration
		wantHits   int64
		wantReason string // of the second request; "" for success
	}{
		{name: "before exp", exp: time.Minute, advance: 59 * time.Second, wantHits: 1},
		{name: "at exp", exp: time.Minute, advance: time.Minute, wantHits: 2, wantReason: "expired"},
		{name: "past exp within ttl", exp: time.Minute, advance: 2 * time.Minute, wantHits: 2, wantReason: "expired"},
		{name: "within ttl", exp: time.Hour, advance: 4 * time.Minute, wantHits: 1},
		{name: "past ttl before exp", exp: time.Hour, advance: 5 * time.Minute, wantHits: 2},
		{name: "no exp within ttl", advance: 4 * time.Minute, wantHits: 1},
		{name: "no exp past ttl", advance: 5 * time.Minute, wantHits: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newIntrospectionClock()
			answer := map[string]any{"active": true, "sub": "alice"}
			if tt.exp != 0 {
				answer["exp"] = clk.Now().Add(tt.exp).Unix()
			}
			srv := startIntrospectionServer(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
				introspectionJSON(t, w, answer) // the same answer every time, as a lagging server would
			})
			a := newTestIntrospection(t, introspectionConfig(srv.URL), clk)
			if _, err := a.Authenticate(context.Background(), &Input{Token: "opaque"}); err != nil {
				t.Fatalf("first Authenticate: %v", err)
			}
			clk.Advance(tt.advance)
			_, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
			if _, reason := introspectionFailure(err); reason != tt.wantReason {
				t.Errorf("second Authenticate reason = %q, want %q", reason, tt.wantReason)
			}
			if got := srv.hits.Load(); got != tt.wantHits {
				t.Errorf("endpoint hits = %d, want %d", got, tt.wantHits)
			}
		})
	}
}

// TestIntrospectFailClosed checks that every way the endpoint can fail is a
// 503 and is not cached: the endpoint answers badly once, then well, and
// the second request must reach it and pass.
func TestIntrospectFailClosed(t *testing.T) {
	tests := []struct {
		name string
		bad  func(w http.ResponseWriter, r *http.Request)
	}{
		{name: "status 500", bad: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}},
		{name: "status 401 (gateway credentials refused)", bad: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		}},
		{name: "invalid JSON", bad: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"active": true,`))
		}},
		{name: "JSON null", bad: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`null`))
		}},
		{name: "JSON array", bad: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`[{"active": true}]`))
		}},
		{name: "exp not a number", bad: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"active": true, "sub": "alice", "exp": "tomorrow"}`))
		}},
		{name: "answer over 1MiB", bad: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"active": true, "sub": "alice", "pad": "` + strings.Repeat("x", 1<<20) + `"}`))
		}},
		{name: "slower than the timeout", bad: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			introspectionJSON(t, w, map[string]any{"active": true, "sub": "alice"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := startIntrospectionServer(t, func(w http.ResponseWriter, r *http.Request, _ string) {
				if calls.Add(1) == 1 {
					tt.bad(w, r)
					return
				}
				introspectionJSON(t, w, map[string]any{"active": true, "sub": "alice"})
			})
			cfg := introspectionConfig(srv.URL)
			cfg.Timeout = config.Duration(300 * time.Millisecond)
			a := newTestIntrospection(t, cfg, nil)

			start := time.Now()
			_, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
			if status, reason := introspectionFailure(err); status != http.StatusServiceUnavailable || reason != "introspection_error" {
				t.Fatalf("Authenticate = %d %q, want 503 introspection_error", status, reason)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Authenticate took %v, want about the 300ms timeout at most", d)
			}
			p, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
			if err != nil || p.Subject != "alice" {
				t.Fatalf("Authenticate after recovery = %v, %v; want alice (errors must not be cached)", p, err)
			}
			if got := srv.hits.Load(); got != 2 {
				t.Errorf("endpoint hits = %d, want 2", got)
			}
		})
	}
}

// TestIntrospectEndpointDown checks a closed listener (connection refused):
// 503, and the next request once the endpoint is back is asked again.
func TestIntrospectEndpointDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := newTestIntrospection(t, introspectionConfig("http://"+addr+"/introspect"), nil)

	_, err = a.Authenticate(context.Background(), &Input{Token: "opaque"})
	if status, reason := introspectionFailure(err); status != http.StatusServiceUnavailable || reason != "introspection_error" {
		t.Fatalf("Authenticate with the endpoint down = %d %q, want 503 introspection_error", status, reason)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if introspectionRequestOK(t, r) {
			hits.Add(1)
			introspectionJSON(t, w, map[string]any{"active": true, "sub": "alice"})
		}
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	p, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
	if err != nil || p.Subject != "alice" {
		t.Fatalf("Authenticate with the endpoint back = %v, %v; want alice", p, err)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("endpoint hits once back = %d, want 1 (the failure was not cached)", got)
	}
}

// TestIntrospectRefusesRedirect checks that the token and the client
// credentials are never sent on to where a redirect points.
func TestIntrospectRefusesRedirect(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		introspectionJSON(t, w, map[string]any{"active": true, "sub": "mallory"})
	}))
	t.Cleanup(other.Close)
	srv := startIntrospectionServer(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	})
	a := newTestIntrospection(t, introspectionConfig(srv.URL), nil)

	_, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
	if status, reason := introspectionFailure(err); status != http.StatusServiceUnavailable || reason != "introspection_error" {
		t.Errorf("Authenticate on a redirect = %d %q, want 503 introspection_error", status, reason)
	}
	if got := elsewhere.Load(); got != 0 {
		t.Errorf("requests that reached the redirect target = %d, want 0", got)
	}
}

func TestIntrospectClaimChecks(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"active": true, "sub": "alice", "iss": "https://idp.example.com", "aud": "orders-api", "client_id": "web-app"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name       string
		issuer     string
		audiences  []string
		clientIDs  []string
		answer     map[string]any
		wantReason string
	}{
		{name: "no checks configured", answer: base(nil)},
		{name: "all match", issuer: "https://idp.example.com", audiences: []string{"orders-api"}, clientIDs: []string{"web-app"}, answer: base(nil)},
		{name: "active missing", answer: map[string]any{"sub": "alice"}, wantReason: "inactive"},
		{name: "active as a string", answer: base(map[string]any{"active": "true"}), wantReason: "inactive"},
		{name: "expired", answer: base(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}), wantReason: "expired"},
		{name: "other issuer", issuer: "https://idp.example.com", answer: base(map[string]any{"iss": "https://evil.example.com"}), wantReason: "bad_issuer"},
		{name: "no issuer", issuer: "https://idp.example.com", answer: base(map[string]any{"iss": nil}), wantReason: "bad_issuer"},
		{name: "audience in array", audiences: []string{"orders-api"}, answer: base(map[string]any{"aud": []string{"billing", "orders-api"}})},
		{name: "other audience", audiences: []string{"orders-api"}, answer: base(map[string]any{"aud": "billing"}), wantReason: "bad_audience"},
		{name: "other audiences in array", audiences: []string{"orders-api"}, answer: base(map[string]any{"aud": []string{"billing", "crm"}}), wantReason: "bad_audience"},
		{name: "no audience", audiences: []string{"orders-api"}, answer: base(map[string]any{"aud": nil}), wantReason: "bad_audience"},
		{name: "other client", clientIDs: []string{"web-app"}, answer: base(map[string]any{"client_id": "cli"}), wantReason: "bad_client"},
		{name: "no client", clientIDs: []string{"web-app"}, answer: base(map[string]any{"client_id": nil}), wantReason: "bad_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startIntrospectionServer(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
				introspectionJSON(t, w, tt.answer)
			})
			cfg := introspectionConfig(srv.URL)
			cfg.Issuer, cfg.Audiences, cfg.ClientIDs = tt.issuer, tt.audiences, tt.clientIDs
			a := newTestIntrospection(t, cfg, nil)
			for i := range 2 { // the second answer comes from a cache
				_, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
				status, reason := introspectionFailure(err)
				if reason != tt.wantReason || (reason != "" && status != http.StatusUnauthorized) {
					t.Errorf("Authenticate #%d = %d %q, want reason %q (401 when refused)", i+1, status, reason, tt.wantReason)
				}
			}
			if got := srv.hits.Load(); got != 1 {
				t.Errorf("endpoint hits = %d, want 1", got)
			}
		})
	}
}

func TestIntrospectCredentials(t *testing.T) {
	srv := startIntrospectionServer(t, func(w http.ResponseWriter, _ *http.Request, token string) {
		introspectionJSON(t, w, map[string]any{"active": true, "sub": "owner-of-" + token})
	})
	cookieReq := httptest.NewRequest(http.MethodGet, "/orders", nil)
	cookieReq.AddCookie(&http.Cookie{Name: "other", Value: "nope"})
	cookieReq.AddCookie(&http.Cookie{Name: "session", Value: "from-cookie"})
	plainReq := httptest.NewRequest(http.MethodGet, "/orders", nil)

	tests := []struct {
		name        string
		cookie      string
		in          *Input
		wantSubject string
		wantErr     string // failure reason, or the error text
		wantHits    int64
	}{
		{name: "no token", in: &Input{Request: plainReq}, wantErr: ErrNoCredentials.Error()},
		{name: "cookie not configured", in: &Input{Request: cookieReq}, wantErr: ErrNoCredentials.Error()},
		{name: "cookie configured, absent", cookie: "session", in: &Input{Request: plainReq}, wantErr: ErrNoCredentials.Error()},
		{name: "token from cookie", cookie: "session", in: &Input{Request: cookieReq}, wantSubject: "owner-of-from-cookie", wantHits: 1},
		{name: "bearer wins over cookie", cookie: "session", in: &Input{Request: cookieReq, Token: "from-header"}, wantSubject: "owner-of-from-header", wantHits: 1},
		{name: "at the size limit", in: &Input{Token: strings.Repeat("a", 8<<10)}, wantSubject: "owner-of-" + strings.Repeat("a", 8<<10), wantHits: 1},
		{name: "over the size limit", in: &Input{Token: strings.Repeat("a", 8<<10+1)}, wantErr: "too_large"},
		{name: "cookie over the size limit", cookie: "session", in: &Input{Request: func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/orders", nil)
			r.AddCookie(&http.Cookie{Name: "session", Value: strings.Repeat("b", 8<<10+1)})
			return r
		}()}, wantErr: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := introspectionConfig(srv.URL)
			cfg.CookieName = tt.cookie
			a := newTestIntrospection(t, cfg, nil)
			before := srv.hits.Load()
			p, err := a.Authenticate(context.Background(), tt.in)
			if _, reason := introspectionFailure(err); reason != tt.wantErr {
				t.Errorf("Authenticate error = %q, want %q", reason, tt.wantErr)
			}
			if tt.wantErr == ErrNoCredentials.Error() && !errors.Is(err, ErrNoCredentials) {
				t.Errorf("Authenticate error = %v, want ErrNoCredentials", err)
			}
			gotSubject := ""
			if p != nil {
				gotSubject = p.Subject
			}
			if gotSubject != tt.wantSubject {
				t.Errorf("Authenticate subject = %q, want %q", gotSubject, tt.wantSubject)
			}
			if got := srv.hits.Load() - before; got != tt.wantHits {
				t.Errorf("endpoint hits = %d, want %d", got, tt.wantHits)
			}
		})
	}
}

func TestIntrospectConcurrentSameToken(t *testing.T) {
	srv := startIntrospectionServer(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		time.Sleep(200 * time.Millisecond) // long enough for all callers to arrive
		introspectionJSON(t, w, map[string]any{"active": true, "sub": "alice", "scope": "orders:read"})
	})
	a := newTestIntrospection(t, introspectionConfig(srv.URL), nil)

	const n = 100
	var wg sync.WaitGroup
	principals := make([]*exchange.Principal, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			principals[i], errs[i] = a.Authenticate(context.Background(), &Input{Token: "shared-opaque"})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || principals[i] == nil || principals[i].Subject != "alice" {
			t.Fatalf("request %d: Authenticate = %v, %v; want alice", i, principals[i], errs[i])
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("endpoint hits for %d concurrent requests with one token = %d, want 1", n, got)
	}
}

// TestIntrospectWaiterCancelled checks that a request waiting on another
// request's call gives up with its own context, and that the call it
// waited on still completes for the leader.
func TestIntrospectWaiterCancelled(t *testing.T) {
	release := make(chan struct{})
	srv := startIntrospectionServer(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		<-release
		introspectionJSON(t, w, map[string]any{"active": true, "sub": "alice"})
	})
	a := newTestIntrospection(t, introspectionConfig(srv.URL), nil)

	leader := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(context.Background(), &Input{Token: "slow"})
		leader <- err
	}()
	for srv.hits.Load() == 0 { // the leader's call reached the endpoint
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := a.Authenticate(ctx, &Input{Token: "slow"})
	if status, _ := introspectionFailure(err); status != http.StatusServiceUnavailable {
		t.Errorf("cancelled waiter: Authenticate = %v, want a 503 failure", err)
	}
	close(release)
	if err := <-leader; err != nil {
		t.Errorf("leader: Authenticate = %v, want success", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("endpoint hits = %d, want 1", got)
	}
}

// introspectionProvider serves an OpenID Provider's discovery document and an
// introspection endpoint on one real server.
type introspectionProvider struct {
	*introspectionServer
	docHits atomic.Int64
}

// startIntrospectionProvider starts the provider; doc writes the discovery
// document (issuer is the server's URL).
func startIntrospectionProvider(t testing.TB, doc func(w http.ResponseWriter, r *http.Request, issuer string)) *introspectionProvider {
	t.Helper()
	d := &introspectionProvider{introspectionServer: &introspectionServer{}}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			d.docHits.Add(1)
			doc(w, r, d.URL)
		case "/introspect":
			if !introspectionRequestOK(t, r) {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			d.hits.Add(1)
			// With discovery the issuer is configured, so iss must match.
			introspectionJSON(t, w, map[string]any{"active": true, "sub": "alice", "iss": d.URL})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(d.Close)
	return d
}

func introspectionDiscoveryConfig(issuer string) config.Authenticator {
	cfg := introspectionConfig("")
	cfg.Discovery, cfg.Issuer = true, issuer
	return cfg
}

func TestIntrospectDiscovery(t *testing.T) {
	release := make(chan struct{})
	srv := startIntrospectionProvider(t, func(w http.ResponseWriter, r *http.Request, issuer string) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		introspectionJSON(t, w, map[string]string{"issuer": issuer, "introspection_endpoint": issuer + "/introspect"})
	})
	a := newTestIntrospection(t, introspectionDiscoveryConfig(srv.URL), nil)

	if a.Ready() == "" {
		t.Errorf("Ready() before discovery = %q, want a reason", a.Ready())
	}
	_, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
	if status, reason := introspectionFailure(err); status != http.StatusServiceUnavailable || reason != "introspection_error" {
		t.Errorf("Authenticate before discovery = %d %q, want 503 introspection_error", status, reason)
	}
	close(release)
	introspectionWaitReady(t, a)
	p, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
	if err != nil || p.Subject != "alice" {
		t.Fatalf("Authenticate after discovery = %v, %v; want alice", p, err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("discovered endpoint hits = %d, want 1", got)
	}
}

func introspectionWaitReady(t testing.TB, a Authenticator) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.Ready() != "" {
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %q after 5s, want \"\"", a.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIntrospectDiscoveryRetries checks that discovery retries until the
// document is good, and never accepts a document that would send tokens
// to another issuer or in the clear.
func TestIntrospectDiscoveryRetries(t *testing.T) {
	tests := []struct {
		name      string
		bad       func(w http.ResponseWriter, issuer string)
		wantReady bool // after the first bad answers, a good one follows
	}{
		{name: "status 500", bad: func(w http.ResponseWriter, _ string) {
			http.Error(w, "starting", http.StatusInternalServerError)
		}},
		{name: "other issuer", bad: func(w http.ResponseWriter, issuer string) {
			introspectionJSON(t, w, map[string]string{"issuer": "https://evil.example.com", "introspection_endpoint": issuer + "/introspect"})
		}},
		{name: "no introspection endpoint", bad: func(w http.ResponseWriter, issuer string) {
			introspectionJSON(t, w, map[string]string{"issuer": issuer})
		}},
		{name: "plain http endpoint off loopback", bad: func(w http.ResponseWriter, issuer string) {
			introspectionJSON(t, w, map[string]string{"issuer": issuer, "introspection_endpoint": "http://idp.example.com/introspect"})
		}},
		{name: "relative endpoint", bad: func(w http.ResponseWriter, issuer string) {
			introspectionJSON(t, w, map[string]string{"issuer": issuer, "introspection_endpoint": "/introspect"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var good atomic.Bool
			srv := startIntrospectionProvider(t, func(w http.ResponseWriter, _ *http.Request, issuer string) {
				if !good.Load() {
					tt.bad(w, issuer)
					return
				}
				introspectionJSON(t, w, map[string]string{"issuer": issuer, "introspection_endpoint": issuer + "/introspect"})
			})
			a := newTestIntrospection(t, introspectionDiscoveryConfig(srv.URL), nil)
			deadline := time.Now().Add(5 * time.Second)
			for srv.docHits.Load() < 2 { // one retry at least
				if time.Now().After(deadline) {
					t.Fatalf("discovery document fetches after 5s = %d, want 2", srv.docHits.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if a.Ready() == "" {
				t.Fatalf("Ready() after bad documents = \"\", want a reason")
			}
			_, err := a.Authenticate(context.Background(), &Input{Token: "opaque"})
			if status, _ := introspectionFailure(err); status != http.StatusServiceUnavailable {
				t.Errorf("Authenticate after bad documents = %v, want 503", err)
			}
			good.Store(true)
			introspectionWaitReady(t, a)
			if _, err := a.Authenticate(context.Background(), &Input{Token: "opaque"}); err != nil {
				t.Errorf("Authenticate after a good document = %v, want success", err)
			}
		})
	}
}

// TestIntrospectCloseStopsDiscovery checks that Close ends the background
// discovery while it is retrying, and leaves no goroutine behind.
func TestIntrospectCloseStopsDiscovery(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var docHits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		docHits.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	a, err := newIntrospection("corp-opaque", introspectionDiscoveryConfig(srv.URL), Deps{})
	if err != nil {
		t.Fatalf("newIntrospection: %v", err)
	}
	for docHits.Load() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	a.Close()
	a.Close() // idempotent
	settled := docHits.Load()
	time.Sleep(600 * time.Millisecond) // longer than two retry intervals
	if got := docHits.Load(); got != settled {
		t.Errorf("discovery fetches after Close = %d, want %d (stopped)", got, settled)
	}
}

func TestIntrospectConstructor(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Authenticator)
	}{
		{name: "no endpoint", modify: func(c *config.Authenticator) { c.Endpoint = "" }},
		{name: "plain http off loopback", modify: func(c *config.Authenticator) { c.Endpoint = "http://idp.example.com/introspect" }},
		{name: "credentials in the URL", modify: func(c *config.Authenticator) { c.Endpoint = "https://u:p@idp.example.com/introspect" }},
		{name: "endpoint and discovery", modify: func(c *config.Authenticator) { c.Discovery, c.Issuer = true, "https://idp.example.com" }},
		{name: "no client secret", modify: func(c *config.Authenticator) { c.ClientSecret = "" }},
		{name: "no timeout", modify: func(c *config.Authenticator) { c.Timeout = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := introspectionConfig("https://idp.example.com/introspect")
			tt.modify(&cfg)
			a, err := newIntrospection("corp-opaque", cfg, Deps{})
			if err == nil {
				a.Close()
				t.Fatalf("newIntrospection succeeded, want an error")
			}
			if strings.Contains(err.Error(), introspectionClientSecret) {
				t.Errorf("error %q holds the client secret", err)
			}
		})
	}
	a := newTestIntrospection(t, introspectionConfig("https://idp.example.com/introspect"), nil)
	if got, want := a.Challenge(), `Bearer realm="bulwark"`; got != want {
		t.Errorf("Challenge() = %q, want %q", got, want)
	}
	if got := a.Ready(); got != "" {
		t.Errorf("Ready() with a configured endpoint = %q, want \"\"", got)
	}
}
