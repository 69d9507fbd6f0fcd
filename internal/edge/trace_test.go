package edge

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

const (
	w3cTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	w3cParent  = "00f067aa0ba902b7"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

func TestParseTraceparent(t *testing.T) {
	valid := "00-" + w3cTraceID + "-" + w3cParent + "-01"
	tests := []struct {
		name  string
		in    string
		ok    bool
		flags byte
	}{
		{name: "sampled", in: valid, ok: true, flags: 0x01},
		{name: "not sampled", in: "00-" + w3cTraceID + "-" + w3cParent + "-00", ok: true, flags: 0x00},
		{name: "unknown flags kept in version 00", in: "00-" + w3cTraceID + "-" + w3cParent + "-03", ok: true, flags: 0x03},
		{name: "empty", in: ""},
		{name: "short", in: valid[:54]},
		{name: "version 00 with more", in: valid + "-extra"},
		{name: "version ff", in: "ff" + valid[2:]},
		{name: "version upper-case", in: "0A" + valid[2:]},
		{name: "version not hex", in: "0g" + valid[2:]},
		{name: "trace id upper-case", in: "00-" + strings.ToUpper(w3cTraceID) + "-" + w3cParent + "-01"},
		{name: "trace id all zeros", in: "00-" + strings.Repeat("0", 32) + "-" + w3cParent + "-01"},
		{name: "parent id all zeros", in: "00-" + w3cTraceID + "-" + strings.Repeat("0", 16) + "-01"},
		{name: "parent id not hex", in: "00-" + w3cTraceID + "-" + "00f067aa0ba902bz" + "-01"},
		{name: "flags upper-case", in: "00-" + w3cTraceID + "-" + w3cParent + "-0A"},
		{name: "flags not hex", in: "00-" + w3cTraceID + "-" + w3cParent + "-0x"},
		{name: "wrong separator", in: "00_" + w3cTraceID + "-" + w3cParent + "-01"},
		{name: "trace id one short", in: "00-" + w3cTraceID[:31] + "-" + w3cParent + "-01-"},
		{name: "higher version", in: "cc-" + w3cTraceID + "-" + w3cParent + "-01", ok: true, flags: 0x01},
		{name: "higher version with more", in: "cc-" + w3cTraceID + "-" + w3cParent + "-01-what-the-future-will-be-like", ok: true, flags: 0x01},
		{name: "higher version keeps only the sampled flag", in: "cc-" + w3cTraceID + "-" + w3cParent + "-fe", ok: true, flags: 0x00},
		{name: "higher version without a dash after the flags", in: "cc-" + w3cTraceID + "-" + w3cParent + "-01.what"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, flags, ok := parseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("parseTraceparent(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			if !ok {
				return
			}
			if id != w3cTraceID || flags != tt.flags {
				t.Errorf("parseTraceparent(%q) = %q, %#x; want %q, %#x", tt.in, id, flags, w3cTraceID, tt.flags)
			}
		})
	}
}

func TestNewTraceContextContinues(t *testing.T) {
	in := "00-" + w3cTraceID + "-" + w3cParent + "-01"
	tc := newTraceContext([]string{in}, []string{"congo=t61rcWkgMzE"})
	m := traceparentRE.FindStringSubmatch(tc.parent)
	if m == nil {
		t.Fatalf("traceparent sent upstream = %q, want version 00", tc.parent)
	}
	if m[1] != w3cTraceID || tc.id != w3cTraceID {
		t.Errorf("trace id sent = %q, recorded = %q; want the incoming %q", m[1], tc.id, w3cTraceID)
	}
	if m[2] == w3cParent || m[2] == strings.Repeat("0", 16) {
		t.Errorf("parent id sent = %q, want a new span id of the gateway's", m[2])
	}
	if m[3] != "01" {
		t.Errorf("flags sent = %q, want the incoming 01", m[3])
	}
	if !tc.keepState {
		t.Error("a valid tracestate beside a valid traceparent is dropped, want it forwarded")
	}
}

