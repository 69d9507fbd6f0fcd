package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// A stage's questions (docs/rate-limiting.md, "Round trips") reach Redis
// in one round trip:
//
//   - on a standalone server or a Sentinel-managed master, as one script
//     (redisBatchScript), which answers them in order and atomically: a
//     held guarding lock takes nothing, and the counter counts only when
//     every bucket allowed, exactly as one call per question would;
//   - on a Cluster, whose keys of one request live in different slots
//     and so on different nodes, no one script can see them all: they go
//     in one pipeline, which go-redis's ClusterClient splits by node and
//     sends to the nodes in parallel. Each question then runs on its own
//     (the lock read, redis_rate's script per bucket, a counting script),
//     so the batch undoes, in a second round trip, what the order would
//     not have done: the tokens taken and the count made for a request
//     whose guarding lock is held, the count made for a request that a
//     bucket refused. Only such refused requests pay that second trip.

// redisBatchScript is the batch script; %s is redis_rate's GCRA script,
// run as a function once per bucket, so that the buckets are decided by
// the very script Take runs.
//
// KEYS: the lock (when ARGV[1] > 0), one key per bucket, the counter
// (when ARGV[4] is 1). ARGV: the lock's role (0 none, 1 read, 2 guard),
// the number of buckets, the counter's expiry (Unix ms), whether there is
// a counter, then redis_rate's four arguments per bucket.
//
// The reply: the lock's PTTL (-2 when there is no lock, or no such key)
// and, unless a guarding lock is held, redis_rate's reply per bucket and
// the counter's new value (0: not counted).
const redisBatchScript = `
local gcra = function(KEYS, ARGV)
%s
end
local role, buckets, count = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4] == "1"
local out = {-2}
local k = 1
if role > 0 then
  out[1] = redis.call("PTTL", KEYS[1])
  k = 2
  if role == 2 and out[1] ~= -2 then
    return out
  end
end
local allowed = true
for i = 0, buckets - 1 do
  local a = 5 + 4 * i
  local r = gcra({KEYS[k + i]}, {ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]})
  if r[1] == 0 then
    allowed = false
  end
  out[#out + 1] = r
end
if count then
  local n = 0
  if allowed then
    n = redis.call("INCR", KEYS[k + buckets])
    redis.call("PEXPIREAT", KEYS[k + buckets], ARGV[3])
  end
  out[#out + 1] = n
end
return out
`

// redisCountScript counts one counter on a Cluster: INCR and PEXPIREAT
// at once, as Count's MULTI/EXEC does, in a pipeline that cannot hold a
// transaction. ARGV[1]: the expiry (Unix ms).
const redisCountScript = `
local n = redis.call("INCR", KEYS[1])
redis.call("PEXPIREAT", KEYS[1], ARGV[1])
return n
`

// redisReturnScript gives back the token redis_rate's script took from
// the bucket KEYS[1] (ARGV: its period in seconds and rate, as
// redis_rate gets them): the bucket's theoretical arrival time moves one
// emission interval back, on redis_rate's clock (seconds since
// 2017-01-01); at or before now, the bucket is full, and its key goes.
const redisReturnScript = `
local tat = redis.call("GET", KEYS[1])
if not tat then
  return 0
end
local now = redis.call("TIME")
now = (now[1] - 1483228800) + (now[2] / 1000000)
local new_tat = tonumber(tat) - ARGV[1] / ARGV[2]
if new_tat <= now then
  redis.call("DEL", KEYS[1])
else
  redis.call("SET", KEYS[1], new_tat, "EX", math.ceil(new_tat - now))
end
return 1
`

// redisRateScript returns the source and SHA-1 of the script redis_rate
// runs for AllowN. It asks AllowN through a rediser that answers EVALSHA
// with NOSCRIPT, so that go-redis falls back to EVAL and hands over the
// source: the batch script embeds redis_rate's script rather than a copy.
func redisRateScript() (src, sha string, err error) {
	var c redisScriptCapture
	_, err = redis_rate.NewLimiter(&c).AllowN(context.Background(), "k", redis_rate.PerSecond(1), 1)
	if !errors.Is(err, errRedisQueued) || c.src == "" || c.sha == "" {
		return "", "", fmt.Errorf("redis: read redis_rate's script: %w", errRedisRateChanged)
	}
	return c.src, c.sha, nil
}

// redisScriptCapture is the rediser of redisRateScript.
type redisScriptCapture struct {
	redisScriptBatch
	src, sha string
}

