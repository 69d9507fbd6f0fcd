// Package filter removes, keeps and masks fields of JSON documents (upstream
// response bodies) by path, and reports sensitive-looking values left in the
// output (docs/response-filtering.md). Rules compile once into a Program
// (Compile): every path becomes a state of one deterministic automaton, so
// Apply reads a document in a single pass with jsontext, walks token by
// token only where a rule can still match, and copies every other subtree
// as raw bytes. It is a pure library: no HTTP, no config.
package filter

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"sort"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth is the deepest nesting of objects and arrays Apply accepts; a
// deeper document is refused with ErrTooDeep.
const MaxDepth = 512

// maxReport caps each list of a Report, so that a report stays small
// whatever the document.
const maxReport = 32

// Errors of Apply. The caller fails closed on any of them; errors.Is tells
// the reasons apart.
var (
	// ErrInvalidJSON wraps every reason a document is not accepted as
	// JSON: bad syntax, trailing data, invalid UTF-8, duplicate member
	// names. The jsontext error is wrapped too (errors.As to a
	// *jsontext.SyntacticError gives the offset).
	ErrInvalidJSON = errors.New("filter: invalid JSON")
	// ErrDuplicateName is jsontext's sentinel for a member name that
	// appears twice in one object; such errors also match ErrInvalidJSON.
	ErrDuplicateName = jsontext.ErrDuplicateName
	// ErrTooDeep is a document nested deeper than MaxDepth.
	ErrTooDeep = errors.New("filter: JSON nested deeper than 512 levels")
)

// Rules is one rule set, as written in the config (already parsed from
// YAML). The zero Rules keeps every document as it is: Apply then only
// checks it and copies its bytes.
type Rules struct {
	Allow  []string          // keep only these paths (nil/empty = no allow-list: keep everything)
	Deny   []string          // remove these paths
	Mask   map[string]string // path -> strategy: "redact" | "last4" | "hash"
	Preset string            // "" or "sensitive"
	Detect bool              // scan the OUTPUT for sensitive-looking values
}

// Report says what Apply did: paths, never values. Paths are normalized
// (every array index written [*]; see docs/response-filtering.md), cut at
// 256 bytes, deduplicated, in first-seen order, and each list holds at
// most 32 entries. Empty lists are nil.
type Report struct {
	Removed  []string  // paths removed (deny, preset, or dropped by the allow-list)
	Masked   []string  // paths masked
	Findings []Finding // sensitive-looking values in the output (only when Rules.Detect)
	// Removals and Masks count the values removed and masked, every
	// occurrence (an element of an array counts once per element), never
	// capped: the lists above are bounded, these are the totals.
	Removals, Masks int
}

// Finding is one sensitive-looking value in the output: its Kind
// ("card_number", "jwt", "private_key", "secret") and normalized Path.
type Finding struct{ Kind, Path string }

// Finding kinds.
const (
	KindCardNumber = "card_number"
	KindJWT        = "jwt"
	KindPrivateKey = "private_key"
	KindSecret     = "secret"
)

// RuleError is a rule Compile refuses. Rule is "allow[i]", "deny[i]",
// "mask" or "preset", or "rules" for a rule set too complex to compile;
// Path is the rule's path ("" for preset and rules).
type RuleError struct {
	Rule   string
	Path   string
	Reason string
}

func (e *RuleError) Error() string {
	switch e.Rule {
	case "mask":
		return fmt.Sprintf("mask[%q]: %s", e.Path, e.Reason)
	case "preset", "rules":
		return e.Rule + ": " + e.Reason
	default:
		return fmt.Sprintf("%s %q: %s", e.Rule, e.Path, e.Reason)
	}
}

// Program is a compiled rule set. It is immutable and safe for concurrent
// use by many goroutines.
type Program struct {
	states []state
	// deep is set when every container must be walked whatever the
	// paths say: the sensitive preset looks at every member name and
	// detection at every value.
	deep   bool
	preset bool
	detect bool
	key    []byte
	seed   maphash.Seed
	pool   sync.Pool // of *walker
}

// Compile checks and compiles r. hashKey is the HMAC key for the "hash"
// strategy: required, at least 32 bytes, only when some mask uses "hash"
// (it is copied). Errors are *RuleError and name the rule, the path and
// what is wrong, e.g. `deny[2] "$.items[": unterminated bracket at offset 8`.
func Compile(r Rules, hashKey []byte) (*Program, error) {
	var paths []compiledPath
	add := func(rule string, kind ruleKind, strategy strategy, src string) error {
		steps, err := parsePath(src)
		if err != nil {
			return &RuleError{Rule: rule, Path: src, Reason: err.Error()}
		}
		paths = append(paths, compiledPath{kind: kind, strategy: strategy, steps: steps})
		return nil
	}
	for i, p := range r.Allow {
		if err := add(fmt.Sprintf("allow[%d]", i), ruleAllow, 0, p); err != nil {
			return nil, err
		}
	}
	for i, p := range r.Deny {
		if err := add(fmt.Sprintf("deny[%d]", i), ruleDeny, 0, p); err != nil {
			return nil, err
		}
	}
	// Map order is random: sort, so that errors and states are the same
	// on every load.
	maskPaths := make([]string, 0, len(r.Mask))
	for p := range r.Mask {
		maskPaths = append(maskPaths, p)
	}
	sort.Strings(maskPaths)
	usesHash := false
	for _, p := range maskPaths {
		const rule = "mask"
		s, ok := parseStrategy(r.Mask[p])
		if !ok {
			return nil, &RuleError{Rule: rule, Path: p, Reason: fmt.Sprintf("unknown strategy %q (want redact, last4 or hash)", r.Mask[p])}
		}
		if s == strategyHash {
			usesHash = true
			if len(hashKey) < 32 {
				return nil, &RuleError{Rule: rule, Path: p, Reason: fmt.Sprintf("strategy hash needs a key of at least 32 bytes, got %d", len(hashKey))}
			}
		}
		if err := add(rule, ruleMask, s, p); err != nil {
			return nil, err
		}
	}
	p := &Program{detect: r.Detect, seed: maphash.MakeSeed()}
	switch r.Preset {
	case "":
	case "sensitive":
		p.preset = true
	default:
		return nil, &RuleError{Rule: "preset", Reason: fmt.Sprintf("unknown preset %q (want \"sensitive\")", r.Preset)}
	}
	p.deep = p.preset || p.detect
	if usesHash {
		p.key = bytes.Clone(hashKey)
	}
	states, err := buildStates(paths, len(r.Allow) > 0)
	if err != nil {
		return nil, err
	}
	p.states = states
	p.pool.New = func() any { return &walker{p: p} }
	return p, nil
}

// newMAC returns the HMAC of the hash strategy.
func (p *Program) newMAC() hash.Hash { return hmac.New(sha256.New, p.key) }
