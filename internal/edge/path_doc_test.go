package edge

import (
	"os"
	"strings"
	"testing"
)

// TestPathReasonsDocumented keeps the reason table of docs/errors.md in
// step with the refusals CanonicalPath can give.
func TestPathReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []PathError{ErrNotAbsolute, ErrBadEscape, ErrEncodedSlash, ErrEncodedBackslash,
		ErrEncodedNUL, ErrBackslash, ErrControl, ErrEmptySegment, ErrDotSegment, ErrDoubleEncoding,
		ErrInvalidUTF8, ErrConfusable} {
		if !strings.Contains(string(doc), "| `"+string(reason)+"` |") {
			t.Errorf("docs/errors.md does not list the path refusal reason %q", reason)
		}
	}
}