func (c *redisScriptCapture) EvalSha(ctx context.Context, sha1 string, _ []string, _ ...any) *redis.Cmd {
	c.sha = sha1
	return redisErrCmd(ctx, redis.ErrNoScript)
}

func (c *redisScriptCapture) Eval(ctx context.Context, script string, _ []string, _ ...any) *redis.Cmd {
	c.src = script
	return redisErrCmd(ctx, errRedisQueued)
}

// Batch answers b in one round trip (see above; a second one only right
// after Redis lost its script cache, or on a Cluster to undo what a
// refused request must not have done). It runs under the timeout and the
// breaker as one call.
func (r *Redis) Batch(ctx context.Context, b *Batch) error {
	if len(b.Decisions) != len(b.Buckets) {
		return fmt.Errorf("redis batch: %d decisions for %d buckets", len(b.Decisions), len(b.Buckets))
	}
	batch, err := r.scriptBatch(b.Buckets, "batch")
	if err != nil {
		return err
	}
	b.Locked, b.LockLeft, b.Counted, b.N = false, 0, false, 0
	if b.Lock == "" && len(b.Buckets) == 0 && b.Count == "" {
		return nil // nothing to ask
	}
	if b.Lock == "" && b.Count == "" {
		// Buckets alone (the common route limit): redis_rate's own script
		// per bucket, pipelined, as Take runs it. Also one round trip, and
		// cheaper for Redis than the batch script (12.5–13.4 µs of Redis
		// time per call against 13.5–16.2 µs for one bucket).
		return r.Take(ctx, b.Buckets, b.Decisions)
	}
	run := r.batchScript
	if r.cluster {
		run = r.batchPipeline
	}
	return r.call(ctx, "batch", func(ctx context.Context) error {
		if r.observe == nil {
			return run(ctx, b, batch)
		}
		start := time.Now()
		err := run(ctx, b, batch)
		r.observe(time.Since(start))
		return err
	})
}

// scriptBatch makes the redis_rate calls of buckets.
func (r *Redis) scriptBatch(buckets []Bucket, op string) (*redisScriptBatch, error) {
	batch := &redisScriptBatch{calls: make([]redisScriptCall, len(buckets))}
	for i, b := range buckets {
		if b.Rate.Limit <= 0 || b.Rate.Per <= 0 {
			return nil, fmt.Errorf("redis %s: bucket %s: rate %d per %s is not a limit", op, b.Layer, b.Rate.Limit, b.Rate.Per)
		}
		c := &batch.calls[i]
		c.key = r.prefix + b.Layer + ":" + redisKey(b.Key)
		c.limit = redis_rate.Limit{Rate: b.Rate.Limit, Burst: b.Rate.Burst, Period: b.Rate.Per}
		if c.limit.Burst <= 0 {
			c.limit.Burst = c.limit.Rate
		}
	}
	return batch, nil
}

// record runs AllowN once per bucket of batch, so that each records the
// EVALSHA it asks for: its arguments, formatted by redis_rate.
func (r *Redis) record(ctx context.Context, limiter *redis_rate.Limiter, batch *redisScriptBatch) error {
	for i := range batch.calls {
		c := &batch.calls[i]
		batch.cur, c.pos = c, 0
		if _, err := limiter.AllowN(ctx, c.key, c.limit, 1); !errors.Is(err, errRedisQueued) {
			return errRedisRateChanged
		}
		if s := &c.steps[0]; s.eval || s.body != r.gcraSHA || len(s.args) != 4 {
			return errRedisRateChanged
		}
	}
	return nil
}

// answer hands each bucket's reply to AllowN, which reads it into out.
func (r *Redis) answer(ctx context.Context, limiter *redis_rate.Limiter, batch *redisScriptBatch, replies []any, out []Decision) error {
	for i := range batch.calls {
		c := &batch.calls[i]
		cmd := redis.NewCmd(ctx)
		cmd.SetVal(replies[i])
		c.steps[0].result = cmd
		batch.cur, c.pos = c, 0
		res, err := limiter.AllowN(ctx, c.key, c.limit, 1)
		if err != nil {
			return err
		}
		out[i] = redisDecision(res)
	}
	return nil
}

