package config

// Responses is the top-level `response:` section: how every route treats
// upstream responses (docs/response-filtering.md).
type Responses struct {
	UpstreamErrors string   `yaml:"upstream_errors" enum:"mask,pass" doc:"mask: an upstream 5xx body (stack traces, SQL errors) is replaced by a generic problem with the same status; pass: relayed as is. Routes may override."`
	StripHeaders   []string `yaml:"strip_headers" doc:"Response headers that fingerprint the upstream, removed from every response."`
	HashKey        Secret   `yaml:"hash_key" doc:"HMAC key (at least 32 bytes; write it as ${ENV_VAR}) of the hash mask strategy, shared by all routes so hashed values stay joinable."`
}

func (r *Responses) setDefaults() {
	r.UpstreamErrors = "mask"
	r.StripHeaders = []string{"Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version",
		"X-Runtime", "X-Version", "X-Generator", "X-Drupal-Cache", "X-Drupal-Dynamic-Cache", "X-Backend-Server", "X-Served-By"}
}

// RouteResponse is a route's `response:` section: field filtering of JSON
// responses, sensitive-data detection and upstream error masking.
type RouteResponse struct {
	Allow          []string          `yaml:"allow" doc:"Paths kept (everything else is dropped), e.g. $.id, $.orders[*].id."`
	Deny           []string          `yaml:"deny" doc:"Paths removed, e.g. $.password, $..secret. Deny wins over allow and mask."`
	Mask           map[string]string `yaml:"mask" doc:"Paths whose value is replaced: redact (\"***\"), last4 or hash (keyed HMAC)."`
	Preset         string            `yaml:"preset" enum:"sensitive" doc:"sensitive: remove passwords, secrets, tokens, API keys, SSNs and card numbers by field name, at any depth."`
	Views          []ResponseView    `yaml:"views" doc:"Allow-lists chosen by the principal's roles or scopes; the first matching view wins, none matching uses allow (no allow: 403)."`
	Headers        ResponseHeaders   `yaml:"headers" doc:"Response header removal on this route."`
	Detect         string            `yaml:"detect" enum:"off,report,block" doc:"Scan responses for card numbers, JWTs, private keys and well-known secrets: report (metric and audit mark) or block (502)."`
	NonJSON        string            `yaml:"non_json" enum:"fail,pass" doc:"A response that is not JSON on a filtered route: fail (502) or pass unfiltered."`
	UpstreamErrors string            `yaml:"upstream_errors" enum:"mask,pass" doc:"Overrides response.upstream_errors for this route."`
	Mode           Mode              `yaml:"mode" doc:"enforce, or report: filter decisions are audited but the response passes unchanged."`
}

func (r *RouteResponse) setDefaults() {
	r.Detect = "off"
	r.NonJSON = "fail"
}

// Filters reports whether the section filters or scans bodies (and so
// needs the buffered response).
func (r *RouteResponse) Filters() bool {
	return len(r.Allow) > 0 || len(r.Deny) > 0 || len(r.Mask) > 0 || r.Preset != "" || len(r.Views) > 0 || r.Detect != "off"
}

// ResponseView is one per-role or per-scope allow-list.
type ResponseView struct {
	When  ViewCondition `yaml:"when" required:"true" doc:"Who sees this view."`
	Allow []string      `yaml:"allow" required:"true" doc:"Paths this view keeps."`
}

// ViewCondition selects a view: the principal holds any of the roles, or
// any of the scopes (both given: one of each).
type ViewCondition struct {
	Roles  []string `yaml:"roles" doc:"Any one of these roles selects the view."`
	Scopes []string `yaml:"scopes" doc:"Any one of these scopes selects the view."`
}

// ResponseHeaders is a route's header removal.
type ResponseHeaders struct {
	Remove []string `yaml:"remove" doc:"Extra response headers removed on this route."`
}
