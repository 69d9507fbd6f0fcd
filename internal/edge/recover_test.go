package edge

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// panicking is a route handler that sets a header, then panics with v.
func panicking(v any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Set-Cookie", "session=from-the-handler")
		panic(v)
	})
}

func TestRecoverAnswersInternal(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := startHarness(t, harnessOptions{
		cfg:      testServerConfig(),
		log:      zap.New(core),
		route:    []func(http.Handler) http.Handler{withRoute(&exchange.Route{Name: "orders"})},
		terminal: panicking(errors.New("secret-panic-value")),
	})
	req := h.newRequest(t, http.MethodGet, "/orders", nil)
	req.Header.Set("Authorization", "Bearer secret-token")
	resp, body := h.do(t, req)
	checkProblem(t, resp, body, http.StatusInternalServerError, "internal")
	if got := resp.Header.Get("Set-Cookie"); got != "" {
		t.Errorf("Set-Cookie = %q, want the panicking handler's headers dropped", got)
	}
	if strings.Contains(string(body), "secret") {
		t.Errorf("body %s leaks the panic value", body)
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("log entries = %d, want 1", len(entries))
	}
	e := entries[0]
	fields := e.ContextMap()
	if e.Level != zapcore.ErrorLevel || fields["route"] != "orders" || fields["request_id"] != resp.Header.Get("X-Request-Id") ||
		fields["panic_type"] != "*errors.errorString" {
		t.Errorf("log entry = %v %v, want error level with route orders, the request id and panic_type *errors.errorString", e.Level, fields)
	}
	if stack, _ := fields["stack"].(string); !strings.Contains(stack, "panicking") {
		t.Errorf("log stack does not show the panicking handler: %q", stack)
	}
	for k, v := range fields {
		if s, ok := v.(string); ok && k != "stack" && strings.Contains(s, "secret") {
			t.Errorf("log field %s = %q leaks a secret", k, s)
		}
	}
	if n := h.up.hits.Load(); n != 0 {
		t.Errorf("upstream hits = %d, want 0", n)
	}
}

// TestRecoverLetsAbortThrough checks that http.ErrAbortHandler still aborts
// the connection: the client gets no response at all.
func TestRecoverLetsAbortThrough(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := startHarness(t, harnessOptions{cfg: testServerConfig(), log: zap.New(core), terminal: panicking(http.ErrAbortHandler)})
	c := dialRaw(t, hostPort(h.gw))
	if _, err := io.WriteString(c, "GET /orders HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	if resp, err := http.ReadResponse(c.br, nil); err == nil {
		t.Errorf("got a %d response, want the connection aborted", resp.StatusCode)
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("log entries = %d, want 0 for an abort", n)
	}
}

// startedWriter reports the status like the gateway's counting writer.
type startedWriter struct {
	http.ResponseWriter
	status int
}

func (s *startedWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *startedWriter) Status() int { return s.status }

func (s *startedWriter) Flush() { http.NewResponseController(s.ResponseWriter).Flush() }

// TestRecoverAfterResponseStarted checks that a panic in the middle of a
// response aborts it rather than appending a problem to it.
func TestRecoverAfterResponseStarted(t *testing.T) {
	h := startHarness(t, harnessOptions{
		cfg:  testServerConfig(),
		wrap: func(w http.ResponseWriter) http.ResponseWriter { return &startedWriter{ResponseWriter: w} },
		terminal: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial ")
			w.(http.Flusher).Flush()
			panic("mid-stream")
		}),
	})
	resp, err := h.gw.Client().Get(h.gw.URL + "/orders")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("body %q read to the end, want the response aborted", body)
	}
	if strings.Contains(string(body), "problem") {
		t.Errorf("body %q has a problem appended", body)
	}
}
