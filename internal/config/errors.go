package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a config file. Line and Col are 1-based;
// both are 0 for a problem with the whole file (it cannot be read, it is
// empty). Path is the YAML path of the offending value, such as
// "routes[2].cors.origins[0]"; it is empty for a whole-file problem or a
// YAML syntax error.
type Error struct {
	File      string
	Line, Col int
	Path, Msg string

	// err is the underlying error, when there is one (a read failure), so
	// that errors.Is(err, fs.ErrNotExist) works through Errors.
	err error
}

// Error formats e as "file:line:col: path: message", leaving out the parts
// that are unknown.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	if e.Path != "" {
		b.WriteString(": ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, or nil.
func (e Error) Unwrap() error { return e.err }

// Errors is every problem found in one config file, in file order. Load and
// Parse return it (as a value) when the file is not a valid config;
// errors.As(err, &errs) recovers it.
type Errors []Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as errors, so errors.Is and errors.As look
// into each of them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors puts whole-file problems first, then the others in file
// order; the full key makes the order independent of map iteration.
func sortErrors(es []Error) {
	slices.SortStableFunc(es, func(a, b Error) int {
		return cmp.Or(
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}

// report collects problems with their positions.
type report struct {
	file string
	errs []Error
}

func (r *report) add(p Pos, path, format string, args ...any) {
	r.errs = append(r.errs, Error{File: r.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}
