package ratelimit

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/breaker"
	"github.com/bulwark-gateway/bulwark/internal/config"
)

// Defaults for a config.Redis built by hand (config loading sets them too).
const (
	redisDefaultTimeout  = 100 * time.Millisecond
	redisDefaultFailures = 3
	redisDefaultCooldown = 2 * time.Second
)

// Keys of Redis: longer keys, keys with bytes outside printable ASCII (or
// a space), and keys that look hashed are stored as their SHA-256, so a
// client cannot make Bulwark write huge or binary keys, nor pick a value
// that lands in the bucket of a hashed one.
const (
	redisMaxRawKey    = 128
	redisHashedPrefix = "sha256:"
)

// redisRatePrefix is what redis_rate prepends to every key it is given;
// Redis strips it again so that every key starts with key_prefix.
const redisRatePrefix = "rate:"

// Redis is the Store for limits that hold exactly across gateway
// instances: token buckets are GCRA in Redis (redis_rate's script, one
// pipeline per Take, one round trip per Batch), counters and locks are
// plain keys. All keys start
// with key_prefix. Every call runs under the configured timeout and
// through a circuit breaker, so a dead Redis costs each request nothing
// once the breaker is open.
type Redis struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	breaker *breaker.Breaker
	errs    atomic.Uint64
	observe func(time.Duration)
	log     *zap.Logger
	// cluster is set for a Cluster client: a batch is a pipeline there,
	// a script elsewhere (redis_batch.go).
	cluster bool
	batch   *redis.Script // redisBatchScript
	gcraSHA string        // SHA-1 of redis_rate's script
}

var (
	_ Store   = (*Redis)(nil)
	_ Batcher = (*Redis)(nil)
)

// RedisOption configures a Redis store beyond its config section.
type RedisOption func(*Redis)

// WithTakeObserver has every Take and Batch that reached Redis (answered
// or failed) report its duration to observe, e.g. a histogram's Observe
// in seconds. Calls refused by the open breaker are not observed: they
// never waited.
func WithTakeObserver(observe func(time.Duration)) RedisOption {
	return func(r *Redis) { r.observe = observe }
}

