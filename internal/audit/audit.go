// Package audit writes one structured event per request (DESIGN.md "Audit
// event"): who asked for what, what the chain decided and why, mapped to
// the OWASP API Security Top 10 and NIST SP 800-53 controls, and what the
// upstream answered. Events are built on the request path, queued in a
// bounded queue and delivered by one background writer to a sink (stdout,
// a rotated file, syslog or an HTTP collector); a full queue blocks
// briefly or drops, and every lost event is counted, never silent.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// Deps is what the audit logger needs besides its config.
type Deps struct {
	Log *zap.Logger
	// Events counts events queued by kind (denied, would_deny, allowed);
	// Dropped counts events lost to a full queue; Failed counts failed
	// delivery attempts.
	Events  *prometheus.CounterVec
	Dropped prometheus.Counter
	Failed  prometheus.Counter
}

// Logger builds and queues audit events. It is safe for concurrent use.
type Logger struct {
	w       *Writer
	allowed float64 // share of allowed requests audited: 1 all, 0 none
	headers []string
	claims  []string
	log     *zap.Logger
	denied  prometheus.Counter
	would   prometheus.Counter
	ok      prometheus.Counter
}

// New opens the sink of cfg and starts the writer.
func New(cfg config.Audit, deps Deps) (*Logger, error) {
	allowed, err := ParseAllowed(string(cfg.Allowed))
	if err != nil {
		return nil, err
	}
	var sink Sink
	switch cfg.Sink {
	case "stdout":
		sink = NewStdout(os.Stdout)
	case "file":
		if cfg.File == nil {
			return nil, errors.New("audit: sink file needs a file section")
		}
		sink, err = NewFile(*cfg.File)
	case "syslog":
		if cfg.Syslog == nil {
			return nil, errors.New("audit: sink syslog needs a syslog section")
		}
		sink, err = NewSyslog(*cfg.Syslog)
	case "http":
		if cfg.HTTP == nil {
			return nil, errors.New("audit: sink http needs an http section")
		}
		sink, err = NewHTTP(*cfg.HTTP)
	default:
		return nil, fmt.Errorf("audit: unknown sink %q", cfg.Sink)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	wc := WriterConfig{QueueSize: cfg.QueueSize, Block: cfg.OnFull == "block", BlockFor: cfg.BlockFor.D(),
		BatchSize: 500, FlushInterval: 200 * time.Millisecond, Dropped: deps.Dropped, Failed: deps.Failed}
	if h := cfg.HTTP; cfg.Sink == "http" && h != nil {
		wc.BatchSize, wc.FlushInterval = h.BatchSize, h.FlushInterval.D()
	}
	l := &Logger{
		w:       NewWriter(sink, wc, deps.Log),
		allowed: allowed,
		claims:  cfg.Claims,
		log:     deps.Log,
		denied:  deps.Events.WithLabelValues("denied"),
		would:   deps.Events.WithLabelValues("would_deny"),
		ok:      deps.Events.WithLabelValues("allowed"),
	}
	for _, h := range cfg.Headers {
		l.headers = append(l.headers, http.CanonicalHeaderKey(h))
	}
	return l, nil
}

// ParseAllowed parses audit.allowed: all (1), none (0), or a ratio in
// [0, 1].
func ParseAllowed(s string) (float64, error) {
	switch s {
	case "all":
		return 1, nil
	case "none":
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1) { // NaN parses, and is neither
		return 0, errors.New("audit.allowed must be all, none or a ratio between 0 and 1 such as 0.1")
	}
	return f, nil
}

// Request is what the gateway knows about a finished request besides its
// record.
type Request struct {
	Method   string
	Path     string // the path, never the query
	Header   http.Header
	Status   int
	BytesIn  int64
	BytesOut int64
	End      time.Time
}

// Log builds the event of a finished request and queues it: always for a
// denial or a would-deny, for allowed requests as audit.allowed says. It
// never blocks for longer than the queue's policy allows.
func (l *Logger) Log(rec *exchange.Record, req Request) {
	if l == nil || rec == nil {
		return
	}
	denied, would := rec.Decisions()
	counter := l.ok
	switch {
	case denied != nil:
		counter = l.denied
	case len(would) > 0:
		counter = l.would
	case rec.Filtered != nil && len(rec.Filtered.Detected) > 0:
		// Sensitive data found in a response is worth a look, like a
		// denial: always audited.
	case l.allowed <= 0 || l.allowed < 1 && rand.Float64() >= l.allowed:
		return
	}
	eb := eventPool.Get().(*eventBuf)
	defer eventPool.Put(eb)
	l.fill(eb, rec, req, denied, would)
	eb.buf.Reset()
	if err := eb.enc.Encode(&eb.ev); err != nil { // strings, numbers and maps of JSON values: a bug
		l.log.Error("audit event does not encode", zap.Error(err))
		return
	}
	out := bytes.Clone(bytes.TrimSuffix(eb.buf.Bytes(), []byte("\n")))
	if l.w.Enqueue(out) {
		counter.Inc()
	}
}

// eventBuf is the reusable room in which one event is built and encoded,
// so that an event costs few allocations on the request path.
type eventBuf struct {
	ev  Event
	p   Principal
	f   Filter
	buf bytes.Buffer
	enc *json.Encoder
}

var eventPool = sync.Pool{New: func() any {
	eb := &eventBuf{}
	eb.enc = json.NewEncoder(&eb.buf)
	eb.enc.SetEscapeHTML(false)
	return eb
}}

// fill builds the event of a request into eb.
func (l *Logger) fill(eb *eventBuf, rec *exchange.Record, req Request, denied *exchange.Decision, would []exchange.Decision) {
	eb.ev = Event{
		Time:           formatTime(req.End),
		RequestID:      rec.RequestID,
		TraceID:        rec.TraceID,
		Route:          rec.RouteName(),
		Method:         req.Method,
		Path:           req.Path,
		Status:         req.Status,
		UpstreamStatus: rec.UpstreamStatus,
		DurationMS:     float64(req.End.Sub(rec.Start).Microseconds()) / 1000,
		BytesIn:        req.BytesIn,
		BytesOut:       req.BytesOut,
		Decision:       Decision{Allowed: true},
	}
	ev := &eb.ev
	if rec.ClientIP.IsValid() {
		ev.ClientIP = rec.ClientIP.String()
	}
	if p := rec.Principal; p != nil {
		eb.p = Principal{Subject: p.Subject, Consumer: p.Consumer, AuthMethod: p.Method, KeyID: p.KeyID}
		ev.Principal = &eb.p
		for _, c := range l.claims {
			if v, ok := p.Claims[c]; ok {
				if ev.Principal.Claims == nil {
					ev.Principal.Claims = map[string]any{}
				}
				ev.Principal.Claims[c] = v
			}
		}
	}
	switch {
	case denied != nil:
		ev.Decision = decision(denied, false)
		ev.OWASP, ev.NIST = denied.OWASP, denied.NIST
	case len(would) > 0:
		ev.Decision = decision(&would[0], true)
		ev.OWASP, ev.NIST = would[0].OWASP, would[0].NIST
	}
	for i := range would {
		if denied != nil || i > 0 {
			ev.WouldDeny = append(ev.WouldDeny, decision(&would[i], true))
		}
	}
	if f := rec.Filtered; f != nil {
		eb.f = Filter{Removed: f.Removed, Masked: f.Masked}
		for _, d := range f.Detected {
			eb.f.Detected = append(eb.f.Detected, Finding{Kind: d.Kind, Path: d.Path})
		}
		ev.Filter = &eb.f
	}
	for _, h := range l.headers {
		if v := req.Header.Get(h); v != "" {
			if ev.Headers == nil {
				ev.Headers = map[string]string{}
			}
			ev.Headers[h] = v
		}
	}
}

func decision(d *exchange.Decision, allowed bool) Decision {
	return Decision{Allowed: allowed, Stage: d.Stage, Reason: d.Reason, Rule: d.Rule, Mode: string(d.Mode)}
}

// Close stops taking events and delivers the queued ones, until ctx ends.
func (l *Logger) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.w.Close(ctx)
}
