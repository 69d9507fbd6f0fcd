package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

const redisTestPrefix = "bulwark:rl:"

// redisLeakCheck fails the test if it leaves goroutines behind (clients
// not closed, servers not waited for). It runs after every other cleanup.
func redisLeakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func testRedisConfig(url string) config.Redis {
	return config.Redis{
		URL:             config.Secret(url),
		Timeout:         config.Duration(500 * time.Millisecond),
		KeyPrefix:       redisTestPrefix,
		BreakerFailures: 3,
		BreakerCooldown: config.Duration(500 * time.Millisecond),
	}
}

func newTestRedis(t testing.TB, cfg config.Redis, opts ...RedisOption) *Redis {
	t.Helper()
	r, err := NewRedis(cfg, zaptest.NewLogger(t), opts...)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// take takes one token from each bucket and fails the test on an error.
func take(t testing.TB, s Store, buckets ...Bucket) []Decision {
	t.Helper()
	out := make([]Decision, len(buckets))
	if err := s.Take(t.Context(), buckets, out); err != nil {
		t.Fatalf("Take: %v", err)
	}
	return out
}

// redisCountingHook counts what a go-redis client sends: single
// commands, and pipelines with their commands.
type redisCountingHook struct {
	cmds, pipelines, pipelineCmds atomic.Int64
}

func (h *redisCountingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisCountingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (h *redisCountingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		h.pipelineCmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (h *redisCountingHook) reset() {
	h.cmds.Store(0)
	h.pipelines.Store(0)
	h.pipelineCmds.Store(0)
}

// Several gateway instances (separate clients) racing for one bucket
// get exactly its burst, each allowed request a distinct Remaining.
func TestRedisTakeExactAcrossInstances(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	const burst, extra, instances = 10, 5, 3
	stores := make([]*Redis, instances)
	for i := range stores {
		stores[i] = newTestRedis(t, testRedisConfig(srv.URL()))
	}
	bucket := []Bucket{{Layer: "route:orders", Key: "consumer-1", Rate: Rate{Limit: burst, Per: time.Minute, Burst: burst}}}

	start := make(chan struct{})
	var wg sync.WaitGroup
	decisions := make([]Decision, burst+extra)
	errs := make([]error, burst+extra)
	for i := range burst + extra {
		wg.Go(func() {
			<-start
			out := make([]Decision, 1)
			errs[i] = stores[i%instances].Take(t.Context(), bucket, out)
			decisions[i] = out[0]
		})
	}
	close(start)
	wg.Wait()

	var remaining []int
	denied := 0
	for i, d := range decisions {
		if errs[i] != nil {
			t.Fatalf("Take %d: %v", i, errs[i])
		}
		if !d.Allowed {
			denied++
			// 10 per minute: a token every 6s.
			if d.RetryAfter <= 0 || d.RetryAfter > 6*time.Second {
				t.Errorf("denied Take %d: RetryAfter = %v, want in (0, 6s]", i, d.RetryAfter)
			}
			continue
		}
		remaining = append(remaining, d.Remaining)
		if d.RetryAfter != 0 {
			t.Errorf("allowed Take %d: RetryAfter = %v, want 0", i, d.RetryAfter)
		}
	}
	slices.Sort(remaining)
	want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if !slices.Equal(remaining, want) {
		t.Errorf("Remaining of the allowed Takes = %v, want %v", remaining, want)
	}
	if denied != extra {
		t.Errorf("denied = %d, want %d", denied, extra)
	}
}

// Tokens come back at the rate (Redis keeps the time).
func TestRedisTakeRefill(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	r := newTestRedis(t, testRedisConfig(srv.URL()))
	// 2 per 200ms: a token every 100ms.
	b := Bucket{Layer: "ip", Key: "192.0.2.1", Rate: Rate{Limit: 2, Per: 200 * time.Millisecond, Burst: 2}}

	for i, want := range []int{1, 0} {
		if d := take(t, r, b)[0]; !d.Allowed || d.Remaining != want {
			t.Fatalf("Take %d = %+v, want allowed with Remaining %d", i, d, want)
		}
	}
	d := take(t, r, b)[0]
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
		t.Fatalf("Take 3 = %+v, want denied with RetryAfter in (0, 100ms]", d)
	}
	if d.Reset <= 0 || d.Reset > 200*time.Millisecond {
		t.Errorf("Take 3: Reset = %v, want in (0, 200ms]", d.Reset)
	}
	time.Sleep(d.RetryAfter + 10*time.Millisecond)
	if d := take(t, r, b)[0]; !d.Allowed {
		t.Fatalf("Take after RetryAfter = %+v, want allowed", d)
	}
	time.Sleep(250 * time.Millisecond) // full again
	if d := take(t, r, b)[0]; !d.Allowed || d.Remaining != 1 {
		t.Errorf("Take after a full refill = %+v, want allowed with Remaining 1", d)
	}
}

// All buckets of a Take travel in one pipeline; a bucket without a token
// does not charge the others, and is not charged itself.
func TestRedisTakeOneRoundTrip(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	admin := srv.Admin()
	var observed atomic.Int64
	r := newTestRedis(t, testRedisConfig(srv.URL()), WithTakeObserver(func(d time.Duration) {
		if d > 0 {
			observed.Add(1)
		}
	}))
	hook := &redisCountingHook{}
	r.rdb.AddHook(hook)
	one := Bucket{Layer: "global", Rate: Rate{Limit: 1, Per: time.Minute, Burst: 1}}
	three := Bucket{Layer: "ip", Key: "2001:db8::1", Rate: Rate{Limit: 3, Per: time.Minute, Burst: 3}}
	plan := Bucket{Layer: "plan", Key: "c1", Rate: Rate{Limit: 100, Per: time.Second, Burst: 100}}
	take(t, r, Bucket{Layer: "warmup", Key: "x", Rate: Rate{Limit: 1, Per: time.Second}}) // connects, caches the script

	hook.reset()
	observed.Store(0)
	if err := admin.ConfigResetStat(t.Context()).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
	var got [][]Decision
	for range 3 {
		got = append(got, take(t, r, one, three, plan))
	}
	if n, c := hook.pipelines.Load(), hook.pipelineCmds.Load(); n != 3 || c != 9 {
		t.Errorf("3 Takes of 3 buckets: %d pipelines of %d commands, want 3 of 9", n, c)
	}
	if n := hook.cmds.Load(); n != 0 {
		t.Errorf("3 Takes: %d single commands, want 0", n)
	}
	calls := srv.CommandCalls(admin)
	if calls["evalsha"] != 9 || calls["eval"] != 0 {
		t.Errorf("server saw evalsha=%d eval=%d, want 9 and 0", calls["evalsha"], calls["eval"])
	}
	if n := observed.Load(); n != 3 {
		t.Errorf("observer saw %d Takes, want 3", n)
	}

	tests := []struct {
		name string
		i, b int
		want Decision
	}{
		{"global first", 0, 0, Decision{Allowed: true, Remaining: 0}},
		{"ip first", 0, 1, Decision{Allowed: true, Remaining: 2}},
		{"global second", 1, 0, Decision{Allowed: false}},
		{"ip second", 1, 1, Decision{Allowed: true, Remaining: 1}},
		{"ip third", 2, 1, Decision{Allowed: true, Remaining: 0}},
		{"plan third", 2, 2, Decision{Allowed: true, Remaining: 97}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := got[tt.i][tt.b]
			if d.Allowed != tt.want.Allowed || (d.Allowed && d.Remaining != tt.want.Remaining) {
				t.Errorf("Take %d bucket %d = %+v, want %+v", tt.i, tt.b, d, tt.want)
			}
		})
	}
	// The denied global bucket was not charged: its wait only shrinks.
	if a, b := got[1][0].RetryAfter, got[2][0].RetryAfter; a <= 0 || b <= 0 || b > a {
		t.Errorf("global RetryAfter = %v then %v, want positive and not growing", a, b)
	}
}

// A Redis that lost its script cache (SCRIPT FLUSH, a restart, a
// failover) still answers: EVALSHA's NOSCRIPT makes redis_rate send
// EVAL, which is one more pipeline for the whole Take.
func TestRedisTakeNoScript(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	admin := srv.Admin()
	r := newTestRedis(t, testRedisConfig(srv.URL()))
	hook := &redisCountingHook{}
	r.rdb.AddHook(hook)
	a := Bucket{Layer: "route:a", Key: "k", Rate: Rate{Limit: 5, Per: time.Minute, Burst: 5}}
	b := Bucket{Layer: "route:b", Key: "k", Rate: Rate{Limit: 5, Per: time.Minute, Burst: 5}}

	// Connects (the connection's handshake is a pipeline too).
	take(t, r, Bucket{Layer: "warmup", Key: "x", Rate: Rate{Limit: 1, Per: time.Second}})

	steps := []struct {
		name          string
		flush         bool
		wantPipelines int64
		wantRemaining int
	}{
		{"no script", true, 2, 4},
		{"script cached", false, 1, 3},
		{"after SCRIPT FLUSH again", true, 2, 2},
		{"cached again", false, 1, 1},
	}
	for _, s := range steps {
		if s.flush {
			if err := admin.ScriptFlush(t.Context()).Err(); err != nil {
				t.Fatalf("SCRIPT FLUSH: %v", err)
			}
		}
		hook.reset()
		got := take(t, r, a, b)
		if n := hook.pipelines.Load(); n != s.wantPipelines {
			t.Errorf("%s: %d pipelines, want %d", s.name, n, s.wantPipelines)
		}
		for i, d := range got {
			if !d.Allowed || d.Remaining != s.wantRemaining {
				t.Errorf("%s: bucket %d = %+v, want allowed with Remaining %d", s.name, i, d, s.wantRemaining)
			}
		}
	}
}

func TestRedisCountLockLocked(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	admin := srv.Admin()
	r := newTestRedis(t, testRedisConfig(srv.URL()))
	ctx := t.Context()

	const quota = "quota:gold:c1:20260101"
	for want := int64(1); want <= 3; want++ {
		n, err := r.Count(ctx, quota, time.Now().Add(time.Hour))
		if err != nil || n != want {
			t.Fatalf("Count(%q) = %d, %v, want %d", quota, n, err, want)
		}
	}
	if ttl := admin.PTTL(ctx, redisTestPrefix+quota).Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("PTTL(%q) = %v, want about 1h", redisTestPrefix+quota, ttl)
	}

	const window = "fail:ip:192.0.2.7:1767225600"
	if n, err := r.Count(ctx, window, time.Now().Add(200*time.Millisecond)); err != nil || n != 1 {
		t.Fatalf("Count(%q) = %d, %v, want 1", window, n, err)
	}
	time.Sleep(300 * time.Millisecond)
	if n, err := r.Count(ctx, window, time.Now().Add(200*time.Millisecond)); err != nil || n != 1 {
		t.Errorf("Count(%q) after its window = %d, %v, want 1 (expired)", window, n, err)
	}

	const lock = "lock:ip:192.0.2.7"
	if err := r.Lock(ctx, lock, 300*time.Millisecond); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := r.Lock(ctx, "lock:ip:192.0.2.8", 0); err != nil {
		t.Fatalf("Lock for 0: %v", err)
	}
	tests := []struct {
		name       string
		key        string
		wantLocked bool
	}{
		{"locked", lock, true},
		{"never locked", "lock:ip:192.0.2.9", false},
		{"locked for 0", "lock:ip:192.0.2.8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, locked, err := r.Locked(ctx, tt.key)
			if err != nil || locked != tt.wantLocked {
				t.Fatalf("Locked(%q) = %v, %v, %v, want locked %v", tt.key, d, locked, err, tt.wantLocked)
			}
			if locked && (d <= 0 || d > 300*time.Millisecond) {
				t.Errorf("Locked(%q) = %v, want in (0, 300ms]", tt.key, d)
			}
		})
	}
	if n := admin.Exists(ctx, redisTestPrefix+lock).Val(); n != 1 {
		t.Errorf("EXISTS %s = %d, want 1", redisTestPrefix+lock, n)
	}
	time.Sleep(350 * time.Millisecond)
	if d, locked, err := r.Locked(ctx, lock); err != nil || locked {
		t.Errorf("Locked(%q) after the lock = %v, %v, %v, want not locked", lock, d, locked, err)
	}
}

