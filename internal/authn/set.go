package authn

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// Registry keeps the authenticators that are costly to rebuild (JWT key
// sets, verified-token and introspection caches, DPoP replay memory)
// across config reloads: a reload whose authenticator config is unchanged
// reuses the running authenticator instead of fetching keys again and
// failing closed until they arrive. It is safe for concurrent use.
type Registry struct {
	log         *zap.Logger
	jwksRefresh *prometheus.CounterVec
	replay      ReplayStore // nil: DPoP proof ids are remembered per instance
	fallback    bool
	mu          sync.Mutex
	shared      map[string][]*entry // by authenticator name
}

// ShareReplay makes DPoP replay detection use store, shared by every
// instance (the Redis rate-limit store). With fallback, a store failure
// falls back to this instance's memory (failure_mode: open); without, the
// proof is refused (closed). Call it before the first Build.
func (reg *Registry) ShareReplay(store ReplayStore, fallback bool) {
	reg.replay, reg.fallback = store, fallback
}

// entry is one shared authenticator and the Sets that use it.
type entry struct {
	cfg  config.Authenticator
	auth Authenticator
	dpop *dpopVerifier // jwt only
	refs int
}

// NewRegistry returns an empty registry. jwksRefresh counts key set
// fetches (labels authenticator, result).
func NewRegistry(log *zap.Logger, jwksRefresh *prometheus.CounterVec) *Registry {
	return &Registry{log: log, jwksRefresh: jwksRefresh, shared: map[string][]*entry{}}
}

// Options are what a Set needs besides the config.
type Options struct {
	Problems *problem.Writer
	// Attempts counts credential checks, labels authenticator and result
	// (success, failure, unavailable).
	Attempts *prometheus.CounterVec
	// Lockout is the auth-failure lockout; nil for none.
	Lockout Lockout
}

// Lockout is the auth-failure lockout the stage consults (rate_limits.
// auth_failures): a client IP is checked before any verification work, a
// verified credential as soon as it is known; failures are counted
// against both.
type Lockout interface {
	Locked(ctx context.Context, ip netip.Addr, credential string) (time.Duration, bool)
	// Verified is Locked for a credential just verified, before the
	// principal is recorded; it may leave the question to a later stage
	// that answers it the same way (ratelimit.Lockout.Verified).
	Verified(ctx context.Context, ip netip.Addr, credential string) (time.Duration, bool)
	Failed(ctx context.Context, ip netip.Addr, credential string)
	// Problem is the 429 answer for a locked-out attempt.
	Problem(retry time.Duration) problem.Problem
}

// Set is the authenticators of one config, and the source of its route
// stages. Close it when the config it was built for stops serving.
type Set struct {
	reg     *Registry
	members map[string]*member
	headers config.PrincipalHeaders
	opts    Options
	closed  bool
}

// member is one configured authenticator as a route stage sees it.
type member struct {
	name       string
	typ        string
	auth       Authenticator
	dpop       *dpopVerifier
	dpopMode   string
	dpopAlgs   string
	revoked    *revocationList
	shared     *entry // nil when built for this Set alone
	attempts   [3]prometheus.Counter
	challenge  string
	cookieName string
}

// Attempt results, the values of the result label.
const (
	resultSuccess = iota
	resultFailure
	resultUnavailable
)

// Build compiles the authenticators of cfg: it reuses the running
// authenticators whose config is unchanged and starts the others (their
// key fetches run in the background; Ready reports them). Revocation files
// are read again every time.
func (reg *Registry) Build(cfg *config.Config, opts Options) (*Set, error) {
	s := &Set{reg: reg, members: map[string]*member{}, headers: cfg.Principal, opts: opts}
	names := make([]string, 0, len(cfg.Authenticators))
	for name := range cfg.Authenticators {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m, err := reg.member(name, cfg.Authenticators[name], cfg.Consumers)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("authenticators.%s: %w", name, err)
		}
		for i, result := range []string{"success", "failure", "unavailable"} {
			m.attempts[i] = opts.Attempts.WithLabelValues(name, result)
		}
		s.members[name] = m
	}
	return s, nil
}

