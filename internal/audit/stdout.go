package audit

import (
	"fmt"
	"io"
)

// stdoutSink is the stdout sink: JSON lines on an io.Writer.
type stdoutSink struct {
	w   io.Writer
	buf []byte // reused: Write is called by one goroutine at a time
}

// NewStdout returns a sink that writes each event as one line to w
// (normally os.Stdout), a whole batch in one w.Write. Close does not close
// w.
func NewStdout(w io.Writer) Sink {
	return &stdoutSink{w: w}
}

func (s *stdoutSink) Write(batch [][]byte) error {
	s.buf = appendLines(s.buf[:0], batch)
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("audit stdout: %w", err)
	}
	return nil
}

func (s *stdoutSink) Close() error { return nil }

// appendLines appends the events of batch to buf, each followed by a
// newline (JSON lines, NDJSON).
func appendLines(buf []byte, batch [][]byte) []byte {
	for _, ev := range batch {
		buf = append(buf, ev...)
		buf = append(buf, '\n')
	}
	return buf
}
