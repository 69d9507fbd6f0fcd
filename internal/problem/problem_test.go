package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

func newWriter() (*Writer, *prometheus.CounterVec) {
	denials := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "denials"}, []string{"route", "stage", "reason", "mode"})
	return New(zap.NewNop(), denials), denials
}

func request(rec *exchange.Record) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/orders/1?token=secret", nil)
	if rec != nil {
		r = r.WithContext(exchange.With(r.Context(), rec))
	}
	return r
}

func TestDeny(t *testing.T) {
	tests := []struct {
		name        string
		route       *exchange.Route
		problem     Problem
		wantWritten bool
		wantMode    config.Mode
		wantRoute   string
	}{
		{name: "no route: enforce", route: nil, problem: NotFound(), wantWritten: true, wantMode: config.ModeEnforce, wantRoute: exchange.Unmatched},
		{name: "enforce route", route: &exchange.Route{Name: "r", Mode: config.ModeEnforce}, problem: BodyTooLarge(),
			wantWritten: true, wantMode: config.ModeEnforce, wantRoute: "r"},
		{name: "inherited mode is enforce", route: &exchange.Route{Name: "r"}, problem: BodyTooLarge(),
			wantWritten: true, wantMode: config.ModeEnforce, wantRoute: "r"},
		{name: "report route lets a reportable denial through", route: &exchange.Route{Name: "r", Mode: config.ModeReport},
			problem: BodyTooLarge(), wantWritten: false, wantMode: config.ModeReport, wantRoute: "r"},
		{name: "stage mode wins over route mode", route: &exchange.Route{Name: "r", Mode: config.ModeReport,
			StageModes: map[string]config.Mode{StageEdge: config.ModeEnforce}},
			problem: BodyTooLarge(), wantWritten: true, wantMode: config.ModeEnforce, wantRoute: "r"},
		{name: "protocol defences always enforce", route: &exchange.Route{Name: "r", Mode: config.ModeReport},
			problem: NonCanonicalPath("dot_segment", "x"), wantWritten: true, wantMode: config.ModeEnforce, wantRoute: "r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw, denials := newWriter()
			rec := &exchange.Record{RequestID: "req-1", Route: tt.route}
			w := httptest.NewRecorder()
			if got := pw.Deny(w, request(rec), tt.problem); got != tt.wantWritten {
				t.Errorf("Deny() = %v, want %v", got, tt.wantWritten)
			}
			if written := w.Code != 200 || w.Body.Len() > 0; written != tt.wantWritten {
				t.Errorf("response written = %v (status %d), want %v", written, w.Code, tt.wantWritten)
			}
			denied, wouldDeny := rec.Decisions()
			if tt.wantMode == config.ModeEnforce && (denied == nil || denied.Reason != tt.problem.Reason || len(wouldDeny) != 0) {
				t.Errorf("decisions = %+v, %+v; want one enforced denial %q", denied, wouldDeny, tt.problem.Reason)
			}
			if tt.wantMode == config.ModeReport && (denied != nil || len(wouldDeny) != 1 || wouldDeny[0].Mode != config.ModeReport) {
				t.Errorf("decisions = %+v, %+v; want one would-deny", denied, wouldDeny)
			}
			c := denials.WithLabelValues(tt.wantRoute, tt.problem.Stage, tt.problem.Reason, string(tt.wantMode))
			if got := testutil.ToFloat64(c); got != 1 {
				t.Errorf("denials{%s,%s} = %v, want 1", tt.wantRoute, tt.wantMode, got)
			}
		})
	}
}

func TestWriteBody(t *testing.T) {
	pw, _ := newWriter()
	w := httptest.NewRecorder()
	w.Header().Set("ETag", `"upstream"`)
	rec := &exchange.Record{RequestID: "req-42"}
	pw.Write(w, request(rec), MethodNotAllowed("GET, PUT"))

	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("status = %d, want 405", w.Code)
	}
	for h, want := range map[string]string{
		"Content-Type":  ContentType,
		"Cache-Control": "no-store",
		"Allow":         "GET, PUT",
		"ETag":          "",
	} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	want := map[string]any{
		"type": "urn:bulwark:problem:method-not-allowed", "title": "Method Not Allowed", "status": float64(405),
		"detail": "This path does not accept this method.", "instance": "urn:bulwark:request:req-42", "request_id": "req-42",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v, want %v", k, body[k], v)
		}
	}
	if len(body) != len(want) {
		t.Errorf("body has %d members, want exactly %d: %v", len(body), len(want), body)
	}
}

func TestWriteHeadHasNoBody(t *testing.T) {
	pw, _ := newWriter()
	w := httptest.NewRecorder()
	pw.Write(w, httptest.NewRequest(http.MethodHead, "/", nil), NotFound())
	if w.Code != http.StatusNotFound || w.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, body %d bytes; want 404 and no body", w.Code, w.Body.Len())
	}
}
