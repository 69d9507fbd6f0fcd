// Package inventory keeps the gateway's API inventory (OWASP API9:2023,
// improper inventory management): every operation of every OpenAPI spec
// with how often it was called and when last, and the paths of requests
// to a spec-validated upstream that no operation documents.
//
// One Registry lives for the whole process, so counts survive reloads.
// Each config builds a Catalog from it (the specs, operations and routes
// of that config); the running config's Catalog is what a Snapshot shows.
package inventory

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// DefaultMaxTemplates bounds the undocumented path templates kept per
// upstream; requests beyond it are counted as "other".
const DefaultMaxTemplates = 100

// Options configure a Registry.
type Options struct {
	// Undocumented counts undocumented requests by upstream
	// (bulwark_undocumented_requests_total); nil counts nothing there.
	Undocumented *prometheus.CounterVec
	// MaxTemplates bounds the path templates kept per upstream; 0 means
	// DefaultMaxTemplates.
	MaxTemplates int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Registry holds the request counts of operations and the undocumented
// requests, across reloads. It is safe for concurrent use.
type Registry struct {
	opts Options

	mu           sync.Mutex
	counters     map[opKey]*Counter
	undocumented map[string]*upstreamPaths
}

type opKey struct{ spec, method, path string }

// New returns an empty Registry.
func New(opts Options) *Registry {
	if opts.MaxTemplates <= 0 {
		opts.MaxTemplates = DefaultMaxTemplates
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Registry{opts: opts, counters: map[opKey]*Counter{}, undocumented: map[string]*upstreamPaths{}}
}

// Counter counts the requests of one operation. Its methods are safe for
// concurrent use; the zero value is ready, and a nil *Counter counts
// nothing.
type Counter struct {
	n    atomic.Int64
	last atomic.Int64 // Unix seconds of the last request; 0: never
	now  func() time.Time
}

// Inc counts one request now. It costs one atomic add, a clock read and,
// at most once a second, an atomic store: no lock, no map lookup.
func (c *Counter) Inc() {
	if c == nil {
		return
	}
	c.n.Add(1)
	clock := c.now
	if clock == nil {
		clock = time.Now
	}
	now := clock().Unix()
	// Storing only on change keeps the cache line shared between cores
	// that count the same operation within one second.
	if c.last.Load() != now {
		c.last.Store(now)
	}
}

// Requests returns the number of requests counted.
func (c *Counter) Requests() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// LastSeen returns when the last request was counted; ok is false when
// none was.
func (c *Counter) LastSeen() (t time.Time, ok bool) {
	if c == nil {
		return time.Time{}, false
	}
	s := c.last.Load()
	if s == 0 {
		return time.Time{}, false
	}
	return time.Unix(s, 0).UTC(), true
}

// counter returns the operation's counter, made on first use: the same
// one for every config that has the operation.
func (r *Registry) counter(k opKey) *Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.counters[k]
	if !ok {
		c = &Counter{now: r.opts.Now}
		r.counters[k] = c
	}
	return c
}

// Catalog is one config's inventory: every spec, its operations and the
// routes that validate against each, bound to the Registry's counters.
// Build it with Registry.Catalog, attach routes with Route while the
// config compiles, then only read it (Snapshot): Route is not safe for
// use concurrently with Snapshot.
type Catalog struct {
	reg   *Registry
	specs []*catalogSpec
}

type catalogSpec struct {
	name, title, version string
	ops                  []*catalogOp
}

type catalogOp struct {
	info    validate.OperationInfo
	routes  []string
	counter *Counter
}

// Catalog lists the specs of cfg (loaded, as after config.Load) with
// their operations, in spec name then path then method order.
func (r *Registry) Catalog(cfg *config.Config) *Catalog {
	cat := &Catalog{reg: r}
	names := make([]string, 0, len(cfg.Specs))
	for name := range cfg.Specs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		spec := cfg.Spec(name)
		if spec == nil {
			continue
		}
		cs := &catalogSpec{name: name, title: spec.Title(), version: spec.Version()}
		for _, info := range spec.Operations() {
			cs.ops = append(cs.ops, &catalogOp{info: info, counter: r.counter(opKey{name, info.Method, info.Path})})
		}
		cat.specs = append(cat.specs, cs)
	}
	return cat
}

// Route records that route validates against op of spec and returns the
// operation's counter; nil when the catalog has no such operation (a nil
// Counter counts nothing).
func (c *Catalog) Route(spec string, op validate.OperationInfo, route string) *Counter {
	if c == nil {
		return nil
	}
	for _, s := range c.specs {
		if s.name != spec {
			continue
		}
		for _, o := range s.ops {
			if o.info.Method == op.Method && o.info.Path == op.Path {
				if !slices.Contains(o.routes, route) {
					o.routes = append(o.routes, route)
				}
				return o.counter
			}
		}
	}
	return nil
}
