//go:build !race

// Under the race detector sync.Pool drops items, so allocation budgets
// only hold without it.

package filter

import "testing"

func TestApplyAllocs(t *testing.T) {
	doc := benchDoc(t)
	tests := []struct {
		name  string
		rules Rules
		max   float64
	}{
		{name: "no rules", rules: Rules{}, max: 0},
		{name: "deny that matches nothing", rules: Rules{Deny: []string{"$.orders[*].nothing", "$..nowhere"}}, max: 0},
		{name: "preset and detect", rules: Rules{Preset: "sensitive", Detect: true}, max: 2},                                 // one finding: its path and the list
		{name: "mask", rules: Rules{Mask: map[string]string{"$.orders[*].card.number": "last4", "$.email": "hash"}}, max: 3}, // two paths and the list
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.rules)
			out := make([]byte, 0, 2*len(doc))
			if _, _, err := p.Apply(out, doc); err != nil {
				t.Fatal(err)
			}
			got := testing.AllocsPerRun(100, func() {
				if _, _, err := p.Apply(out[:0], doc); err != nil {
					t.Fatal(err)
				}
			})
			if got > tt.max {
				t.Errorf("Apply allocates %v times, want at most %v", got, tt.max)
			}
		})
	}
}