func TestNewTraceContextRestarts(t *testing.T) {
	valid := "00-" + w3cTraceID + "-" + w3cParent + "-01"
	tests := []struct {
		name   string
		parent []string
	}{
		{name: "none", parent: nil},
		{name: "invalid", parent: []string{"00-" + w3cTraceID + "-" + w3cParent}},
		{name: "all zeros", parent: []string{"00-" + strings.Repeat("0", 32) + "-" + w3cParent + "-01"}},
		{name: "two lines", parent: []string{valid, valid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTraceContext(tt.parent, []string{"congo=t61rcWkgMzE"})
			m := traceparentRE.FindStringSubmatch(tc.parent)
			if m == nil {
				t.Fatalf("traceparent sent upstream = %q, want version 00", tc.parent)
			}
			if m[1] == w3cTraceID || m[1] != tc.id {
				t.Errorf("trace id sent = %q, recorded = %q; want one new trace id in both", m[1], tc.id)
			}
			if m[1] == strings.Repeat("0", 32) || m[2] == strings.Repeat("0", 16) {
				t.Errorf("traceparent %q has an all-zero id", tc.parent)
			}
			if m[3] != "00" {
				t.Errorf("flags = %q, want 00: the gateway samples nothing", m[3])
			}
			if tc.keepState {
				t.Error("the tracestate of a new trace is kept, want it dropped")
			}
		})
	}
}

// TestNewTraceContextUnique checks that new traces and spans do not repeat,
// also across goroutines sharing the pooled generators.
func TestNewTraceContextUnique(t *testing.T) {
	const workers, each = 4, 500
	in := []string{"00-" + w3cTraceID + "-" + w3cParent + "-01"}
	var mu sync.Mutex
	traces, spans := map[string]bool{}, map[string]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				fresh, cont := newTraceContext(nil, nil), newTraceContext(in, nil)
				mu.Lock()
				if traces[fresh.id] || spans[fresh.parent[36:52]] || spans[cont.parent[36:52]] {
					t.Errorf("repeated id: %q or %q", fresh.parent, cont.parent)
				}
				traces[fresh.id], spans[fresh.parent[36:52]], spans[cont.parent[36:52]] = true, true, true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(traces) != workers*each || len(spans) != 2*workers*each {
		t.Errorf("%d trace ids and %d span ids, want %d and %d distinct", len(traces), len(spans), workers*each, 2*workers*each)
	}
}

func TestValidTracestate(t *testing.T) {
	// members returns n distinct members, keys prefix plus a number, each
	// value size characters.
	members := func(prefix string, n, size int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s%03d=%s", prefix, i, strings.Repeat("v", size))
		}
		return b.String()
	}
	tests := []struct {
		name  string
		lines []string
		ok    bool
	}{
		{name: "none", lines: nil, ok: true},
		{name: "empty line", lines: []string{""}, ok: true},
		{name: "one member", lines: []string{"congo=t61rcWkgMzE"}, ok: true},
		{name: "spec example", lines: []string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}, ok: true},
		{name: "multi-tenant key", lines: []string{"fw529a3039@dt=ZmY5ZmQ, 0x@sys=1"}, ok: true},
		{name: "key characters", lines: []string{"a0_-*/=x"}, ok: true},
		{name: "value with spaces and punctuation", lines: []string{"k=a b!~"}, ok: true},
		{name: "OWS and empty members", lines: []string{" a=1 ,, \t b=2 ,"}, ok: true},
		{name: "two lines combined", lines: []string{"a=1", "b=2"}, ok: true},
		{name: "32 members", lines: []string{members("k", 32, 1)}, ok: true},
		{name: "33 members", lines: []string{members("k", 33, 1)}},
		{name: "33 members over two lines", lines: []string{members("a", 16, 1), members("b", 17, 1)}},
		{name: "32 members and empty ones", lines: []string{",," + members("k", 32, 1) + ", ,"}, ok: true},
		{name: "511 characters", lines: []string{members("k", 8, 58)}, ok: true}, // 8*(5+58) + 7 commas
		{name: "512 characters", lines: []string{members("k", 8, 58) + "2"}, ok: true},
		{name: "512 characters and OWS", lines: []string{strings.ReplaceAll(members("k", 8, 58)+"2", ",", " , ")}, ok: true},
		{name: "513 characters", lines: []string{members("k", 8, 58) + "23"}},
		{name: "513 characters over two lines", lines: []string{members("a", 4, 58), members("b", 4, 58) + "23"}},
		{name: "duplicate key", lines: []string{"a=1,b=2,a=3"}},
		{name: "duplicate key across lines", lines: []string{"a=1", "a=2"}},
		{name: "upper-case key", lines: []string{"Congo=1"}},
		{name: "key starting with a digit", lines: []string{"0a=1"}},
		{name: "key too long", lines: []string{strings.Repeat("a", 257) + "=1"}},
		{name: "key 256 long", lines: []string{strings.Repeat("a", 256) + "=1"}, ok: true},
		{name: "system id too long", lines: []string{"t@" + strings.Repeat("s", 15) + "=1"}},
		{name: "empty tenant", lines: []string{"@sys=1"}},
		{name: "no value", lines: []string{"a="}},
		{name: "no equals", lines: []string{"a"}},
		{name: "equals in the value", lines: []string{"a=b=c"}},
		{name: "value too long", lines: []string{"a=" + strings.Repeat("v", 257)}},
		{name: "control character", lines: []string{"a=b\x01"}},
		{name: "non-ASCII", lines: []string{"a=é"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validTracestate(tt.lines); got != tt.ok {
				t.Errorf("validTracestate(%q) = %v, want %v", tt.lines, got, tt.ok)
			}
		})
	}
}