func TestRedisKey(t *testing.T) {
	hashed := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	long := strings.Repeat("k", 129)
	tests := []struct {
		name, key, want string
	}{
		{"empty (global)", "", ""},
		{"ipv4", "192.0.2.1", "192.0.2.1"},
		{"ipv6", "2001:db8::1", "2001:db8::1"},
		{"128 bytes", strings.Repeat("k", 128), strings.Repeat("k", 128)},
		{"129 bytes", long, hashed(long)},
		{"space", "a b", hashed("a b")},
		{"control", "a\nb", hashed("a\nb")},
		{"utf-8", "grüße", hashed("grüße")},
		{"looks hashed", hashed("x"), hashed(hashed("x"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redisKey(tt.key); got != tt.want {
				t.Errorf("redisKey(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

// The keys a Take writes are key_prefix + layer + ":" + key, the key
// hashed when it has to be.
func TestRedisTakeKeys(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	admin := srv.Admin()
	r := newTestRedis(t, testRedisConfig(srv.URL()))
	header := "token " + strings.Repeat("x", 200)
	sum := sha256.Sum256([]byte(header))
	rate := Rate{Limit: 10, Per: time.Minute, Burst: 10}
	take(t, r,
		Bucket{Layer: "global", Rate: rate},
		Bucket{Layer: "ip", Key: "192.0.2.1", Rate: rate},
		Bucket{Layer: "route:search", Key: header, Rate: rate},
	)
	keys, err := admin.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	slices.Sort(keys)
	want := []string{"bulwark:rl:global:", "bulwark:rl:ip:192.0.2.1", "bulwark:rl:route:search:sha256:" + hex.EncodeToString(sum[:])}
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
}

func TestRedisTakeArguments(t *testing.T) {
	redisLeakCheck(t)
	// Nothing listens here: the cases must not need Redis.
	r := newTestRedis(t, testRedisConfig("redis://127.0.0.1:1/0"))
	rate := Rate{Limit: 1, Per: time.Second}
	tests := []struct {
		name    string
		buckets []Bucket
		out     int
		wantErr bool
	}{
		{"no buckets", nil, 0, false},
		{"fewer decisions", []Bucket{{Layer: "a", Rate: rate}}, 0, true},
		{"zero limit", []Bucket{{Layer: "a", Rate: Rate{Per: time.Second}}}, 1, true},
		{"zero period", []Bucket{{Layer: "a", Rate: Rate{Limit: 1}}}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Take(t.Context(), tt.buckets, make([]Decision, tt.out))
			if (err != nil) != tt.wantErr || errors.Is(err, ErrUnavailable) {
				t.Errorf("Take = %v, want error %v (never ErrUnavailable)", err, tt.wantErr)
			}
		})
	}
	if n := r.Errors(); n != 0 {
		t.Errorf("Errors() = %d, want 0 (bad arguments are not store errors)", n)
	}
}

// A crashed Redis opens the breaker after BreakerFailures errors; calls
// then fail at once; the same port serving again closes it, after the
// cooldown.
func TestRedisBreakerCrash(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	cfg := testRedisConfig(srv.URL())
	r := newTestRedis(t, cfg)
	b := Bucket{Layer: "ip", Key: "192.0.2.1", Rate: Rate{Limit: 100, Per: time.Second}}
	take(t, r, b)
	if got := r.Ready(); got != "" {
		t.Fatalf("Ready() = %q, want \"\"", got)
	}

	srv.Kill()
	out := make([]Decision, 1)
	for i := range cfg.BreakerFailures {
		if err := r.Take(t.Context(), []Bucket{b}, out); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take %d after the crash = %v, want ErrUnavailable", i, err)
		}
	}
	opened := time.Now()
	if got := r.Ready(); got != "redis unavailable" {
		t.Errorf("Ready() with the breaker open = %q, want \"redis unavailable\"", got)
	}
	const fast = 20
	for i := range fast {
		start := time.Now()
		err := r.Take(t.Context(), []Bucket{b}, out)
		if took := time.Since(start); took > cfg.Timeout.D()/10 {
			t.Errorf("Take %d with the breaker open took %v, want well under the %v timeout", i, took, cfg.Timeout.D())
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take %d with the breaker open = %v, want ErrUnavailable", i, err)
		}
	}
	if n, want := r.Errors(), uint64(cfg.BreakerFailures+fast); n != want {
		t.Errorf("Errors() = %d, want %d", n, want)
	}

	srv.Start()
	var recovered time.Time
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r.Take(t.Context(), []Bucket{b}, out) == nil {
			recovered = time.Now()
			break
		}
	}
	switch {
	case recovered.IsZero():
		t.Fatal("the store did not recover within 5s of Redis coming back")
	case recovered.Sub(opened) < cfg.BreakerCooldown.D():
		t.Errorf("recovered %v after the breaker opened, want no sooner than the %v cooldown", recovered.Sub(opened), cfg.BreakerCooldown.D())
	}
	if got := r.Ready(); got != "" {
		t.Errorf("Ready() after recovery = %q, want \"\"", got)
	}
	if !out[0].Allowed || out[0].Remaining != 99 {
		t.Errorf("first Take after recovery = %+v, want allowed with Remaining 99 (a fresh Redis)", out[0])
	}
}

// A hung Redis (connections accepted, no answer) costs the timeout only
// until the breaker opens.
func TestRedisBreakerHung(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	cfg := testRedisConfig(srv.URL())
	cfg.Timeout = config.Duration(200 * time.Millisecond)
	r := newTestRedis(t, cfg)
	b := Bucket{Layer: "ip", Key: "192.0.2.1", Rate: Rate{Limit: 100, Per: time.Second}}
	take(t, r, b)

	srv.Pause()
	out := make([]Decision, 1)
	for i := range cfg.BreakerFailures {
		start := time.Now()
		err := r.Take(t.Context(), []Bucket{b}, out)
		if took := time.Since(start); took < cfg.Timeout.D()/2 || took > 5*cfg.Timeout.D() {
			t.Errorf("Take %d against a hung Redis took %v, want about the %v timeout", i, took, cfg.Timeout.D())
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take %d against a hung Redis = %v, want ErrUnavailable", i, err)
		}
	}
	for i := range 10 {
		start := time.Now()
		err := r.Take(t.Context(), []Bucket{b}, out)
		if took := time.Since(start); took > cfg.Timeout.D()/10 {
			t.Errorf("Take %d with the breaker open took %v, want well under the %v timeout", i, took, cfg.Timeout.D())
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Take %d with the breaker open = %v, want ErrUnavailable", i, err)
		}
	}
	srv.Resume()
	time.Sleep(cfg.BreakerCooldown.D())
	if err := r.Take(t.Context(), []Bucket{b}, out); err != nil {
		t.Fatalf("Take after the cooldown = %v, want the probe to succeed", err)
	}
	if got := r.Ready(); got != "" {
		t.Errorf("Ready() after recovery = %q, want \"\"", got)
	}
}

// A caller that gives up is not Redis's failure.
func TestRedisCanceledCaller(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	cfg := testRedisConfig(srv.URL())
	cfg.BreakerFailures = 1
	r := newTestRedis(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := r.Take(ctx, []Bucket{{Layer: "global", Rate: Rate{Limit: 1, Per: time.Second}}}, make([]Decision, 1))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Take with a canceled context = %v, want context.Canceled and not ErrUnavailable", err)
	}
	if got, n := r.Ready(), r.Errors(); got != "" || n != 0 {
		t.Errorf("after a canceled Take: Ready() = %q, Errors() = %d, want \"\" and 0", got, n)
	}
}

// Neither errors nor logs ever carry the password, whatever fails.
func TestRedisNoPasswordLeak(t *testing.T) {
	redisLeakCheck(t)
	const secret, wrong = "pw-Zq8-canary-right", "pw-Zq8-canary-wrong"
	srv := startRedisServer(t, secret)
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	b := Bucket{Layer: "ip", Key: "192.0.2.1", Rate: Rate{Limit: 100, Per: time.Second}}
	var errs []error
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error, want one", what)
			return
		}
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}

	good, err := NewRedis(testRedisConfig(srv.URL()), log)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer good.Close()
	take(t, good, b)

	wrongURL := strings.Replace(srv.URL(), secret, wrong, 1)
	bad, err := NewRedis(testRedisConfig(wrongURL), log)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	defer bad.Close()
	for range 4 { // through the breaker opening
		check("Take with a wrong password", bad.Take(t.Context(), []Bucket{b}, make([]Decision, 1)))
	}
	_, err = bad.Count(t.Context(), "quota:x", time.Now().Add(time.Minute))
	check("Count with a wrong password", err)

	addrs := testRedisConfig("")
	addrs.Addrs, addrs.Password = []string{srv.Addr()}, wrong
	byAddrs, err := NewRedis(addrs, log)
	if err != nil {
		t.Fatalf("NewRedis with addrs: %v", err)
	}
	defer byAddrs.Close()
	check("Take by addrs with a wrong password", byAddrs.Take(t.Context(), []Bucket{b}, make([]Decision, 1)))

	for _, u := range []string{
		"redis://:" + secret + "@127.0.0.1:notaport/0",
		"redis://:" + secret + "%zz@127.0.0.1:6379/0",
		"http://:" + secret + "@127.0.0.1:6379/0",
		"redis://:" + secret + "@127.0.0.1:6379/x",
	} {
		_, err := NewRedis(testRedisConfig(u), log)
		check("NewRedis with a bad URL", err)
	}

	srv.Kill()
	for range 4 {
		check("Take after a crash", good.Take(t.Context(), []Bucket{b}, make([]Decision, 1)))
	}

	for _, err := range errs {
		if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, wrong) {
			t.Errorf("error leaks the password: %s", msg)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no log entries: want the store's start and breaker logs to check")
	}
	for _, e := range logs.All() {
		text := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(text, secret) || strings.Contains(text, wrong) {
			t.Errorf("log entry leaks the password: %s", text)
		}
	}
	if logs.FilterMessageSnippet("circuit breaker open").Len() < 2 {
		t.Errorf("want a breaker log entry from each failing store, got:\n%v", logs.All())
	}
}

// An instance whose readiness fails gets no requests, so Ready probes
// Redis itself once the cooldown is over.
func TestRedisReadyProbes(t *testing.T) {
	redisLeakCheck(t)
	srv := startRedisServer(t, "")
	cfg := testRedisConfig(srv.URL())
	cfg.BreakerCooldown = config.Duration(time.Second)
	r := newTestRedis(t, cfg)
	b := Bucket{Layer: "global", Rate: Rate{Limit: 100, Per: time.Second}}
	take(t, r, b)

	srv.Kill()
	for range cfg.BreakerFailures {
		_ = r.Take(t.Context(), []Bucket{b}, make([]Decision, 1))
	}
	if got := r.Ready(); got != "redis unavailable" {
		t.Fatalf("Ready() with Redis down = %q, want \"redis unavailable\"", got)
	}
	time.Sleep(cfg.BreakerCooldown.D())
	if got := r.Ready(); got != "redis unavailable" {
		t.Errorf("Ready() after the cooldown, Redis still down = %q, want \"redis unavailable\"", got)
	}
	srv.Start()
	if got := r.Ready(); got != "redis unavailable" {
		t.Errorf("Ready() within the new cooldown = %q, want \"redis unavailable\" (no probe yet)", got)
	}
	time.Sleep(cfg.BreakerCooldown.D())
	if got := r.Ready(); got != "" {
		t.Errorf("Ready() after the cooldown, Redis back = %q, want \"\" (Ready probed)", got)
	}
}
