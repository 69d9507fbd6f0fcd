package redisserver

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// start starts a server for one test and kills it when the test ends.
// redis-server is required: a machine without it fails here, with the
// install command.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

func TestArgv(t *testing.T) {
	got := argv("/usr/bin/redis-server", 6390, "/tmp/x", Options{
		Password: "pw",
		Args:     []string{"--maxmemory", "1mb"},
		Prefix:   []string{"taskset", "-c", "0"},
	})
	want := []string{
		"taskset", "-c", "0", "/usr/bin/redis-server", // the prefix runs the server
		"--port", "6390", "--bind", "127.0.0.1", // loopback only
		"--save", "", "--appendonly", "no", // nothing written to disk
		"--dir", "/tmp/x",
		"--requirepass", "pw",
		"--maxmemory", "1mb", // Args last
	}
	if !slices.Equal(got, want) {
		t.Errorf("argv() = %q, want %q", got, want)
	}
	if got := argv("redis-server", 1, "d", Options{}); slices.Contains(got, "--requirepass") {
		t.Errorf("argv() without a password = %q, want no --requirepass", got)
	}
}

func TestStartNotInstalled(t *testing.T) {
	_, err := Start(t.Context(), Options{Bin: filepath.Join(t.TempDir(), "redis-server")})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Errorf("Start(missing binary) = %v, want ErrNotInstalled naming the install command", err)
	}
}

// A server that exits during start-up fails Start with what it printed.
func TestStartReportsOutput(t *testing.T) {
	s, err := Start(t.Context(), Options{Dir: t.TempDir(), Args: []string{"--no-such-directive", "x"}})
	if err == nil {
		s.Kill()
		t.Fatalf("Start(bad flag) = nil error, want one")
	}
	if !strings.Contains(err.Error(), "no-such-directive") || !strings.Contains(err.Error(), "exited during start-up") {
		t.Errorf("Start(bad flag) = %v, want redis-server's complaint", err)
	}
}

func TestKillRestart(t *testing.T) {
	s := start(t, Options{})
	ctx := t.Context()
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1 and a port", s.Addr())
	}
	if got, want := s.URL(3), "redis://"+s.Addr()+"/3"; got != want {
		t.Errorf("URL(3) = %q, want %q", got, want)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after Start = %v", err)
	}
	if _, err := s.Do(ctx, "SET", "k", "v"); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := s.Restart(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("Restart while running = %v, want already running", err)
	}

	s.Kill()
	if err := s.Ping(ctx); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Ping after Kill = %v, want connection refused", err)
	}
	s.Kill() // a second Kill does nothing

	if err := s.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if _, p, _ := net.SplitHostPort(s.Addr()); p != port {
		t.Errorf("port after Restart = %s, want %s", p, port)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after Restart = %v", err)
	}
	if got, err := s.Do(ctx, "GET", "k"); err != nil || !slices.Equal(got, []string{""}) {
		t.Errorf("GET after Restart = %q, %v, want nil: nothing persisted", got, err)
	}
}

func TestPauseResume(t *testing.T) {
	s := start(t, Options{})
	if err := s.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Errorf("Ping while paused = nil, want no answer")
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after Resume = %v", err)
	}

	s.Kill()
	if err := s.Pause(); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Pause after Kill = %v, want not running", err)
	}
}

func TestPassword(t *testing.T) {
	const pw = "s3cret/:@?"
	s := start(t, Options{Password: pw})
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping with the password = %v", err)
	}
	u, err := url.Parse(s.URL(0))
	if err != nil {
		t.Fatalf("URL(0) = %q: %v", s.URL(0), err)
	}
	if got, _ := u.User.Password(); got != pw || u.Host != s.Addr() || u.Path != "/0" {
		t.Errorf("URL(0) = %q, want the password, %s and /0", s.URL(0), s.Addr())
	}
	if _, err := do(ctx, s.Addr(), "", []string{"PING"}); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without AUTH = %v, want NOAUTH", err)
	}
	if _, err := do(ctx, s.Addr(), "wrong", []string{"PING"}); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("PING with a wrong password = %v, want WRONGPASS", err)
	}
}

// Options' zero value: a free port and a temporary directory, which Stop
// removes; a prefix runs the server.
func TestStopAndDefaults(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(t.Context(), Options{Port: port, Prefix: []string{"env"}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if want := "127.0.0.1:" + strconv.Itoa(port); s.Addr() != want {
		t.Errorf("Addr() = %q, want %q", s.Addr(), want)
	}
	if _, err := os.Stat(s.tmpDir); err != nil {
		t.Fatalf("the server's temporary directory: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(s.tmpDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory after Stop: %v, want it removed", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Ping after Stop = %v, want connection refused", err)
	}
	if err := s.Restart(t.Context()); err == nil {
		t.Errorf("Restart after Stop = nil error, want one")
	}
}
