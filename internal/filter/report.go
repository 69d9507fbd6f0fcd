package filter

import (
	"hash/maphash"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// maxPathLen is the longest report path; longer ones are cut and end in
// "…".
const maxPathLen = 256

// elementHash stands for the [*] step in path hashes.
const elementHash = 0x9e3779b97f4a7c15

// mixHash combines a parent path hash with the hash of one step.
func mixHash(parent, step uint64) uint64 {
	h := (parent ^ step) * 0xff51afd7ed558ccd
	return h ^ h>>33
}

// stepHash hashes one step: a raw quoted member name, or nil for [*].
// Names are hashed unescaped, as the normalized path writes them.
func (w *walker) stepHash(raw []byte) uint64 {
	if raw == nil {
		return elementHash
	}
	return maphash.Bytes(w.p.seed, w.unquoteTo(&w.scratch, raw))
}

// frameHash returns the hash of the innermost frame's normalized path.
func (w *walker) frameHash() uint64 {
	f := &w.frames[len(w.frames)-1]
	if !f.hashed {
		for i := 1; i < len(w.frames); i++ {
			if f := &w.frames[i]; !f.hashed {
				f.hash, f.hashed = mixHash(w.frames[i-1].hash, w.stepHash(f.name)), true
			}
		}
	}
	return f.hash
}

// childPath formats the current node's normalized path.
func (w *walker) childPath() string {
	b := append(w.scratch[:0], '$')
	var name []byte
	for _, f := range w.frames[1:] {
		b = w.appendStep(b, &name, f.name)
	}
	switch w.childKind {
	case childMember:
		b = w.appendStep(b, &name, w.child)
	case childElement:
		b = append(b, "[*]"...)
	}
	w.scratch = b
	if len(b) > maxPathLen {
		// Member names come from the document and can be huge: keep
		// reports (and the logs they end up in) small.
		i := maxPathLen
		for i > 0 && !utf8.RuneStart(b[i]) {
			i--
		}
		return string(b[:i]) + "…"
	}
	return string(b)
}

// appendStep appends the report form of one frame's step.
func (w *walker) appendStep(b []byte, scratch *[]byte, raw []byte) []byte {
	if raw == nil {
		return append(b, "[*]"...)
	}
	name := w.unquoteTo(scratch, raw)
	if scanText(name) != 0 {
		// A map keyed by card number or token: the name is data, and a
		// report never carries data. Written as the wildcard step.
		return append(b, ".*"...)
	}
	return appendMemberStep(b, name)
}

// unquoteTo returns the unescaped text of the raw string raw, in *scratch
// when it has escapes.
func (w *walker) unquoteTo(scratch *[]byte, raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	for _, c := range s {
		if c == '\\' {
			*scratch, _ = jsontext.AppendUnquote((*scratch)[:0], raw)
			return *scratch
		}
	}
	return s
}

// seenKey identifies a report entry without formatting its path: the
// hash of the innermost frame's path (salted by kind for findings), and
// the current node's raw name. The raw name is a slice of the document,
// valid for the whole Apply call.
type seenKey struct {
	frame uint64
	name  []byte
	kind  childKind
}

// seenList is the keys of one report list's entries.
type seenList [maxReport]seenKey

// key returns the seenKey of the current node.
func (w *walker) key(salt uint64) seenKey {
	return seenKey{frame: w.frameHash() ^ salt, name: w.child, kind: w.childKind}
}

// has reports whether k is among the first n keys.
func (s *seenList) has(n int, k seenKey) bool {
	for i := range s[:n] {
		if e := &s[i]; e.frame == k.frame && e.kind == k.kind && string(e.name) == string(k.name) {
			return true
		}
	}
	return false
}

// report adds the current node's path to list unless it is there already
// or the list is full; seen holds the keys of list's entries.
func (w *walker) report(list *[]string, seen *seenList) {
	n := len(*list)
	if n >= maxReport {
		return
	}
	k := w.key(0)
	if seen.has(n, k) {
		return
	}
	p := w.childPath()
	// One path can have two raw names ("a" and "\u0061" in two
	// elements of an array): compare the strings before adding.
	for _, q := range *list {
		if q == p {
			return
		}
	}
	seen[n] = k
	if *list == nil {
		*list = make([]string, 0, 8)
	}
	*list = append(*list, p)
}

// find records a finding of kind at the current node.
func (w *walker) find(kind string, salt uint64) {
	n := len(w.rep.Findings)
	if n >= maxReport {
		return
	}
	k := w.key(salt)
	if w.found.has(n, k) {
		return
	}
	p := w.childPath()
	for _, f := range w.rep.Findings {
		if f.Kind == kind && f.Path == p {
			return
		}
	}
	w.found[n] = k
	w.rep.Findings = append(w.rep.Findings, Finding{Kind: kind, Path: p})
}

// maxMemo is how many member positions of an object a memo remembers,
// and maxMemoDepth down to which depth objects have memos.
const (
	maxMemo      = 16
	maxMemoDepth = 32
)

// memo remembers which members of an object were reported removed: the
// path hash of the object, and the raw names by position. Arrays of
// records repeat their member names, and the removed ones are reported
// once: the memo lets the next object with the same path skip a member of
// the same raw name at the same position without looking at the report.
type memo struct {
	frame uint64
	names [maxMemo][]byte
}

// removedMember reports the removal of member j of the object at depth.
func (w *walker) removedMember(depth, j int) {
	w.rep.Removals++
	if len(w.rep.Removed) >= maxReport {
		return
	}
	if j < maxMemo && depth < maxMemoDepth {
		h := w.frameHash()
		for len(w.memos) <= depth {
			w.memos = append(w.memos, memo{})
		}
		m := &w.memos[depth]
		if m.frame == h && m.names[j] != nil && string(m.names[j]) == string(w.child) {
			return
		}
		if m.frame != h {
			*m = memo{frame: h}
		}
		m.names[j] = w.child
	}
	w.report(&w.rep.Removed, &w.removed)
}
