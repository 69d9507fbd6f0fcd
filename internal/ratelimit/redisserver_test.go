package ratelimit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-gateway/bulwark/internal/redisserver"
)

// redisServer is a real redis-server (internal/redisserver) on a free
// loopback port, killed when the test ends. Kill, Start, Pause and Resume
// play a Redis that crashes, comes back on the same port, or hangs.
type redisServer struct {
	tb       testing.TB
	srv      *redisserver.Server
	password string
}

// startRedisServer starts redis-server, with requirepass when password
// is not "". A machine without redis-server fails the test, with the
// install command: it is a required part of the test setup, not an
// optional one.
func startRedisServer(tb testing.TB, password string) *redisServer {
	tb.Helper()
	srv, err := redisserver.Start(tb.Context(), redisserver.Options{Password: password, Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	tb.Cleanup(srv.Kill)
	return &redisServer{tb: tb, srv: srv, password: password}
}

func (s *redisServer) Addr() string { return s.srv.Addr() }

// URL is the redis:// URL of the server, with its password.
func (s *redisServer) URL() string { return s.srv.URL(0) }

// Start starts the server again, on the same port, and waits until it
// answers PING.
func (s *redisServer) Start() {
	s.tb.Helper()
	if err := s.srv.Restart(s.tb.Context()); err != nil {
		s.tb.Fatal(err)
	}
}

// Kill stops the server with SIGKILL (a crash) and waits for it to exit.
func (s *redisServer) Kill() { s.srv.Kill() }

// Pause stops the process (SIGSTOP): connections are accepted by the
// kernel but nothing answers, as with a hung or unreachable Redis.
func (s *redisServer) Pause() {
	s.tb.Helper()
	if err := s.srv.Pause(); err != nil {
		s.tb.Fatal(err)
	}
}

// Resume continues a paused server.
func (s *redisServer) Resume() {
	s.tb.Helper()
	if err := s.srv.Resume(); err != nil {
		s.tb.Fatal(err)
	}
}

// Admin returns a plain client for inspecting the server from the test
// (closed when the test ends).
func (s *redisServer) Admin() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.password, MaxRetries: -1})
	s.tb.Cleanup(func() { c.Close() })
	return c
}

// CommandCalls returns the calls of each command since the last CONFIG
// RESETSTAT, from INFO commandstats (e.g. "evalsha": 3).
func (s *redisServer) CommandCalls(admin *redis.Client) map[string]int {
	s.tb.Helper()
	info, err := admin.Info(s.tb.Context(), "commandstats").Result()
	if err != nil {
		s.tb.Fatalf("INFO commandstats: %v", err)
	}
	calls := map[string]int{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(rest, "calls=%d,", &n); err != nil {
			s.tb.Fatalf("INFO commandstats line %q: %v", line, err)
		}
		calls[name] = n
	}
	return calls
}
