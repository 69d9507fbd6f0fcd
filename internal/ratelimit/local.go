package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// defaultMaxKeys is the key bound of NewLocal(0, ...): the config default
// of rate_limits.max_keys.
const defaultMaxKeys = 100_000

// Sweep and shard sizes of the local store's tables.
const (
	// sweepPerAdd is how many slots a new key looks at for an entry that
	// carries no state (a bucket refilled to full, an expired counter or
	// lock), once its shard is half full. A table only grows when a key
	// is added, so sweeping there, more than one slot per key, keeps the
	// dead entries from crowding out live ones without a background
	// goroutine and without a cost on existing keys. Below half full
	// there is room enough: keys stay, and a busy key that refills
	// between requests is not dropped and added again each time.
	sweepPerAdd = 2
	// maxShards bounds the shards of a table; minShardKeys is the fewest
	// keys a shard holds, so that an LRU per shard stays close to one LRU
	// over the whole table (small tables have one shard: an exact LRU).
	maxShards    = 32
	minShardKeys = 128
)

// Local is the Store of one instance: token buckets (x/time/rate),
// counters and locks in this process's memory, each table sharded by key
// hash (up to 32 shards, each with its own mutex and LRU). Each of the
// three tables holds at most maxKeys keys. An entry that carries no
// state — a bucket refilled to full, an expired counter or lock — can be
// dropped without changing any answer: new keys sweep such entries out
// of shards that are half full. When a shard is still full, a new key
// drops its least recently used entry, an eviction if that entry carried
// state (see Evictions). Local has no background work.
type Local struct {
	now     func() time.Time
	buckets lruTable[localKey, localBucket]
	counts  lruTable[string, localCount]
	locks   lruTable[string, localLock]
}

var (
	_ Store   = (*Local)(nil)
	_ Batcher = (*Local)(nil)
)

// localKey names a bucket without joining its layer and key.
type localKey struct{ layer, key string }

// localBucket is one token bucket and the rate it was last taken at.
type localBucket struct {
	// lim is new for every new key: a Limiter holds a mutex, so it
	// cannot be copied, and it has no way to refill it.
	lim  *rate.Limiter
	rate Rate
	// full is when the bucket is full again, from its last take: a sweep
	// asks the limiter (and its mutex) only from then on.
	full time.Time
}

// localCount is one counter of Count.
type localCount struct {
	n     int64
	until time.Time
}

// localLock is one lock of Lock.
type localLock struct{ until time.Time }

