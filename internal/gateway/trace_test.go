package gateway

import (
	"net/http"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/proxy"
)

type stageHandler struct{ next http.Handler }

func (s *stageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.next.ServeHTTP(w, r) }

type terminal struct{}

func (terminal) ServeHTTP(http.ResponseWriter, *http.Request) {}

type responseStage struct{}

func (*responseStage) Respond(*http.Request, *proxy.Response) error { return nil }

// TestChainSpansOff: without a tracer the chain is built exactly as
// without tracing: every stage, the proxy handler, the response stages
// and the handler after the edge come back unwrapped.
func TestChainSpansOff(t *testing.T) {
	var c chainSpans
	next := &terminal{}
	present := func(n http.Handler) http.Handler { return &stageHandler{next: n} }
	if h, ok := c.stage("authn", present)(next).(*stageHandler); !ok || h.next != http.Handler(next) {
		t.Errorf("stage without a tracer = %T, want the stage itself around next", c.stage("authn", present)(next))
	}
	if h := c.upstream(http.MethodGet, "api", next); h != http.Handler(next) {
		t.Errorf("upstream without a tracer = %T, want the proxy handler itself", h)
	}
	rs := &responseStage{}
	if got := c.response("filter.response", rs); got != proxy.ResponseStage(rs) {
		t.Errorf("response without a tracer = %T, want the stage itself", got)
	}
	if h, ok := afterEdge(nil, present, next).(*stageHandler); !ok || h.next != http.Handler(next) {
		t.Errorf("afterEdge without a tracer = %T, want the limits around the table", afterEdge(nil, present, next))
	}
	if upstreamTraceparent(nil) != nil {
		t.Error("upstreamTraceparent(nil) is a hook, want nil: the proxy then runs no tracing code")
	}
}

// TestChainSpansStages: with a tracer, a stage in the chain gets a span
// wrapper, and a stage the route does not run (its middleware returns next)
// gets neither span nor wrapper.
func TestChainSpansStages(t *testing.T) {
	collector, _ := startCollector(t)
	tr := newBenchTracer(t, collector.URL)
	t.Cleanup(func() { _ = tr.Shutdown(t.Context()) })
	c := chainSpans{t: tr, route: "orders"}
	next := &terminal{}
	absent := func(n http.Handler) http.Handler { return n }
	if h := c.stage("authz.require", absent)(next); h != http.Handler(next) {
		t.Errorf("absent stage = %T, want next itself", h)
	}
	h, ok := c.stage("authn", func(n http.Handler) http.Handler { return &stageHandler{next: n} })(next).(*startSpan)
	if !ok {
		t.Fatalf("present stage = %T, want its span wrapper", h)
	}
	if inner, ok := h.next.(*stageHandler); !ok {
		t.Errorf("span wrapper around %T, want the stage", h.next)
	} else if p, ok := inner.next.(*passSpan); !ok || p.next != http.Handler(next) {
		t.Errorf("the stage's next = %T, want the pass marker before next", inner.next)
	}
	if _, ok := c.response("filter.response", &responseStage{}).(*responseSpan); !ok {
		t.Error("response stage with a tracer: no span wrapper")
	}
	if _, ok := afterEdge(tr, absent, next).(*beginSpans); !ok {
		t.Error("afterEdge with a tracer does not begin the stage spans")
	}
}
