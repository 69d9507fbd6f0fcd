package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Markers every test event carries: personal data that must never reach
// a log line.
const (
	testClientIP = "203.0.113.77"
	testSubject  = "alice@example.com"
)

// testEvent is the encoded event number i.
func testEvent(i int) []byte {
	return fmt.Appendf(nil,
		`{"time":"2026-03-01T12:00:00.000Z","request_id":"req-%06d","client_ip":%q,"principal":{"subject":%q},"decision":{"allowed":true}}`,
		i, testClientIP, testSubject)
}

// testEvents is the lines of events from..to-1, as a sink writes them.
func testEvents(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, string(testEvent(i)))
	}
	return out
}

func newTestCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total"})
}

// closeWriter closes w with a generous deadline and fails on any error.
func closeWriter(t testing.TB, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for the writer's goroutine and the
// test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

// stalledStdout is a stdout sink on a pipe that nobody reads yet: the
// writer's goroutine blocks in Write until the test reads.
type stalledStdout struct {
	r     *io.PipeReader
	lines chan string
}

func newStalledStdout(t testing.TB) (Sink, *stalledStdout) {
	t.Helper()
	r, w := io.Pipe()
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	return NewStdout(w), &stalledStdout{r: r}
}

// firstByte reads one byte: the writer's goroutine is then inside
// sink.Write with its first batch, and stays there.
func (s *stalledStdout) firstByte(t testing.TB) {
	t.Helper()
	var b [1]byte
	if _, err := io.ReadFull(s.r, b[:]); err != nil {
		t.Fatalf("read the first byte: %v", err)
	}
	if b[0] != '{' {
		t.Fatalf("first byte = %q, want '{'", b[0])
	}
}

// release lets the sink go on, and returns the next n lines it writes (the
// first one missing the byte firstByte took).
func (s *stalledStdout) release(t testing.TB, n int) <-chan []string {
	t.Helper()
	out := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(s.r)
		var lines []string
		for len(lines) < n && sc.Scan() {
			lines = append(lines, sc.Text())
		}
		out <- lines
	}()
	return out
}

func receiveWithin[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("nothing received in 30s")
		panic("unreachable")
	}
}