// NewRedis builds the Redis store: a standalone client for url, a Cluster
// client for several addrs, a Sentinel client for addrs with master_name.
// It does not dial: a Redis that is down at start is handled like one
// that goes down later (the breaker opens, the failure mode applies).
// Neither the URL nor the password is ever logged or put in an error.
func NewRedis(cfg config.Redis, log *zap.Logger, opts ...RedisOption) (*Redis, error) {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("redis")
	timeout := cfg.Timeout.D()
	if timeout <= 0 {
		timeout = redisDefaultTimeout
	}
	failures := cfg.BreakerFailures
	if failures < 1 {
		failures = redisDefaultFailures
	}
	cooldown := cfg.BreakerCooldown.D()
	if cooldown <= 0 {
		cooldown = redisDefaultCooldown
	}
	var tlsConfig *tls.Config
	if cfg.TLS != nil {
		var err error
		if tlsConfig, err = cfg.TLS.Config("redis"); err != nil {
			return nil, err
		}
	}

	var (
		rdb    redis.UniversalClient
		fields []zap.Field
	)
	switch {
	case cfg.URL != "" && len(cfg.Addrs) > 0:
		return nil, errors.New("redis: use url or addrs, not both")
	case cfg.URL != "":
		o, err := redis.ParseURL(string(cfg.URL))
		if err != nil {
			return nil, redisURLError(err)
		}
		if tlsConfig != nil {
			if tlsConfig.ServerName == "" {
				tlsConfig.ServerName, _, _ = net.SplitHostPort(o.Addr)
			}
			o.TLSConfig = tlsConfig
		}
		o.ReadTimeout, o.WriteTimeout = timeout, timeout
		o.DialTimeout, o.PoolTimeout = timeout, timeout
		o.ContextTimeoutEnabled = true
		// A Take is not idempotent: a retried pipeline whose first
		// attempt ran would charge its buckets twice. A failed call is
		// answered by the breaker and the failure mode instead.
		o.MaxRetries = -1
		o.DialerRetries = 1
		if cfg.PoolSize > 0 {
			o.PoolSize = cfg.PoolSize
		}
		rdb = redis.NewClient(o)
		fields = []zap.Field{zap.String("mode", "standalone"), zap.String("addr", o.Addr), zap.Int("db", o.DB), zap.Bool("tls", o.TLSConfig != nil)}
	case len(cfg.Addrs) > 0:
		o := &redis.UniversalOptions{
			Addrs:                 cfg.Addrs,
			MasterName:            cfg.MasterName,
			Username:              cfg.Username,
			Password:              string(cfg.Password),
			DB:                    cfg.DB,
			TLSConfig:             tlsConfig,
			ReadTimeout:           timeout,
			WriteTimeout:          timeout,
			DialTimeout:           timeout,
			PoolTimeout:           timeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1, // see above
			DialerRetries:         1,
			PoolSize:              cfg.PoolSize,
		}
		rdb = redis.NewUniversalClient(o)
		mode := "standalone"
		switch {
		case cfg.MasterName != "":
			mode = "sentinel"
		case len(cfg.Addrs) > 1:
			mode = "cluster"
		}
		fields = []zap.Field{zap.String("mode", mode), zap.Strings("addrs", cfg.Addrs), zap.Bool("tls", tlsConfig != nil)}
	default:
		return nil, errors.New("redis: needs url or addrs")
	}

	gcra, gcraSHA, err := redisRateScript()
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	_, cluster := rdb.(*redis.ClusterClient)
	r := &Redis{
		rdb:     rdb,
		cluster: cluster,
		batch:   redis.NewScript(fmt.Sprintf(redisBatchScript, gcra)),
		gcraSHA: gcraSHA,
		prefix:  cfg.KeyPrefix,
		timeout: timeout,
		breaker: breaker.New(failures, cooldown),
		log:     log,
	}
	for _, opt := range opts {
		opt(r)
	}
	log.Info("rate-limit store", append(fields,
		zap.Duration("timeout", timeout),
		zap.Int("breaker_failures", failures),
		zap.Duration("breaker_cooldown", cooldown))...)
	return r, nil
}

// redisURLError describes a URL that does not parse without repeating it:
// net/url's errors quote the whole URL, password included.
func redisURLError(err error) error {
	if _, ok := errors.AsType[*url.Error](err); ok {
		return errors.New("redis: url: not a valid URL (it is not repeated here: it may hold a password)")
	}
	// go-redis's own messages name the scheme, path or option, not the
	// user info.
	return fmt.Errorf("redis: url: %w", err)
}

// Take runs redis_rate's GCRA script for every bucket, all in one
// pipeline (one round trip; a second one only right after Redis lost its
// script cache).
func (r *Redis) Take(ctx context.Context, buckets []Bucket, out []Decision) error {
	if len(out) != len(buckets) {
		return fmt.Errorf("redis take: %d decisions for %d buckets", len(out), len(buckets))
	}
	if len(buckets) == 0 {
		return nil
	}
	batch, err := r.scriptBatch(buckets, "take")
	if err != nil {
		return err
	}
	return r.call(ctx, "take", func(ctx context.Context) error {
		if r.observe == nil {
			return r.take(ctx, batch, out, nil)
		}
		start := time.Now()
		err := r.take(ctx, batch, out, nil)
		r.observe(time.Since(start))
		return err
	})
}

// redisMaxPipelines is how many pipelines one Take may need: EVALSHA for
// all buckets, then EVAL for those whose script Redis did not have.
const redisMaxPipelines = 2

