package config

// Spec is one entry of `specs:`: an OpenAPI document that routes validate
// against (docs/validation.md).
type Spec struct {
	File Path `yaml:"file" required:"true" doc:"The OpenAPI 3.0 document (YAML or JSON). $refs resolve from local files only."`
	// Deprecations dates the operations the document marks deprecated, by
	// operationId, for the Deprecation, Sunset and Link response headers.
	Deprecations map[string]Deprecation `yaml:"deprecations" doc:"Dates and links of operations the document marks deprecated: true, by operationId. Their responses carry Deprecation (RFC 9745), Sunset (RFC 8594) and Link rel=deprecation headers."`
}

// Deprecation is one entry of a spec's `deprecations:`. Every field is
// optional: an operation marked deprecated in its document gets a
// Deprecation header with or without one (docs/validation.md).
type Deprecation struct {
	Since  Time   `yaml:"since" doc:"When the operation was (or will be) deprecated: the Deprecation header's date. Absent: @0, deprecated at an unknown date."`
	Sunset Time   `yaml:"sunset" doc:"When the operation stops working: the Sunset header (RFC 8594). Absent: no Sunset header."`
	Link   string `yaml:"link" pattern:"^https?://" doc:"A page about the deprecation (migration guide): sent as Link: <url>; rel=\"deprecation\"."`
}

// Validation modes of a route's request and response validation: the
// validation stage's spelling of enforce and report, plus off.
const (
	ValidateEnforce = "enforce"
	ValidateReport  = "report"
	ValidateOff     = "off"
)

// RouteValidate is a route's `validate:` section: OpenAPI validation of the
// request and response, and the JSON threat limits of request bodies.
// Without spec, only the JSON limits apply.
type RouteValidate struct {
	Spec        string     `yaml:"spec" doc:"Name of the spec (under specs:) the route is validated against. Absent: only the JSON limits apply."`
	Operation   string     `yaml:"operation" doc:"operationId of the route's operation; absent, the operation is found by method and path."`
	Request     string     `yaml:"request" enum:"enforce,report,off" doc:"Request validation: enforce (400/415), report (audit and metric only) or off."`
	Response    string     `yaml:"response" enum:"off,report,enforce" doc:"Response validation: off, report, or enforce (a response that breaks the spec becomes a 502)."`
	Strict      bool       `yaml:"strict" doc:"Object schemas without additionalProperties are closed (extra properties refused), readOnly properties are refused in requests and writeOnly ones in responses."`
	StrictQuery bool       `yaml:"strict_query" doc:"Refuse query parameters the operation does not declare."`
	JSON        JSONLimits `yaml:"json" doc:"Threat limits of JSON request bodies, checked while reading, before any decode."`
}

func (v *RouteValidate) setDefaults() {
	v.Request = ValidateEnforce
	v.Response = ValidateOff
	v.Strict = true
	v.JSON.setDefaults()
}

// JSONLimits bounds a JSON request body. Duplicate member names and
// invalid UTF-8 are always refused.
type JSONLimits struct {
	MaxDepth    int  `yaml:"max_depth" min:"1" doc:"Deepest nesting of objects and arrays."`
	MaxMembers  int  `yaml:"max_members" min:"1" doc:"Most members in one object."`
	MaxElements int  `yaml:"max_elements" min:"1" doc:"Most elements in one array."`
	MaxString   Size `yaml:"max_string" doc:"Longest string or member name, in bytes as encoded."`
	MaxSize     Size `yaml:"max_size" doc:"Largest JSON body; absent, the route's body limit (max_body_size)."`
}

func (l *JSONLimits) setDefaults() {
	l.MaxDepth = 32
	l.MaxMembers = 1000
	l.MaxElements = 10000
	l.MaxString = 64 << 10
}
