package ratelimit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/gateway"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/ratelimit"
	"github.com/bulwark-gateway/bulwark/internal/redisserver"
)

const roundTripKey = "round-trip-test-key"

// roundTripConfig is a gateway config with every rate-limit layer: edge
// layers (global, per_ip) when edge is set, the auth-failure lockout when
// lockout is set, and always a plan with a quota and a route limit on
// /orders. /health is public and has no limit of its own.
func roundTripConfig(upstream, redisURL string, edge, lockout bool) string {
	layers := ""
	if edge {
		layers += "  global: { limit: 100000, per: 1s }\n  per_ip: { limit: 100000, per: 1s }\n"
	}
	if lockout {
		layers += "  auth_failures: { limit: 100, per: 1m, lockout: 1m }\n"
	}
	sum := sha256.Sum256([]byte(roundTripKey))
	return fmt.Sprintf(`upstreams:
  up: { url: %q }
authenticators:
  keys: { type: api_key, header: X-API-Key }
consumers:
  - { id: acme, plan: gold, api_keys: [ { id: k1, sha256: %q } ] }
rate_limits:
  store: redis
  redis: { url: %q }
  plans:
    gold: { limit: 100000, per: 1m, quota: { limit: 100000, per: day } }
%sroutes:
  - { name: orders, method: GET, path: /orders, upstream: up, auth: [keys], rate_limit: { key: consumer, limit: 100000, per: 1m } }
  - { name: health, method: GET, path: /health, upstream: up, auth: none }
`, upstream, hex.EncodeToString(sum[:]), redisURL, layers)
}

// hiddenBatches is the store without its Batch method: the stages then
// ask it one question per call, as they did before batches.
type hiddenBatches struct{ ratelimit.Store }

// TestRedisRoundTripsPerRequest counts, with a hook on the real go-redis
// client of the Redis store, the round trips one request through the
// whole gateway chain (edge, routing, authentication, the limits after
// it, the proxy) makes to a real redis-server. The store is built as the
// server builds it (Redis behind Failover, Timed).
func TestRedisRoundTripsPerRequest(t *testing.T) {
	srv, err := redisserver.Start(t.Context(), redisserver.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)

	tests := []struct {
		name          string
		edge, lockout bool
		hide          bool // the store without Batch: one call per question
		path, key     string
		status        int
		want          int64
	}{
		// Before routing: global, per_ip and the IP's lock in one call;
		// after authentication: the key's lock, the plan, the route limit
		// and the quota in one call.
		{name: "every layer", edge: true, lockout: true, path: "/orders", key: roundTripKey, status: 200, want: 2},
		{name: "every layer, public route without limits", edge: true, lockout: true, path: "/health", status: 200, want: 1},
		// A refused key's failure is counted (and may start a lockout)
		// in a call of its own, after the edge's.
		{name: "every layer, wrong key", edge: true, lockout: true, path: "/orders", key: "wrong", status: 401, want: 2},
		{name: "layers after authentication only", path: "/orders", key: roundTripKey, status: 200, want: 1},
		{name: "layers after authentication only, public route", path: "/health", status: 200, want: 0},
		// Without edge layers, the IP's lock is read before any
		// verification, in a call of its own.
		{name: "lockout without edge layers", lockout: true, path: "/orders", key: roundTripKey, status: 200, want: 2},
		{name: "every layer, one call per question", edge: true, lockout: true, hide: true, path: "/orders", key: roundTripKey, status: 200, want: 5},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.yaml", []byte(roundTripConfig(up.URL, srv.URL(0), tt.edge, tt.lockout)),
				func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			redisCfg := *cfg.RateLimits.Redis
			redisCfg.KeyPrefix = fmt.Sprintf("rt%d:", i)
			redisCfg.Timeout = config.Duration(time.Second)
			rs, err := ratelimit.NewRedis(redisCfg, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			trips := &roundTripHook{}
			ratelimit.RedisClient(rs).AddHook(trips)
			var store ratelimit.Store = ratelimit.Timed(ratelimit.NewFailover(rs, ratelimit.NewLocal(100, nil), 1, false), func(time.Duration) {})
			t.Cleanup(func() { _ = store.Close() })
			if tt.hide {
				store = hiddenBatches{store}
			}
			m := metrics.New(metrics.BuildInfo{})
			h, err := gateway.Build(cfg, gateway.Deps{Log: zap.NewNop(), Metrics: m, Problems: problem.New(zap.NewNop(), m.Denials), RateStore: store})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(h.Close)
			do := func() int {
				r := httptest.NewRequest(http.MethodGet, tt.path, nil)
				if tt.key != "" {
					r.Header.Set("X-API-Key", tt.key)
				}
				r = r.WithContext(exchange.With(r.Context(), &exchange.Record{Start: time.Now()}))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code
			}
			do() // connects, loads the scripts
			for range 3 {
				trips.n.Store(0)
				if got := do(); got != tt.status {
					t.Fatalf("GET %s = %d, want %d", tt.path, got, tt.status)
				}
				if got := trips.n.Load(); got != tt.want {
					t.Errorf("GET %s: %d round trips to Redis, want %d", tt.path, got, tt.want)
				}
			}
			if rs.Errors() != 0 {
				t.Errorf("Redis store errors = %d, want 0", rs.Errors())
			}
		})
	}
}

// roundTripHook counts round trips: single commands and pipelines, but
// not the handshake of a new connection (HELLO, then a pipeline of
// CLIENT SETINFO).
type roundTripHook struct{ n atomic.Int64 }

func (h *roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "client" {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