// NewLocal returns a local store that tracks at most maxKeys buckets, and
// as many counters and locks (maxKeys < 1 means 100,000, the config
// default). now is its clock; nil means time.Now.
func NewLocal(maxKeys int, now func() time.Time) *Local {
	if maxKeys < 1 {
		maxKeys = defaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	seed := maphash.MakeSeed()
	l := &Local{now: now}
	l.buckets.init(maxKeys, func(k localKey) uint64 {
		// An odd multiplier parts (a, b) from (b, a).
		return maphash.String(seed, k.key) ^ maphash.String(seed, k.layer)*0x9e3779b97f4a7c15
	}, func(b *localBucket, now time.Time) bool {
		return !now.Before(b.full) && b.lim.TokensAt(now) >= float64(b.rate.Burst)
	})
	hashString := func(k string) uint64 { return maphash.String(seed, k) }
	l.counts.init(maxKeys, hashString, func(c *localCount, now time.Time) bool {
		return !now.Before(c.until)
	})
	l.locks.init(maxKeys, hashString, func(c *localLock, now time.Time) bool {
		return !now.Before(c.until)
	})
	return l
}

// Take takes a token from each bucket that has one. A bucket is created
// full; a bucket whose Rate changed (a reload) keeps its tokens and takes
// the new rate and burst. It fails, charging nothing, when a Rate is not
// positive or len(out) != len(buckets).
func (l *Local) Take(_ context.Context, buckets []Bucket, out []Decision) error {
	if len(out) != len(buckets) {
		return fmt.Errorf("ratelimit: local take: %d decisions for %d buckets", len(out), len(buckets))
	}
	for i := range buckets {
		if r := buckets[i].Rate; r.Limit < 1 || r.Per <= 0 || r.Burst < 1 {
			return fmt.Errorf("ratelimit: local take: layer %q: invalid rate %d per %v, burst %d",
				buckets[i].Layer, r.Limit, r.Per, r.Burst)
		}
	}
	now := l.now()
	for i := range buckets {
		out[i] = l.take(&buckets[i], now)
	}
	return nil
}

func (l *Local) take(b *Bucket, now time.Time) Decision {
	limit := rate.Limit(float64(b.Rate.Limit) / b.Rate.Per.Seconds())
	k := localKey{layer: b.Layer, key: b.Key}
	h := l.buckets.hash(k)
	s := l.buckets.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	lb := s.get(h, k)
	if lb == nil {
		// Own the key: the caller's string may share a larger buffer.
		lb = l.buckets.add(s, h, localKey{layer: b.Layer, key: strings.Clone(b.Key)}, now)
		lb.reset(limit, b.Rate)
		return lb.take(now, float64(b.Rate.Burst), limit)
	}
	if lb.rate != b.Rate {
		lb.lim.SetLimitAt(now, limit)
		lb.lim.SetBurstAt(now, b.Rate.Burst)
		lb.rate = b.Rate
	}
	return lb.take(now, lb.lim.TokensAt(now), limit)
}

// reset makes b a new, full bucket of r.
func (b *localBucket) reset(limit rate.Limit, r Rate) {
	b.lim = rate.NewLimiter(limit, r.Burst)
	b.rate = r
}

// take takes a token if the bucket holds one: tokens, at now. The
// decision is made on the tokens themselves: AllowN alone would also
// allow a request whose token is less than a nanosecond away, a little
// early. The shard lock keeps the tokens from changing before AllowN.
func (b *localBucket) take(now time.Time, tokens float64, limit rate.Limit) Decision {
	ok := tokens >= 1 && b.lim.AllowN(now, 1)
	if ok {
		tokens-- // what AllowN left
	}
	d := Decision{Allowed: ok, Remaining: int(max(tokens, 0))}
	if !ok {
		d.RetryAfter = b.retryAfter(now, tokens, limit)
	}
	d.Reset = fillTime(float64(b.rate.Burst)-tokens, limit)
	b.full = now.Add(d.Reset)
	return d
}

// retryAfter returns how long until the bucket holds a token, rounded up
// to the nanosecond. The limiter's float arithmetic has the last word:
// the wait grows until it agrees that a request at now+wait is allowed.
func (b *localBucket) retryAfter(now time.Time, tokens float64, limit rate.Limit) time.Duration {
	d := fillTime(1-tokens, limit)
	for step := time.Duration(1); step < time.Millisecond && b.lim.TokensAt(now.Add(d)) < 1; step *= 2 {
		d += step
	}
	return d
}

// fillTime is the time limit takes to add tokens, rounded up.
func fillTime(tokens float64, limit rate.Limit) time.Duration {
	if tokens <= 0 {
		return 0
	}
	ns := math.Ceil(tokens / float64(limit) * float64(time.Second))
	if ns >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ns)
}

// Count adds one to the counter key and returns its value. A new or
// expired counter starts at 1 and expires at until; a running counter
// keeps the expiry it started with (a fixed window).
func (l *Local) Count(_ context.Context, key string, until time.Time) (int64, error) {
	now := l.now()
	h := l.counts.hash(key)
	s := l.counts.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.get(h, key)
	switch {
	case c == nil:
		c = l.counts.add(s, h, strings.Clone(key), now)
		*c = localCount{until: until}
	case !now.Before(c.until):
		*c = localCount{until: until}
	}
	c.n++
	return c.n, nil
}

