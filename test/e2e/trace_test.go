package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var upstreamTraceparent = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// TestTraceContext sends requests with and without a trace context through
// the gateway to a real upstream, and checks the traceparent and tracestate
// the upstream received, the audit events' trace_id and the trace_id of
// the gateway's log line about a failed upstream.
func TestTraceContext(t *testing.T) {
	up := startUpstream(t, nil)
	ln := listenLoopback(t)
	closed := ln.Addr().String()
	ln.Close() // nothing listens here any more
	g := startGateway(t, fmt.Sprintf(`server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
log: { level: debug }
audit: { sink: file, file: { path: audit.jsonl } }
upstreams:
  api: { url: "http://%s" }
  down: { url: "http://%s" }
routes:
  - { name: api, method: GET, path: /a, upstream: api, auth: none }
  - { name: down, method: GET, path: /down, upstream: down, auth: none }
`, up.addr, closed), nil)

	clientTP, clientTrace := traceparent(t) // sampled
	clientParent := clientTP[36:52]
	var tooMany []string
	for i := range 33 {
		tooMany = append(tooMany, fmt.Sprintf("k%d=v", i))
	}
	tests := []struct {
		name      string
		header    http.Header
		continued bool     // the client's trace id is kept
		flags     string   // sent upstream
		state     []string // tracestate lines the upstream gets
	}{
		{name: "continued", continued: true, flags: "01",
			header: http.Header{"Traceparent": {clientTP}, "Tracestate": {"rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"}},
			state:  []string{"rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"}},
		{name: "continued, tracestate of 33 members dropped", continued: true, flags: "01",
			header: http.Header{"Traceparent": {clientTP}, "Tracestate": {strings.Join(tooMany, ",")}}},
		{name: "started", flags: "00", header: http.Header{}},
		{name: "started, version ff and its tracestate dropped", flags: "00",
			header: http.Header{"Traceparent": {"ff" + clientTP[2:]}, "Tracestate": {"congo=t61rcWkgMzE"}}},
		{name: "started, all-zero trace id", flags: "00",
			header: http.Header{"Traceparent": {"00-" + strings.Repeat("0", 32) + clientTP[35:]}}},
	}
	traceOf := map[string]string{} // request id → trace id the upstream got
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, g.URL("/a"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = tt.header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", tt.name, resp.StatusCode)
		}
		got, _ := up.lastRequest()
		tp := got.Header.Values("Traceparent")
		if len(tp) != 1 {
			t.Errorf("%s: upstream traceparent lines = %q, want one", tt.name, tp)
			continue
		}
		m := upstreamTraceparent.FindStringSubmatch(tp[0])
		if m == nil {
			t.Errorf("%s: upstream traceparent = %q, want version 00 with lower-case hex ids", tt.name, tp[0])
			continue
		}
		if tt.continued != (m[1] == clientTrace) {
			t.Errorf("%s: upstream trace id %s, client's %s: want it kept %v", tt.name, m[1], clientTrace, tt.continued)
		}
		if m[1] == strings.Repeat("0", 32) || m[2] == strings.Repeat("0", 16) || m[2] == clientParent {
			t.Errorf("%s: upstream traceparent %q, want a non-zero trace id and a span id of the gateway's", tt.name, tp[0])
		}
		if m[3] != tt.flags {
			t.Errorf("%s: upstream flags %s, want %s", tt.name, m[3], tt.flags)
		}
		if state := got.Header.Values("Tracestate"); strings.Join(state, "|") != strings.Join(tt.state, "|") {
			t.Errorf("%s: upstream tracestate = %q, want %q", tt.name, state, tt.state)
		}
		traceOf[resp.Header.Get("X-Request-Id")] = m[1]
	}

	// A failed upstream: the log line about it carries the trace id.
	req, err := http.NewRequest(http.MethodGet, g.URL("/down"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Traceparent", clientTP)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("/down: status %d, want 502", resp.StatusCode)
	}
	downID := resp.Header.Get("X-Request-Id")
	traceOf[downID] = clientTrace
	if e := logEntry(t, g, "upstream request failed", downID); e["trace_id"] != clientTrace {
		t.Errorf("upstream failure log line: trace_id = %v, want %s", e["trace_id"], clientTrace)
	}

	g.stop(t)
	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl"))
	if len(events) != len(traceOf) {
		t.Errorf("audit events = %d, want %d:\n%s", len(events), len(traceOf), raw)
	}
	for id, ev := range byRequest(t, events) {
		if want, ok := traceOf[id]; !ok || ev.TraceID != want {
			t.Errorf("audit event of request %s: trace_id = %q, want %q (sent upstream)", id, ev.TraceID, want)
		}
	}
}

// TestTraceWouldDenyLog checks that the report-mode log line carries the
// trace id, taken from a client that is not a trusted proxy.
func TestTraceWouldDenyLog(t *testing.T) {
	g, _, _ := startAuditGateway(t, "{ sink: file, file: { path: audit.jsonl } }")
	tp, trace := traceparent(t)
	r := auditSend(t, "would deny", "GET", g.URL("/watch"), nil, "Traceparent", tp)
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200 (report mode)", r.status)
	}
	if e := logEntry(t, g, "would deny", r.requestID); e["trace_id"] != trace {
		t.Errorf("would-deny log line: trace_id = %v, want %s", e["trace_id"], trace)
	}
	g.stop(t)
	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl"))
	if len(events) != 1 || events[0].TraceID != trace {
		t.Errorf("want one audit event with trace_id %s, got:\n%s", trace, raw)
	}
}

// logEntry returns the gateway's JSON log line msg about the request id,
// failing the test when there is not exactly one.
func logEntry(t *testing.T, g *gateway, msg, requestID string) map[string]any {
	t.Helper()
	var found []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		found = found[:0]
		sc := bufio.NewScanner(strings.NewReader(g.Logs()))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil && e["msg"] == msg && e["request_id"] == requestID {
				found = append(found, e)
			}
		}
		if len(found) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(found) != 1 {
		t.Fatalf("log lines %q about request %s = %d, want 1\n%s", msg, requestID, len(found), g.Logs())
	}
	return found[0]
}
