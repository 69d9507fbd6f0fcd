package e2e

import (
	"strings"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/redisserver"
)

// redisServer is a real redis-server (internal/redisserver) on a free
// 127.0.0.1 port, with no persistence (a restart comes back empty). kill
// plays a crash; start brings it back on the same port. The process is
// stopped by its PID when the test ends.
type redisServer struct {
	t   testing.TB
	srv *redisserver.Server
}

// startRedis starts redis-server on a free port and waits until it
// answers PING. A machine without redis-server fails the test, with the
// install command, rather than skip it: Redis is a required part of the
// end-to-end setup, and a skipped test would hide that the shared store
// was never exercised.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	srv, err := redisserver.Start(t.Context(), redisserver.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	s := &redisServer{t: t, srv: srv}
	t.Cleanup(s.kill)
	return s
}

// url is the redis:// URL of database 0, for rate_limits.redis.url.
func (s *redisServer) url() string { return s.srv.URL(0) }

// start starts the server again, on the same port, and waits for PING.
func (s *redisServer) start() {
	s.t.Helper()
	if err := s.srv.Restart(s.t.Context()); err != nil {
		s.t.Fatal(err)
	}
}

// kill stops the server with SIGKILL, sent to its PID, and waits until it
// is gone: a crash, with no chance to say goodbye to clients.
func (s *redisServer) kill() { s.srv.Kill() }

// pause stops the process with SIGSTOP: the kernel still accepts
// connections, but nothing answers, as with a hung or partitioned Redis.
// resume continues it.
func (s *redisServer) pause() {
	s.t.Helper()
	if err := s.srv.Pause(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *redisServer) resume() {
	s.t.Helper()
	if err := s.srv.Resume(); err != nil {
		s.t.Fatal(err)
	}
}

// do runs one command on a fresh connection and returns its reply (see
// redisserver.Server.Do), failing the test on any error. The tests only
// inspect the server (KEYS, DBSIZE), so the gateway's own client is the
// only one that writes.
func (s *redisServer) do(args ...string) []string {
	s.t.Helper()
	reply, err := s.srv.Do(s.t.Context(), args...)
	if err != nil {
		s.t.Fatalf("redis %s: %v", strings.Join(args, " "), err)
	}
	return reply
}
