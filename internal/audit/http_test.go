package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

const testToken = "tok-5ecret-never-shown"

// collectorOptions shapes a test collector.
type collectorOptions struct {
	fail   int  // answer 500 to this many POSTs first
	status int  // answer this instead of 200 (after the failures)
	tls    bool // serve https
	hold   bool // hold each request until the test ends
}

// collector is a real HTTP audit collector: it records every POST.
type collector struct {
	srv  *httptest.Server
	opts collectorOptions

	mu       sync.Mutex
	fail     int
	attempts int
	posts    []collectedPost // accepted POSTs
	changed  chan struct{}   // a token on every request
}

type collectedPost struct {
	method, contentType, auth string
	body                      []byte
	lines                     []string
}

func startCollector(t testing.TB, opts collectorOptions) *collector {
	t.Helper()
	c := &collector{opts: opts, fail: opts.fail, changed: make(chan struct{}, 1)}
	held := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if opts.hold {
			<-held
			return
		}
		c.mu.Lock()
		defer c.notify()
		defer c.mu.Unlock()
		c.attempts++
		if c.fail > 0 {
			c.fail--
			// A collector's error page may echo what it got: the sink
			// must not repeat it.
			http.Error(w, "collector down: "+string(body), http.StatusInternalServerError)
			return
		}
		if opts.status != 0 && opts.status != http.StatusOK {
			w.Header().Set("Location", "http://elsewhere.invalid/")
			w.WriteHeader(opts.status)
			return
		}
		p := collectedPost{method: r.Method, contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"), body: body}
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			p.lines = append(p.lines, sc.Text())
		}
		c.posts = append(c.posts, p)
	})
	if opts.tls {
		c.srv = httptest.NewTLSServer(h)
	} else {
		c.srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		close(held)
		c.srv.Close()
	})
	return c
}

func (c *collector) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// config is the sink config for this collector, with a token.
func (c *collector) config() config.AuditHTTP {
	return config.AuditHTTP{URL: c.srv.URL + "/ingest", Token: testToken, Timeout: config.Duration(5 * time.Second)}
}

// recover makes the collector accept from now on.
func (c *collector) recover() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = 0
}

func (c *collector) events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.posts {
		out = append(out, p.lines...)
	}
	return out
}

func (c *collector) attemptCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts
}

func (c *collector) batchSizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, p := range c.posts {
		out = append(out, len(p.lines))
	}
	return out
}

func (c *collector) accepted() []collectedPost {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]collectedPost(nil), c.posts...)
}

// waitFor waits until cond holds for the collector (30s at most).
func (c *collector) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("collector: still waiting for %s after 30s", what)
		}
	}
}

func (c *collector) waitEvents(t testing.TB, n int) {
	t.Helper()
	c.waitFor(t, "events", func() bool {
		got := 0
		for _, p := range c.posts {
			got += len(p.lines)
		}
		return got >= n
	})
}

func (c *collector) waitAttempts(t testing.TB, n int) {
	t.Helper()
	c.waitFor(t, "attempts", func() bool { return c.attempts >= n })
}

func TestHTTPDelivers(t *testing.T) {
	c := startCollector(t, collectorOptions{})
	s, err := NewHTTP(c.config())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write([][]byte{testEvent(0), testEvent(1), testEvent(2)}); err != nil {
		t.Fatalf("Write() = %v, want nil", err)
	}
	posts := c.accepted()
	if len(posts) != 1 {
		t.Fatalf("%d POSTs, want 1", len(posts))
	}
	p := posts[0]
	if p.method != http.MethodPost {
		t.Errorf("method = %s, want POST", p.method)
	}
	if p.contentType != "application/x-ndjson" {
		t.Errorf("Content-Type = %q, want application/x-ndjson", p.contentType)
	}
	if p.auth != "Bearer "+testToken {
		t.Errorf("Authorization = %q, want the bearer token", p.auth)
	}
	if want := strings.Join(testEvents(0, 3), "\n") + "\n"; string(p.body) != want {
		t.Errorf("body = %q, want %q", p.body, want)
	}
}

func TestHTTPWithoutToken(t *testing.T) {
	c := startCollector(t, collectorOptions{})
	cfg := c.config()
	cfg.Token = ""
	s, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write([][]byte{testEvent(0)}); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	if got := c.accepted()[0].auth; got != "" {
		t.Errorf("Authorization = %q, want none", got)
	}
}

func TestHTTPAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		wantErr bool
	}{
		{name: "ok", status: http.StatusOK},
		{name: "accepted", status: http.StatusAccepted},
		{name: "no content", status: http.StatusNoContent},
		{name: "redirect not followed", status: http.StatusFound, wantErr: true},
		{name: "permanent redirect not followed", status: http.StatusPermanentRedirect, wantErr: true},
		{name: "unauthorized", status: http.StatusUnauthorized, wantErr: true},
		{name: "too many requests", status: http.StatusTooManyRequests, wantErr: true},
		{name: "server error", status: http.StatusServiceUnavailable, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCollector(t, collectorOptions{status: tt.status})
			s, err := NewHTTP(c.config())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Write([][]byte{testEvent(0)})
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("Write() after %d = %v, want error %v", tt.status, err, tt.wantErr)
			}
			if got := c.attemptCount(); got != 1 {
				t.Errorf("collector saw %d requests, want 1 (no redirect followed, no retry inside the sink)", got)
			}
		})
	}
}

func TestHTTPTimeout(t *testing.T) {
	c := startCollector(t, collectorOptions{hold: true})
	cfg := c.config()
	cfg.Timeout = config.Duration(100 * time.Millisecond)
	s, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write([][]byte{testEvent(0)}); err == nil {
		t.Error("Write() to a collector that never answers = nil, want a timeout error")
	}
}

func TestHTTPS(t *testing.T) {
	c := startCollector(t, collectorOptions{tls: true})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		caFile  string
		wantErr bool
	}{
		{name: "trusted with ca_file", caFile: caFile},
		{name: "unknown authority", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := c.config()
			cfg.CAFile = config.Path(tt.caFile)
			s, err := NewHTTP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Write([][]byte{testEvent(0)})
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("Write() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestHTTPConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.AuditHTTP
	}{
		{name: "not a url", cfg: config.AuditHTTP{URL: "http://us:pw@[::1"}},
		{name: "relative", cfg: config.AuditHTTP{URL: "/ingest"}},
		{name: "other scheme", cfg: config.AuditHTTP{URL: "ftp://collector/ingest"}},
		{name: "ca_file without https", cfg: config.AuditHTTP{URL: "http://collector/ingest", CAFile: "ca.pem"}},
		{name: "missing ca_file", cfg: config.AuditHTTP{URL: "https://collector/ingest", CAFile: "/nonexistent/ca.pem"}},
		{name: "token with a newline", cfg: config.AuditHTTP{URL: "https://collector/ingest", Token: testToken + "\r\nX-Evil: 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHTTP(tt.cfg)
			if err == nil {
				t.Fatalf("NewHTTP(%s) = nil error, want one", tt.name)
			}
			for _, secret := range []string{testToken, "pw"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds %q", err, secret)
				}
			}
		})
	}
}

// A collector that fails a few times and recovers gets every event once;
// the token shows up in no error and no log line.
func TestHTTPWriterRecovers(t *testing.T) {
	c := startCollector(t, collectorOptions{fail: 3})
	sink, err := NewHTTP(c.config())
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	w := NewWriter(sink, WriterConfig{BatchSize: 7, FlushInterval: 5 * time.Millisecond}, zap.New(core))
	for i := range 50 {
		if !w.Enqueue(testEvent(i)) {
			t.Fatalf("Enqueue(%d) = false", i)
		}
	}
	closeWriter(t, w)
	if got, want := c.events(), testEvents(0, 50); !sameSlice(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	for _, size := range c.batchSizes() {
		if size > 7 {
			t.Errorf("a POST carried %d events, want at most batch_size 7", size)
		}
	}
	if logs.FilterMessage("audit sink write failed; retrying").Len() == 0 {
		t.Error("no retry logged")
	}
	logsWithout(t, logs, testToken, testClientIP, testSubject)
}

func TestHTTPErrorsHideSecrets(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	failing := startCollector(t, collectorOptions{fail: 1 << 30})
	tests := []struct {
		name string
		url  string
	}{
		{name: "unreachable", url: downURL + "/ingest?key=qsecret"},
		{name: "collector error page echoes the body", url: failing.srv.URL + "/ingest?key=qsecret"},
		{name: "user info", url: strings.Replace(downURL, "http://", "http://us:pwsecret@", 1) + "/ingest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewHTTP(config.AuditHTTP{URL: tt.url, Token: testToken, Timeout: config.Duration(5 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Write([][]byte{testEvent(0)})
			if err == nil {
				t.Fatal("Write() = nil, want an error")
			}
			for _, secret := range []string{testToken, "qsecret", "pwsecret", testClientIP, testSubject} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds %q", err, secret)
				}
			}
		})
	}
}

// Close does not wait for the collector beyond the context for queued
// events, yet a POST under way finishes within the sink's timeout.
func TestHTTPWriterCloseWithHeldCollector(t *testing.T) {
	c := startCollector(t, collectorOptions{hold: true})
	cfg := c.config()
	cfg.Timeout = config.Duration(100 * time.Millisecond)
	sink, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(sink, WriterConfig{BatchSize: 1}, nil)
	for i := range 3 {
		w.Enqueue(testEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = w.Close(ctx)
	if ue, ok := errors.AsType[*UndeliveredError](err); !ok || ue.Events != 3 {
		t.Errorf("Close() = %v, want 3 events undelivered", err)
	}
}
