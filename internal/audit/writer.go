package audit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Writer defaults, used when a WriterConfig field is zero or negative. They
// match the defaults of the `audit:` config section.
const (
	writerDefaultQueueSize = 10000
	writerDefaultBatchSize = 500
)

// Retry pacing of a batch the sink refused: 100 ms doubling to 10 s, each
// wait jittered so gateways that lost the same collector do not return in
// step.
const (
	writerRetryMin = 100 * time.Millisecond
	writerRetryMax = 10 * time.Second
)

// writerDropReportEvery is the most often the writer logs that events
// were dropped (the Dropped counter has every one).
const writerDropReportEvery = 10 * time.Second

// WriterConfig shapes a Writer. Zero values take the defaults noted on each
// field.
type WriterConfig struct {
	// QueueSize is the most events held between Enqueue and the sink; 0
	// means 10000. The queue never grows beyond it.
	QueueSize int
	// Block makes Enqueue wait up to BlockFor for room in a full queue
	// before it drops the event (on_full: block). False drops at once.
	Block bool
	// BlockFor is the longest Enqueue waits with Block; 0 means no wait.
	BlockFor time.Duration
	// BatchSize is the most events per sink.Write; 0 means 500.
	BatchSize int
	// FlushInterval is how long the first event of a batch waits for the
	// batch to fill. 0 writes whatever is queued at once (batches then
	// grow only under load), which suits stdout, file and syslog.
	FlushInterval time.Duration
	// Dropped counts events that were not queued (queue full, or the
	// writer closed) and, at Close, events that could not be delivered.
	// Nil counts nothing.
	Dropped prometheus.Counter
	// Failed counts failed sink.Write attempts (each retry of a batch
	// counts again). Nil counts nothing.
	Failed prometheus.Counter
}

// Writer is the bounded queue between the request path and a Sink. One
// goroutine, started by NewWriter and stopped by Close, batches the queued
// events and writes them, retrying a refused batch with backoff; while it
// retries, the queue keeps accepting events up to its bound. Enqueue is
// safe for concurrent use; Close is for the owner (later calls return the
// first one's error).
type Writer struct {
	queue    chan []byte
	block    bool
	blockFor time.Duration
	dropped  prometheus.Counter // never nil
	failed   prometheus.Counter // never nil
	drops    atomic.Int64       // every drop, for the log

	// mu guards closed. Enqueue holds it shared while it sends, so once
	// Close holds it exclusively no Enqueue is mid-send: every event
	// accepted before Close is in the queue, and none comes after.
	mu     sync.RWMutex
	closed bool

	// Owned by the run goroutine.
	sink          Sink
	batchSize     int
	flushInterval time.Duration
	log           *zap.Logger
	reportedDrops int64
	reportedAt    time.Time
	undelivered   int // read by Close after done

	timers    sync.Pool // *time.Timer, for Enqueue with Block
	stop      chan struct{}
	abort     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewWriter starts the writer's goroutine in front of sink. The Writer owns
// sink from now on: Close closes it. A nil log logs nothing.
func NewWriter(sink Sink, cfg WriterConfig, log *zap.Logger) *Writer {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.QueueSize < 1 {
		cfg.QueueSize = writerDefaultQueueSize
	}
	if cfg.BatchSize < 1 {
		cfg.BatchSize = writerDefaultBatchSize
	}
	w := &Writer{
		queue:         make(chan []byte, cfg.QueueSize),
		block:         cfg.Block && cfg.BlockFor > 0,
		blockFor:      cfg.BlockFor,
		dropped:       cfg.Dropped,
		failed:        cfg.Failed,
		sink:          sink,
		batchSize:     cfg.BatchSize,
		flushInterval: max(cfg.FlushInterval, 0),
		log:           log.Named("writer"),
		stop:          make(chan struct{}),
		abort:         make(chan struct{}),
		done:          make(chan struct{}),
	}
	if w.dropped == nil {
		w.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "audit_dropped_unregistered"})
	}
	if w.failed == nil {
		w.failed = prometheus.NewCounter(prometheus.CounterOpts{Name: "audit_failed_unregistered"})
	}
	go w.run()
	return w
}

// Enqueue queues one encoded event (JSON, no trailing newline) and reports
// whether it was accepted. The Writer keeps ev: the caller must not change
// it afterwards. When the queue is full, Enqueue drops the event at once,
// or with Block waits up to BlockFor for room first; a dropped event is
// counted in Dropped, never lost silently. After Close it drops every
// event. Queuing allocates nothing; only a wait for room (Block) may.
func (w *Writer) Enqueue(ev []byte) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop()
		return false
	}
	select {
	case w.queue <- ev:
		return true
	default:
	}
	if w.block && w.waitForRoom(ev) {
		return true
	}
	w.drop()
	return false
}

// waitForRoom is the slow path of Enqueue with Block: the queue was full.
func (w *Writer) waitForRoom(ev []byte) bool {
	t, _ := w.timers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(w.blockFor)
	} else {
		t.Reset(w.blockFor)
	}
	// Since Go 1.23 a stopped timer's channel holds no stale tick, so the
	// timer can go back to the pool as it is.
	defer func() { t.Stop(); w.timers.Put(t) }()
	select {
	case w.queue <- ev:
		return true
	case <-t.C:
		return false
	}
}

