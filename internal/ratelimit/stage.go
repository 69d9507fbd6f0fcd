package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// The layer label values of bulwark_ratelimit_decisions_total and the
// reasons of a 429.
const (
	LayerGlobal       = "global"
	LayerPerIP        = "per_ip"
	LayerPlan         = "plan"
	LayerQuota        = "quota"
	LayerRoute        = "route"
	LayerAuthFailures = "auth_failures"
)

// Deps is what the rate-limit stages need besides their config.
type Deps struct {
	Log      *zap.Logger
	Problems *problem.Writer
	// Store counts the tokens; it outlives a config (limit state survives
	// reloads) and is closed by its owner.
	Store Store
	// Decisions counts decisions by layer and result (allowed, limited,
	// error_allowed, error_denied).
	Decisions *prometheus.CounterVec
	// Lockouts counts lockouts started, by key kind (ip, credential).
	Lockouts *prometheus.CounterVec
	// EdgeMode is the mode of the layers that run before routing (global,
	// per_ip), which have no route to take it from: rate_limits.mode, else
	// the top level's.
	EdgeMode config.Mode
	// Now is the clock of quota periods; nil means time.Now.
	Now func() time.Time
}

// Limiter is the rate-limit stages of one config: Edge before routing,
// Route after authentication, and the auth-failure lockout that the
// authentication stage consults.
type Limiter struct {
	deps    Deps
	batch   bool   // the store is a Batcher: one call per stage
	failure string // failure_mode
	headers bool
	global  *policy
	perIP   *policy
	plans   map[string]*planPolicy
	lockout *lockout
	now     func() time.Time
	pool    sync.Pool // *scratch
}

// policy is one limit as it is counted and announced.
type policy struct {
	name    string // policy name in headers; the limit's name
	layer   string
	rate    Rate
	header  string // RateLimit-Policy item, serialized once
	allowed prometheus.Counter
	limited prometheus.Counter
	errOpen prometheus.Counter // store failed, request allowed
	errShut prometheus.Counter // store failed, request denied
}

type planPolicy struct {
	*policy
	quota *quota
}

type quota struct {
	name    string
	limit   int64
	monthly bool
	header  string
	allowed prometheus.Counter
	limited prometheus.Counter
	errOpen prometheus.Counter
	errShut prometheus.Counter
}

type lockout struct {
	header  string // RateLimit-Policy item
	limited prometheus.Counter
	limit   int64
	per     time.Duration
	lockFor time.Duration
	ip      prometheus.Counter
	cred    prometheus.Counter
}

// scratch is the per-request room for buckets and decisions.
type scratch struct {
	buckets   []Bucket
	decisions []Decision
	policies  []*policy
	batch     Batch
}

// New builds the limiter of cfg. Everything that can fail fails here.
func New(cfg config.RateLimits, deps Deps) (*Limiter, error) {
	if deps.Store == nil {
		return nil, errors.New("rate_limits: no store")
	}
	l := &Limiter{deps: deps, failure: cfg.FailureMode, headers: cfg.Headers, now: deps.Now, plans: map[string]*planPolicy{}}
	if l.now == nil {
		l.now = time.Now
	}
	_, l.batch = deps.Store.(Batcher)
	l.pool.New = func() any { return &scratch{} }
	if g := cfg.Global; g != nil {
		l.global = l.newPolicy("global", LayerGlobal, g.Limit, g.Per.D(), g.Burst)
	}
	if p := cfg.PerIP; p != nil {
		l.perIP = l.newPolicy("per_ip", LayerPerIP, p.Limit, p.Per.D(), p.Burst)
	}
	for name, p := range cfg.Plans {
		pp := &planPolicy{policy: l.newPolicy(name, LayerPlan, p.Limit, p.Per.D(), p.Burst)}
		if q := p.Quota; q != nil {
			pp.quota = &quota{name: name + "-quota", limit: int64(q.Limit), monthly: q.Per == "month",
				allowed: deps.Decisions.WithLabelValues(LayerQuota, "allowed"),
				limited: deps.Decisions.WithLabelValues(LayerQuota, "limited"),
				errOpen: deps.Decisions.WithLabelValues(LayerQuota, "error_allowed"),
				errShut: deps.Decisions.WithLabelValues(LayerQuota, "error_denied")}
			w := int64(86400)
			if pp.quota.monthly {
				w = 30 * 86400
			}
			pp.quota.header = policyHeader(pp.quota.name, int64(q.Limit), w)
		}
		l.plans[name] = pp
	}
	if a := cfg.AuthFailures; a != nil {
		l.lockout = &lockout{header: policyHeader(LayerAuthFailures, int64(a.Limit), int64(math.Ceil(a.Per.D().Seconds()))),
			limited: deps.Decisions.WithLabelValues(LayerAuthFailures, "limited"),
			limit:   int64(a.Limit), per: a.Per.D(), lockFor: a.Lockout.D(),
			ip: deps.Lockouts.WithLabelValues("ip"), cred: deps.Lockouts.WithLabelValues("credential")}
	}
	return l, nil
}

