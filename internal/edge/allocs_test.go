//go:build !race

package edge

import "testing"

// TestCanonicalizeAndCleanAllocs holds path canonicalisation plus header
// hygiene of a typical request to the budget of two allocations
// (it needs none today). Not under -race, which changes allocation.
func TestCanonicalizeAndCleanAllocs(t *testing.T) {
	e := newEdge(t, testServerConfig())
	req := newTypicalRequest(t)
	got := testing.AllocsPerRun(100, func() {
		req.reset()
		if err := canonicalizeURL(req.r); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.cleanHeaders(req.r); !ok {
			t.Fatal("refused")
		}
	})
	if got > 2 {
		t.Errorf("allocations per request = %v, want at most 2", got)
	}
}

// TestCanonicalPathAllocs checks the fast path allocates nothing and a path
// with escapes allocates only its decoded copy.
func TestCanonicalPathAllocs(t *testing.T) {
	tests := []struct {
		name string
		path string
		want float64
	}{
		{name: "clean", path: "/v1/orders/12345/items", want: 0},
		{name: "escaped", path: "/v1/orders/caf%C3%A9/items", want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				if _, err := CanonicalPath(tt.path); err != nil {
					t.Fatal(err)
				}
			})
			if got != tt.want {
				t.Errorf("CanonicalPath(%q) allocations = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}
