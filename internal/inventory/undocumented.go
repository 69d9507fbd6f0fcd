package inventory

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Bounds of a path template: longer paths end in "/*".
const (
	maxTemplateSegments = 12
	maxTemplateBytes    = 200
)

// upstreamPaths is the undocumented traffic of one upstream: a bounded
// set of path templates with their counts, and what did not fit.
type upstreamPaths struct {
	metric prometheus.Counter // nil without a metric

	mu        sync.Mutex
	requests  int64
	templates map[string]*pathCount
	other     pathCount // requests whose template did not fit
}

type pathCount struct {
	n    int64
	last int64 // Unix seconds
}

// Undocumented records a request to upstream (a spec-validated upstream)
// that matches no operation of its spec: it counts it in
// bulwark_undocumented_requests_total{upstream} and under the path's
// template (see Template). Only the template is kept, never path itself.
// Once an upstream has MaxTemplates templates, new ones count as other.
// It is safe for concurrent use.
func (r *Registry) Undocumented(upstream, path string) {
	tmpl := Template(path)
	now := r.opts.Now().Unix()
	r.mu.Lock()
	up, ok := r.undocumented[upstream]
	if !ok {
		up = &upstreamPaths{templates: map[string]*pathCount{}}
		if r.opts.Undocumented != nil {
			up.metric = r.opts.Undocumented.WithLabelValues(upstream)
		}
		r.undocumented[upstream] = up
	}
	r.mu.Unlock()
	if up.metric != nil {
		up.metric.Inc()
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	up.requests++
	pc, ok := up.templates[tmpl]
	if !ok {
		if len(up.templates) >= r.opts.MaxTemplates {
			up.other.n++
			up.other.last = now
			return
		}
		pc = &pathCount{}
		up.templates[tmpl] = pc
	}
	pc.n++
	pc.last = now
}

// Template returns the template of a request path, the shape that
// Undocumented keeps instead of the path: the query and fragment are
// dropped, every segment that looks like an identifier or a value (see
// looksLikeID) becomes {id}, and a path longer than 12 segments or 200
// bytes is cut, ending in "/*". "/users/12345/orders?x=1" becomes
// "/users/{id}/orders".
func Template(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimPrefix(path, "/")
	var b strings.Builder
	for i, seg := range strings.Split(path, "/") {
		if looksLikeID(seg) {
			seg = "{id}"
		}
		if i == maxTemplateSegments || b.Len()+1+len(seg) > maxTemplateBytes {
			b.WriteString("/*")
			break
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	return b.String()
}

// looksLikeID reports whether a path segment is probably a value rather
// than a name: all digits, a long digit run (INV-000123), digits with
// separators (a date, a version), hex of 16 characters or more (hashes;
// UUIDs), a token of 20 or more base64url characters with a digit, or of
// 16 or more mixing upper case, lower case and digits, an email-like value
// (@), bytes that are not printable UTF-8, or anything of 32 characters or
// more. Names like "orders", "v2" or "oauth2" stay.
func looksLikeID(seg string) bool {
	if seg == "" {
		return false
	}
	if len(seg) >= 32 || !utf8.ValidString(seg) || strings.Contains(seg, "@") || strings.Contains(strings.ToLower(seg), "%40") {
		return true
	}
	var digits, run, maxRun, upper, lower int
	hex, token, numeric := true, true, true
	for _, c := range seg {
		isDigit := c >= '0' && c <= '9'
		if isDigit {
			digits++
			run++
			maxRun = max(maxRun, run)
		} else {
			run = 0
		}
		switch {
		case c < 0x20 || c >= 0x7f && c <= 0x9f: // C0, DEL and C1 controls (terminal escapes)
			return true
		case isDigit:
		case c >= 'a' && c <= 'z':
			lower++
		case c >= 'A' && c <= 'Z':
			upper++
		}
		if !isDigit && !strings.ContainsRune("abcdefABCDEF", c) {
			hex = false
		}
		if !isDigit && !isLetter(c) && !strings.ContainsRune("-_=+.~", c) {
			token = false
		}
		if !isDigit && !strings.ContainsRune("-_.:,", c) {
			numeric = false
		}
	}
	switch {
	case numeric && digits > 0: // 123, 2026-01-31, 1.2.3
		return true
	case maxRun >= 5: // INV-000123
		return true
	case hex && len(seg) >= 16:
		return true
	case token && digits > 0 && len(seg) >= 20:
		return true
	case token && len(seg) >= 16 && digits > 0 && upper > 0 && lower > 0:
		return true
	}
	return false
}

func isLetter(c rune) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// snapshot returns the upstream's view, templates by count then name.
func (up *upstreamPaths) snapshot(name string) UpstreamView {
	up.mu.Lock()
	defer up.mu.Unlock()
	v := UpstreamView{Upstream: name, Requests: up.requests, Paths: make([]PathView, 0, len(up.templates)),
		OtherRequests: up.other.n}
	for tmpl, pc := range up.templates {
		v.Paths = append(v.Paths, PathView{Template: tmpl, Requests: pc.n, LastSeen: unixTime(pc.last)})
	}
	return v
}

// unixTime returns the time of Unix seconds s, nil for 0 (never).
func unixTime(s int64) *time.Time {
	if s == 0 {
		return nil
	}
	t := time.Unix(s, 0).UTC()
	return &t
}
