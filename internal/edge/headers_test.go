package edge

import (
	"net/http"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// newEdge builds the edge middleware around a handler that does nothing.
func newEdge(tb testing.TB, cfg config.Server) *edge {
	tb.Helper()
	pw, _ := newProblems(tb)
	mw, err := New(cfg, Deps{Log: zap.NewNop(), Problems: pw})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).(*edge)
}

func TestCleanHeaders(t *testing.T) {
	cfg := testServerConfig()
	cfg.IdentityHeaders = append(cfg.IdentityHeaders, "x-tenant") // canonicalised by New too
	e := newEdge(t, cfg)
	tests := []struct {
		name   string
		header http.Header
		want   []string // header names left, sorted
		reason string   // refusal reason, "" when accepted
	}{
		{name: "ordinary headers kept", header: http.Header{"Accept": {"*/*"}, "Authorization": {"Bearer t"}, "Cookie": {"a=b"}},
			want: []string{"Accept", "Authorization", "Cookie"}},
		{name: "hop-by-hop removed", header: http.Header{"Keep-Alive": {"1"}, "Proxy-Connection": {"x"}, "Proxy-Authenticate": {"x"},
			"Proxy-Authorization": {"x"}, "Te": {"trailers"}, "Trailer": {"X-A"}, "Transfer-Encoding": {"chunked"}, "Accept": {"*/*"}},
			want: []string{"Accept"}},
		{name: "headers named in Connection removed", header: http.Header{"Connection": {"X-A, x-b", "keep-alive"}, "X-A": {"1"}, "X-B": {"2"}, "X-C": {"3"}},
			want: []string{"X-C"}},
		{name: "gateway-owned removed", header: http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Host": {"h"}, "X-Forwarded-Proto": {"https"},
			"X-Forwarded-Port": {"443"}, "X-Forwarded-Prefix": {"/a"}, "Forwarded": {"for=x"}, "X-Real-Ip": {"1.2.3.4"}, "X-Bulwark-Anything": {"1"}},
			want: nil},
		{name: "owned prefix in any case", header: http.Header{"x-bulwark-route": {"admin"}}, want: nil},
		{name: "identity headers removed", header: http.Header{"X-User": {"admin"}, "X-User-Id": {"1"}, "X-Remote-User": {"a"}, "X-Forwarded-User": {"a"},
			"X-Auth-Subject": {"a"}, "X-Authenticated-User": {"a"}, "X-Consumer-Id": {"a"}, "X-Tenant": {"t"}, "X-Username": {"kept"}},
			want: []string{"X-Username"}},
		{name: "method override headers removed", header: http.Header{"X-Http-Method-Override": {"DELETE"}, "X-Http-Method": {"PUT"},
			"X-Method-Override": {"PATCH"}, "X_http_method_override": {"DELETE"}, "Accept": {"*/*"}},
			want: []string{"Accept"}},
		{name: "underscore spellings removed", header: http.Header{"X_user": {"admin"}, "X_forwarded_for": {"1.2.3.4"}, "X_bulwark_route": {"a"}, "X_trace": {"kept"}},
			want: []string{"X_trace"}},
		{name: "upgrade header without Connection upgrade dropped", header: http.Header{"Upgrade": {"websocket"}},
			want: nil},
		{name: "websocket upgrade keeps Connection and Upgrade", header: http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Key": {"k"}}, want: []string{"Connection", "Sec-Websocket-Key", "Upgrade"}},
		{name: "h2c upgrade refused", header: http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}},
			reason: "upgrade_unsupported"},
		{name: "two upgrade protocols refused", header: http.Header{"Connection": {"upgrade"}, "Upgrade": {"websocket, h2c"}},
			reason: "upgrade_unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Header: tt.header, Trailer: http.Header{"X-User": nil}}
			p, ok := e.cleanHeaders(r)
			if tt.reason != "" {
				if ok || p.Reason != tt.reason {
					t.Errorf("cleanHeaders = %q, %v, want refused with %q", p.Reason, ok, tt.reason)
				}
				return
			}
			if !ok {
				t.Fatalf("cleanHeaders refused with %q, want accepted", p.Reason)
			}
			var got []string
			for k := range r.Header {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("headers left = %q, want %q", got, tt.want)
			}
			if r.Trailer != nil {
				t.Errorf("Trailer = %v, want nil", r.Trailer)
			}
		})
	}
}

func TestMethodOverrideQuery(t *testing.T) {
	for raw, want := range map[string]bool{
		"":                       false,
		"a=1":                    false,
		"_method=DELETE":         true,
		"a=1&_method=PUT":        true,
		"_method":                true,
		"%5Fmethod=DELETE":       true,
		"x_method=1&my_method=2": false,
		"q=_method":              false,
		"a=1&_methods=1":         false,
	} {
		if got := methodOverrideQuery(raw); got != want {
			t.Errorf("methodOverrideQuery(%q) = %v, want %v", raw, got, want)
		}
	}
}
