package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The audit delivery tests run the real binary against a collector or a
// file and check the queue's promise (docs/audit.md "The queue: never
// silent loss"): a slow or stuck sink never holds a request up with
// on_full: drop, a full queue holds it up to block_timeout with block,
// every lost event is counted, the events queued at SIGTERM are delivered
// before the process exits, and a collector that refuses batches for a
// while gets every event once it recovers.

// auditCollector is an audit HTTP collector on loopback. It reads every POST
// (NDJSON audit events), lets answer decide the reply, and counts the
// events of the POSTs it answered 2xx as delivered.
type auditCollector struct {
	url string
	// answer returns the status for the n-th POST (from 1), once its body
	// has been read; it may block (a collector that hangs) or sleep (a
	// slow one).
	answer func(n int) int

	mu        sync.Mutex
	posts     int      // POSTs received
	refused   int      // POSTs answered with a status other than 2xx
	delivered []string // request ids of the events of the POSTs answered 2xx
	problems  []string // what was wrong with a POST: a test failure
}

func startAuditCollector(t *testing.T, answer func(n int) int) *auditCollector {
	t.Helper()
	ln := listenLoopback(t)
	c := &auditCollector{url: "http://" + ln.Addr().String() + "/ingest", answer: answer}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(c.serve)}
	go func() { _ = srv.Serve(ln) }() // ends with Close in Cleanup
	t.Cleanup(func() {
		_ = srv.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.problems {
			t.Errorf("collector: %s", p)
		}
	})
	return c
}

func (c *auditCollector) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	c.mu.Lock()
	c.posts++
	n := c.posts
	c.mu.Unlock()
	var ids, problems []string
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("POST %d: reading the body: %v", n, err))
	case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson":
		problems = append(problems, fmt.Sprintf("POST %d: %s with Content-Type %q, want POST application/x-ndjson", n, r.Method, r.Header.Get("Content-Type")))
	case len(body) == 0 || body[len(body)-1] != '\n':
		problems = append(problems, fmt.Sprintf("POST %d: body %q, want events each ending in a newline", n, body))
	default:
		for line := range bytes.Lines(body) {
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			var ev auditEvent
			if err := dec.Decode(&ev); err != nil || ev.RequestID == "" {
				problems = append(problems, fmt.Sprintf("POST %d: line is not a documented event (%v): %s", n, err, line))
				continue
			}
			ids = append(ids, ev.RequestID)
		}
	}
	status := c.answer(n)
	if r.Context().Err() != nil {
		// The gateway gave up on this POST (its timeout): it will retry
		// the batch, so this one is not delivered.
		return
	}
	c.mu.Lock()
	c.problems = append(c.problems, problems...)
	if status >= 200 && status <= 299 {
		c.delivered = append(c.delivered, ids...)
	} else {
		c.refused++
	}
	c.mu.Unlock()
	w.WriteHeader(status)
}

// state returns the POSTs received, the POSTs refused and the request ids
// delivered so far.
func (c *auditCollector) state() (posts, refused int, delivered []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posts, c.refused, slices.Clone(c.delivered)
}

// waitDelivered waits until at least n events were delivered.
func (c *auditCollector) waitDelivered(t *testing.T, g *gateway, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		posts, refused, delivered := c.state()
		if len(delivered) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector got %d events in %d POSTs (%d refused) within 15s, want %d\n%s", len(delivered), posts, refused, n, g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkDeliveredOnce checks that every id of delivered is one of sent
// (request ids the gateway answered with) and arrived once: it returns how
// many distinct events were delivered.
func checkDeliveredOnce(t *testing.T, delivered []string, sent []string) int {
	t.Helper()
	known := map[string]bool{}
	for _, id := range sent {
		known[id] = true
	}
	count := map[string]int{}
	for _, id := range delivered {
		count[id]++
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("the event of request %s was delivered %d times, want once", id, n)
		}
		if !known[id] {
			t.Errorf("an event for request %s, which the test never got an answer for", id)
		}
	}
	return len(count)
}

