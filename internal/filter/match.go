package filter

import "fmt"

// ruleKind is what a path does when it matches.
type ruleKind uint8

const (
	ruleAllow ruleKind = iota
	ruleDeny
	ruleMask
)

// compiledPath is one parsed rule path.
type compiledPath struct {
	kind     ruleKind
	strategy strategy // ruleMask
	steps    []step
}

// maxStates bounds the automaton. Each state is a set of rule positions;
// many ".." paths that nest inside one another can, in theory, make the
// number of sets explode, and a config must not be able to do that to the
// gateway's memory at load time. maxWork likewise bounds the time spent
// building (in positions visited), for rule sets of thousands of paths.
const (
	maxStates = 16384
	maxWork   = 50_000_000
)

// state is one state of the automaton: the set of rule positions reached
// by the path from the root to a node. Its fields say what to do with that
// node, and where its children go.
type state struct {
	// names lists the member names that lead somewhere else than
	// otherName (nil when no name is special); a short list is scanned,
	// a long one also goes to namesMap. indexes likewise for [N].
	names    []nameEdge
	namesMap map[string]int32
	// nameLens has bit n set when a name in names is n bytes long (bit 63
	// for 63 or more): most names are rejected without a comparison.
	nameLens   uint64
	indexes    map[int]int32
	otherName  int32
	otherIndex int32

	keep bool     // the node is kept: no allow-list, or an allow path matched it or an ancestor
	deny bool     // a deny path matches the node
	mask strategy // the strongest mask that matches the node; 0 for none
	// viaObject and viaArray: the node is not kept, but an allow path may
	// still match below it if it is an object (array): it is kept as a
	// container and its children are filtered.
	viaObject, viaArray bool
	// inspect: a deny or mask path may still match below the node, so a
	// kept container must be walked rather than copied.
	inspect bool
	// copy: the node is kept and nothing matches it or below it: it can
	// be copied whole (unless the preset or detection needs to look).
	copy bool
	// dead: the node is dropped whatever its kind.
	dead bool
}

// nameEdge is one transition on a member name.
type nameEdge struct {
	name string
	to   int32
}

// maxNameScan is the longest names list scanned rather than hashed.
const maxNameScan = 8

// child returns the state of the member name of a node in this state.
func (s *state) child(name []byte) int32 {
	if s.nameLens&(1<<min(len(name), 63)) == 0 {
		return s.otherName
	}
	if s.namesMap != nil {
		if id, ok := s.namesMap[string(name)]; ok {
			return id
		}
		return s.otherName
	}
	for i := range s.names {
		if e := &s.names[i]; len(e.name) == len(name) && e.name == string(name) {
			return e.to
		}
	}
	return s.otherName
}

// nfaSet is a set of positions (base[path]+step index), sorted, plus
// whether an ancestor was kept by the allow-list (then allow positions
// are dropped).
type nfaSet struct {
	pos     []int32
	allowed bool
}

