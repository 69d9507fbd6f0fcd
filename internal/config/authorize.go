package config

// RouteAuthorize is a route's `authorize:` section: object-level rules in
// CEL, every one of which must hold (docs/authorization.md, "Object-level
// rules").
type RouteAuthorize struct {
	Rules      []AuthorizeRule `yaml:"rules" required:"true" doc:"Named CEL expressions over principal and request; every one must hold. Compiled and type-checked at load."`
	DenyStatus int             `yaml:"deny_status" min:"403" doc:"Status of a denial: 403 (forbidden), or 404 so that the answer does not reveal whether the object exists."`
	Mode       Mode            `yaml:"mode" doc:"Mode of the object-level rules on this route: enforce or report (overrides the route)."`
}

func (a *RouteAuthorize) setDefaults() {
	a.DenyStatus = 403
}

// AuthorizeRule is one named rule.
type AuthorizeRule struct {
	Name string `yaml:"name" required:"true" pattern:"^[A-Za-z0-9_.-]{1,64}$" doc:"Rule name, unique on the route; named in the denial, the audit event and metrics."`
	Expr string `yaml:"expr" required:"true" doc:"CEL expression that must evaluate to true, e.g. request.path.userId == principal.sub."`
}
