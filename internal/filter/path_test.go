package filter

import (
	"slices"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want []step
	}{
		{"$.a", []step{{kind: stepMember, name: "a"}}},
		{"$.a-b_9", []step{{kind: stepMember, name: "a-b_9"}}},
		{"$.名前", []step{{kind: stepMember, name: "名前"}}},
		{"$.*", []step{{kind: stepAnyMember}}},
		{"$[*]", []step{{kind: stepAnyIndex}}},
		{"$[0][12]", []step{{kind: stepIndex, index: 0}, {kind: stepIndex, index: 12}}},
		{"$..a", []step{{kind: stepDesc, name: "a"}}},
		{"$..['a b']", []step{{kind: stepDesc, name: "a b"}}},
		{`$['it\'s']["q\"\\"]`, []step{{kind: stepMember, name: "it's"}, {kind: stepMember, name: `q"\`}}},
		{`$['a\u000ab']`, []step{{kind: stepMember, name: "a\nb"}}},
		{"$['']", []step{{kind: stepMember, name: ""}}},
		{"$.items[*].card..number", []step{{kind: stepMember, name: "items"}, {kind: stepAnyIndex}, {kind: stepMember, name: "card"}, {kind: stepDesc, name: "number"}}},
	}
	for _, tt := range tests {
		got, err := parsePath(tt.path)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parsePath(%q) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

func TestAppendMemberStep(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"id", ".id"},
		{"prénom", ".prénom"},
		{"名前", ".名前"},
		{"a-b_0", ".a-b_0"},
		{"a b", "['a b']"},
		{"it's", `['it\'s']`},
		{`back\slash`, `['back\\slash']`},
		{"a\nb", `['a\u000ab']`},
		{"", "['']"},
		{"😀", "['😀']"},
	}
	for _, tt := range tests {
		got := string(appendMemberStep(nil, []byte(tt.name)))
		if got != tt.want {
			t.Errorf("appendMemberStep(%q) = %s, want %s", tt.name, got, tt.want)
		}
		// A report path parses back to the same name.
		steps, err := parsePath("$" + got)
		if err != nil || len(steps) != 1 || steps[0].name != tt.name {
			t.Errorf("parsePath($%s) = %v, %v; want member %q", got, steps, err, tt.name)
		}
	}
}