// Lock locks key until now+d, replacing any lock it had; d <= 0 unlocks.
func (l *Local) Lock(_ context.Context, key string, d time.Duration) error {
	now := l.now()
	h := l.locks.hash(key)
	s := l.locks.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.get(h, key)
	if d <= 0 {
		if c != nil {
			s.remove(s.index[h])
		}
		return nil
	}
	if c == nil {
		c = l.locks.add(s, h, strings.Clone(key), now)
	}
	*c = localLock{until: now.Add(d)}
	return nil
}

// Locked reports whether key is locked and for how much longer.
func (l *Local) Locked(_ context.Context, key string) (time.Duration, bool, error) {
	now := l.now()
	h := l.locks.hash(key)
	s := l.locks.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.get(h, key)
	if c == nil {
		return 0, false, nil
	}
	if left := c.until.Sub(now); left > 0 {
		return left, true, nil
	}
	s.remove(s.index[h])
	return 0, false, nil
}

// Batch answers b, one question after the other under their own locks:
// Local makes no round trips, so it needs no script.
func (l *Local) Batch(ctx context.Context, b *Batch) error { return batchInSteps(ctx, l, b) }

// Ready returns "": memory is always there.
func (l *Local) Ready() string { return "" }

// Close does nothing: Local has no connections and no background work.
func (l *Local) Close() error { return nil }

// Evictions returns how many live entries (buckets with tokens taken,
// running counters, locks) were evicted to make room for a new key since
// the store was made. An evicted bucket starts full again and an evicted
// counter or lock starts over: the limit was looser for that key, so a
// growing count means max_keys is too small for the traffic.
func (l *Local) Evictions() uint64 {
	return l.buckets.evictions.Load() + l.counts.evictions.Load() + l.locks.evictions.Load()
}

// lruTable is a map bounded by an LRU, sharded to spread lock contention.
// Entries live in a slab per shard, linked by index; the slot of a
// dropped entry is reused, so the slab never outgrows the limit. The
// index maps the 64-bit seeded hash of a key (which also picks the shard)
// to its slot, and the slot holds the key: a key is hashed once per
// operation, the index stays small (12 bytes an entry) and never compares
// strings. Two keys with one hash (odds about n²/2⁶⁵ with a secret seed)
// cannot both stay: the newer one replaces the older, as an eviction
// would.
type lruTable[K comparable, V any] struct {
	shards    []lruShard[K, V]
	mask      uint64
	hash      func(K) uint64
	idle      func(*V, time.Time) bool // the entry carries no state at now
	evictions atomic.Uint64
}

type lruShard[K comparable, V any] struct {
	mu    sync.Mutex
	index map[uint64]int32 // hash of key -> slot
	slots []lruSlot[K, V]
	free  []int32 // slots not in use
	head  int32   // most recently used slot, -1 when empty
	tail  int32   // least recently used slot, -1 when empty
	hand  int32   // next slot the sweep looks at
	limit int     // most keys of this shard
	roomy bool    // index was remade with room for twice limit
	_     [64]byte
}

type lruSlot[K comparable, V any] struct {
	key        K
	val        V
	hash       uint64
	prev, next int32
	live       bool
}

func (t *lruTable[K, V]) init(maxKeys int, hash func(K) uint64, idle func(*V, time.Time) bool) {
	n := 1
	for n < maxShards && maxKeys/(2*n) >= minShardKeys {
		n *= 2
	}
	t.shards = make([]lruShard[K, V], n)
	t.mask = uint64(n - 1)
	t.hash, t.idle = hash, idle
	for i := range t.shards {
		s := &t.shards[i]
		s.limit = maxKeys / n
		if i < maxKeys%n {
			s.limit++
		}
		s.index = make(map[uint64]int32)
		s.head, s.tail = -1, -1
	}
}

