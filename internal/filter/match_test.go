package filter

import "testing"

// stateOf follows a path of member names (and "[]" for an array element)
// from the root state.
func stateOf(tb testing.TB, p *Program, steps ...string) *state {
	tb.Helper()
	st := &p.states[0]
	for _, s := range steps {
		if s == "[]" {
			st = &p.states[st.otherIndex]
			continue
		}
		st = &p.states[st.child([]byte(s))]
	}
	return st
}

func TestStates(t *testing.T) {
	p := mustCompile(t, Rules{
		Allow: []string{"$.user", "$.orders[*].id", "$..name"},
		Deny:  []string{"$.user.password"},
		Mask:  map[string]string{"$.user.card": "last4", "$..name": "hash"},
	})
	tests := []struct {
		path                           []string
		keep, deny, copy, dead, viaObj bool
		mask                           strategy
	}{
		{path: nil, viaObj: true},
		{path: []string{"user"}, keep: true},
		{path: []string{"user", "password"}, keep: true, deny: true},
		{path: []string{"user", "card"}, keep: true, mask: strategyLast4},
		{path: []string{"user", "email"}, keep: true}, // $..name may match below
		{path: []string{"orders"}, viaObj: true},
		{path: []string{"orders", "[]"}, viaObj: true},
		{path: []string{"orders", "[]", "id"}, keep: true},
		{path: []string{"orders", "[]", "total"}, viaObj: true}, // for $..name
		{path: []string{"x", "y", "name"}, keep: true, mask: strategyHash},
		{path: []string{"x", "y"}, viaObj: true},
	}
	for _, tt := range tests {
		st := stateOf(t, p, tt.path...)
		if st.keep != tt.keep || st.deny != tt.deny || st.copy != tt.copy || st.mask != tt.mask || st.viaObject != tt.viaObj {
			t.Errorf("state of %v = keep %v deny %v copy %v mask %v viaObject %v; want %v %v %v %v %v",
				tt.path, st.keep, st.deny, st.copy, st.mask, st.viaObject, tt.keep, tt.deny, tt.copy, tt.mask, tt.viaObj)
		}
	}
}

func TestStatesCopy(t *testing.T) {
	p := mustCompile(t, Rules{Allow: []string{"$.user", "$.orders[*].id"}, Deny: []string{"$.user.password"}})
	tests := []struct {
		path       []string
		copy, dead bool
	}{
		{path: []string{"user"}},
		{path: []string{"user", "email"}, copy: true},
		{path: []string{"orders", "[]", "id"}, copy: true},
		{path: []string{"orders", "[]", "total"}, dead: true},
		{path: []string{"other"}, dead: true},
	}
	for _, tt := range tests {
		if st := stateOf(t, p, tt.path...); st.copy != tt.copy || st.dead != tt.dead {
			t.Errorf("state of %v = copy %v dead %v, want %v %v", tt.path, st.copy, st.dead, tt.copy, tt.dead)
		}
	}
}

func TestStatesNoAllow(t *testing.T) {
	p := mustCompile(t, Rules{Deny: []string{"$.a.b"}})
	if n := len(p.states); n != 4 {
		// root, $.a, $.a.b, and everything else (kept, nothing below).
		t.Errorf("states = %d, want 4", n)
	}
	if st := stateOf(t, p, "z", "[]", "q"); !st.copy {
		t.Errorf("state of $.z[*].q is not copied whole")
	}
}