// traceCapture is a route middleware that keeps the trace id the record
// holds once the edge ran.
type traceCapture struct {
	mu  sync.Mutex
	ids []string
}

func (c *traceCapture) mw(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.ids = append(c.ids, exchange.From(r.Context()).TraceID)
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *traceCapture) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[len(c.ids)-1]
}

// TestEdgeTracePropagation sends requests through the edge and a proxy to a
// real upstream and checks what the upstream received.
func TestEdgeTracePropagation(t *testing.T) {
	capture := &traceCapture{}
	h := startHarness(t, harnessOptions{cfg: testServerConfig(), route: []func(http.Handler) http.Handler{capture.mw}})
	incoming := "00-" + w3cTraceID + "-" + w3cParent + "-01"
	tests := []struct {
		name       string
		header     map[string][]string
		keepTrace  bool
		wantState  []string
		wantFlags  string
		wantStatus int
	}{
		{name: "continued", header: map[string][]string{"Traceparent": {incoming}, "Tracestate": {"rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"}},
			keepTrace: true, wantState: []string{"rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"}, wantFlags: "01"},
		{name: "continued, bad tracestate dropped", header: map[string][]string{"Traceparent": {incoming}, "Tracestate": {"Rojo=1"}},
			keepTrace: true, wantFlags: "01"},
		{name: "continued, traceparent named in Connection", header: map[string][]string{"Traceparent": {incoming}, "Connection": {"traceparent"}},
			keepTrace: true, wantFlags: "01"},
		{name: "started", header: map[string][]string{}, wantFlags: "00"},
		{name: "started, invalid traceparent and its tracestate dropped",
			header: map[string][]string{"Traceparent": {"00-" + strings.ToUpper(w3cTraceID) + "-" + w3cParent + "-01"}, "Tracestate": {"congo=t61rcWkgMzE"}}, wantFlags: "00"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := h.newRequest(t, http.MethodGet, "/orders", nil)
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			resp, _ := h.do(t, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			got := h.up.requests()
			if len(got) != i+1 {
				t.Fatalf("upstream received %d requests, want %d", len(got), i+1)
			}
			up := got[i].Header
			if len(up["Traceparent"]) != 1 {
				t.Fatalf("upstream traceparent lines = %q, want one", up["Traceparent"])
			}
			m := traceparentRE.FindStringSubmatch(up["Traceparent"][0])
			if m == nil {
				t.Fatalf("upstream traceparent = %q, want version 00", up["Traceparent"][0])
			}
			if tt.keepTrace != (m[1] == w3cTraceID) {
				t.Errorf("upstream trace id = %q, want the incoming one kept: %v", m[1], tt.keepTrace)
			}
			if m[2] == w3cParent {
				t.Errorf("upstream parent id = the client's %q, want the gateway's span id", m[2])
			}
			if m[3] != tt.wantFlags {
				t.Errorf("upstream flags = %q, want %q", m[3], tt.wantFlags)
			}
			if rec := capture.last(); rec != m[1] {
				t.Errorf("record's trace id = %q, want the one sent upstream %q", rec, m[1])
			}
			if strings.Join(up["Tracestate"], "|") != strings.Join(tt.wantState, "|") {
				t.Errorf("upstream tracestate = %q, want %q", up["Tracestate"], tt.wantState)
			}
		})
	}
}

