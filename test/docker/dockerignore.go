package docker

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// Ignore is a parsed .dockerignore: which paths of the build context docker
// leaves out.
type Ignore struct {
	rules []ignoreRule
}

type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

// ParseIgnore reads a .dockerignore with docker's rules: one pattern a line,
// # comments, a leading ! re-includes, patterns are relative to the context
// root (a leading / is dropped), * and ? do not cross /, ** matches any
// number of directories, and a pattern that matches a directory leaves out
// everything under it. The last matching line wins.
func ParseIgnore(r io.Reader) (Ignore, error) {
	var ig Ignore
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		rule := ignoreRule{}
		if rest, ok := strings.CutPrefix(p, "!"); ok {
			rule.negate, p = true, strings.TrimSpace(rest)
		}
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		re, err := regexp.Compile("^" + patternRegexp(p) + "$")
		if err != nil {
			return Ignore{}, fmt.Errorf("pattern %q: %w", p, err)
		}
		rule.re = re
		ig.rules = append(ig.rules, rule)
	}
	if err := sc.Err(); err != nil {
		return Ignore{}, fmt.Errorf("read .dockerignore: %w", err)
	}
	return ig, nil
}

// patternRegexp translates a dockerignore pattern to a regular expression.
func patternRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// Excluded reports whether the slash-separated path rel (relative to the
// context root) is left out of the build context.
func (ig Ignore) Excluded(rel string) bool {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	excluded := false
	for _, r := range ig.rules {
		if matchesOrParent(r.re, rel) {
			excluded = !r.negate
		}
	}
	return excluded
}

// matchesOrParent reports whether re matches rel or one of its parent
// directories.
func matchesOrParent(re *regexp.Regexp, rel string) bool {
	for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}