func (reg *Registry) member(name string, cfg config.Authenticator, consumers []config.Consumer) (*member, error) {
	revoked, err := loadRevocation(string(cfg.Revocation))
	if err != nil {
		return nil, fmt.Errorf("revocation_file: %w", err)
	}
	m := &member{name: name, typ: cfg.Type, revoked: revoked, dpopMode: cfg.DPoP, cookieName: cfg.CookieName,
		dpopAlgs: strings.Join(cfg.DPoPAlgorithms, " ")}
	deps := Deps{Log: reg.log.With(zap.String("authenticator", name)), JWKSRefresh: reg.jwksRefresh, Consumers: consumers}
	switch cfg.Type {
	case "api_key":
		m.auth, err = newAPIKey(name, cfg, deps)
	case "mtls":
		m.auth, err = newMTLS(name, cfg, deps)
	case "jwt", "introspection":
		m.shared, err = reg.acquire(name, cfg, deps)
		if err == nil {
			m.auth, m.dpop = m.shared.auth, m.shared.dpop
		}
	default:
		err = fmt.Errorf("unknown type %q", cfg.Type)
	}
	if err != nil {
		return nil, err
	}
	m.challenge = m.auth.Challenge()
	return m, nil
}

// acquire returns the shared authenticator for name and cfg, building it
// when no running one has the same config.
func (reg *Registry) acquire(name string, cfg config.Authenticator, deps Deps) (*entry, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, e := range reg.shared[name] {
		if reflect.DeepEqual(e.cfg, cfg) {
			e.refs++
			return e, nil
		}
	}
	e := &entry{cfg: cfg, refs: 1}
	var err error
	switch cfg.Type {
	case "jwt":
		e.auth, err = newJWT(name, cfg, deps)
		var replay replayStore = newMemoryReplayStore(cfg.DPoPReplaySize)
		if reg.replay != nil {
			replay = &sharedReplay{shared: reg.replay, local: replay, fallback: reg.fallback}
		}
		e.dpop = newDPoPVerifier(cfg.DPoPAlgorithms, cfg.DPoPMaxAge.D(), replay)
	case "introspection":
		e.auth, err = newIntrospection(name, cfg, deps)
	}
	if err != nil {
		return nil, err
	}
	reg.shared[name] = append(reg.shared[name], e)
	return e, nil
}

func (reg *Registry) release(name string, e *entry) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if e.refs--; e.refs > 0 {
		return
	}
	e.auth.Close()
	reg.shared[name] = slices.DeleteFunc(reg.shared[name], func(x *entry) bool { return x == e })
	if len(reg.shared[name]) == 0 {
		delete(reg.shared, name)
	}
}

// Close releases the Set's authenticators; shared ones stop when no other
// Set uses them. Requests in flight keep working.
func (s *Set) Close() {
	if s == nil || s.closed {
		return
	}
	s.closed = true
	for _, m := range s.members {
		if m.shared != nil {
			s.reg.release(m.name, m.shared)
		} else {
			m.auth.Close()
		}
	}
}

// Ready returns "" when every authenticator can decide, else the first
// reason (by name) why not: /readyz stays not ready until every JWKS or
// discovery authenticator has loaded keys once.
func (s *Set) Ready() string {
	names := make([]string, 0, len(s.members))
	for name := range s.members {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if reason := s.members[name].auth.Ready(); reason != "" {
			return "authenticator " + name + ": " + reason
		}
	}
	return ""
}

// KeySetAges calls fn with the age of each JWT authenticator's key set.
func (s *Set) KeySetAges(fn func(authenticator string, age time.Duration)) {
	for name, m := range s.members {
		if a, ok := m.auth.(interface{ KeySetAge() (time.Duration, bool) }); ok {
			if age, ok := a.KeySetAge(); ok {
				fn(name, age)
			}
		}
	}
}
