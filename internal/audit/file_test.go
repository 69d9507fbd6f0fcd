package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// fileEvent is a 12-byte line once written: 11 bytes and a newline.
func fileEvent(i int) []byte { return fmt.Appendf(nil, `{"n":%05d}`, i) }

func fileEvents(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, fileEvent(i))
	}
	return out
}

// testClock is the clock of a file sink under test.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

var fileTestStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openFile opens a file sink in a fresh directory, on clock (nil: the
// real one), and closes it when the test ends.
func openFileSink(t testing.TB, cfg config.AuditFile, clock *testClock) (*fileSink, string) {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = config.Path(filepath.Join(t.TempDir(), "audit.log"))
	}
	now := time.Now
	if clock != nil {
		now = clock.now
	}
	s, err := newFile(cfg, now)
	if err != nil {
		t.Fatalf("NewFile() = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, string(cfg.Path)
}

func writeBatch(t testing.TB, s Sink, batch ...[]byte) {
	t.Helper()
	if err := s.Write(batch); err != nil {
		t.Fatalf("Write() = %v", err)
	}
}

func readText(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonLines(events ...[]byte) string {
	var b bytes.Buffer
	for _, ev := range events {
		b.Write(ev)
		b.WriteByte('\n')
	}
	return b.String()
}

// dirNames lists the names in dir, sorted.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// rotatedOldestFirst lists the rotated files of path, oldest first, by the
// time and counter in their names (the counter compared as a number).
func rotatedOldestFirst(t testing.TB, path string) []string {
	t.Helper()
	type named struct {
		name, stamp string
		n           int
	}
	var found []named
	for _, name := range dirNames(t, filepath.Dir(path)) {
		rest, ok := strings.CutPrefix(name, filepath.Base(path)+".")
		if !ok {
			continue
		}
		stamp, count, _ := strings.Cut(rest, ".")
		n, _ := strconv.Atoi(count)
		found = append(found, named{filepath.Join(filepath.Dir(path), name), stamp, n})
	}
	slices.SortFunc(found, func(a, b named) int {
		if c := strings.Compare(a.stamp, b.stamp); c != 0 {
			return c
		}
		return a.n - b.n
	})
	var out []string
	for _, f := range found {
		out = append(out, f.name)
	}
	return out
}

func TestFileAppendsJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	// An existing file is appended to, not truncated.
	if err := os.WriteFile(path, []byte(jsonLines(fileEvent(0))), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := openFileSink(t, config.AuditFile{Path: config.Path(path)}, nil)
	writeBatch(t, s, fileEvent(1), fileEvent(2))
	writeBatch(t, s, fileEvent(3))
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if got, want := readText(t, path), jsonLines(fileEvents(0, 4)...); got != want {
		t.Errorf("file = %q, want %q", got, want)
	}
	if err := s.Write([][]byte{fileEvent(4)}); err == nil {
		t.Error("Write after Close = nil, want an error")
	}
}

func TestFileRotatesAtSizeBoundary(t *testing.T) {
	tests := []struct {
		name    string
		maxSize config.Size
		perFile int // events per file: 12 bytes each
	}{
		{name: "limit reached exactly", maxSize: 36, perFile: 3},
		{name: "limit between lines", maxSize: 40, perFile: 3},
		{name: "one line per file", maxSize: 12, perFile: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &testClock{t: fileTestStart}
			s, path := openFileSink(t, config.AuditFile{MaxSize: tt.maxSize}, clock)
			// Batches that straddle the boundaries.
			next := 0
			for _, n := range []int{1, 4, 2, 3} {
				writeBatch(t, s, fileEvents(next, next+n)...)
				next += n
			}
			files := append(rotatedOldestFirst(t, path), path)
			if want := (10 + tt.perFile - 1) / tt.perFile; len(files) != want {
				t.Fatalf("files = %v, want %d", files, want)
			}
			for i, f := range files {
				want := jsonLines(fileEvents(i*tt.perFile, min((i+1)*tt.perFile, 10))...)
				if got := readText(t, f); got != want {
					t.Errorf("%s = %q, want %q (whole lines, at most max_size)", filepath.Base(f), got, want)
				}
			}
			// Same second: the counter tells the files apart.
			stamp := filepath.Base(path) + "." + fileTestStart.Format(fileStampLayout)
			if got := filepath.Base(files[0]); got != stamp {
				t.Errorf("first rotated file = %s, want %s", got, stamp)
			}
			if len(files) > 2 {
				if got := filepath.Base(files[1]); got != stamp+".1" {
					t.Errorf("second rotated file = %s, want %s.1", got, stamp)
				}
			}
		})
	}
}

func TestFileEventLargerThanMaxSize(t *testing.T) {
	s, path := openFileSink(t, config.AuditFile{MaxSize: 10}, nil)
	writeBatch(t, s, fileEvent(0), fileEvent(1))
	rotated := rotatedOldestFirst(t, path)
	if len(rotated) != 1 {
		t.Fatalf("rotated files = %v, want 1", rotated)
	}
	if got, want := readText(t, rotated[0]), jsonLines(fileEvent(0)); got != want {
		t.Errorf("rotated file = %q, want %q (the whole event)", got, want)
	}
	if got, want := readText(t, path), jsonLines(fileEvent(1)); got != want {
		t.Errorf("file = %q, want %q", got, want)
	}
}

func TestFileRetentionByCount(t *testing.T) {
	tests := []struct {
		name       string
		maxBackups int
		kept       []int // events in the rotated files kept
	}{
		{name: "keep 2", maxBackups: 2, kept: []int{3, 4}},
		{name: "0 keeps all", maxBackups: 0, kept: []int{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &testClock{t: fileTestStart}
			s, path := openFileSink(t, config.AuditFile{MaxSize: 12, MaxBackups: tt.maxBackups}, clock)
			for i := range 6 {
				writeBatch(t, s, fileEvent(i))
				clock.advance(time.Second)
			}
			rotated := rotatedOldestFirst(t, path)
			var got []string
			for _, f := range rotated {
				got = append(got, readText(t, f))
			}
			var want []string
			for _, i := range tt.kept {
				want = append(want, jsonLines(fileEvent(i)))
			}
			if !sameSlice(got, want) {
				t.Errorf("rotated files hold %q, want %q", got, want)
			}
			if got, want := readText(t, path), jsonLines(fileEvent(5)); got != want {
				t.Errorf("file = %q, want %q", got, want)
			}
		})
	}
}

func TestFileRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	clock := &testClock{t: fileTestStart}
	stamp := func(ago time.Duration) string { return fileTestStart.Add(-ago).Format(fileStampLayout) }
	for _, name := range []string{
		"audit.log." + stamp(48*time.Hour),        // too old
		"audit.log." + stamp(48*time.Hour) + ".3", // too old, with a counter
		"audit.log." + stamp(time.Hour),           // recent
		"audit.log.bak",                           // not ours
		"audit.log." + stamp(48*time.Hour) + ".x", // not ours
		"other.log." + stamp(48*time.Hour),        // another file's
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "audit.log."+stamp(72*time.Hour)), 0o700); err != nil {
		t.Fatal(err)
	}
	s, _ := openFileSink(t, config.AuditFile{Path: config.Path(path), MaxAge: config.Duration(24 * time.Hour)}, clock)
	want := []string{
		"audit.log",
		"audit.log." + stamp(72*time.Hour), // a directory: never deleted
		"audit.log." + stamp(48*time.Hour) + ".x",
		"audit.log." + stamp(time.Hour),
		"audit.log.bak",
		"other.log." + stamp(48*time.Hour),
	}
	if got := dirNames(t, dir); !sameSlice(got, want) {
		t.Errorf("after start, files = %q, want %q", got, want)
	}

	// Without a rotation, the hourly check deletes what aged since.
	writeBatch(t, s, fileEvent(0)) // less than an hour since the last check
	if _, err := os.Stat(filepath.Join(dir, "audit.log."+stamp(time.Hour))); err != nil {
		t.Errorf("a file an hour old is gone (%v), want it kept", err)
	}
	clock.advance(24 * time.Hour)
	writeBatch(t, s, fileEvent(1))
	if _, err := os.Stat(filepath.Join(dir, "audit.log."+stamp(time.Hour))); err == nil {
		t.Error("a file 25 hours old is kept, want it deleted (max_age 24h)")
	}
}