// take runs redis_rate's AllowN once per bucket against batch, which
// only records the script call it is asked for; sends all recorded calls
// as one pipeline; and runs AllowN again, now handing it the pipeline's
// answer, which AllowN parses into a Result. A bucket whose answer is
// NOSCRIPT makes AllowN fall back to EVAL: recorded the same way, sent
// in a second pipeline. No goroutine, no copy of the script: it is
// redis_rate that builds the calls and reads the answers. first, when not
// nil, adds more commands to the first pipeline, which is then sent even
// without a bucket.
func (r *Redis) take(ctx context.Context, batch *redisScriptBatch, out []Decision, first func(redis.Pipeliner)) error {
	limiter := redis_rate.NewLimiter(batch)
	for pipelines := 0; ; pipelines++ {
		pending := 0
		for i := range batch.calls {
			c := &batch.calls[i]
			if c.done {
				continue
			}
			batch.cur, c.pos = c, 0
			res, err := limiter.AllowN(ctx, c.key, c.limit, 1)
			switch {
			case errors.Is(err, errRedisQueued):
				pending++
			case err != nil:
				return err
			default:
				c.done = true
				out[i] = redisDecision(res)
			}
		}
		if pending == 0 && (pipelines > 0 || first == nil) {
			return nil
		}
		if pipelines == redisMaxPipelines {
			return errRedisRateChanged
		}
		pipe := r.rdb.Pipeline()
		if pipelines == 0 && first != nil {
			first(pipe)
		}
		keys := make([]string, pending) // one backing array for the pipeline's key lists
		for i := range batch.calls {
			c := &batch.calls[i]
			if c.done {
				continue
			}
			s := &c.steps[len(c.steps)-1]
			k := keys[:1:1]
			keys = keys[1:]
			k[0] = c.key
			if s.eval {
				s.result = pipe.Eval(ctx, s.body, k, s.args...)
			} else {
				s.result = pipe.EvalSha(ctx, s.body, k, s.args...)
			}
		}
		// Exec returns the first command's error. NOSCRIPT is answered
		// in the next round (redis_rate sends EVAL); any other error
		// fails the Take.
		if _, err := pipe.Exec(ctx); err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
	}
}

// redisDecision maps redis_rate's Result (RetryAfter -1 when allowed)
// onto a Decision.
//
// Remaining is recomputed from ResetAfter: the script returns
// (burst_offset - reset_after) / emission_interval truncated to an
// integer, and floating-point error turns an exact 1.0 into 0.999...,
// so redis_rate reports one token too few whenever the bucket is a whole
// number of tokens short of full (2 per 200ms: Remaining 0 after the
// first request). Here the bucket is short of full by ResetAfter /
// emission tokens, rounded up after forgiving a microsecond, the
// resolution of Redis's TIME.
func redisDecision(res *redis_rate.Result) Decision {
	d := Decision{Allowed: res.Allowed > 0, Remaining: res.Remaining, Reset: max(res.ResetAfter, 0)}
	if !d.Allowed {
		d.RetryAfter = max(res.RetryAfter, 0)
		return d
	}
	emission := float64(res.Limit.Period) / float64(res.Limit.Rate)
	short := math.Ceil((float64(d.Reset) - float64(time.Microsecond)) / emission)
	d.Remaining = min(max(res.Limit.Burst-int(short), 0), res.Limit.Burst)
	return d
}

var (
	// errRedisQueued is what a recorded script call answers, so that
	// AllowN returns without a result.
	errRedisQueued = errors.New("redis: script call queued")
	// errRedisRateChanged means redis_rate did not make the calls it
	// made when this was written; the store fails rather than guess.
	errRedisRateChanged = errors.New("redis: unexpected script calls from redis_rate")
)

// redisScriptBatch is the rediser that redis_rate's Limiter runs its
// script through during one Take. For the bucket being run (cur) it
// answers each script call, in order, with the result of the pipeline
// that carried it; a call it has no result for yet is recorded and
// answered with errRedisQueued. Only one goroutine uses a batch.
type redisScriptBatch struct {
	calls []redisScriptCall
	cur   *redisScriptCall
}

type redisScriptCall struct {
	key   string // the Redis key; redis_rate asks for redisRatePrefix+key
	limit redis_rate.Limit
	steps []redisScriptStep
	buf   [redisMaxPipelines]redisScriptStep
	pos   int // steps answered in the current run of AllowN
	done  bool
}

