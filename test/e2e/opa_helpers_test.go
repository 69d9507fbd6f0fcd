package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// opaBinary is where the tests find OPA: $BULWARK_OPA, else bin/opa of
// the repository, which `make test` builds from the version pinned in
// test/tools/go.mod.
func opaBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("BULWARK_OPA")
	if path == "" {
		abs, err := filepath.Abs("../../bin/opa")
		if err != nil {
			t.Fatal(err)
		}
		path = abs
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("OPA not found at %s: run `make bin/opa` (it builds github.com/open-policy-agent/opa at the version pinned in test/tools/go.mod), or set BULWARK_OPA", path)
	}
	return path
}

// opaServer is a real OPA server on a free loopback port, running the
// Rego files it was started with.
type opaServer struct {
	addr string
	cmd  *exec.Cmd

	mu  sync.Mutex
	out strings.Builder
}

// startOPA starts OPA's server with the policy files and env (NAME=value)
// and waits until it is healthy; it is killed when the test ends.
func startOPA(t testing.TB, env []string, policies ...string) *opaServer {
	t.Helper()
	bin := opaBinary(t)
	for attempt := 0; ; attempt++ {
		ln := listenLoopback(t)
		addr := ln.Addr().String()
		ln.Close() // OPA binds it next; another process taking it meanwhile is retried
		o := &opaServer{addr: addr}
		args := append([]string{"run", "--server", "--addr", addr, "--skip-version-check", "--log-level", "error"}, policies...)
		o.cmd = exec.Command(bin, args...)
		o.cmd.Env = append(os.Environ(), env...)
		o.cmd.Stdout, o.cmd.Stderr = &lockedWriter{o: o}, &lockedWriter{o: o}
		if err := o.cmd.Start(); err != nil {
			t.Fatalf("start OPA: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = o.cmd.Wait(); close(exited) }()
		stop := func() {
			_ = o.cmd.Process.Kill()
			<-exited
		}
		if o.waitHealthy(exited) {
			t.Cleanup(stop)
			return o
		}
		stop()
		if attempt == 2 {
			t.Fatalf("OPA did not become healthy on %s:\n%s", addr, o.output())
		}
	}
}

type lockedWriter struct{ o *opaServer }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	return w.o.out.Write(p)
}

func (o *opaServer) output() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out.String()
}

// waitHealthy polls /health for up to 20 s; false when OPA exited or
// never answered.
func (o *opaServer) waitHealthy(exited <-chan struct{}) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := http.Get("http://" + o.addr + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// url is the Data API URL of a document, e.g. url("bulwark/authz/allow").
func (o *opaServer) url(doc string) string {
	return "http://" + o.addr + "/v1/data/" + doc
}

// decisions is how many Data API queries (POST /v1/data/...) OPA has
// answered, whatever their status, from OPA's own Prometheus metrics.
func (o *opaServer) decisions(t testing.TB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+o.addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape OPA: %v", err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "http_request_duration_seconds_count{") ||
			!strings.Contains(line, `handler="v1/data"`) || !strings.Contains(line, `method="post"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("OPA metric line %q: %v", line, err)
		}
		n += int(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read OPA metrics: %v", err)
	}
	return n
}
