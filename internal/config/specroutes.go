package config

// SpecRoutes is one entry of `routes_from_spec:`: a spec whose operations
// become routes to one upstream (docs/configuration.md "Routes from a
// spec"). The loader expands it into ordinary routes, appended to
// Config.Routes after the explicit ones, before any route is checked: each
// operation's route takes its authenticators and required scopes from the
// spec's security, mapped to authenticators by scheme name. An explicit
// route with the same method and path replaces the operation's route. Every
// other request under the spec's path prefix is undocumented: the gateway
// answers it 404 without calling the upstream (Config.Undocumented).
type SpecRoutes struct {
	Spec        string         `yaml:"spec" required:"true" doc:"Name of the spec (under specs:) whose operations become routes."`
	Upstream    string         `yaml:"upstream" required:"true" doc:"Name of the upstream every generated route proxies to."`
	AllowPublic bool           `yaml:"allow_public" doc:"Serve operations whose spec security is empty (security: []) without authentication; false makes them a config error."`
	NamePrefix  string         `yaml:"name_prefix" doc:"Prefix of the generated route names (operationId, else method and path)."`
	PathPrefix  string         `yaml:"path_prefix" doc:"Path prefix of every generated route and of the catch-all; absent, the path of the spec's servers[].url; \"\" or / for none."`
	Mode        Mode           `yaml:"mode" doc:"Mode of the generated routes' stages: enforce or report (overrides the top level)."`
	Validate    SpecValidate   `yaml:"validate" doc:"OpenAPI validation of every generated route, against its own operation."`
	Response    *RouteResponse `yaml:"response" doc:"Response rules of every generated route (the keys of routes[].response)."`

	// Set by the loader when the entry expands.
	undocumented Undocumented
	generated    []generatedRoute
	warnings     []Error
}

func (s *SpecRoutes) setDefaults() {
	s.Validate.setDefaults()
}

// SpecValidate is the `validate:` section of a routes_from_spec entry: a
// route's validate section without spec and operation, which every
// generated route fills in with its own.
type SpecValidate struct {
	Request     string     `yaml:"request" enum:"enforce,report,off" doc:"Request validation: enforce (400/415), report (audit and metric only) or off."`
	Response    string     `yaml:"response" enum:"off,report,enforce" doc:"Response validation: off, report, or enforce (a response that breaks the spec becomes a 502)."`
	Strict      bool       `yaml:"strict" doc:"Object schemas without additionalProperties are closed (extra properties refused), readOnly properties are refused in requests and writeOnly ones in responses."`
	StrictQuery bool       `yaml:"strict_query" doc:"Refuse query parameters the operation does not declare."`
	JSON        JSONLimits `yaml:"json" doc:"Threat limits of JSON request bodies, checked while reading, before any decode."`
}

func (v *SpecValidate) setDefaults() {
	var rv RouteValidate
	rv.setDefaults()
	v.Request, v.Response, v.Strict, v.StrictQuery, v.JSON = rv.Request, rv.Response, rv.Strict, rv.StrictQuery, rv.JSON
}

// Undocumented is the catch-all of one routes_from_spec entry: every
// request under Prefix that no route takes is undocumented for the spec.
type Undocumented struct {
	// Name labels the catch-all's requests in metrics and audit events:
	// "<spec>.undocumented".
	Name string
	// Spec and Upstream are the entry's.
	Spec     string
	Upstream string
	// Prefix is the path prefix the catch-all covers ("/v1" covers /v1 and
	// /v1/...); "" covers every path.
	Prefix string
}

// generatedRoute remembers where a generated route came from, so that a
// problem found in it is reported at its entry and names its operation.
type generatedRoute struct {
	index int    // in Config.Routes
	label string // "getOrder (GET /orders/{id})"
}

// Undocumented returns the catch-alls of routes_from_spec, one per entry,
// in file order; nil without routes_from_spec. The slice is a copy.
func (c *Config) Undocumented() []Undocumented {
	var out []Undocumented
	for _, s := range c.RoutesFromSpec {
		if s.undocumented.Name != "" {
			out = append(out, s.undocumented)
		}
	}
	return out
}

// GeneratedBy returns the routes_from_spec entry (its index) that created
// Routes[i], and false for a route written in routes:.
func (c *Config) GeneratedBy(i int) (entry int, ok bool) {
	for e, s := range c.RoutesFromSpec {
		for _, g := range s.generated {
			if g.index == i {
				return e, true
			}
		}
	}
	return 0, false
}