func TestWriterDeliversEveryEventInOrder(t *testing.T) {
	var out lockedBuffer
	w := NewWriter(NewStdout(&out), WriterConfig{QueueSize: 64, Block: true, BlockFor: time.Minute}, nil)
	const n = 2000
	for i := range n {
		if !w.Enqueue(testEvent(i)) {
			t.Fatalf("Enqueue(%d) = false, want true", i)
		}
	}
	closeWriter(t, w)
	got, want := out.lines(), testEvents(0, n)
	if len(got) != len(want) {
		t.Fatalf("%d lines written, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestWriterBatchSize(t *testing.T) {
	c := startCollector(t, collectorOptions{})
	sink, err := NewHTTP(c.config())
	if err != nil {
		t.Fatal(err)
	}
	// The flush interval never fires: only a full batch, or Close,
	// writes.
	w := NewWriter(sink, WriterConfig{BatchSize: 10, FlushInterval: time.Hour}, nil)
	for i := range 25 {
		w.Enqueue(testEvent(i))
	}
	c.waitEvents(t, 20)
	if got := c.batchSizes(); !sameSlice(got, []int{10, 10}) {
		t.Errorf("batches before Close = %v, want [10 10]", got)
	}
	closeWriter(t, w)
	if got := c.batchSizes(); !sameSlice(got, []int{10, 10, 5}) {
		t.Errorf("batches after Close = %v, want [10 10 5]", got)
	}
	if got, want := c.events(), testEvents(0, 25); !sameSlice(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestWriterFlushInterval(t *testing.T) {
	c := startCollector(t, collectorOptions{})
	sink, err := NewHTTP(c.config())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(sink, WriterConfig{BatchSize: 100, FlushInterval: 50 * time.Millisecond}, nil)
	defer closeWriter(t, w)
	for i := range 3 {
		w.Enqueue(testEvent(i))
	}
	// The batch is far from full: only the interval can deliver it.
	c.waitEvents(t, 3)
	if got, want := c.events(), testEvents(0, 3); !sameSlice(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestWriterDropsWhenFull(t *testing.T) {
	sink, stalled := newStalledStdout(t)
	dropped := newTestCounter()
	w := NewWriter(sink, WriterConfig{QueueSize: 4, BatchSize: 1, Dropped: dropped}, nil)
	if !w.Enqueue(testEvent(0)) {
		t.Fatal("Enqueue(0) = false, want true")
	}
	stalled.firstByte(t) // event 0 is in sink.Write, the queue is empty
	for i := 1; i <= 4; i++ {
		if !w.Enqueue(testEvent(i)) {
			t.Fatalf("Enqueue(%d) into a queue with room = false, want true", i)
		}
	}
	if w.Enqueue(testEvent(5)) {
		t.Fatal("Enqueue(5) into a full queue = true, want false")
	}
	if got := testutil.ToFloat64(dropped); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	lines := stalled.release(t, 5)
	closeWriter(t, w)
	got := receiveWithin(t, lines)
	want := testEvents(0, 5)
	want[0] = want[0][1:] // firstByte took the '{'
	if !sameSlice(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

func TestWriterBlockWaitsForRoom(t *testing.T) {
	sink, stalled := newStalledStdout(t)
	dropped := newTestCounter()
	w := NewWriter(sink, WriterConfig{QueueSize: 1, BatchSize: 1, Block: true, BlockFor: time.Minute, Dropped: dropped}, nil)
	w.Enqueue(testEvent(0))
	stalled.firstByte(t)
	w.Enqueue(testEvent(1)) // fills the queue
	accepted := make(chan bool, 1)
	go func() { accepted <- w.Enqueue(testEvent(2)) }()
	select {
	case ok := <-accepted:
		t.Fatalf("Enqueue into a full queue returned %v before the sink moved, want it to wait", ok)
	case <-time.After(20 * time.Millisecond):
	}
	lines := stalled.release(t, 3)
	if ok := receiveWithin(t, accepted); !ok {
		t.Error("Enqueue that waited for room = false, want true")
	}
	closeWriter(t, w)
	if got := len(receiveWithin(t, lines)); got != 3 {
		t.Errorf("%d events delivered, want 3", got)
	}
	if got := testutil.ToFloat64(dropped); got != 0 {
		t.Errorf("dropped = %v, want 0", got)
	}
}

func TestWriterBlockGivesUp(t *testing.T) {
	sink, stalled := newStalledStdout(t)
	dropped := newTestCounter()
	w := NewWriter(sink, WriterConfig{QueueSize: 1, BatchSize: 1, Block: true, BlockFor: 10 * time.Millisecond, Dropped: dropped}, nil)
	w.Enqueue(testEvent(0))
	stalled.firstByte(t)
	w.Enqueue(testEvent(1))
	if w.Enqueue(testEvent(2)) {
		t.Fatal("Enqueue into a queue that stays full = true, want false after block_timeout")
	}
	if got := testutil.ToFloat64(dropped); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	lines := stalled.release(t, 2)
	closeWriter(t, w)
	if got := len(receiveWithin(t, lines)); got != 2 {
		t.Errorf("%d events delivered, want 2", got)
	}
}

// logsWithout fails when a log entry (message or any field) contains one
// of the words.
func logsWithout(t testing.TB, logs *observer.ObservedLogs, words ...string) {
	t.Helper()
	for _, e := range logs.All() {
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range e.Context {
			f.AddTo(enc)
		}
		text := e.Message + " " + fmt.Sprint(enc.Fields)
		for _, w := range words {
			if strings.Contains(text, w) {
				t.Errorf("log entry %q holds %q", text, w)
			}
		}
	}
}

func TestWriterRetriesFailedBatch(t *testing.T) {
	c := startCollector(t, collectorOptions{fail: 3})
	sink, err := NewHTTP(c.config())
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	failed := newTestCounter()
	w := NewWriter(sink, WriterConfig{BatchSize: 4, FlushInterval: time.Millisecond, Failed: failed}, zap.New(core))
	for i := range 10 {
		w.Enqueue(testEvent(i))
	}
	closeWriter(t, w)
	if got, want := c.events(), testEvents(0, 10); !sameSlice(got, want) {
		t.Errorf("events = %q, want %q (each exactly once, in order)", got, want)
	}
	if got := testutil.ToFloat64(failed); got != 3 {
		t.Errorf("failed = %v, want 3", got)
	}
	if got := logs.FilterMessage("audit sink write failed; retrying").Len(); got != 3 {
		t.Errorf("%d retry warnings logged, want 3", got)
	}
	if got := logs.FilterMessage("audit sink recovered").Len(); got != 1 {
		t.Errorf("%d recovery notes logged, want 1", got)
	}
	logsWithout(t, logs, testClientIP, testSubject, "req-0")
}

func TestWriterQueueAcceptsWhileRetrying(t *testing.T) {
	c := startCollector(t, collectorOptions{fail: 1 << 30})
	sink, err := NewHTTP(c.config())
	if err != nil {
		t.Fatal(err)
	}
	dropped := newTestCounter()
	w := NewWriter(sink, WriterConfig{QueueSize: 5, BatchSize: 1, Dropped: dropped}, nil)
	w.Enqueue(testEvent(0))
	c.waitAttempts(t, 1) // event 0 left the queue, and is being retried
	for i := 1; i <= 5; i++ {
		if !w.Enqueue(testEvent(i)) {
			t.Fatalf("Enqueue(%d) while the sink fails = false, want true (the queue has room)", i)
		}
	}
	if w.Enqueue(testEvent(6)) {
		t.Fatal("Enqueue(6) into the full queue = true, want false")
	}
	if got := testutil.ToFloat64(dropped); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	c.recover()
	closeWriter(t, w)
	if got, want := c.events(), testEvents(0, 6); !sameSlice(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestWriterCloseReportsUndelivered(t *testing.T) {
	c := startCollector(t, collectorOptions{fail: 1 << 30})
	sink, err := NewHTTP(c.config())
	if err != nil {
		t.Fatal(err)
	}
	dropped := newTestCounter()
	w := NewWriter(sink, WriterConfig{BatchSize: 3, Dropped: dropped}, nil)
	for i := range 7 {
		w.Enqueue(testEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = w.Close(ctx)
	ue, ok := errors.AsType[*UndeliveredError](err)
	if !ok {
		t.Fatalf("Close() = %v, want an *UndeliveredError", err)
	}
	if ue.Events != 7 {
		t.Errorf("undelivered = %d, want 7", ue.Events)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close() = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if got := testutil.ToFloat64(dropped); got != 7 {
		t.Errorf("dropped = %v, want 7", got)
	}
	if w.Enqueue(testEvent(7)) {
		t.Error("Enqueue after Close = true, want false")
	}
	if got := testutil.ToFloat64(dropped); got != 8 {
		t.Errorf("dropped after a late Enqueue = %v, want 8", got)
	}
	if again := w.Close(context.Background()); !errors.Is(again, context.DeadlineExceeded) {
		t.Errorf("second Close() = %v, want the first one's error", again)
	}
}

// Events accepted while Close runs are delivered: Enqueue returning true
// is a promise.
func TestWriterCloseWhileEnqueuing(t *testing.T) {
	var out lockedBuffer
	w := NewWriter(NewStdout(&out), WriterConfig{QueueSize: 16, BatchSize: 8, Block: true, BlockFor: time.Minute}, nil)
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if !w.Enqueue(testEvent(g*1_000_000 + i)) {
					return
				}
				accepted.Add(1)
			}
		})
	}
	for accepted.Load() < 500 {
		time.Sleep(time.Millisecond)
	}
	closeWriter(t, w)
	wg.Wait()
	if got, want := len(out.lines()), int(accepted.Load()); got != want {
		t.Errorf("%d events delivered, %d accepted", got, want)
	}
}

func TestWriterEnqueueAllocs(t *testing.T) {
	tests := []struct {
		name  string
		queue int
	}{
		{name: "queued", queue: 1 << 16},
		{name: "dropped", queue: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink, stalled := newStalledStdout(t)
			w := NewWriter(sink, WriterConfig{QueueSize: tt.queue, BatchSize: 1}, nil)
			w.Enqueue(testEvent(0))
			stalled.firstByte(t) // the writer takes nothing more
			ev := testEvent(1)
			if got := testing.AllocsPerRun(100, func() { w.Enqueue(ev) }); got != 0 {
				t.Errorf("Enqueue allocates %v times, want 0", got)
			}
			_ = stalled.r.CloseWithError(errors.New("test over"))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = w.Close(ctx) // undelivered: the sink is gone
		})
	}
}

func TestStdoutOneLinePerEvent(t *testing.T) {
	var out bytes.Buffer
	s := NewStdout(&out)
	if err := s.Write([][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	if err := s.Write([][]byte{[]byte(`{"c":3}`)}); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	if got, want := out.String(), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"; got != want {
		t.Errorf("written %q, want %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

func TestStdoutWriteError(t *testing.T) {
	r, w := io.Pipe()
	_ = r.CloseWithError(errors.New("reader gone"))
	if err := NewStdout(w).Write([][]byte{testEvent(0)}); err == nil {
		t.Error("Write to a closed pipe = nil, want an error")
	}
}

func sameSlice[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkWriterEnqueue is the request path's cost of auditing: one
// Enqueue into a queue with room. The sink is stalled and the queue is
// emptied outside the timer, so every Enqueue is accepted.
func BenchmarkWriterEnqueue(b *testing.B) {
	sink, stalled := newStalledStdout(b)
	w := NewWriter(sink, WriterConfig{QueueSize: 1 << 16, BatchSize: 1}, nil)
	w.Enqueue(testEvent(0))
	stalled.firstByte(b) // the writer's goroutine takes nothing more
	ev := testEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		if !w.Enqueue(ev) {
			b.StopTimer()
			for len(w.queue) > 0 {
				<-w.queue
			}
			b.StartTimer()
			w.Enqueue(ev)
		}
	}
	b.StopTimer()
	_ = stalled.r.CloseWithError(errors.New("benchmark over"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = w.Close(ctx)
}

// BenchmarkWriterEnqueueParallel is Enqueue from every core at once, with
// the writer draining to io.Discard on the same cores: drops/op is the
// share of events it could not keep up with.
func BenchmarkWriterEnqueueParallel(b *testing.B) {
	dropped := newTestCounter()
	w := NewWriter(NewStdout(io.Discard), WriterConfig{QueueSize: 1 << 16, Dropped: dropped}, nil)
	ev := testEvent(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Enqueue(ev)
		}
	})
	b.StopTimer()
	b.ReportMetric(testutil.ToFloat64(dropped)/float64(b.N), "drops/op")
	closeWriter(b, w)
}

// BenchmarkWriterEnqueueFull is the cost of a drop: the queue is full and
// the sink stalled.
func BenchmarkWriterEnqueueFull(b *testing.B) {
	sink, stalled := newStalledStdout(b)
	w := NewWriter(sink, WriterConfig{QueueSize: 1, BatchSize: 1}, nil)
	w.Enqueue(testEvent(0))
	stalled.firstByte(b)
	w.Enqueue(testEvent(1))
	ev := testEvent(2)
	b.ReportAllocs()
	for b.Loop() {
		if w.Enqueue(ev) {
			b.Fatal("Enqueue into a full queue = true")
		}
	}
	b.StopTimer()
	_ = stalled.r.CloseWithError(errors.New("benchmark over"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = w.Close(ctx)
}