// batchScript answers b with the batch script: EVALSHA, and EVAL when
// Redis does not have it.
func (r *Redis) batchScript(ctx context.Context, b *Batch, batch *redisScriptBatch) error {
	limiter := redis_rate.NewLimiter(batch)
	if err := r.record(ctx, limiter, batch); err != nil {
		return err
	}
	keys := make([]string, 0, len(batch.calls)+2)
	args := make([]any, 4, 4+4*len(batch.calls))
	args[0], args[1], args[2], args[3] = 0, len(batch.calls), b.Until.UnixMilli(), 0
	if b.Lock != "" {
		keys = append(keys, r.prefix+redisKey(b.Lock))
		args[0] = 1
		if b.Guard {
			args[0] = 2
		}
	}
	for i := range batch.calls {
		c := &batch.calls[i]
		keys = append(keys, c.key)
		args = append(args, c.steps[0].args...)
	}
	if b.Count != "" {
		keys = append(keys, r.prefix+redisKey(b.Count))
		args[3] = 1
	}
	reply, err := r.batch.Run(ctx, r.rdb, keys, args...).Slice()
	if err != nil {
		return err
	}
	if len(reply) == 0 {
		return fmt.Errorf("redis: unexpected batch reply %v", reply)
	}
	if b.Lock != "" {
		ttl, ok := reply[0].(int64)
		if !ok {
			return fmt.Errorf("redis: unexpected batch reply %v", reply)
		}
		b.LockLeft, b.Locked = redisLock(ttl)
		if b.Locked && b.Guard {
			return nil
		}
	}
	want := 1 + len(batch.calls)
	if b.Count != "" {
		want++
	}
	if len(reply) != want {
		return fmt.Errorf("redis: unexpected batch reply %v", reply)
	}
	if err := r.answer(ctx, limiter, batch, reply[1:1+len(batch.calls)], b.Decisions); err != nil {
		return err
	}
	if b.Count != "" {
		n, ok := reply[want-1].(int64)
		if !ok {
			return fmt.Errorf("redis: unexpected batch reply %v", reply)
		}
		b.Counted, b.N = n > 0, n
	}
	return nil
}

// redisLock reads a PTTL reply in milliseconds, as Locked does.
func redisLock(ttl int64) (time.Duration, bool) {
	switch {
	case ttl == -2: // no such key
		return 0, false
	case ttl < 0: // no expiry
		return 0, true
	}
	return time.Duration(ttl) * time.Millisecond, true
}

// batchPipeline answers b on a Cluster: one pipeline, and a second one to
// undo what a refused request must not have done (see above).
func (r *Redis) batchPipeline(ctx context.Context, b *Batch, batch *redisScriptBatch) error {
	var (
		lock  *redis.DurationCmd
		count *redis.Cmd
	)
	countKey := r.prefix + redisKey(b.Count)
	err := r.take(ctx, batch, b.Decisions, func(pipe redis.Pipeliner) {
		if b.Lock != "" {
			lock = pipe.PTTL(ctx, r.prefix+redisKey(b.Lock))
		}
		if b.Count != "" {
			count = pipe.Eval(ctx, redisCountScript, []string{countKey}, b.Until.UnixMilli())
		}
	})
	if err != nil {
		return err
	}
	if lock != nil {
		ttl, err := lock.Result()
		if err != nil {
			return err
		}
		if ttl > 0 { // go-redis gives -1 and -2 as they are, a TTL in time
			ttl /= time.Millisecond
		}
		b.LockLeft, b.Locked = redisLock(int64(ttl))
	}
	var n int64
	if count != nil {
		if n, err = count.Int64(); err != nil {
			return err
		}
	}
	refused := b.Locked && b.Guard
	uncount := count != nil && (refused || !allAllowed(b.Decisions))
	if !refused && !uncount {
		b.Counted, b.N = count != nil, n
		return nil
	}
	undo := r.rdb.Pipeline()
	if refused {
		for i := range batch.calls {
			if c := &batch.calls[i]; b.Decisions[i].Allowed {
				undo.Eval(ctx, redisReturnScript, []string{c.key}, c.limit.Period.Seconds(), c.limit.Rate)
			}
		}
	}
	if uncount {
		undo.Decr(ctx, countKey)
	}
	if undo.Len() == 0 {
		return nil
	}
	// The answer stands whether or not the undo gets through: a failed
	// undo leaves the request counted, as a stricter limit would.
	if _, err := undo.Exec(ctx); err != nil {
		if ce := r.log.Check(zap.WarnLevel, "redis: undo of a refused request failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
	return nil
}