func (w *Writer) drop() {
	w.drops.Add(1)
	w.dropped.Inc()
}

// UndeliveredError is the error Close returns when its context ended
// before every queued event was written.
type UndeliveredError struct {
	// Events is how many accepted events were not delivered (they are
	// also counted in Dropped).
	Events int
	// Err is the context's cause.
	Err error
}

func (e *UndeliveredError) Error() string {
	return fmt.Sprintf("audit: %d events not delivered: %v", e.Events, e.Err)
}

func (e *UndeliveredError) Unwrap() error { return e.Err }

// Close stops accepting events, writes everything queued (retrying a
// refused batch until ctx ends), closes the sink and waits for the
// writer's goroutine. When ctx ends first, the error includes an
// *UndeliveredError that says how many accepted events were lost and wraps
// ctx's cause; a failing sink Close is joined to it. A Write already under
// way when ctx ends is not interrupted: sinks bound it with their own
// timeouts. Later calls return the first call's error.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
		select {
		case <-w.done:
		case <-ctx.Done():
			close(w.abort)
			<-w.done
		}
		var errs []error
		if n := w.undelivered; n > 0 {
			w.dropped.Add(float64(n))
			errs = append(errs, &UndeliveredError{Events: n, Err: context.Cause(ctx)})
		}
		if err := w.sink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close sink: %w", err))
		}
		w.closeErr = errors.Join(errs...)
	})
	return w.closeErr
}

// run is the writer's goroutine: it gathers batches and delivers them
// until Close, then delivers what is left in the queue.
func (w *Writer) run() {
	defer close(w.done)
	batch := make([][]byte, 0, w.batchSize)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	var flushC <-chan time.Time // non-nil while a partial batch waits
	deliver := func() {
		w.deliver(batch)
		clear(batch) // the events may be collected now
		batch = batch[:0]
		flush.Stop()
		flushC = nil
	}
	for {
		select {
		case ev := <-w.queue:
			batch = w.fill(append(batch, ev))
			switch {
			case len(batch) >= w.batchSize || w.flushInterval == 0:
				deliver()
			case flushC == nil:
				flush.Reset(w.flushInterval)
				flushC = flush.C
			}
		case <-flushC:
			deliver()
		case <-w.stop:
			for {
				batch = w.fill(batch)
				if len(batch) == 0 {
					return
				}
				deliver()
			}
		}
	}
}

// fill moves queued events into batch, without waiting, up to the batch
// size.
func (w *Writer) fill(batch [][]byte) [][]byte {
	for len(batch) < w.batchSize {
		select {
		case ev := <-w.queue:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// deliver writes batch, retrying with backoff until the sink takes it or
// Close's context ends (then the batch, and everything still queued,
// count as undelivered). Logs carry counts and the sink's error, never an
// event: events hold client addresses and subjects.
func (w *Writer) deliver(batch [][]byte) {
	select {
	case <-w.abort:
		w.undelivered += len(batch) + len(w.queue)
		w.discardQueue()
		return
	default:
	}
	wait := writerRetryMin
	for attempt := 1; ; attempt++ {
		err := w.sink.Write(batch)
		if d, ok := errors.AsType[*deliveredError](err); ok {
			w.log.Warn("audit sink trouble; events delivered", zap.Int("events", len(batch)), zap.Error(d.err))
			err = nil
		}
		if err == nil {
			if attempt > 1 {
				w.log.Info("audit sink recovered", zap.Int("events", len(batch)), zap.Int("attempts", attempt))
			}
			w.reportDrops()
			return
		}
		w.failed.Inc()
		// Half fixed, half random: never less than wait/2, never more
		// than wait.
		d := wait/2 + rand.N(wait/2+1)
		w.log.Warn("audit sink write failed; retrying",
			zap.Int("events", len(batch)),
			zap.Int("attempt", attempt),
			zap.Duration("retry_in", d),
			zap.Int("queued", len(w.queue)),
			zap.Error(err))
		w.reportDrops()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-w.abort:
			t.Stop()
			w.undelivered += len(batch) + len(w.queue)
			w.discardQueue()
			return
		}
		wait = min(wait*2, writerRetryMax)
	}
}

// deliveredError is a sink's warning: the batch was delivered, yet
// something needs an operator (a rotation that failed). The writer logs it
// and does not retry.
type deliveredError struct{ err error }

func (e *deliveredError) Error() string { return e.err.Error() }
func (e *deliveredError) Unwrap() error { return e.err }

// delivered wraps err as a deliveredError.
func delivered(err error) error { return &deliveredError{err: err} }

// discardQueue empties the queue after Close gave up; Enqueue no longer
// adds to it.
func (w *Writer) discardQueue() {
	for {
		select {
		case <-w.queue:
		default:
			return
		}
	}
}

// reportDrops logs the events dropped since the last report, at most once
// per writerDropReportEvery, so an operator without metrics still learns
// of the loss.
func (w *Writer) reportDrops() {
	n := w.drops.Load()
	if n == w.reportedDrops {
		return
	}
	now := time.Now()
	if !w.reportedAt.IsZero() && now.Sub(w.reportedAt) < writerDropReportEvery {
		return
	}
	w.log.Warn("audit queue full: events dropped",
		zap.Int64("dropped", n-w.reportedDrops),
		zap.Int64("dropped_total", n))
	w.reportedDrops, w.reportedAt = n, now
}
