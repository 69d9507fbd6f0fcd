package edge

import (
	"regexp"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	tests := []struct {
		name      string
		sent      []string
		fromProxy bool
		keep      bool
	}{
		{name: "none sent", sent: nil, fromProxy: true, keep: false},
		{name: "from a client", sent: []string{"abc"}, fromProxy: false, keep: false},
		{name: "from a proxy", sent: []string{"abc-123_x.y:z"}, fromProxy: true, keep: true},
		{name: "from a proxy, 128 chars", sent: []string{strings.Repeat("a", 128)}, fromProxy: true, keep: true},
		{name: "from a proxy, 129 chars", sent: []string{strings.Repeat("a", 129)}, fromProxy: true, keep: false},
		{name: "from a proxy, empty", sent: []string{""}, fromProxy: true, keep: false},
		{name: "from a proxy, space", sent: []string{"a b"}, fromProxy: true, keep: false},
		{name: "from a proxy, log injection", sent: []string{"a\nlevel=error"}, fromProxy: true, keep: false},
		{name: "from a proxy, non-ASCII", sent: []string{"idé"}, fromProxy: true, keep: false},
		{name: "from a proxy, two lines", sent: []string{"a", "b"}, fromProxy: true, keep: false},
	}
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := requestID(tt.sent, tt.fromProxy)
			if tt.keep {
				if got != tt.sent[0] {
					t.Errorf("requestID(%q, %v) = %q, want it kept", tt.sent, tt.fromProxy, got)
				}
				return
			}
			if !generated.MatchString(got) {
				t.Errorf("requestID(%q, %v) = %q, want 32 generated hex digits", tt.sent, tt.fromProxy, got)
			}
		})
	}
}

// TestNewRequestIDUnique checks that generated ids do not repeat.
func TestNewRequestIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewRequestID()
		if seen[id] {
			t.Fatalf("NewRequestID() = %q twice, want unique ids", id)
		}
		seen[id] = true
	}
}
