package gateway

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

func TestRequestContext(t *testing.T) {
	type otherKey struct{}
	parent := context.WithValue(context.Background(), otherKey{}, "kept")
	rc := &requestContext{Context: parent}
	if got := exchange.From(rc); got != &rc.rec {
		t.Errorf("exchange.From = %p, want the embedded record %p", got, &rc.rec)
	}
	if got := chi.RouteContext(rc); got != &rc.route {
		t.Errorf("chi.RouteContext = %p, want the embedded routing context %p", got, &rc.route)
	}
	if got := rc.Value(otherKey{}); got != "kept" {
		t.Errorf("Value(parent key) = %v, want the parent's value", got)
	}
}

func TestStatusLabels(t *testing.T) {
	l := newStatusLabels()
	for code, want := range map[int]string{200: "200", 404: "404", 599: "599", 600: "600", 999: "999"} {
		if got := l.label(code); got != want {
			t.Errorf("label(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestMethodLabel(t *testing.T) {
	for method, want := range map[string]string{http.MethodGet: "GET", http.MethodPatch: "PATCH", "BREW": "OTHER", "get": "OTHER"} {
		if got := methodLabel(method); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", method, got, want)
		}
	}
}
