package config

// RouteAuthorize is a route's `authorize:` section: object-level rules in
// CEL, every one of which must hold, and the body fields that only some
// principals may write (docs/authorization.md, "Object-level rules",
// "Writable fields", "Policy hook"). At least one of Rules, WritableFields,
// ResponseRules and Policy is given.
type RouteAuthorize struct {
	Rules          []AuthorizeRule          `yaml:"rules" doc:"Named CEL expressions over principal and request; every one must hold. Compiled and type-checked at load. Required unless writable_fields is given."`
	WritableFields map[string]WritableField `yaml:"writable_fields" keys:"^[^.]+(\\.[^.]+)*$" doc:"Request body fields (a member name, or a dotted path into nested objects; through arrays, every element) that only the listed roles or scopes may set."`
	ResponseRules  []ResponseRule           `yaml:"response_rules" doc:"Named CEL expressions over the upstream's 2xx JSON response (response.body, or response.item for each element of items); a whole-body rule that fails replaces the response with the denial, an item rule drops the elements that fail."`
	Policy         string                   `yaml:"policy" doc:"Name of a policy decision point (policies:) that must allow the request too; asked after the rules, with the principal, the request and the route as input."`
	DenyStatus     int                      `yaml:"deny_status" min:"403" doc:"Status of a denial: 403 (forbidden), or 404 so that the answer does not reveal whether the object exists."`
	Mode           Mode                     `yaml:"mode" doc:"Mode of the object-level rules on this route: enforce or report (overrides the route)."`
	Enumeration    *Enumeration             `yaml:"enumeration" doc:"Enumeration detection: a principal (or, without one, a client IP) denied on too many distinct objects of this route within a window is reported, and optionally blocked on the route."`
}

// Enumeration is a route's authorize.enumeration section: how many
// distinct denied object ids (the route's path parameter values) one
// principal or client IP may collect within Window before it is reported
// as enumerating (OWASP API1:2023), and how long it is then refused on
// the route (docs/authorization.md, "Enumeration detection").
type Enumeration struct {
	Threshold   int      `yaml:"threshold" required:"true" min:"2" doc:"Distinct denied object ids within the window that report the key as enumerating (2 to 100)."`
	Window      Duration `yaml:"window" required:"true" doc:"The counting window: it opens at the key's first counted denial and the count starts over when it ends."`
	Block       Duration `yaml:"block" doc:"How long the key is refused on this route once reported; 0 (the default) detects and reports only."`
	BlockStatus int      `yaml:"block_status" min:"403" doc:"Status of a blocked request: 429 (with Retry-After, the default) or 403."`
}

func (e *Enumeration) setDefaults() {
	e.BlockStatus = 429
}

func (a *RouteAuthorize) setDefaults() {
	a.DenyStatus = 403
}

// AuthorizeRule is one named rule.
type AuthorizeRule struct {
	Name string `yaml:"name" required:"true" pattern:"^[A-Za-z0-9_.-]{1,64}$" doc:"Rule name, unique on the route; named in the denial, the audit event and metrics."`
	Expr string `yaml:"expr" required:"true" doc:"CEL expression that must evaluate to true, e.g. request.path.userId == principal.sub."`
}

// WritableField is who may set one body field: a principal holding any
// of the roles or any of the scopes. Both empty: nobody may.
type WritableField struct {
	Roles  []string `yaml:"roles" doc:"Roles of which any one lets the principal set the field."`
	Scopes []string `yaml:"scopes" doc:"Scopes of which any one lets the principal set the field."`
}

// ResponseRule is one named rule over the upstream's response.
type ResponseRule struct {
	Name  string `yaml:"name" required:"true" pattern:"^[A-Za-z0-9_.-]{1,64}$" doc:"Rule name, unique on the route (with the request rules); named in the denial, the audit event and metrics."`
	Expr  string `yaml:"expr" required:"true" doc:"CEL expression that must evaluate to true, e.g. response.body.owner_id == principal.sub."`
	Items string `yaml:"items" pattern:"^\\$(\\.[^.]+)*$" doc:"Path to an array in the response ($ for the body itself, $.invoices, $.data.items): the rule runs on each element as response.item and the elements that fail are dropped."`
}