type redisScriptStep struct {
	eval   bool   // EVAL (body is the script) rather than EVALSHA (body is its SHA-1)
	body   string // the script or its SHA-1, as redis_rate gave it
	args   []any
	result *redis.Cmd // nil until a pipeline carried the call
}

func (b *redisScriptBatch) script(ctx context.Context, eval bool, body string, keys []string, args []any) *redis.Cmd {
	c := b.cur
	if len(keys) != 1 || !strings.HasPrefix(keys[0], redisRatePrefix) || keys[0][len(redisRatePrefix):] != c.key {
		return redisErrCmd(ctx, errRedisRateChanged)
	}
	if c.pos < len(c.steps) {
		s := &c.steps[c.pos]
		c.pos++
		if s.eval != eval || s.body != body || s.result == nil {
			return redisErrCmd(ctx, errRedisRateChanged)
		}
		// AllowN reads the reply without checking its shape.
		if v, ok := s.result.Val().([]any); s.result.Err() == nil && (!ok || len(v) != 4) {
			return redisErrCmd(ctx, fmt.Errorf("redis: unexpected script reply %v", s.result.Val()))
		}
		return s.result
	}
	if len(c.steps) == len(c.buf) {
		return redisErrCmd(ctx, errRedisRateChanged)
	}
	if c.steps == nil {
		c.steps = c.buf[:0]
	}
	c.steps = append(c.steps, redisScriptStep{eval: eval, body: body, args: args})
	c.pos++
	return redisErrCmd(ctx, errRedisQueued)
}

func (b *redisScriptBatch) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return b.script(ctx, false, sha1, keys, args)
}

func (b *redisScriptBatch) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return b.script(ctx, true, script, keys, args)
}

// The rest of redis_rate's rediser is not used by AllowN.

func (b *redisScriptBatch) EvalShaRO(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return redisErrCmd(ctx, errRedisRateChanged)
}

func (b *redisScriptBatch) EvalRO(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return redisErrCmd(ctx, errRedisRateChanged)
}

func (b *redisScriptBatch) ScriptExists(ctx context.Context, _ ...string) *redis.BoolSliceCmd {
	cmd := redis.NewBoolSliceCmd(ctx)
	cmd.SetErr(errRedisRateChanged)
	return cmd
}

func (b *redisScriptBatch) ScriptLoad(ctx context.Context, _ string) *redis.StringCmd {
	cmd := redis.NewStringCmd(ctx)
	cmd.SetErr(errRedisRateChanged)
	return cmd
}

func (b *redisScriptBatch) Del(ctx context.Context, _ ...string) *redis.IntCmd {
	cmd := redis.NewIntCmd(ctx)
	cmd.SetErr(errRedisRateChanged)
	return cmd
}

func redisErrCmd(ctx context.Context, err error) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}

// Count increments key and sets it to expire at until, in one MULTI/EXEC.
func (r *Redis) Count(ctx context.Context, key string, until time.Time) (int64, error) {
	k := r.prefix + redisKey(key)
	var n int64
	err := r.call(ctx, "count", func(ctx context.Context) error {
		var incr *redis.IntCmd
		_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			incr = p.Incr(ctx, k)
			p.PExpireAt(ctx, k, until)
			return nil
		})
		if err != nil {
			return err
		}
		n = incr.Val()
		return nil
	})
	return n, err
}

// Lock sets key for d (SET key 1 PX d, at least 1 ms); d <= 0 locks
// nothing.
func (r *Redis) Lock(ctx context.Context, key string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	d = max(d.Round(time.Millisecond), time.Millisecond)
	k := r.prefix + redisKey(key)
	return r.call(ctx, "lock", func(ctx context.Context) error {
		return r.rdb.Set(ctx, k, 1, d).Err()
	})
}

