package ratelimit

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server on a free loopback port, stopped by
// its PID when the test ends. Kill, Start, Pause and Resume play a Redis
// that crashes, comes back on the same port, or hangs.
type redisServer struct {
	tb       testing.TB
	bin      string
	port     int
	password string
	dir      string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *redisLog // redis-server's output, shown when it fails to start
}

// startRedisServer starts redis-server, with requirepass when password
// is not "". A machine without redis-server fails the test: it is a
// required part of the test setup, not an optional one.
func startRedisServer(tb testing.TB, password string) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server not found (%v): install it with: apt-get install -y redis-server", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{tb: tb, bin: bin, port: port, password: password, dir: tb.TempDir()}
	s.Start()
	tb.Cleanup(s.Kill)
	return s
}

func (s *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the redis:// URL of the server, with its password.
func (s *redisServer) URL() string {
	if s.password == "" {
		return "redis://" + s.Addr() + "/0"
	}
	return "redis://:" + s.password + "@" + s.Addr() + "/0"
}

// Start starts the server (again, on the same port) and waits until it
// answers PING.
func (s *redisServer) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.tb.Fatalf("redis-server on port %d is already running", s.port)
	}
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	cmd := exec.Command(s.bin, args...)
	out := &redisLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.out = cmd, exited, out
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s.ping() {
			return
		}
		select {
		case <-exited:
			s.cmd = nil
			s.tb.Fatalf("redis-server on port %d exited:\n%s", s.port, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on port %d does not answer PING after 10s:\n%s", s.port, out)
		}
	}
}

// ping reports whether the server answers PING (NOAUTH is an answer).
func (s *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// Kill stops the server with SIGKILL (a crash) and waits for it to exit.
func (s *redisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Pause stops the process (SIGSTOP): connections are accepted by the
// kernel but nothing answers, as with a hung or unreachable Redis.
func (s *redisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *redisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *redisServer) signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.tb.Fatalf("redis-server on port %d is not running", s.port)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("signal redis-server: %v", err)
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

// redisLog collects redis-server's output.
type redisLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *redisLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *redisLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
