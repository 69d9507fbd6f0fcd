package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestRedisOptions(t *testing.T) {
	o := redisOptions("0", "/tmp/x")
	if want := []string{"taskset", "-c", "0"}; !slices.Equal(o.Prefix, want) { // pinned with the proxies
		t.Errorf("redisOptions().Prefix = %q, want %q", o.Prefix, want)
	}
	if o.Dir != "/tmp/x" || o.Port != 0 || o.Password != "" || len(o.Args) != 0 {
		t.Errorf("redisOptions() = %+v, want dir /tmp/x on a free port, nothing else", o)
	}
}

// TestStartRedis starts the real redis-server, as a run does: make test
// brings it (TEST_TOOLS), so a machine without it fails here.
func TestStartRedis(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "redis")
	s, err := startRedis(t.Context(), "0", dir)
	if err != nil {
		t.Fatalf("startRedis() = %v", err)
	}
	t.Cleanup(s.stop)
	addr, ok := strings.CutPrefix(s.url, "redis://")
	if !ok || !strings.HasSuffix(addr, "/0") {
		t.Fatalf("url = %q, want redis://HOST:PORT/0", s.url)
	}
	addr = strings.TrimSuffix(addr, "/0")
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Errorf("url = %q, want a loopback address", s.url)
	}
	if err := s.srv.Ping(t.Context()); err != nil {
		t.Errorf("PING after startRedis = %v, want +PONG", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("redis-server's directory: %v, want it made", err)
	}
	s.stop()
	if err := s.srv.Ping(t.Context()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("PING after stop = %v, want connection refused", err)
	}
}
