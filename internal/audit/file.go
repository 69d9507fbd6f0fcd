package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

const (
	// fileDefaultMaxSize applies when AuditFile.MaxSize is 0 (the config
	// default).
	fileDefaultMaxSize = 100 << 20
	// fileStampLayout is the UTC timestamp of a rotated file's name
	// (ISO 8601 basic format: sorts by name, no colons for tools that
	// mind them).
	fileStampLayout = "20060102T150405Z"
	// fileCleanupEvery is how often, at most, Write looks for rotated files
	// past max_age when no rotation did.
	fileCleanupEvery = time.Hour
	// fileRotateRetry is how long the sink writes on past max_size after a
	// rotation failed, before it tries again.
	fileRotateRetry = time.Minute
	// fileMode is the mode of an audit file Bulwark creates: events hold
	// client addresses and subjects.
	fileMode fs.FileMode = 0o600
)

var errFileClosed = errors.New("audit file: closed")

// fileSink is the file sink.
type fileSink struct {
	path       string
	maxSize    int64
	maxBackups int
	maxAge     time.Duration
	now        func() time.Time // the clock of rotation names and max_age

	mu          sync.Mutex
	closed      bool
	f           *os.File // nil after a failed reopen; Write retries it
	size        int64    // of f, as written
	buf         []byte   // reused
	lastCleanup time.Time
	rotateAt    time.Time // no rotation before (after a failed one)
	rotateErr   error     // a failed rotation, for Write to report
	// A batch cut short by an error after some of its events were written
	// (a rotation that failed half way) is retried by the writer; these
	// say how many of its events to skip then, so none is written twice.
	sent      int
	sentBatch *[]byte
}

// NewFile opens (creating it, mode 0600) the audit file at cfg.Path and
// returns a sink that appends one JSON line per event to it.
//
// Rotation: when the next event would take the file past MaxSize (default
// 100MiB), the file is renamed to "<path>.<UTC time>" (20060102T150405Z,
// with ".1", ".2", ... when that name is taken) and a fresh file is opened
// with the same mode; an event is never split across files, and one larger
// than MaxSize gets a file of its own. After a rotation, at start and
// hourly, rotated files are deleted when older than MaxAge (by the time in
// their name; 0 keeps them) or beyond the newest MaxBackups (0 keeps them
// all). Other files in the directory are never touched.
//
// External rotation: before each batch the sink checks that Path is still
// the file it has open; after a move or delete (logrotate's default
// "create" mode, or nocreate) it opens Path afresh. logrotate's
// copytruncate is NOT supported: events written between its copy and its
// truncate are lost. Let Bulwark rotate, or use create.
//
// The parent directory must exist, and Path must be a regular file (for
// /dev/stdout use the stdout sink). An existing file keeps its mode. Close
// fsyncs the file. Errors name the path, never an event.
func NewFile(cfg config.AuditFile) (Sink, error) {
	return newFile(cfg, time.Now)
}

// newFile is NewFile on the given clock.
func newFile(cfg config.AuditFile, now func() time.Time) (*fileSink, error) {
	path := string(cfg.Path)
	if path == "" {
		return nil, errors.New("audit file: path is empty")
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("audit file: directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("audit file: %s is not a directory", dir)
	}
	s := &fileSink{
		path:       path,
		maxSize:    int64(cfg.MaxSize),
		maxBackups: max(cfg.MaxBackups, 0),
		maxAge:     max(cfg.MaxAge.D(), 0),
		now:        now,
	}
	if s.maxSize <= 0 {
		s.maxSize = fileDefaultMaxSize
	}
	if err := s.open(fileMode); err != nil {
		return nil, err
	}
	s.cleanup()
	return s, nil
}

// open opens the file at s.path for appending, creating it with mode.
func (s *fileSink) open(mode fs.FileMode) error {
	created := true
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		created = false
		f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	}
	if err != nil {
		return fmt.Errorf("audit file: open: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("audit file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return fmt.Errorf("audit file: %s is not a regular file (for a terminal or /dev/stdout, use sink: stdout)", s.path)
	}
	// The umask may have narrowed mode: a file created after a rotation
	// gets the old one's mode exactly (a log shipper's group keeps its
	// access). A file that existed keeps its own.
	if created && fi.Mode().Perm() != mode.Perm() {
		if err := f.Chmod(mode.Perm()); err != nil {
			_ = f.Close()
			return fmt.Errorf("audit file: %w", err)
		}
	}
	s.f, s.size = f, fi.Size()
	return nil
}

// Write appends the batch, rotating between events as needed. A failed
// write is cut back to the last whole line, so the file never holds half
// an event.
func (s *fileSink) Write(batch [][]byte) error {
	if len(batch) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errFileClosed
	}
	start := 0
	if s.sentBatch == &batch[0] && s.sent < len(batch) {
		start = s.sent // a retry: these were written
	}
	s.sent, s.sentBatch = 0, nil
	if err := s.follow(); err != nil {
		s.sent, s.sentBatch = start, &batch[0]
		return err
	}
	s.buf = s.buf[:0]
	from := start                            // first event in s.buf
	canRotate := !s.now().Before(s.rotateAt) // not within a minute of a failed rotation
	for i := start; i < len(batch); i++ {
		line := int64(len(batch[i]) + 1)
		if pending := s.size + int64(len(s.buf)); canRotate && pending > 0 && pending+line > s.maxSize {
			if err := s.flush(); err != nil {
				s.sent, s.sentBatch = from, &batch[0]
				return err
			}
			from = i
			if err := s.rotate(); err != nil {
				s.sent, s.sentBatch = from, &batch[0]
				return err
			}
			canRotate = s.rotateErr == nil
		}
		s.buf = append(s.buf, batch[i]...)
		s.buf = append(s.buf, '\n')
	}
	if err := s.flush(); err != nil {
		s.sent, s.sentBatch = from, &batch[0]
		return err
	}
	if s.maxAge > 0 && s.now().Sub(s.lastCleanup) >= fileCleanupEvery {
		s.cleanup()
	}
	if err := s.rotateErr; err != nil {
		s.rotateErr = nil
		return delivered(err) // the events are in the file
	}
	return nil
}