func TestFileReopensAfterExternalMove(t *testing.T) {
	s, path := openFileSink(t, config.AuditFile{}, nil)
	writeBatch(t, s, fileEvent(0))
	// logrotate's "create" mode: move the file; Bulwark starts a new one.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeBatch(t, s, fileEvent(1))
	if got, want := readText(t, path+".1"), jsonLines(fileEvent(0)); got != want {
		t.Errorf("moved file = %q, want %q", got, want)
	}
	if got, want := readText(t, path), jsonLines(fileEvent(1)); got != want {
		t.Errorf("new file = %q, want %q", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode = %v (%v), want the moved file's 0640", fi.Mode().Perm(), err)
	}
	// Deleted: the same.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeBatch(t, s, fileEvent(2))
	if got, want := readText(t, path), jsonLines(fileEvent(2)); got != want {
		t.Errorf("file after a delete = %q, want %q", got, want)
	}
}

func TestFilePermissions(t *testing.T) {
	clock := &testClock{t: fileTestStart}
	s, path := openFileSink(t, config.AuditFile{MaxSize: 12}, clock)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	writeBatch(t, s, fileEvent(0), fileEvent(1)) // rotates once
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file after rotation mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	// An operator's mode is kept, and passed on to the next file.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	writeBatch(t, s, fileEvent(2))
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("file after rotation mode = %v (%v), want the old file's 0640", fi.Mode().Perm(), err)
	}
}

func TestFileExistingModeKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	openFileSink(t, config.AuditFile{Path: config.Path(path)}, nil)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("existing file mode = %v (%v), want 0640 kept", fi.Mode().Perm(), err)
	}
}

func TestFileConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{name: "empty path", path: ""},
		{name: "parent missing", path: filepath.Join(dir, "missing", "audit.log")},
		{name: "parent is a file", path: filepath.Join(notDir, "audit.log")},
		{name: "path is a directory", path: dir},
		{name: "not a regular file", path: os.DevNull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := NewFile(config.AuditFile{Path: config.Path(tt.path)}); err == nil {
				_ = s.Close()
				t.Errorf("NewFile(%q) = nil error, want one", tt.path)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("the missing parent was created (%v), want it left missing", err)
	}
}

// Through the writer, with many rotations a second: every event lands
// once, whole, in order across the files.
func TestFileWriterRotatesWithoutLoss(t *testing.T) {
	sink, err := NewFile(config.AuditFile{Path: config.Path(filepath.Join(t.TempDir(), "audit.log")), MaxSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	path := sink.(*fileSink).path
	w := NewWriter(sink, WriterConfig{QueueSize: 64, BatchSize: 16, Block: true, BlockFor: time.Minute}, nil)
	const n = 3000
	for i := range n {
		w.Enqueue(fileEvent(i))
	}
	closeWriter(t, w)
	var all strings.Builder
	for _, f := range append(rotatedOldestFirst(t, path), path) {
		content := readText(t, f)
		if len(content) > 1000 {
			t.Errorf("%s is %d bytes, want at most max_size 1000", filepath.Base(f), len(content))
		}
		all.WriteString(content)
	}
	if got, want := all.String(), jsonLines(fileEvents(0, n)...); got != want {
		t.Errorf("the files together differ from the %d events written", n)
	}
}

// A rotation that fails (here: the rotated name would be too long for the
// file system) loses nothing: the file grows past max_size, and the
// writer logs the trouble without retrying the delivered batch.
func TestFileRotationFailureKeepsEvents(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("a", 250)) // +".<stamp>" passes NAME_MAX
	sink, err := NewFile(config.AuditFile{Path: config.Path(path), MaxSize: 12})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	failed := newTestCounter()
	w := NewWriter(sink, WriterConfig{BatchSize: 1, Failed: failed}, zap.New(core))
	for i := range 3 {
		w.Enqueue(fileEvent(i))
	}
	closeWriter(t, w)
	if got, want := readText(t, path), jsonLines(fileEvents(0, 3)...); got != want {
		t.Errorf("file = %q, want %q (every event, past max_size)", got, want)
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Errorf("files = %q, want only the audit file", got)
	}
	if got := testutil.ToFloat64(failed); got != 0 {
		t.Errorf("failed = %v, want 0 (the events were written)", got)
	}
	// One warning: the next try is a minute away.
	if got := logs.FilterMessage("audit sink trouble; events delivered").Len(); got != 1 {
		t.Errorf("%d rotation warnings logged, want 1", got)
	}
}
