package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisInstall is what a machine without redis-server needs. The Redis
// tests fail with it rather than skip: Redis is a required part of the
// end-to-end setup, and a skipped test would hide that the shared store
// was never exercised.
const redisInstall = "apt-get install -y redis-server"

// redisServer is a real redis-server on a free 127.0.0.1 port, with no
// persistence (a restart comes back empty). kill plays a crash; start
// brings it back on the same port. The process is stopped by its PID when
// the test ends.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has exited
	out    *lockedBuffer // what redis-server printed, shown when it fails
}

// startRedis starts redis-server on a free port and waits until it
// answers PING.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (%v); install it with: %s", err, redisInstall)
	}
	ln := listenLoopback(t)
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // the port is handed to redis-server
	s := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// addr is host:port of the server.
func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// url is the redis:// URL of database 0, for rate_limits.redis.url.
func (s *redisServer) url() string { return "redis://" + s.addr() + "/0" }

// start starts the server (again, on the same port) and waits for PING.
func (s *redisServer) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("redis-server on port %d is already running", s.port)
	}
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status of a killed server says nothing
		close(exited)
	}()
	s.cmd, s.exited, s.out = cmd, exited, out
	deadline := time.Now().Add(10 * time.Second)
	for !s.ping() {
		select {
		case <-exited:
			s.cmd = nil
			s.t.Fatalf("redis-server on port %d exited during start-up:\n%s", s.port, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d does not answer PING after 10s:\n%s", s.port, out)
		}
	}
}

// kill stops the server with SIGKILL, sent to its PID, and waits until it
// is gone: a crash, with no chance to say goodbye to clients.
func (s *redisServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // already gone is fine
	<-s.exited
	s.cmd = nil
}

// pause stops the process with SIGSTOP: the kernel still accepts
// connections, but nothing answers, as with a hung or partitioned Redis.
// resume continues it.
func (s *redisServer) pause()  { s.signal(syscall.SIGSTOP) }
func (s *redisServer) resume() { s.signal(syscall.SIGCONT) }

func (s *redisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redis-server on port %d is not running", s.port)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to redis-server: %v", sig, err)
	}
}

// ping reports whether the server answers PING.
func (s *redisServer) ping() bool {
	reply, err := s.command("PING")
	return err == nil && len(reply) == 1 && reply[0] == "PONG"
}

// do runs one command on a fresh connection and returns its reply (see
// command), failing the test on any error.
func (s *redisServer) do(args ...string) []string {
	s.t.Helper()
	reply, err := s.command(args...)
	if err != nil {
		s.t.Fatalf("redis %s: %v", strings.Join(args, " "), err)
	}
	return reply
}

// command sends args as a RESP array and reads the reply: a simple
// string, integer or bulk string as one element, an array of those as
// its elements. The tests only inspect the server (KEYS, DBSIZE), so the
// gateway's own client is the only one that writes.
func (s *redisServer) command(args ...string) ([]string, error) {
	c, err := net.DialTimeout("tcp", s.addr(), time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	line, err := readRESPLine(r)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		v, err := respScalar(r, line)
		return []string{v}, err
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	reply := make([]string, 0, max(n, 0))
	for range n {
		line, err := readRESPLine(r)
		if err != nil {
			return nil, err
		}
		v, err := respScalar(r, line)
		if err != nil {
			return nil, err
		}
		reply = append(reply, v)
	}
	return reply, nil
}

func readRESPLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty RESP line")
	}
	return line, nil
}

// respScalar decodes the reply that starts with line.
func respScalar(r *bufio.Reader, line string) (string, error) {
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis error: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk header %q", line)
		}
		if n < 0 {
			return "", nil // nil bulk string
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected RESP reply %q", line)
}

// lockedBuffer collects a process's output for the test's messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