// TestEdgeTraceIDFromAnyClient checks the decision that the trace id is
// taken from a client that is not a trusted proxy (unlike X-Request-Id).
func TestEdgeTraceIDFromAnyClient(t *testing.T) {
	capture := &traceCapture{}
	h := startHarness(t, harnessOptions{cfg: testServerConfig(), route: []func(http.Handler) http.Handler{capture.mw}})
	req := h.newRequest(t, http.MethodGet, "/orders", nil)
	req.Header.Set("Traceparent", "00-"+w3cTraceID+"-"+w3cParent+"-00")
	req.Header.Set("X-Request-Id", "client-chosen")
	resp, _ := h.do(t, req)
	if got := resp.Header.Get("X-Request-Id"); got == "client-chosen" {
		t.Errorf("X-Request-Id = %q, want the client's id replaced", got)
	}
	if got := capture.last(); got != w3cTraceID {
		t.Errorf("trace id = %q, want the untrusted client's %q", got, w3cTraceID)
	}
}

// TestEdgeTraceIDOnRefusal checks that a request the edge refuses, before
// routing, still has its trace id on the record (its audit event).
func TestEdgeTraceIDOnRefusal(t *testing.T) {
	pw, _ := newProblems(t)
	mw, err := New(testServerConfig(), Deps{Log: zap.NewNop(), Problems: pw})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next handler ran, want the request refused") })
	h := mw(next)
	rec := &exchange.Record{}
	req, _ := http.NewRequest(http.MethodGet, "http://gw/a/../b", nil)
	req.URL.Path = "/a/../b" // not canonical: refused
	req.Header.Set("Traceparent", "00-"+w3cTraceID+"-"+w3cParent+"-01")
	req = req.WithContext(exchange.With(req.Context(), rec))
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if d, _ := rec.Decisions(); d == nil {
		t.Fatal("no denial recorded, want the path refused")
	}
	if rec.TraceID != w3cTraceID {
		t.Errorf("trace id of a refused request = %q, want %q", rec.TraceID, w3cTraceID)
	}
}

// TestRecoverLogsTraceID checks that the panic log line carries the trace
// id beside the request id.
func TestRecoverLogsTraceID(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	h := startHarness(t, harnessOptions{cfg: testServerConfig(), log: zap.New(core), terminal: panicking(errors.New("boom"))})
	req := h.newRequest(t, http.MethodGet, "/orders", nil)
	req.Header.Set("Traceparent", "00-"+w3cTraceID+"-"+w3cParent+"-01")
	resp, _ := h.do(t, req)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", resp.StatusCode)
	}
	entries := logs.FilterMessage("panic recovered").All()
	if len(entries) != 1 {
		t.Fatalf("panic log entries = %d, want 1", len(entries))
	}
	fields := entries[0].ContextMap()
	if fields["trace_id"] != w3cTraceID || fields["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("panic log fields = %v, want trace_id %s beside the request id", fields, w3cTraceID)
	}
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestNewTraceContextAllocs holds both paths to the one string they build.
// Not under -race, where sync.Pool drops generators at random.
func TestNewTraceContextAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector changes allocation")
	}
	in := []string{"00-" + w3cTraceID + "-" + w3cParent + "-01"}
	state := []string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}
	for name, parent := range map[string][]string{"start": nil, "continue": in} {
		got := testing.AllocsPerRun(1000, func() { _ = newTraceContext(parent, state) })
		if got > 1 {
			t.Errorf("%s: allocations = %v, want at most 1", name, got)
		}
	}
}

func BenchmarkNewTraceContext(b *testing.B) {
	in := []string{"00-" + w3cTraceID + "-" + w3cParent + "-01"}
	state := []string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}
	b.Run("start", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = newTraceContext(nil, nil)
		}
	})
	b.Run("continue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = newTraceContext(in, state)
		}
	})
	b.Run("start-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = newTraceContext(nil, nil)
			}
		})
	})
}
