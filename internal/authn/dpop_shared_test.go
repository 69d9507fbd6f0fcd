package authn

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/ratelimit"
	"github.com/bulwark-gateway/bulwark/internal/redisserver"
)

// TestDPoPReplaySharedAcrossInstances checks the shared replay memory on a
// real redis-server: a proof id used on one instance is refused on
// another, and a dead Redis falls back to local memory (failure_mode:
// open) or refuses the proof (closed).
func TestDPoPReplaySharedAcrossInstances(t *testing.T) {
	ctx := context.Background()
	srv, err := redisserver.Start(ctx, redisserver.Options{})
	if err != nil {
		t.Fatalf("%v", err) // names the install command when redis-server is missing
	}
	t.Cleanup(func() { _ = srv.Stop() })
	newInstance := func(fallback bool) *sharedReplay {
		rs, err := ratelimit.NewRedis(config.Redis{URL: config.Secret(srv.URL(0)), Timeout: config.Duration(200 * time.Millisecond),
			KeyPrefix: "bulwark:rl:", BreakerFailures: 1, BreakerCooldown: config.Duration(time.Minute)}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rs.Close() })
		return &sharedReplay{shared: rs, local: newMemoryReplayStore(100), fallback: fallback}
	}
	a, b, closed := newInstance(true), newInstance(true), newInstance(false)
	until := time.Now().Add(time.Minute)

	if seen, err := a.seen(ctx, "proof-1", until); err != nil || seen {
		t.Fatalf("first use on instance a: seen %v, err %v", seen, err)
	}
	if seen, err := b.seen(ctx, "proof-1", until); err != nil || !seen {
		t.Fatalf("replay on instance b: seen %v, err %v; want seen", seen, err)
	}
	if seen, _ := b.seen(ctx, "proof-2", until); seen {
		t.Fatal("a new id on instance b was reported seen")
	}

	srv.Kill()
	// Open: this instance's memory still knows what it saw, and takes new
	// ids.
	if seen, err := a.seen(ctx, "proof-1", until); err != nil || !seen {
		t.Errorf("redis down, open, a replay of an id a saw: seen %v, err %v; want seen", seen, err)
	}
	if seen, err := a.seen(ctx, "proof-3", until); err != nil || seen {
		t.Errorf("redis down, open, a new id: seen %v, err %v", seen, err)
	}
	// Closed: refused.
	if _, err := closed.seen(ctx, "proof-4", until); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Errorf("redis down, closed: err %v, want an error", err)
	}
}
