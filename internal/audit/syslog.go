package audit

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

const (
	syslogDialTimeout  = 5 * time.Second
	syslogWriteTimeout = 10 * time.Second
	// syslogTimeLayout is RFC 5424's TIMESTAMP: RFC 3339 with at most six
	// fraction digits, here in UTC.
	syslogTimeLayout = "2006-01-02T15:04:05.000000Z07:00"
	// syslogMsgID is the MSGID of every message.
	syslogMsgID = "audit"
)

// Severities (RFC 5424 §6.2.1) of audit events.
const (
	syslogWarning = 4 // a denial
	syslogNotice  = 5 // a would-deny (report mode)
	syslogInfo    = 6 // an allowed request
)

// syslogSink is the syslog sink.
type syslogSink struct {
	addr    string
	tls     *tls.Config // nil: plain TCP
	pri     [8]string   // "<PRI>1 " by severity
	fields  string      // " HOSTNAME APP-NAME PROCID MSGID - "
	now     func() time.Time
	readers sync.WaitGroup

	mu   sync.Mutex
	conn net.Conn
	gone chan struct{} // closed once the receiver closed conn
	buf  []byte        // reused
}

// NewSyslog returns a sink that sends each event as one RFC 5424 message
// over TCP to cfg.Address, with octet-counting framing (RFC 6587 §3.4.1),
// and over TLS (RFC 5425, TLS 1.2 at least) when cfg.TLS is set: CAFile
// instead of the system roots, CertFile and KeyFile for a client
// certificate, ServerName instead of the address's host.
//
// A message is "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID audit - MSG":
// PRI is facility*8 plus severity 4 (warning) for a denial, 5 (notice) for
// a would-deny in report mode and 6 (informational) otherwise; TIMESTAMP is
// the UTC time of sending (the event has its own "time"); HOSTNAME comes
// from os.Hostname; PROCID is the process id; there is no structured data;
// MSG is the event's JSON.
//
// It dials on the first Write, not here, so a receiver that is down at
// start is handled like one that goes down later. A write error drops the
// connection and returns the error; the writer retries the batch, on a
// fresh connection. A connection the receiver closed is noticed (a
// goroutine reads it: receivers never send) and replaced before the next
// write. Plain syslog has no acknowledgements: events written just as the
// receiver goes away can still be lost, and a retried batch can arrive
// twice; use the http sink where that matters.
func NewSyslog(cfg config.AuditSyslog) (Sink, error) {
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("audit syslog: address: %w", err)
	}
	if cfg.Facility < 0 || cfg.Facility > 23 {
		return nil, fmt.Errorf("audit syslog: facility %d: must be 0 to 23", cfg.Facility)
	}
	app := cfg.AppName
	if app == "" {
		app = "bulwark"
	}
	if !syslogName(app, 48) {
		return nil, errors.New("audit syslog: app_name: 1 to 48 printable ASCII characters, no spaces")
	}
	host, err := os.Hostname()
	if err != nil || !syslogName(host, 255) {
		host = "-" // NILVALUE
	}
	s := &syslogSink{
		addr:   cfg.Address,
		fields: " " + host + " " + app + " " + strconv.Itoa(os.Getpid()) + " " + syslogMsgID + " - ",
		now:    time.Now,
	}
	for sev := range s.pri {
		s.pri[sev] = "<" + strconv.Itoa(cfg.Facility*8+sev) + ">1 "
	}
	if cfg.TLS != nil {
		if s.tls, err = cfg.TLS.Config("audit syslog"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// syslogName reports whether s is a valid RFC 5424 header field of at most
// n characters: printable US-ASCII (33 to 126).
func syslogName(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for i := range len(s) {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// Write sends the batch in one write, on the current connection or a new
// one.
func (s *syslogSink) Write(batch [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		select {
		case <-s.gone:
			s.drop()
		default:
		}
	}
	if s.conn == nil {
		if err := s.dial(); err != nil {
			return err
		}
	}
	stamp := s.now().UTC().Format(syslogTimeLayout)
	s.buf = s.buf[:0]
	for _, ev := range batch {
		pri := s.pri[syslogSeverity(ev)]
		s.buf = strconv.AppendInt(s.buf, int64(len(pri)+len(stamp)+len(s.fields)+len(ev)), 10)
		s.buf = append(s.buf, ' ')
		s.buf = append(s.buf, pri...)
		s.buf = append(s.buf, stamp...)
		s.buf = append(s.buf, s.fields...)
		s.buf = append(s.buf, ev...)
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(syslogWriteTimeout)); err != nil {
		s.drop()
		return fmt.Errorf("audit syslog: %w", err)
	}
	if _, err := s.conn.Write(s.buf); err != nil {
		s.drop()
		return fmt.Errorf("audit syslog: write: %w", err)
	}
	return nil
}

// syslogSeverity is the severity of an event: warning for a denial, notice
// for a would-deny, informational otherwise. Only events that may be
// either are decoded, and only their top-level "decision" counts (a claim
// or header could hold the same words).
func syslogSeverity(ev []byte) int {
	if !bytes.Contains(ev, []byte(`"allowed":false`)) && !bytes.Contains(ev, []byte(`"mode":"report"`)) {
		return syslogInfo
	}
	var top struct {
		Decision struct {
			Allowed *bool  `json:"allowed"`
			Mode    string `json:"mode"`
		} `json:"decision"`
	}
	switch {
	case json.Unmarshal(ev, &top) != nil || top.Decision.Allowed == nil:
		return syslogInfo
	case !*top.Decision.Allowed:
		return syslogWarning
	case top.Decision.Mode == "report":
		return syslogNotice
	}
	return syslogInfo
}

// dial connects to the receiver and starts the goroutine that notices when
// the receiver closes the connection.
func (s *syslogSink) dial() error {
	d := &net.Dialer{Timeout: syslogDialTimeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if s.tls != nil {
		conn, err = tls.DialWithDialer(d, "tcp", s.addr, s.tls)
	} else {
		conn, err = d.Dial("tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("audit syslog: connect: %w", err)
	}
	gone := make(chan struct{})
	s.conn, s.gone = conn, gone
	s.readers.Go(func() {
		defer close(gone)
		// Receivers send nothing; a read returns at EOF, a reset, or when
		// drop closes conn.
		_, _ = io.Copy(io.Discard, conn)
	})
	return nil
}

// drop closes the current connection; the next Write dials again.
func (s *syslogSink) drop() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn, s.gone = nil, nil
	}
}

// Close closes the connection and waits for its reader.
func (s *syslogSink) Close() error {
	s.mu.Lock()
	s.drop()
	s.mu.Unlock()
	s.readers.Wait()
	return nil
}