func (l *Limiter) newPolicy(name, layer string, limit int, per time.Duration, burst int) *policy {
	if burst <= 0 {
		burst = limit
	}
	return &policy{
		name:    name,
		layer:   layer,
		rate:    Rate{Limit: limit, Per: per, Burst: burst},
		header:  policyHeader(name, int64(limit), int64(math.Ceil(per.Seconds()))),
		allowed: l.deps.Decisions.WithLabelValues(layer, "allowed"),
		limited: l.deps.Decisions.WithLabelValues(layer, "limited"),
		errOpen: l.deps.Decisions.WithLabelValues(layer, "error_allowed"),
		errShut: l.deps.Decisions.WithLabelValues(layer, "error_denied"),
	}
}

// policyHeader serializes one RateLimit-Policy item (draft-ietf-httpapi-
// ratelimit-headers-10): "name";q=quota;w=window-seconds.
func policyHeader(name string, q, w int64) string {
	item := httpsfv.NewItem(name)
	item.Params.Add("q", q)
	item.Params.Add("w", max(w, 1))
	s, err := httpsfv.Marshal(httpsfv.List{item})
	if err != nil { // names are validated tokens; a failure is a bug
		panic(fmt.Sprintf("ratelimit: policy header for %q: %v", name, err))
	}
	return s
}

