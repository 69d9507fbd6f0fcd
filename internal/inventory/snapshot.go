package inventory

import (
	"cmp"
	"slices"
	"time"
)

// Snapshot is the inventory as /inventory serves it (JSON). Counts are
// read one by one, not as one atomic picture.
type Snapshot struct {
	// GeneratedAt is when the snapshot was taken.
	GeneratedAt time.Time `json:"generated_at"`
	// Specs lists every spec of the config, by name.
	Specs []SpecView `json:"specs"`
	// Undocumented lists, by upstream, the requests that matched no
	// operation of a spec; empty when there were none.
	Undocumented []UpstreamView `json:"undocumented"`
}

// SpecView is one spec in a Snapshot.
type SpecView struct {
	Name       string          `json:"name"`
	Title      string          `json:"title"`
	Version    string          `json:"version"`
	Operations []OperationView `json:"operations"`
}

// OperationView is one operation in a Snapshot.
type OperationView struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	OperationID string `json:"operation_id"`
	Deprecated  bool   `json:"deprecated"`
	// Routes are the routes that validate against the operation; empty
	// when none does (the operation is then not reachable through a
	// validated route).
	Routes []string `json:"routes"`
	// Requests counts the requests that reached the operation's
	// validation since the gateway started; nil when unknown (bulwark
	// inventory without a reachable gateway).
	Requests *int64 `json:"requests"`
	// LastSeen is when the last request came, rounded down to the
	// second; nil when never (or unknown).
	LastSeen *time.Time `json:"last_seen"`
}

// UpstreamView is the undocumented traffic of one upstream.
type UpstreamView struct {
	Upstream string `json:"upstream"`
	// Requests counts every undocumented request to the upstream.
	Requests int64 `json:"requests"`
	// Paths are the path templates seen, most requested first.
	Paths []PathView `json:"paths"`
	// OtherRequests counts the requests whose template did not fit in
	// the bound of templates kept per upstream.
	OtherRequests int64 `json:"other_requests"`
}

// PathView is one undocumented path template.
type PathView struct {
	Template string     `json:"template"`
	Requests int64      `json:"requests"`
	LastSeen *time.Time `json:"last_seen"`
}

// Snapshot returns the inventory of cat (the running config's catalog) with
// the Registry's counts. A nil cat lists no specs.
func (r *Registry) Snapshot(cat *Catalog) Snapshot {
	s := Snapshot{GeneratedAt: r.opts.Now().UTC().Truncate(time.Second), Specs: []SpecView{}, Undocumented: []UpstreamView{}}
	if cat != nil {
		s.Specs = cat.views(true)
	}
	r.mu.Lock()
	ups := make(map[string]*upstreamPaths, len(r.undocumented))
	for name, up := range r.undocumented {
		ups[name] = up
	}
	r.mu.Unlock()
	for name, up := range ups {
		s.Undocumented = append(s.Undocumented, up.snapshot(name))
	}
	slices.SortFunc(s.Undocumented, func(a, b UpstreamView) int { return cmp.Compare(a.Upstream, b.Upstream) })
	for _, u := range s.Undocumented {
		slices.SortFunc(u.Paths, func(a, b PathView) int {
			return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Template, b.Template))
		})
	}
	return s
}

// Operations returns the catalog's specs and operations without counts
// (Requests nil): what the config alone says.
func (c *Catalog) Operations() []SpecView {
	if c == nil {
		return []SpecView{}
	}
	return c.views(false)
}

func (c *Catalog) views(counts bool) []SpecView {
	out := make([]SpecView, 0, len(c.specs))
	for _, s := range c.specs {
		sv := SpecView{Name: s.name, Title: s.title, Version: s.version, Operations: make([]OperationView, 0, len(s.ops))}
		for _, o := range s.ops {
			ov := OperationView{
				Method: o.info.Method, Path: o.info.Path, OperationID: o.info.ID, Deprecated: o.info.Deprecated,
				Routes: append([]string{}, o.routes...),
			}
			if counts {
				n := o.counter.Requests()
				ov.Requests = &n
				if t, ok := o.counter.LastSeen(); ok {
					ov.LastSeen = &t
				}
			}
			sv.Operations = append(sv.Operations, ov)
		}
		out = append(out, sv)
	}
	return out
}
