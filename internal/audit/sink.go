package audit

// Sink delivers encoded audit events (one JSON object per element, no
// trailing newline) to their destination. Write is called by one
// goroutine at a time, with batches in order; it returns an error when the
// batch was not delivered (the writer retries it, with backoff, and counts
// the failure). Close flushes and releases the sink.
type Sink interface {
	Write(batch [][]byte) error
	Close() error
}