// shard returns the shard of the key whose hash is h. The high bits pick
// it: the map inside uses the whole hash, seeded again.
func (t *lruTable[K, V]) shard(h uint64) *lruShard[K, V] {
	return &t.shards[(h>>32)&t.mask]
}

// len returns the number of keys held.
func (t *lruTable[K, V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

// get returns the entry of k (hash h), marked most recently used, or
// nil. s is locked.
func (s *lruShard[K, V]) get(h uint64, k K) *V {
	i, ok := s.index[h]
	if !ok || s.slots[i].key != k {
		return nil
	}
	if s.head != i {
		s.unlink(i)
		s.pushFront(i)
	}
	return &s.slots[i].val
}

// add adds k (hash h), which get did not find, and returns its entry for
// the caller to set whole (it may hold a dropped key's value). Once s is
// half full it sweeps entries that carry no state; when s is still full,
// it drops the least recently used entry. s is locked.
func (t *lruTable[K, V]) add(s *lruShard[K, V], h uint64, k K, now time.Time) *V {
	if i, ok := s.index[h]; ok {
		t.drop(s, i, now) // another key with the same hash
	}
	for i := 0; i < sweepPerAdd && 2*len(s.index) >= s.limit; i++ {
		t.sweepOne(s, now)
	}
	if len(s.index) >= s.limit {
		t.drop(s, s.tail, now)
	}
	var i int32
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
	} else {
		s.slots = append(s.slots, lruSlot[K, V]{})
		i = int32(len(s.slots) - 1)
	}
	sl := &s.slots[i]
	sl.key, sl.hash, sl.live = k, h, true
	s.pushFront(i)
	s.index[h] = i
	if len(s.index) == s.limit && !s.roomy {
		s.makeRoom()
	}
	return &sl.val
}

// drop removes the entry in slot i to make room, counting an eviction
// when it still carried state.
func (t *lruTable[K, V]) drop(s *lruShard[K, V], i int32, now time.Time) {
	if !t.idle(&s.slots[i].val, now) {
		t.evictions.Add(1)
	}
	s.remove(i)
}

// makeRoom remakes the index of a shard that filled up with room for
// twice its keys. From now on every new key deletes one, and a Go map
// that is nearly full keeps the deleted slots of its full groups as
// tombstones: lookups of absent keys, which every new key is, then probe
// long. At half load few groups fill, so few tombstones are made.
func (s *lruShard[K, V]) makeRoom() {
	index := make(map[uint64]int32, 2*s.limit)
	for h, i := range s.index {
		index[h] = i
	}
	s.index, s.roomy = index, true
}

// sweepOne looks at the slot under the hand and drops its entry if it
// carries no state.
func (t *lruTable[K, V]) sweepOne(s *lruShard[K, V], now time.Time) {
	if len(s.slots) == 0 {
		return
	}
	if int(s.hand) >= len(s.slots) {
		s.hand = 0
	}
	i := s.hand
	s.hand++
	if sl := &s.slots[i]; sl.live && t.idle(&sl.val, now) {
		s.remove(i)
	}
}

// remove drops the entry in slot i. s is locked.
func (s *lruShard[K, V]) remove(i int32) {
	sl := &s.slots[i]
	delete(s.index, sl.hash)
	s.unlink(i)
	var zero K
	sl.key, sl.live = zero, false // let the key's memory go
	s.free = append(s.free, i)
}

func (s *lruShard[K, V]) unlink(i int32) {
	sl := &s.slots[i]
	if sl.prev >= 0 {
		s.slots[sl.prev].next = sl.next
	} else {
		s.head = sl.next
	}
	if sl.next >= 0 {
		s.slots[sl.next].prev = sl.prev
	} else {
		s.tail = sl.prev
	}
}

func (s *lruShard[K, V]) pushFront(i int32) {
	sl := &s.slots[i]
	sl.prev, sl.next = -1, s.head
	if s.head >= 0 {
		s.slots[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}
