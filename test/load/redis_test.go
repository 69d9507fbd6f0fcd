package main

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRedisArgv(t *testing.T) {
	argv, err := redisArgv("0", "127.0.0.1:6390", "/tmp/x")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"taskset", "-c", "0", "redis-server", // pinned with the proxies
		"--bind", "127.0.0.1", "--port", "6390", // loopback only
		"--save", "", "--appendonly", "no", // nothing written to disk
		"--dir", "/tmp/x",
	}
	if !slices.Equal(argv, want) {
		t.Errorf("redisArgv() = %q, want %q", argv, want)
	}
	if _, err := redisArgv("0", "no-port", "/tmp/x"); err == nil {
		t.Errorf("redisArgv(no port) = nil error, want one")
	}
}

// TestStartRedis starts the real redis-server, as a run does: make test
// brings it (TEST_TOOLS), so a machine without it fails here.
func TestStartRedis(t *testing.T) {
	procs := &children{}
	t.Cleanup(procs.stopAll)
	dir := filepath.Join(t.TempDir(), "redis")
	s, err := startRedis(t.Context(), procs, "0", dir)
	if err != nil {
		t.Fatalf("startRedis() = %v", err)
	}
	addr, ok := strings.CutPrefix(s.url, "redis://")
	if !ok || !strings.HasSuffix(addr, "/0") {
		t.Fatalf("url = %q, want redis://HOST:PORT/0", s.url)
	}
	addr = strings.TrimSuffix(addr, "/0")
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Errorf("url = %q, want a loopback address", s.url)
	}
	if err := redisPing(addr); err != nil {
		t.Errorf("PING after startRedis = %v, want +PONG", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("redis-server's directory: %v, want it made", err)
	}
	s.stop()
	select {
	case <-s.proc.done:
	default:
		t.Fatalf("redis-server still running after stop")
	}
	if err := redisPing(addr); err == nil {
		t.Errorf("PING after stop = +PONG, want no answer")
	}
}

func TestRedisPingRefusesOtherAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("-LOADING Redis is loading the dataset in memory\r\n"))
	}()
	err = redisPing(ln.Addr().String())
	<-done
	if err == nil || !strings.Contains(err.Error(), "LOADING") {
		t.Errorf("redisPing() = %v, want an error quoting the answer", err)
	}
}