// openAuditGateway starts a gateway with one public route, GET /open, to
// a fresh upstream, and the audit section audit.
func openAuditGateway(t *testing.T, audit string) *gateway {
	t.Helper()
	up := startUpstream(t, nil)
	return startGateway(t, authnSetup{
		upstream: up.addr,
		top:      audit,
		routes:   []string{authRoute("open", "/open", "none")},
	}.yaml(), nil)
}

// auditGetOpen sends GET /open with c and returns the answer's status and
// request id; err is only for no answer at all.
func auditGetOpen(c *http.Client, g *gateway) (status int, id string, err error) {
	resp, err := c.Get(g.URL("/open"))
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), nil
}

// TestAuditDeliveryQueueFullDrop checks on_full: drop against a collector
// that hangs: no request waits for the sink, the queue holds no more than
// queue_size events (plus the batch under way), every event that did not
// fit is counted as dropped, and the ones that fit are delivered once the
// collector answers, so that delivered + dropped is every request.
func TestAuditDeliveryQueueFullDrop(t *testing.T) {
	const requests, queueSize = 50, 5
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseCollector := func() { releaseOnce.Do(func() { close(release) }) }
	col := startAuditCollector(t, func(int) int {
		<-release // hangs until the test releases it
		return http.StatusOK
	})
	// batch_size 1: the writer takes one event and sends it, and the POST
	// hangs; with the default 500 and 1s the writer would gather every
	// request of the test into the batch it is filling, and nothing would
	// wait in the queue.
	g := openAuditGateway(t, fmt.Sprintf("audit:\n  sink: http\n  queue_size: %d\n  on_full: drop\n"+
		"  http: { url: %q, timeout: 30s, batch_size: 1, flush_interval: 10ms }", queueSize, col.url))
	t.Cleanup(releaseCollector) // before the gateway is stopped: it flushes to the collector

	var sent []string
	for i := range requests {
		start := time.Now()
		r := auditSend(t, fmt.Sprint("request ", i), "GET", g.URL("/open"), nil)
		// The sink is stuck for 30s (its timeout): a request that waited
		// for it would take that long.
		if took := time.Since(start); took >= time.Second {
			t.Errorf("request %d took %v, want under 1s: on_full drop never waits for the sink", i, took)
		}
		if r.status != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, r.status)
		}
		sent = append(sent, r.requestID)
	}

	// The sink was stuck all along: its first POST is still unanswered.
	deadline := time.Now().Add(5 * time.Second)
	for posts, _, _ := col.state(); posts == 0; posts, _, _ = col.state() {
		if time.Now().After(deadline) {
			t.Fatalf("the collector never got a POST\n%s", g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if posts, _, delivered := col.state(); posts != 1 || len(delivered) != 0 {
		t.Fatalf("before release: %d POSTs, %d events delivered; want 1 POST hanging, 0 delivered", posts, len(delivered))
	}
	dropped := g.metric(t, "bulwark_audit_events_dropped_total")
	queued := metricSum(t, g, "bulwark_audit_events_total")
	allowed := g.metric(t, `bulwark_audit_events_total{kind="allowed"}`)
	t.Logf("with the collector stuck: %v events queued, %v dropped", queued, dropped)
	if dropped < 40 {
		t.Errorf("bulwark_audit_events_dropped_total = %v, want at least 40 (queue_size %d, the sink stuck)", dropped, queueSize)
	}
	if queued != allowed || queued > queueSize+1 {
		t.Errorf("bulwark_audit_events_total = %v (allowed %v), want only allowed events, at most %d: the queue's %d and the one batch of 1 under way",
			queued, allowed, queueSize+1, queueSize)
	}
	if dropped+queued != requests {
		t.Errorf("dropped %v + queued %v = %v, want %d: every request's event is queued or counted as dropped", dropped, queued, dropped+queued, requests)
	}

	releaseCollector()
	col.waitDelivered(t, g, int(queued))
	g.waitLog(t, "audit queue full: events dropped") // never silent: the log says so too
	after := g.metric(t, "bulwark_audit_events_dropped_total")
	if after != dropped {
		t.Errorf("bulwark_audit_events_dropped_total = %v after the collector answered, want %v still", after, dropped)
	}
	g.stop(t)
	if code := g.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("bulwark exited with %d after SIGTERM, want 0", code)
	}
	_, refused, delivered := col.state()
	n := checkDeliveredOnce(t, delivered, sent)
	if float64(n)+after != requests || float64(n) != queued || refused != 0 {
		t.Errorf("delivered %d (%d refused POSTs) + dropped %v, want the %v queued events delivered and delivered + dropped = %d",
			n, refused, after, queued, requests)
	}
}

// TestAuditDeliveryQueueFullBlock checks on_full: block against a slow
// collector: requests wait for room instead of dropping events, and the
// events still queued at SIGTERM are delivered before the process exits.
func TestAuditDeliveryQueueFullBlock(t *testing.T) {
	const requests, clients = 50, 10
	col := startAuditCollector(t, func(int) int {
		time.Sleep(50 * time.Millisecond) // slow, but it answers
		return http.StatusOK
	})
	// One event per POST: 50 events take the collector 2.5s, far slower
	// than the requests come, so the queue of 5 is full and requests wait
	// (each for at most the events ahead of it, well under 2s).
	g := openAuditGateway(t, fmt.Sprintf("audit:\n  sink: http\n  queue_size: 5\n  on_full: block\n  block_timeout: 2s\n"+
		"  http: { url: %q, timeout: 10s, batch_size: 1, flush_interval: 10ms }", col.url))

	c := &http.Client{Timeout: 15 * time.Second}
	defer c.CloseIdleConnections()
	var (
		mu   sync.Mutex
		sent []string
		errs []error
		wg   sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			for range requests / clients {
				status, id, err := auditGetOpen(c, g)
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case status != http.StatusOK || id == "":
					errs = append(errs, fmt.Errorf("GET /open = %d with X-Request-Id %q, want 200 with one", status, id))
				default:
					sent = append(sent, id)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("request: %v", err)
	}
	if got := g.metric(t, "bulwark_audit_events_dropped_total"); got != 0 {
		t.Errorf("bulwark_audit_events_dropped_total = %v, want 0: on_full block waits for room", got)
	}
	if got := g.metric(t, `bulwark_audit_events_total{kind="allowed"}`); got != requests {
		t.Errorf(`bulwark_audit_events_total{kind="allowed"} = %v, want %d`, got, requests)
	}
	posts, _, before := col.state()
	t.Logf("at SIGTERM the collector had %d events in %d POSTs", len(before), posts)

	g.signal(t, syscall.SIGTERM)
	if code := g.wait(t, 20*time.Second); code != 0 {
		t.Errorf("bulwark exited with %d after SIGTERM, want 0", code)
	}
	_, refused, delivered := col.state()
	if n := checkDeliveredOnce(t, delivered, sent); n != requests || len(delivered) != requests || refused != 0 {
		t.Errorf("the collector got %d events (%d distinct, %d refused POSTs), want exactly %d, one per request", len(delivered), n, refused, requests)
	}
	if logs := g.Logs(); strings.Contains(logs, "not all delivered") || strings.Contains(logs, "events dropped") {
		t.Errorf("the log reports lost events, want none:\n%s", logs)
	}
}

// TestAuditDeliveryShutdownFlush checks the file sink at SIGTERM under
// load: every request that got an answer has exactly one event in the
// file, and the file holds only whole events.
func TestAuditDeliveryShutdownFlush(t *testing.T) {
	const clients = 8
	g := openAuditGateway(t, "audit: { sink: file, file: { path: audit.jsonl } }")

	var (
		mu       sync.Mutex
		sent     []string // request ids of every answer
		errs     []error  // what went wrong before SIGTERM
		signaled bool     // SIGTERM was sent: from now on, no answer is fine
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			c := &http.Client{Timeout: 15 * time.Second}
			defer c.CloseIdleConnections()
			for {
				status, id, err := auditGetOpen(c, g)
				mu.Lock()
				switch {
				case err != nil && signaled:
					// The listener closed: no answer, so no event is
					// promised. This client is done.
					mu.Unlock()
					return
				case err != nil:
					errs = append(errs, err)
					mu.Unlock()
					return
				case id == "":
					errs = append(errs, fmt.Errorf("GET /open = %d without an X-Request-Id", status))
				case status != http.StatusOK && !signaled:
					errs = append(errs, fmt.Errorf("GET /open = %d before SIGTERM, want 200", status))
				}
				if id != "" {
					// Any answer, whatever its status, promises its event.
					sent = append(sent, id)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	atSignal := len(sent)
	signaled = true
	g.signal(t, syscall.SIGTERM) // the clients are still sending
	mu.Unlock()
	code := g.wait(t, 20*time.Second)
	wg.Wait() // every client ends on the closed listener
	if code != 0 {
		t.Errorf("bulwark exited with %d after SIGTERM, want 0", code)
	}
	for _, err := range errs {
		t.Errorf("request: %v", err)
	}
	if atSignal == 0 {
		t.Fatalf("no request answered in 2s\n%s", g.Logs())
	}
	t.Logf("%d requests answered, %d of them before SIGTERM", len(sent), atSignal)

	events, raw := readAudit(t, filepath.Join(g.dir, "audit.jsonl")) // fails on a line that is not a whole event
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		t.Errorf("the audit file ends in %q, want a whole event and its newline", raw[max(0, len(raw)-80):])
	}
	got := byRequest(t, events) // fails on a request with two events
	missing := 0
	for _, id := range sent {
		if _, ok := got[id]; !ok {
			missing++
			if missing <= 5 {
				t.Errorf("no event for request %s, which got an answer", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered requests have no event (the log reports drops: %v)",
			missing, len(sent), strings.Contains(g.Logs(), "events dropped") || strings.Contains(g.Logs(), "not all delivered"))
	}
	if extra := len(events) - (len(sent) - missing); extra > 0 {
		t.Logf("%d events for requests whose answer the clients did not get", extra)
	}
}

// TestAuditDeliveryCollectorRecovers checks the retry of a refused batch:
// a collector that answers 500 to its first POSTs, then 200, gets every
// event exactly once, and every refused attempt is counted.
func TestAuditDeliveryCollectorRecovers(t *testing.T) {
	const requests, failFirst = 20, 3
	col := startAuditCollector(t, func(n int) int {
		if n <= failFirst {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	g := openAuditGateway(t, fmt.Sprintf("audit:\n  sink: http\n"+
		"  http: { url: %q, timeout: 5s, batch_size: 5, flush_interval: 50ms }", col.url))

	var sent []string
	for i := range requests {
		r := auditSend(t, fmt.Sprint("request ", i), "GET", g.URL("/open"), nil)
		if r.status != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, r.status)
		}
		sent = append(sent, r.requestID)
	}
	col.waitDelivered(t, g, requests)
	g.waitLog(t, "audit sink recovered")
	_, refused, _ := col.state()
	if got := g.metric(t, "bulwark_audit_delivery_failures_total"); got < 1 || got != float64(refused) {
		t.Errorf("bulwark_audit_delivery_failures_total = %v, want the %d refused POSTs (at least 1)", got, refused)
	}
	if got := g.metric(t, "bulwark_audit_events_dropped_total"); got != 0 {
		t.Errorf("bulwark_audit_events_dropped_total = %v, want 0", got)
	}
	if !strings.Contains(g.Logs(), "audit sink write failed; retrying") {
		t.Errorf("the log never said a write failed, want a warning per failed attempt")
	}

	g.stop(t)
	posts, refused, delivered := col.state()
	if refused != failFirst {
		t.Errorf("the collector refused %d POSTs, want %d", refused, failFirst)
	}
	n := checkDeliveredOnce(t, delivered, sent)
	if n != requests || len(delivered) != requests {
		t.Errorf("the collector got %d events (%d distinct) in %d POSTs, want each of the %d exactly once", len(delivered), n, posts, requests)
	}
}
