package filter

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestApplyReportCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		// The same 50 names in every element: 50 distinct paths.
		b.WriteByte('{')
		for j := range 50 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"f%02d":%d`, j, i)
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	p := mustCompile(t, Rules{Allow: []string{"$.none"}})
	got, rep, err := p.Apply(nil, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{}` {
		t.Errorf("Apply = %s, want {}", got)
	}
	if want := []string{"$.items"}; !slices.Equal(rep.Removed, want) {
		t.Errorf("Removed = %q, want %q", rep.Removed, want)
	}

	p = mustCompile(t, Rules{Allow: []string{"$.items[*].f00"}})
	_, rep, err = p.Apply(nil, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != maxReport {
		t.Fatalf("len(Removed) = %d, want %d", len(rep.Removed), maxReport)
	}
	for j, got := range rep.Removed {
		if want := fmt.Sprintf("$.items[*].f%02d", j+1); got != want {
			t.Errorf("Removed[%d] = %q, want %q", j, got, want)
		}
	}
}

func TestApplyReportEmpty(t *testing.T) {
	p := mustCompile(t, Rules{Deny: []string{"$.x"}, Detect: true})
	_, rep, err := p.Apply(nil, []byte(`{"a":[1,"b"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != nil || rep.Masked != nil || rep.Findings != nil {
		t.Errorf("Report = %+v, want all nil", rep)
	}
}

func TestReportDedup(t *testing.T) {
	tests := []struct {
		name    string
		rules   Rules
		in      string
		removed []string
		masked  []string
	}{
		{
			name:    "same name in every element",
			rules:   Rules{Deny: []string{"$.a[*].x"}},
			in:      `{"a":[{"x":1},{"x":2},{"y":0,"x":3}]}`,
			removed: []string{"$.a[*].x"},
		},
		{
			name:    "same name, same position, other arrays",
			rules:   Rules{Allow: []string{"$.x[*].keep", "$.y[*].keep"}},
			in:      `{"x":[{"a":1,"keep":1},{"a":2}],"y":[{"a":1},{"a":2,"keep":2}]}`,
			removed: []string{"$.x[*].a", "$.y[*].a"},
		},
		{
			name:    "one path spelled two ways",
			rules:   Rules{Deny: []string{"$[*].a"}},
			in:      `[{"a":1},{"\u0061":2},{"b":{"a":3}}]`,
			removed: []string{"$[*].a"},
		},
		{
			name:    "escaped names in frames",
			rules:   Rules{Deny: []string{"$..x"}},
			in:      `{"caf\u00e9":[{"x":1}],"café2":{"x":1},"a b":{"x":2}}`,
			removed: []string{"$.café[*].x", "$.café2.x", "$['a b'].x"},
		},
		{
			name:   "masks deduplicated",
			rules:  Rules{Mask: map[string]string{"$..n": "last4"}},
			in:     `{"a":[{"n":"12345"},{"n":"67890"}],"n":"11111"}`,
			masked: []string{"$.a[*].n", "$.n"},
		},
		{
			name:    "element removed from nested arrays",
			rules:   Rules{Deny: []string{"$[*][0]"}},
			in:      `[[1,2],[3]]`,
			removed: []string{"$[*][*]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.rules)
			_, rep, err := p.Apply(nil, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.Removed, tt.removed) {
				t.Errorf("Removed = %q, want %q", rep.Removed, tt.removed)
			}
			if !slices.Equal(rep.Masked, tt.masked) {
				t.Errorf("Masked = %q, want %q", rep.Masked, tt.masked)
			}
		})
	}
}

func TestReportLongPath(t *testing.T) {
	long := strings.Repeat("é", 300)
	p := mustCompile(t, Rules{Allow: []string{"$.id"}})
	_, rep, err := p.Apply(nil, []byte(`{"id":1,"`+long+`":2}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "$." + strings.Repeat("é", 127) + "…" // 256 bytes, cut at a rune
	if len(rep.Removed) != 1 || rep.Removed[0] != want {
		t.Errorf("Removed = %q, want [%q]", rep.Removed, want)
	}
}

func TestReportFindingsCap(t *testing.T) {
	var b strings.Builder
	b.WriteByte('{')
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%02d":"AKIAIOSFODNN7EXAMPLE 4111111111111111"`, i)
	}
	b.WriteByte('}')
	p := mustCompile(t, Rules{Detect: true})
	_, rep, err := p.Apply(nil, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != maxReport {
		t.Fatalf("len(Findings) = %d, want %d", len(rep.Findings), maxReport)
	}
	if want := (Finding{KindSecret, "$.k15"}); rep.Findings[31] != want {
		t.Errorf("Findings[31] = %v, want %v", rep.Findings[31], want)
	}
}
