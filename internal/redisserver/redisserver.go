// Package redisserver runs a real redis-server, for the Redis store tests,
// the end-to-end tests and the load harness: on a 127.0.0.1 port, with
// nothing written to disk (a restart comes back empty), and with the
// failures a store must survive played on demand: a crash (Kill), a return
// on the same port (Restart), a hang (Pause). It also assembles the other
// deployments a store must work with: a Sentinel (StartSentinel) and a
// Cluster (StartCluster).
package redisserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ErrNotInstalled is returned by Start when there is no redis-server
// binary. Callers fail on it rather than skip: where they need Redis, it is
// a required part of their setup.
var ErrNotInstalled = errors.New("redis-server is not installed; install it with: apt-get install -y redis-server")

// startTimeout bounds how long a started server may take to answer PING.
const startTimeout = 30 * time.Second

// Options configures Start. The zero value is a server on a free port,
// without a password, in a temporary directory.
type Options struct {
	Bin      string   // the redis-server binary; "": looked up in PATH
	Port     int      // 0: a port free on 127.0.0.1 at Start
	Password string   // requirepass; "": none
	Dir      string   // working directory, made if missing; "": a temporary one, removed by Stop
	Args     []string // more redis-server flags, after the fixed ones
	Prefix   []string // a command that runs redis-server, such as taskset -c 0
	// ConfigFile is a config file given to redis-server before every
	// flag ("": none); a Sentinel needs one, which it rewrites.
	ConfigFile string
}

// Server is one redis-server on a fixed port, killed and restarted as a
// test needs. Its methods are safe for concurrent use.
type Server struct {
	argv     []string
	addr     string
	password string
	tmpDir   string // made by Start, removed by Stop

	mu      sync.Mutex
	cmd     *exec.Cmd     // nil while not running
	exited  chan struct{} // closed when cmd has exited
	stopped bool          // by Stop, for good
}

// Start starts redis-server and waits until it answers PING. It listens on
// 127.0.0.1 only, with no RDB snapshots and no append-only file.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin := opts.Bin
	if bin == "" {
		bin = "redis-server"
	}
	bin, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", ErrNotInstalled, err)
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), password: opts.Password}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "redisserver-"); err != nil {
			return nil, fmt.Errorf("redis-server directory: %w", err)
		}
		s.tmpDir = dir
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis-server directory: %w", err)
	}
	s.argv = argv(bin, port, dir, opts)
	if err := s.Restart(ctx); err != nil {
		_ = s.Stop() // the start-up error says more
		return nil, err
	}
	return s, nil
}

// argv is the server's command line.
func argv(bin string, port int, dir string, opts Options) []string {
	a := append(slices.Clone(opts.Prefix), bin)
	if opts.ConfigFile != "" {
		a = append(a, opts.ConfigFile)
	}
	a = append(a, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if opts.Password != "" {
		a = append(a, "--requirepass", opts.Password)
	}
	return append(a, opts.Args...)
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the redis:// URL of database db, with the password if there is one.
func (s *Server) URL(db int) string {
	u := url.URL{Scheme: "redis", Host: s.addr, Path: "/" + strconv.Itoa(db)}
	if s.password != "" {
		u.User = url.UserPassword("", s.password)
	}
	return u.String()
}

// Restart starts the server again on its port, after Kill, and waits until
// it answers PING. Start's data is gone: nothing was persisted.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		return fmt.Errorf("restart redis-server on %s: stopped for good", s.addr)
	case s.cmd != nil:
		s.mu.Unlock()
		return fmt.Errorf("restart redis-server on %s: already running", s.addr)
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status of a killed server says nothing
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	if err := s.waitReady(ctx, exited, out); err != nil {
		s.Kill()
		return err
	}
	return nil
}

// waitReady polls PING until the server answers, exits, or time runs out.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}, out *output) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited during start-up:\n%s", s.addr, out)
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s does not answer PING (%v): %w\n%s", s.addr, err, ctx.Err(), out)
		case <-tick.C:
		}
	}
}

// Kill stops the server with SIGKILL, a crash with no goodbye to clients,
// and waits until it is gone. Restart brings it back. Killing a server
// that is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // already gone is fine
	<-s.exited
	s.cmd = nil
}

// Stop kills the server for good and removes the directory Start made for
// it, if it made one.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
	s.stopped = true
	if s.tmpDir == "" {
		return nil
	}
	return os.RemoveAll(s.tmpDir)
}

// Pause stops the process (SIGSTOP): the kernel still accepts connections
// but nothing answers, as with a hung or partitioned Redis.
func (s *Server) Pause() error { return s.signal("pause", pause) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.signal("resume", resume) }

func (s *Server) signal(what string, send func(*os.Process) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return fmt.Errorf("%s redis-server on %s: not running", what, s.addr)
	}
	if err := send(s.cmd.Process); err != nil {
		return fmt.Errorf("%s redis-server on %s: %w", what, s.addr, err)
	}
	return nil
}

// output collects what redis-server prints, for the start-up errors.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