func (s nfaSet) key() string {
	b := make([]byte, 0, 1+4*len(s.pos))
	if s.allowed {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	for _, p := range s.pos {
		b = append(b, byte(p>>24), byte(p>>16), byte(p>>8), byte(p))
	}
	return string(b)
}

// childKey is the key of a child node: a member name or an array index.
type childKey struct {
	isName bool
	other  bool // a name no path names
	name   string
	index  int
}

// builder builds the automaton by subset construction.
type builder struct {
	paths  []compiledPath
	base   []int // base[p] is the position of paths[p] step 0
	owner  []int // owner[pos] is the path of a position
	states []state
	sets   []nfaSet
	ids    map[string]int32
	work   int // positions visited so far
}

// buildStates compiles paths into a deterministic automaton; state 0 is
// the root. hasAllow says whether an allow-list exists (if not, every node
// is kept).
func buildStates(paths []compiledPath, hasAllow bool) ([]state, error) {
	b := &builder{paths: paths, ids: make(map[string]int32)}
	n := 0
	for p, cp := range paths {
		b.base = append(b.base, n)
		for range len(cp.steps) + 1 {
			b.owner = append(b.owner, p)
		}
		n += len(cp.steps) + 1
	}
	root := nfaSet{allowed: !hasAllow}
	for p, cp := range paths {
		if cp.kind == ruleAllow && root.allowed {
			continue
		}
		root.pos = append(root.pos, int32(b.base[p]))
	}
	if _, err := b.intern(root); err != nil {
		return nil, err
	}
	for id := 0; id < len(b.states); id++ {
		if err := b.expand(int32(id)); err != nil {
			return nil, err
		}
	}
	return b.states, nil
}

// intern returns the id of set, adding a state for it if it is new.
func (b *builder) intern(set nfaSet) (int32, error) {
	k := set.key()
	if id, ok := b.ids[k]; ok {
		return id, nil
	}
	b.work += len(set.pos)
	if len(b.states) >= maxStates || b.work > maxWork {
		return 0, &RuleError{Rule: "rules", Reason: fmt.Sprintf("too complex to compile (over %d automaton states, or too many paths)", maxStates)}
	}
	id := int32(len(b.states))
	b.ids[k] = id
	b.sets = append(b.sets, set)
	b.states = append(b.states, b.describe(set))
	return id, nil
}

// describe fills in what a state does with its node.
func (b *builder) describe(set nfaSet) state {
	st := state{keep: set.allowed}
	for _, pos32 := range set.pos {
		pos := int(pos32)
		p := b.owner[pos]
		cp := b.paths[p]
		i := pos - b.base[p]
		if i == len(cp.steps) {
			switch cp.kind {
			case ruleAllow:
				st.keep = true
			case ruleDeny:
				st.deny = true
			case ruleMask:
				st.mask = max(st.mask, cp.strategy)
			}
			continue
		}
		next := cp.steps[i].kind
		switch cp.kind {
		case ruleAllow:
			st.viaObject = st.viaObject || next == stepMember || next == stepAnyMember || next == stepDesc
			st.viaArray = st.viaArray || next == stepAnyIndex || next == stepIndex || next == stepDesc
		default:
			st.inspect = true
		}
	}
	if st.keep {
		st.viaObject, st.viaArray = false, false
	}
	st.copy = st.keep && !st.inspect && !st.deny && st.mask == 0
	st.dead = !st.keep && !st.viaObject && !st.viaArray
	return st
}

// move returns the set of a child of a node in set.
func (b *builder) move(set nfaSet, k childKey, keep bool) nfaSet {
	out := nfaSet{allowed: keep}
	// Positions come in order and each adds itself or the next one, so
	// out stays sorted; add skips the duplicates.
	add := func(pos int) {
		if n := len(out.pos); n == 0 || out.pos[n-1] != int32(pos) {
			out.pos = append(out.pos, int32(pos))
		}
	}
	for _, pos32 := range set.pos {
		pos := int(pos32)
		p := b.owner[pos]
		cp := b.paths[p]
		i := pos - b.base[p]
		if i == len(cp.steps) || (keep && cp.kind == ruleAllow) {
			continue
		}
		switch st := cp.steps[i]; st.kind {
		case stepMember:
			if k.isName && !k.other && k.name == st.name {
				add(pos + 1)
			}
		case stepAnyMember:
			if k.isName {
				add(pos + 1)
			}
		case stepAnyIndex:
			if !k.isName {
				add(pos + 1)
			}
		case stepIndex:
			if !k.isName && k.index == st.index {
				add(pos + 1)
			}
		case stepDesc:
			add(pos)
			if k.isName && !k.other && k.name == st.name {
				add(pos + 1)
			}
		}
	}
	return out
}

// expand computes the transitions of state id.
func (b *builder) expand(id int32) error {
	set := b.sets[id]
	keep := b.states[id].keep
	other, err := b.intern(b.move(set, childKey{isName: true, other: true}, keep))
	if err != nil {
		return err
	}
	otherIndex, err := b.intern(b.move(set, childKey{index: -1}, keep))
	if err != nil {
		return err
	}
	var names []nameEdge
	seen := make(map[string]bool)
	var indexes map[int]int32
	for _, pos32 := range set.pos {
		pos := int(pos32)
		p := b.owner[pos]
		cp := b.paths[p]
		i := pos - b.base[p]
		if i == len(cp.steps) {
			continue
		}
		switch st := cp.steps[i]; st.kind {
		case stepMember, stepDesc:
			if seen[st.name] {
				continue
			}
			seen[st.name] = true
			c, err := b.intern(b.move(set, childKey{isName: true, name: st.name}, keep))
			if err != nil {
				return err
			}
			if c != other {
				names = append(names, nameEdge{st.name, c})
			}
		case stepIndex:
			if _, done := indexes[st.index]; done {
				continue
			}
			c, err := b.intern(b.move(set, childKey{index: st.index}, keep))
			if err != nil {
				return err
			}
			if c != otherIndex {
				if indexes == nil {
					indexes = make(map[int]int32)
				}
				indexes[st.index] = c
			}
		}
	}
	s := &b.states[id]
	s.names, s.indexes, s.otherName, s.otherIndex = names, indexes, other, otherIndex
	for _, e := range names {
		s.nameLens |= 1 << min(len(e.name), 63)
	}
	if len(names) > maxNameScan {
		s.namesMap = make(map[string]int32, len(names))
		for _, e := range names {
			s.namesMap[e.name] = e.to
		}
	}
	return nil
}