// Locked reads key's time to live (PTTL). A key without one, which Lock
// never writes, counts as locked with no known end.
func (r *Redis) Locked(ctx context.Context, key string) (time.Duration, bool, error) {
	k := r.prefix + redisKey(key)
	var ttl time.Duration
	err := r.call(ctx, "locked", func(ctx context.Context) error {
		var err error
		ttl, err = r.rdb.PTTL(ctx, k).Result()
		return err
	})
	switch {
	case err != nil:
		return 0, false, err
	case ttl == -2: // no such key
		return 0, false, nil
	case ttl < 0: // no expiry
		return 0, true, nil
	}
	return ttl, true, nil
}

// Ready returns "" while the breaker is closed. With the breaker open
// and its cooldown over, Ready itself probes Redis (PING): an instance
// that reports unready gets no requests, so no request would.
func (r *Redis) Ready() string {
	if !r.breaker.Open() {
		return ""
	}
	if probe, ok := r.breaker.Allow(time.Now()); ok {
		_ = r.run(context.Background(), "ping", probe, func(ctx context.Context) error {
			return r.rdb.Ping(ctx).Err()
		})
	}
	if r.breaker.Open() {
		return "redis unavailable"
	}
	return ""
}

// Errors returns how many calls failed: Redis errors and timeouts, and
// calls refused by the open breaker (not calls whose caller gave up).
func (r *Redis) Errors() uint64 { return r.errs.Load() }

// Close closes the client's connections.
func (r *Redis) Close() error { return r.rdb.Close() }

// call runs op under the breaker and the per-call timeout. Every error
// it returns for Redis's sake wraps ErrUnavailable; a caller that gave up
// (canceled its context) gets context.Canceled, which does not count
// against Redis. A caller's own deadline passing does: to the request,
// Redis was too slow.
func (r *Redis) call(ctx context.Context, name string, op func(context.Context) error) error {
	probe, ok := r.breaker.Allow(time.Now())
	if !ok {
		r.errs.Add(1)
		return fmt.Errorf("redis %s: %w (circuit breaker open)", name, ErrUnavailable)
	}
	return r.run(ctx, name, probe, op)
}

// run runs op, which the breaker allowed, and tells the breaker how it
// went.
func (r *Redis) run(ctx context.Context, name string, probe bool, op func(context.Context) error) error {
	opCtx, cancel := context.WithTimeout(ctx, r.timeout)
	err := op(opCtx)
	cancel()
	if err == nil {
		if r.breaker.Success(probe) {
			r.log.Info("redis reachable again: circuit breaker closed")
		}
		return nil
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		r.breaker.Release(probe)
		return fmt.Errorf("redis %s: %w", name, ctx.Err())
	}
	r.errs.Add(1)
	if r.breaker.Failure(probe, time.Now()) {
		// go-redis errors name the address, never the password.
		r.log.Warn("redis unreachable: circuit breaker open",
			zap.String("op", name),
			zap.Int64("failures", r.breaker.Threshold()),
			zap.Duration("cooldown", r.breaker.Cooldown()),
			zap.Error(err))
	}
	return fmt.Errorf("redis %s: %w: %w", name, ErrUnavailable, err)
}

// redisKey returns key, or its SHA-256 when it is long, not printable
// ASCII, or looks like a hashed key itself.
func redisKey(key string) string {
	if len(key) <= redisMaxRawKey && !strings.HasPrefix(key, redisHashedPrefix) && redisPrintable(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return redisHashedPrefix + hex.EncodeToString(sum[:])
}

func redisPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Remember records key until the given time and reports whether it was
// new (SET NX PX): one round trip, atomic across instances. DPoP proof ids
// use it, so a proof replayed against another instance is refused too.
func (r *Redis) Remember(ctx context.Context, key string, until time.Time) (bool, error) {
	d := max(time.Until(until).Round(time.Millisecond), time.Millisecond)
	k := r.prefix + redisKey(key)
	var first bool
	err := r.call(ctx, "remember", func(ctx context.Context) error {
		var err error
		first, err = r.rdb.SetNX(ctx, k, 1, d).Result()
		return err
	})
	return first, err
}