// rateLimitHeader serializes one RateLimit item: "name";r=remaining;t=seconds.
func rateLimitHeader(name string, remaining int, t time.Duration) string {
	item := httpsfv.NewItem(name)
	item.Params.Add("r", int64(max(remaining, 0)))
	item.Params.Add("t", ceilSeconds(t))
	s, _ := httpsfv.Marshal(httpsfv.List{item}) // see policyHeader
	return s
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// Edge returns the stage that runs before routing: the global limit and
// the per-IP limit, so floods are shed before any routing or signature
// work. Without either, it returns next itself. With the auth-failure
// lockout and a Batcher store, it also reads the client IP's lock in the
// same store call, and leaves it in the request record for the
// authentication stage (Lockout.Locked), which then makes no call of its
// own.
func (l *Limiter) Edge(next http.Handler) http.Handler {
	if l.global == nil && l.perIP == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := l.pool.Get().(*scratch)
		defer l.putScratch(s)
		if l.global != nil {
			s.add(l.global, "")
		}
		if l.perIP != nil {
			s.add(l.perIP, clientKey(r))
		}
		if !l.batch {
			if !l.decide(w, r, s, l.deps.EdgeMode) {
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		b := s.prepare()
		rec := exchange.From(r.Context())
		if l.lockout != nil && rec != nil {
			b.Lock = lockKey("ip", rec.ClientIP.String())
		}
		err := runBatch(r.Context(), l.deps.Store, b)
		if b.Lock != "" {
			lk := &rec.Lockout
			lk.IPRead, lk.IPLeft, lk.IPLocked = true, b.LockLeft, b.Locked
			if err != nil {
				lk.IPLeft, lk.IPLocked = l.lockUnknown()
			}
		}
		if err != nil {
			if !l.storeFailed(w, r, s.policies, err, l.deps.EdgeMode) {
				return
			}
		} else if !l.decided(w, r, s, l.deps.EdgeMode) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// prepare returns s's batch, empty, with the buckets of s and room for
// their decisions.
func (s *scratch) prepare() *Batch {
	if cap(s.decisions) < len(s.buckets) {
		s.decisions = make([]Decision, len(s.buckets))
	}
	s.decisions = s.decisions[:len(s.buckets)]
	s.batch = Batch{Buckets: s.buckets, Decisions: s.decisions}
	return &s.batch
}

func lockKey(kind, id string) string { return "lock:" + kind + ":" + id }

// lockUnknown is the answer for a lock that could not be read: fail like
// the other layers, open lets the attempt be verified, closed refuses it.
func (l *Limiter) lockUnknown() (time.Duration, bool) {
	return time.Second, l.failure == "closed"
}

// Route returns the stage that runs after authentication on route rt: the
// principal's plan (and its quota), then the route's own limits. With a
// Batcher store, it asks the store once: the lock of the credential that
// the authentication stage verified (Lockout.Verified), the plan and
// route buckets and the quota, in one call; on an authenticated route
// with the auth-failure lockout, it is there even without limits, for
// the credential's lock.
func (l *Limiter) Route(rt config.Route) func(http.Handler) http.Handler {
	limits := make([]*routeLimit, 0, len(rt.RateLimit))
	for _, rl := range rt.RateLimit {
		kind, arg, _ := strings.Cut(rl.Key, ":")
		limits = append(limits, &routeLimit{
			policy: l.newPolicy(rl.Name, LayerRoute, rl.Limit, rl.Per.D(), rl.Burst),
			kind:   kind,
			arg:    http.CanonicalHeaderKey(arg),
			claim:  arg,
			bucket: "route:" + rt.Name + ":" + rl.Name,
		})
	}
	return func(next http.Handler) http.Handler {
		if len(limits) == 0 && len(l.plans) == 0 && (l.lockout == nil || !l.batch || rt.Auth.None) {
			return next
		}
		return &routeStage{l: l, limits: limits, next: next}
	}
}

type routeLimit struct {
	*policy
	kind   string // consumer, principal, ip, header, claim
	arg    string // canonical header name
	claim  string // claim name
	bucket string // layer namespace of the bucket
}

type routeStage struct {
	l      *Limiter
	limits []*routeLimit
	next   http.Handler
}

var _ http.Handler = (*routeStage)(nil)

func (rs *routeStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l := rs.l
	rec := exchange.From(r.Context())
	var p *exchange.Principal
	if rec != nil {
		p = rec.Principal
	}
	s := l.pool.Get().(*scratch)
	defer l.putScratch(s)
	var plan *planPolicy
	if p != nil && p.Plan != "" {
		plan = l.plans[p.Plan]
	}
	if plan != nil {
		s.add(plan.policy, p.Consumer)
	}
	for _, rl := range rs.limits {
		s.addAs(rl.policy, rl.bucket, rl.key(r, p))
	}
	if l.batch {
		if l.routeBatch(w, r, s, rec, plan) {
			rs.next.ServeHTTP(w, r)
		}
		return
	}
	if len(s.buckets) > 0 && !l.decide(w, r, s, config.ModeInherit) {
		return
	}
	if plan != nil && plan.quota != nil && !l.checkQuota(w, r, plan.quota, p.Consumer) {
		return
	}
	rs.next.ServeHTTP(w, r)
}

// routeBatch decides the stage after authentication in one store call:
// the verified credential's lock, then the buckets of s, then the quota,
// answered exactly as the separate calls would have been (the
// authentication stage's lock check, decide, checkQuota). Only a request
// that report mode lets through although it was refused needs a second
// call, to take or count what the refusal did not. It reports whether
// the request may go on.
func (l *Limiter) routeBatch(w http.ResponseWriter, r *http.Request, s *scratch, rec *exchange.Record, plan *planPolicy) bool {
	ctx := r.Context()
	b := s.prepare()
	var (
		q          *quota
		now, until time.Time
	)
	if plan != nil && plan.quota != nil {
		q = plan.quota
		b.Count, now, until = l.quotaKey(q, rec.Principal.Consumer)
		b.Until = until
	}
	if rec != nil && l.lockout != nil && rec.Lockout.Credential != "" {
		b.Lock, b.Guard = lockKey("cred", rec.Lockout.Credential), true
		rec.Lockout.Credential = ""
	}
	if len(b.Buckets) == 0 && b.Count == "" && b.Lock == "" {
		return true
	}
	err := runBatch(ctx, l.deps.Store, b)
	if b.Lock != "" {
		left, locked := b.LockLeft, b.Locked
		if err != nil {
			left, locked = l.lockUnknown()
		}
		if locked {
			// Answered as the authentication stage would have: before
			// the principal is recorded.
			p := rec.Principal
			rec.Principal = nil
			if l.deps.Problems.Deny(w, r, (&Lockout{l: l}).Problem(left)) {
				return false
			}
			rec.Principal = p
			// Report mode: the request goes on, and is limited and
			// counted as if the lock had not been read.
			b.Lock, b.Guard = "", false
			if len(b.Buckets) == 0 && b.Count == "" {
				return true
			}
			err = runBatch(ctx, l.deps.Store, b)
		}
	}
	if err != nil {
		if len(b.Buckets) > 0 && !l.storeFailed(w, r, s.policies, err, config.ModeInherit) {
			return false
		}
		return q == nil || l.quotaFailed(w, r, q, err)
	}
	if len(b.Buckets) > 0 && !l.decided(w, r, s, config.ModeInherit) {
		return false
	}
	if q == nil {
		return true
	}
	n := b.N
	if !b.Counted {
		// A bucket refused, and report mode let the request through:
		// it counts against the quota, as it did before batches.
		if n, err = l.deps.Store.Count(ctx, b.Count, until); err != nil {
			return l.quotaFailed(w, r, q, err)
		}
	}
	return l.quotaDecided(w, r, q, n, now, until)
}

// key returns what rl counts by for this request. A value that is missing
// (no consumer on a token without azp, no such header or claim) counts by
// the client IP instead: never unlimited.
func (rl *routeLimit) key(r *http.Request, p *exchange.Principal) string {
	var v string
	switch rl.kind {
	case "consumer":
		if p != nil {
			v = p.Consumer
		}
	case "principal":
		if p != nil && p.Subject != "" {
			v = p.Authenticator + "/" + p.Subject
		}
	case "header":
		v = r.Header.Get(rl.arg)
	case "claim":
		if p != nil {
			v = claimString(p.Claims[rl.claim])
		}
	}
	if v == "" {
		return "ip/" + clientKey(r)
	}
	return rl.kind + "/" + v
}

func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// clientKey is the client IP as a bucket key.
func clientKey(r *http.Request) string {
	if rec := exchange.From(r.Context()); rec != nil && rec.ClientIP.IsValid() {
		return rec.ClientIP.String()
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().String()
	}
	return r.RemoteAddr
}

func (s *scratch) add(p *policy, key string) { s.addAs(p, p.layer, key) }

func (s *scratch) addAs(p *policy, layer, key string) {
	s.buckets = append(s.buckets, Bucket{Layer: layer, Key: key, Rate: p.rate})
	s.policies = append(s.policies, p)
}

func (l *Limiter) putScratch(s *scratch) {
	clear(s.buckets) // drop key strings
	s.buckets, s.decisions, s.policies = s.buckets[:0], s.decisions[:0], s.policies[:0]
	l.pool.Put(s)
}

// decide takes a token from every bucket of s and answers 429 (or 503
// when the store failed under failure_mode: closed) when one has none.
// mode is the stage's mode before routing (ModeInherit after: the route's
// applies). It reports whether the request may go on.
func (l *Limiter) decide(w http.ResponseWriter, r *http.Request, s *scratch, mode config.Mode) bool {
	if cap(s.decisions) < len(s.buckets) {
		s.decisions = make([]Decision, len(s.buckets))
	}
	s.decisions = s.decisions[:len(s.buckets)]
	if err := l.deps.Store.Take(r.Context(), s.buckets, s.decisions); err != nil {
		return l.storeFailed(w, r, s.policies, err, mode)
	}
	return l.decided(w, r, s, mode)
}

// decided answers the decisions of s: 429 when a bucket had no token,
// else the RateLimit headers. It reports whether the request may go on.
func (l *Limiter) decided(w http.ResponseWriter, r *http.Request, s *scratch, mode config.Mode) bool {
	denied := -1
	for i, d := range s.decisions {
		p := s.policies[i]
		if d.Allowed {
			p.allowed.Inc()
			continue
		}
		p.limited.Inc()
		if denied < 0 || d.RetryAfter > s.decisions[denied].RetryAfter {
			denied = i // the strictest: the longest wait
		}
	}
	if denied >= 0 {
		p, d := s.policies[denied], s.decisions[denied]
		pr := l.tooMany(p.layer, p.name, p.header, rateLimitHeader(p.name, 0, d.RetryAfter), d.RetryAfter)
		pr.Mode = mode
		if l.deps.Problems.Deny(w, r, pr) {
			return false
		}
	}
	if l.headers {
		h := w.Header()
		for i, p := range s.policies {
			h.Add("RateLimit-Policy", p.header)
			h.Add("RateLimit", rateLimitHeader(p.name, s.decisions[i].Remaining, s.decisions[i].Reset))
		}
	}
	return true
}

func (l *Limiter) tooMany(layer, rule, policyHeader, rateHeader string, retry time.Duration) problem.Problem {
	p := problem.TooManyRequests(layer, rule, ceilSeconds(max(retry, time.Second)))
	p.Header.Set("RateLimit-Policy", policyHeader)
	p.Header.Set("RateLimit", rateHeader)
	return p
}

// storeFailed answers a request whose limits could not be counted: it
// goes on under failure_mode: open (a failover store already answered
// from local limits when it could; this is the case where even that
// failed), and is refused with 503 under closed.
func (l *Limiter) storeFailed(w http.ResponseWriter, r *http.Request, policies []*policy, err error, mode config.Mode) bool {
	if ce := l.deps.Log.Check(zap.WarnLevel, "rate-limit store failed"); ce != nil {
		ce.Write(zap.String("failure_mode", l.failure), zap.Error(err))
	}
	if l.failure == "open" {
		for _, p := range policies {
			p.errOpen.Inc()
		}
		return true
	}
	for _, p := range policies {
		p.errShut.Inc()
	}
	p := problem.RateLimitUnavailable()
	p.Mode = mode
	return !l.deps.Problems.Deny(w, r, p)
}

// checkQuota counts one request against the consumer's quota for the
// current calendar period (UTC).
func (l *Limiter) checkQuota(w http.ResponseWriter, r *http.Request, q *quota, consumer string) bool {
	key, now, end := l.quotaKey(q, consumer)
	n, err := l.deps.Store.Count(r.Context(), key, end)
	if err != nil {
		return l.quotaFailed(w, r, q, err)
	}
	return l.quotaDecided(w, r, q, n, now, end)
}

// quotaKey returns the counter of consumer's quota q for the current
// calendar period (UTC), the time now, and the period's end.
func (l *Limiter) quotaKey(q *quota, consumer string) (key string, now, end time.Time) {
	now = l.now().UTC()
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	end = start.AddDate(0, 0, 1)
	if q.monthly {
		start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 1, 0)
	}
	return "quota:" + q.name + ":" + consumer + ":" + start.Format("20060102"), now, end
}

// quotaFailed answers a request whose quota could not be counted.
func (l *Limiter) quotaFailed(w http.ResponseWriter, r *http.Request, q *quota, err error) bool {
	if l.failure == "open" {
		q.errOpen.Inc()
	} else {
		q.errShut.Inc()
	}
	return l.storeFailed(w, r, nil, err, config.ModeInherit)
}

// quotaDecided answers the request that made the quota's counter n.
func (l *Limiter) quotaDecided(w http.ResponseWriter, r *http.Request, q *quota, n int64, now, end time.Time) bool {
	if n <= q.limit {
		q.allowed.Inc()
		if l.headers {
			w.Header().Add("RateLimit-Policy", q.header)
			w.Header().Add("RateLimit", rateLimitHeader(q.name, int(q.limit-n), end.Sub(now)))
		}
		return true
	}
	q.limited.Inc()
	retry := end.Sub(now)
	return !l.deps.Problems.Deny(w, r, l.tooMany(LayerQuota, q.name, q.header, rateLimitHeader(q.name, 0, retry), retry))
}

// Lockout is the auth-failure lockout, for the authentication stage.
// Keys: the client IP, and a verified credential id (an API key id whose
// key matched, a subject from a verified token) — never an unverified
// claim, or an attacker could lock out any user.
func (l *Limiter) Lockout() *Lockout {
	if l.lockout == nil {
		return nil
	}
	return &Lockout{l: l}
}

// Lockout answers the authentication stage's questions. A nil *Lockout
// never locks.
type Lockout struct{ l *Limiter }

// Locked reports whether the client IP (or, when credential is not "",
// that credential) is locked out, and for how long.
func (lo *Lockout) Locked(ctx context.Context, ip netip.Addr, credential string) (time.Duration, bool) {
	if lo == nil {
		return 0, false
	}
	key := lockKey("ip", ip.String())
	if credential != "" {
		key = lockKey("cred", credential)
	} else if rec := exchange.From(ctx); rec != nil && rec.Lockout.IPRead && rec.ClientIP == ip {
		// Read before routing, with the global and per-IP limits.
		return rec.Lockout.IPLeft, rec.Lockout.IPLocked
	}
	d, locked, err := lo.l.deps.Store.Locked(ctx, key)
	if err != nil {
		return lo.l.lockUnknown()
	}
	return d, locked
}

// Verified is Locked for a credential that has just been verified, as the
// authentication stage asks it before it records the principal. With a
// Batcher store, it leaves the question in the request record for the
// stage after authentication (Limiter.Route, which must follow in the
// chain), to be asked in the same store call as the plan, quota and
// route limits, and answers false: that stage refuses a locked
// credential, with the same answer.
func (lo *Lockout) Verified(ctx context.Context, ip netip.Addr, credential string) (time.Duration, bool) {
	if lo == nil {
		return 0, false
	}
	if rec := exchange.From(ctx); rec != nil && lo.l.batch && credential != "" {
		rec.Lockout.Credential = credential
		return 0, false
	}
	return lo.Locked(ctx, ip, credential)
}

// Failed counts a failed authentication against the client IP and, when
// known, the verified credential; over the limit within the window, the
// key is locked out.
func (lo *Lockout) Failed(ctx context.Context, ip netip.Addr, credential string) {
	if lo == nil {
		return
	}
	lk := lo.l.lockout
	window := lo.l.now().Truncate(lk.per)
	count := func(kind, id string, started prometheus.Counter) {
		n, err := lo.l.deps.Store.Count(ctx, "fail:"+kind+":"+id+":"+strconv.FormatInt(window.Unix(), 10), window.Add(lk.per))
		if err != nil || n != lk.limit {
			return // counted (or not countable); a lockout starts once
		}
		if lo.l.deps.Store.Lock(ctx, "lock:"+kind+":"+id, lk.lockFor) == nil {
			started.Inc()
		}
	}
	if ip.IsValid() {
		count("ip", ip.String(), lk.ip)
	}
	if credential != "" {
		count("cred", credential, lk.cred)
	}
}

// Problem returns the 429 answer for a locked-out attempt, with the
// auth_failures policy in its RateLimit headers.
func (lo *Lockout) Problem(retry time.Duration) problem.Problem {
	lo.l.lockout.limited.Inc()
	p := lo.l.tooMany(LayerAuthFailures, LayerAuthFailures, lo.l.lockout.header, rateLimitHeader(LayerAuthFailures, 0, retry), retry)
	p.OWASP, p.NIST = "API2:2023", []string{"AC-7"}
	return p
}
