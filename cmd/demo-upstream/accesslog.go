package main

import (
	"log"
	"net/http"
	"strconv"
	"time"
)

// accessLog logs one line per request to logger once next has answered:
// method, escaped path (never the query), status, duration, the subject
// and consumer the gateway named, and whether an API key arrived. The key
// itself is never logged; behind the gateway it should never arrive at all
// ("api_key=absent"), because the gateway removes it.
func accessLog(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		apiKey := "absent"
		if _, ok := r.Header[http.CanonicalHeaderKey(apiKeyHeader)]; ok {
			apiKey = "PRESENT"
		}
		logger.Printf("%s %s %d %v subject=%s consumer=%s api_key=%s",
			r.Method, r.URL.EscapedPath(), rec.status, time.Since(start).Round(time.Microsecond),
			quoteOrDash(r.Header.Get(subjectHeader)), quoteOrDash(r.Header.Get(consumerHeader)), apiKey)
	})
}

// quoteOrDash returns s quoted, so that no header value can forge a log
// line, or "-" when it is empty.
func quoteOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return strconv.Quote(s)
}

// statusRecorder remembers the status code written through it. Unwrap lets
// http.ResponseController reach the connection's Flush.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