// flush writes s.buf to the file and empties it.
func (s *fileSink) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	n, err := s.f.Write(s.buf)
	if err != nil {
		if n > 0 {
			// Disk full half way: drop the torn tail; the writer retries
			// the lines.
			_ = s.f.Truncate(s.size)
		}
		return fmt.Errorf("audit file: write: %w", err)
	}
	s.size += int64(n)
	s.buf = s.buf[:0]
	return nil
}

// follow makes sure s.f is the file at s.path: after a failed reopen, or
// when the file was moved or deleted from under us, it opens s.path
// afresh.
func (s *fileSink) follow() error {
	if s.f == nil {
		return s.open(fileMode)
	}
	cur, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	at, err := os.Stat(s.path)
	switch {
	case err == nil && os.SameFile(cur, at):
		// A copytruncate (unsupported) shrinks the file: track it, so
		// the next rotation is not early.
		s.size = cur.Size()
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil // cannot tell (permissions): keep writing where we are
	}
	// Moved or deleted: let go of the old file and start a new one.
	_ = s.f.Sync()
	_ = s.f.Close()
	s.f = nil
	return s.open(cur.Mode().Perm())
}

// rotate renames the full file aside and opens a fresh one. When the
// rename fails, the file is kept and grows past max_size for a minute
// before the next try (better a large file than lost events), and Write
// reports the failure as a warning.
func (s *fileSink) rotate() error {
	fi, err := s.f.Stat()
	mode := fileMode
	if err == nil {
		mode = fi.Mode().Perm()
	}
	name := s.backupName()
	if err := os.Rename(s.path, name); err != nil {
		s.rotateAt = s.now().Add(fileRotateRetry)
		s.rotateErr = fmt.Errorf("audit file: rotate: %w (writing on past max_size)", err)
		return nil
	}
	// The renamed file is complete: make it durable before deletion of
	// older ones can leave it the only copy.
	_ = s.f.Sync()
	_ = s.f.Close()
	s.f = nil
	if err := s.open(mode); err != nil {
		return err
	}
	s.cleanup()
	return nil
}

// backupName is the name for the file being rotated now: the path, a dot
// and the UTC time, and a counter when that name exists already.
func (s *fileSink) backupName() string {
	base := s.path + "." + s.now().UTC().Format(fileStampLayout)
	name := base
	for n := 1; ; n++ {
		// Any error but "exists" (say, a name too long) is rename's to
		// report.
		if _, err := os.Lstat(name); err != nil {
			return name
		}
		name = base + "." + strconv.Itoa(n)
	}
}

// fileBackup is a rotated file found in the directory.
type fileBackup struct {
	name string
	at   time.Time
	n    int
}

// cleanup deletes the rotated files past max_age or beyond max_backups.
// It is best effort: a file it cannot delete is tried again next time.
func (s *fileSink) cleanup() {
	s.lastCleanup = s.now()
	if s.maxBackups == 0 && s.maxAge == 0 {
		return
	}
	backups := s.backups()
	// Newest first.
	slices.SortFunc(backups, func(a, b fileBackup) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return b.n - a.n
	})
	now := s.now()
	for i, b := range backups {
		if (s.maxBackups > 0 && i >= s.maxBackups) || (s.maxAge > 0 && now.Sub(b.at) > s.maxAge) {
			_ = os.Remove(b.name)
		}
	}
}

// backups lists the rotated files of s.path: regular files named
// "<base>.<UTC time>" or "<base>.<UTC time>.<n>".
func (s *fileSink) backups() []fileBackup {
	dir, base := filepath.Split(s.path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []fileBackup
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		stamp, count, hasCount := strings.Cut(rest, ".")
		at, err := time.Parse(fileStampLayout, stamp)
		if err != nil {
			continue
		}
		n := 0
		if hasCount {
			if n, err = strconv.Atoi(count); err != nil || n < 1 || count != strconv.Itoa(n) {
				continue
			}
		}
		out = append(out, fileBackup{name: filepath.Join(dir, e.Name()), at: at, n: n})
	}
	return out
}

// Close fsyncs and closes the file.
func (s *fileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Sync()
	err = errors.Join(err, s.f.Close())
	s.f = nil
	if err != nil {
		return fmt.Errorf("audit file: close: %w", err)
	}
	return nil
}
