package audit

import (
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// BenchmarkLog is the request-path cost of one audit event: building it,
// encoding it and queueing it (the writer drains to io.Discard).
func BenchmarkLog(b *testing.B) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "e"}, []string{"kind"})
	l := &Logger{
		w:       NewWriter(NewStdout(io.Discard), WriterConfig{QueueSize: 1 << 16}, zap.NewNop()),
		allowed: 1,
		log:     zap.NewNop(),
		denied:  events.WithLabelValues("denied"),
		would:   events.WithLabelValues("would_deny"),
		ok:      events.WithLabelValues("allowed"),
	}
	b.Cleanup(func() { _ = l.Close(b.Context()) })
	rec := &exchange.Record{
		RequestID: "5f0c6c1e9b3e4d8a9a3f0e2b7c1d4a6e", ClientIP: netip.MustParseAddr("192.0.2.7"), Start: time.Now(),
		Route:     &exchange.Route{Name: "get-order", Mode: config.ModeEnforce},
		Principal: &exchange.Principal{Subject: "alice", Consumer: "web", Method: "jwt", KeyID: "k1"},
	}
	req := Request{Method: http.MethodGet, Path: "/orders/42", Status: 200, BytesOut: 120, End: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(rec, req)
	}
}
