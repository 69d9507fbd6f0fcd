package authz

import (
	"hash/maphash"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// DefaultEnumerationKeys is how many (route, principal or client IP) keys
// a Detector tracks at most.
const DefaultEnumerationKeys = 100_000

// detectorShards spreads the keys over locks; a power of two.
const detectorShards = 64

// evictSample is how many entries a full shard looks at to find one to
// evict: the expired ones go, else the one that expires first.
const evictSample = 8

// Detector is the state of enumeration detection (authorize.enumeration):
// per route and key (a principal, or the client IP of a request without
// one), the hashes of the distinct object ids denied in the current
// window, and the block in force. It keeps hashes only (maphash, with a
// per-process seed), never ids or principals, and at most maxKeys keys:
// a full shard evicts an expired key, else the one that expires first, so
// random principals or addresses cannot make it grow. It is meant to live
// as long as the process (gateway.Server), so that a reload keeps it. It
// is safe for concurrent use.
type Detector struct {
	seed     maphash.Seed
	perShard int
	shards   [detectorShards]detectorShard
}

type detectorShard struct {
	mu sync.Mutex
	m  map[uint64]*enumEntry
}

// enumEntry is one key's window: it opened at the key's first counted
// denial and ends at end.
type enumEntry struct {
	end      time.Time
	ids      []uint64 // distinct, at most the threshold
	reported bool     // the threshold was reached in this window
	blocked  time.Time
}

// expiry is when the entry stops mattering.
func (e *enumEntry) expiry() time.Time {
	if e.blocked.After(e.end) {
		return e.blocked
	}
	return e.end
}

// NewDetector returns a Detector that tracks at most maxKeys keys (at
// least one per shard); maxKeys <= 0 means DefaultEnumerationKeys.
func NewDetector(maxKeys int) *Detector {
	if maxKeys <= 0 {
		maxKeys = DefaultEnumerationKeys
	}
	d := &Detector{seed: maphash.MakeSeed(), perShard: max(maxKeys/detectorShards, 1)}
	for i := range d.shards {
		d.shards[i].m = make(map[uint64]*enumEntry)
	}
	return d
}

// Len returns the number of keys tracked.
func (d *Detector) Len() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (d *Detector) shard(key uint64) *detectorShard {
	return &d.shards[key%detectorShards]
}

// blockedFor returns how long key stays blocked after now; 0 when it is
// not blocked.
func (d *Detector) blockedFor(key uint64, now time.Time) time.Duration {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && e.blocked.After(now) {
		return e.blocked.Sub(now)
	}
	return 0
}

// observe counts a denial of object id for key. It returns true when this
// denial brings the distinct ids of the window to threshold: once per key
// and window. Then a block > 0 starts. Past the threshold no id is added.
func (d *Detector) observe(key, id uint64, now time.Time, threshold int, window, block time.Duration) bool {
	s := d.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	switch {
	case !ok:
		s.makeRoom(now, d.perShard)
		e = &enumEntry{end: now.Add(window)}
		s.m[key] = e
	case !now.Before(e.end):
		// The window is over: a new one opens with this denial; a block
		// still in force stays.
		e.end, e.ids, e.reported = now.Add(window), e.ids[:0], false
	}
	if e.reported {
		return false
	}
	for _, seen := range e.ids {
		if seen == id {
			return false
		}
	}
	e.ids = append(e.ids, id)
	if len(e.ids) < threshold {
		return false
	}
	e.reported = true
	e.ids = nil // nothing more is added in this window
	if block > 0 {
		e.blocked = now.Add(block)
	}
	return true
}

// makeRoom evicts from a full shard: every expired entry among those it
// looks at, else the one of them that expires first.
func (s *detectorShard) makeRoom(now time.Time, limit int) {
	if len(s.m) < limit {
		return
	}
	var victim uint64
	var first time.Time
	n := 0
	for k, e := range s.m {
		exp := e.expiry()
		if !exp.After(now) {
			delete(s.m, k)
			continue
		}
		if n == 0 || exp.Before(first) {
			victim, first = k, exp
		}
		if n++; n == evictSample {
			break
		}
	}
	if len(s.m) >= limit {
		delete(s.m, victim)
	}
}

// The reason of the audit decision that reports an enumeration.
const reasonEnumeration = "bola_enumeration_suspected"

// Enumeration is a route's compiled authorize.enumeration: the stage that
// refuses a blocked key and, after the rest of the chain, counts the
// request's object-level denial. It is immutable and safe for concurrent
// use.
type Enumeration struct {
	det       *Detector
	route     string
	params    []string
	threshold int
	window    time.Duration
	block     time.Duration
	status    int
	mode      config.Mode
	problems  *problem.Writer
	log       *zap.Logger
	suspected prometheus.Counter
	blocks    prometheus.Counter
}

// Enumerate compiles the route's enumeration detection over deps.Detector;
// nil when the route has no authorize.enumeration section.
func Enumerate(rt config.Route, deps Deps) *Enumeration {
	if rt.Authorize == nil || rt.Authorize.Enumeration == nil {
		return nil
	}
	c := rt.Authorize.Enumeration
	return &Enumeration{det: deps.Detector, route: rt.Name, params: config.PathParams(rt.Path),
		threshold: c.Threshold, window: time.Duration(c.Window), block: time.Duration(c.Block),
		status: c.BlockStatus, mode: rt.Authorize.Mode, problems: deps.Problems, log: deps.Log,
		suspected: deps.Enumerations.WithLabelValues(rt.Name), blocks: deps.EnumerationBlocks.WithLabelValues(rt.Name)}
}

// Middleware returns the stage around next.
func (e *Enumeration) Middleware(next http.Handler) http.Handler {
	return &enumerationStage{Enumeration: e, next: next}
}

type enumerationStage struct {
	*Enumeration
	next http.Handler
}

var _ http.Handler = (*enumerationStage)(nil)

func (e *enumerationStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := exchange.From(r.Context())
	if rec == nil {
		rec = &exchange.Record{}
	}
	key := e.key(rec)
	if left := e.det.blockedFor(key, time.Now()); left > 0 {
		p := problem.EnumerationBlocked(e.status, int64((left+time.Second-1)/time.Second))
		p.Mode = e.mode
		if e.problems.Deny(w, r, p) {
			return
		}
	}
	e.next.ServeHTTP(w, r)
	if !deniedObject(rec) {
		return
	}
	if !e.det.observe(key, e.objectID(r), time.Now(), e.threshold, e.window, e.block) {
		return
	}
	// The request keeps its own decision; the report rides along as a
	// report-mode decision, so the audit event lists it in would_deny.
	rec.Decide(exchange.Decision{Stage: problem.StageAuthz, Reason: reasonEnumeration, OWASP: "API1:2023",
		NIST: []string{"AC-3", "AC-6"}, Mode: config.ModeReport})
	e.suspected.Inc()
	if e.block > 0 {
		e.blocks.Inc()
	}
	fields := []zap.Field{zap.String("route", e.route), zap.String("request_id", rec.RequestID),
		zap.Int("threshold", e.threshold), zap.Duration("window", e.window), zap.Duration("block", e.block)}
	if p := rec.Principal; p != nil {
		fields = append(fields, zap.String("subject", p.Subject), zap.String("iss", p.Issuer))
	} else {
		fields = append(fields, zap.Stringer("client_ip", rec.ClientIP))
	}
	e.log.Warn("object enumeration suspected", fields...)
}

// key hashes who the request is: its route and principal (issuer and
// subject), or its route and client IP when it has no principal.
func (e *enumerationStage) key(rec *exchange.Record) uint64 {
	var h maphash.Hash
	h.SetSeed(e.det.seed)
	h.WriteString(e.route)
	if p := rec.Principal; p != nil {
		h.WriteString("\x00p\x00")
		h.WriteString(p.Issuer)
		h.WriteByte(0)
		h.WriteString(p.Subject)
	} else {
		h.WriteString("\x00ip\x00")
		b, _ := rec.ClientIP.MarshalBinary() // cannot fail
		h.Write(b)
	}
	return h.Sum64()
}

// objectID hashes the request's object id: the route's path parameter
// values, percent-decoded as the rules read them, joined by '/'.
func (e *enumerationStage) objectID(r *http.Request) uint64 {
	vals := make([]string, len(e.params))
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		for i, name := range e.params {
			vals[i] = rctx.URLParam(name)
			if v, err := url.PathUnescape(vals[i]); err == nil {
				vals[i] = v
			}
		}
	}
	return maphash.String(e.det.seed, strings.Join(vals, "/"))
}

// deniedObject reports whether an object-level rule (request or response)
// or a writable field denied the request, or would have in report mode.
func deniedObject(rec *exchange.Record) bool {
	denied, would := rec.Decisions()
	if denied != nil && objectReason(denied) {
		return true
	}
	for i := range would {
		if objectReason(&would[i]) {
			return true
		}
	}
	return false
}

// objectReason reports whether d is an object-level denial: a rule, a
// writable field or the policy said no (not a policy that could not
// decide: that says nothing about the object).
func objectReason(d *exchange.Decision) bool {
	return d.Stage == problem.StageAuthz && (d.Reason == "rule_denied" || d.Reason == "field_not_writable" || d.Reason == "policy_denied")
}
