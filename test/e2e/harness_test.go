package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// gateway is one running bulwark process.
type gateway struct {
	cmd        *exec.Cmd
	dir        string // holds the config file and anything the test writes beside it
	configPath string
	public     string // host:port of the public listener
	admin      string // host:port of the admin listener, as the tests dial it
	adminBound string // the address the admin listener reported binding to
	redirect   string // host:port of the redirect listener, if any
	tls        bool

	mu     sync.Mutex
	logs   bytes.Buffer // everything the process wrote to stderr
	exited chan struct{}
	err    error // Wait's result, valid after exited is closed
}

// startGateway writes cfg (YAML) as bulwark.yaml into a fresh directory,
// together with files (name → content, for specs and certificates), starts
// `bulwark serve` on it and waits until /readyz answers 200. Listeners in
// cfg should use port 0; the harness reads the real addresses from the log.
// The process is stopped (SIGTERM, then SIGKILL) when the test ends.
func startGateway(t testing.TB, cfg string, files map[string][]byte, env ...string) *gateway {
	t.Helper()
	g := startGatewayUnready(t, cfg, files, env...)
	g.waitReady(t)
	return g
}

// startGatewayUnready is startGateway without waiting for /readyz: for a
// gateway that is expected not to be ready. It returns once the process
// logged that it started.
func startGatewayUnready(t testing.TB, cfg string, files map[string][]byte, env ...string) *gateway {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	g := &gateway{dir: dir, configPath: filepath.Join(dir, "bulwark.yaml"), exited: make(chan struct{})}
	writeFile(t, g.configPath, []byte(cfg))
	g.cmd = exec.Command(binary, "serve", "--config", g.configPath)
	g.cmd.Env = append(os.Environ(), env...)
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start bulwark: %v", err)
	}
	listening := make(chan struct{})
	go g.readLogs(stderr, listening)
	go func() {
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() { g.stop(t) })
	select {
	case <-listening:
	case <-g.exited:
		t.Fatalf("bulwark exited during start-up: %v\n%s", g.err, g.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("bulwark did not start listening within 20s\n%s", g.Logs())
	}
	return g
}

// readLogs copies stderr into g.logs and closes listening once the started
// line has been seen (every listener is logged before it).
func (g *gateway) readLogs(r io.Reader, listening chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Bytes()
		g.mu.Lock()
		g.logs.Write(line)
		g.logs.WriteByte('\n')
		g.mu.Unlock()
		var entry struct {
			Msg      string `json:"msg"`
			Listener string `json:"listener"`
			Address  string `json:"address"`
			TLS      bool   `json:"tls"`
		}
		if json.Unmarshal(line, &entry) != nil {
			continue
		}
		switch {
		case entry.Msg == "listening":
			g.mu.Lock()
			switch entry.Listener {
			case "public":
				g.public, g.tls = entry.Address, entry.TLS
			case "admin":
				g.admin, g.adminBound = loopbackDial(entry.Address), entry.Address
			case "redirect":
				g.redirect = entry.Address
			}
			g.mu.Unlock()
		case entry.Msg == "bulwark started" && !started:
			started = true
			close(listening)
		}
	}
}

// loopbackDial turns a wildcard listen address (0.0.0.0:PORT, [::]:PORT)
// into 127.0.0.1:PORT: tests only ever connect to loopback.
func loopbackDial(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Logs returns what the process wrote to stderr so far.
func (g *gateway) Logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.String()
}

// waitLog waits until the log contains substr.
func (g *gateway) waitLog(t testing.TB, substr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(g.Logs(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("log never contained %q:\n%s", substr, g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + g.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never became ready (last error %v)\n%s", err, g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL returns the public URL of path.
func (g *gateway) URL(path string) string {
	scheme := "http"
	if g.tls {
		scheme = "https"
	}
	return scheme + "://" + g.public + path
}

// signal sends sig to the process.
func (g *gateway) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// reload replaces the config file and sends SIGHUP, then waits for the
// reload's outcome to be logged (the n-th outcome line since start).
func (g *gateway) reload(t testing.TB, cfg string) {
	t.Helper()
	before := g.reloadOutcomes()
	writeFile(t, g.configPath, []byte(cfg))
	g.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(15 * time.Second)
	for g.reloadOutcomes() == before {
		if time.Now().After(deadline) {
			t.Fatalf("reload outcome never logged:\n%s", g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) reloadOutcomes() int {
	logs := g.Logs()
	return strings.Count(logs, `"config reloaded"`) + strings.Count(logs, `"config reload refused`)
}

// wait waits for the process to exit and returns its exit code.
func (g *gateway) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-g.exited:
	case <-time.After(within):
		t.Fatalf("bulwark did not exit within %v\n%s", within, g.Logs())
	}
	return g.cmd.ProcessState.ExitCode()
}

func (g *gateway) stop(t testing.TB) {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM) // already gone is fine
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		t.Errorf("bulwark did not stop on SIGTERM within 10s\n%s", g.Logs())
	}
	if t.Failed() {
		t.Logf("bulwark log:\n%s", g.Logs())
	}
}

// metric returns the value of the first sample of /metrics whose line
// starts with series (a metric name with its labels, as Prometheus prints
// them), or -1 when there is none.
func (g *gateway) metric(t testing.TB, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// upstream is a real HTTP server on 127.0.0.1 that counts the requests it
// receives and remembers the last one.
type upstream struct {
	srv  *http.Server
	addr string
	hits atomic.Int64

	mu   sync.Mutex
	last *http.Request
	body []byte
}

// startUpstream serves handler (nil: 200 with a small JSON body) and
// records every request.
func startUpstream(t testing.TB, handler http.Handler) *upstream {
	t.Helper()
	u := &upstream{}
	if handler == nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		})
	}
	ln := listenLoopback(t)
	u.addr = ln.Addr().String()
	u.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.hits.Add(1)
			body, _ := io.ReadAll(r.Body) // a body cut short is part of what tests look at
			u.mu.Lock()
			u.last, u.body = r.Clone(context.Background()), body
			u.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			handler.ServeHTTP(w, r)
		}),
	}
	go func() { _ = u.srv.Serve(ln) }() // ends with Close in Cleanup
	t.Cleanup(func() { _ = u.srv.Close() })
	return u
}

// lastRequest returns the last request the upstream received and its body.
func (u *upstream) lastRequest() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.body
}

func writeFile(t testing.TB, path string, content []byte) {
	t.Helper()
	// Write then rename, so that a watching or polling gateway never reads
	// a half-written file.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
