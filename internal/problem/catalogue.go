package problem

import (
	"net/http"
	"strconv"
)

// Stages that deny, as they appear in metrics and audit events.
const (
	StageEdge      = "edge"
	StageRoute     = "route"
	StageProxy     = "proxy"
	StageAdmin     = "admin"
	StageAuthn     = "authn"
	StageAuthz     = "authz"
	StageRateLimit = "ratelimit"
	StageValidate  = "validate"
	StageFilter    = "filter"
)

// The threats of the edge and routing answers (DESIGN.md "Threats and
// controls"): requests for paths no route serves probe for undocumented
// endpoints (API9, improper inventory); non-canonical paths, ambiguous
// framing, refused upgrades and cross-origin requests are the edge-hygiene
// and smuggling defences (API8, security misconfiguration); header and
// body limits answer resource exhaustion (API4).
const (
	owaspInventory = "API9:2023"
	owaspMisconfig = "API8:2023"
	owaspResources = "API4:2023"
)

func nistInventory() []string { return []string{"CM-7", "CM-8"} }
func nistMisconfig() []string { return []string{"CM-6", "SI-10", "SC-8"} }
func nistResources() []string { return []string{"SC-5", "SI-10"} }

// NotFound is the answer for a path that matches no route.
func NotFound() Problem {
	return Problem{Status: http.StatusNotFound, Slug: "not-found", Title: "Not Found",
		Detail: "No route matches this path.", Stage: StageRoute, Reason: "no_route", Protocol: true,
		OWASP: owaspInventory, NIST: nistInventory()}
}

// Undocumented is the answer for a request under the path prefix of a
// spec that drives routes (routes_from_spec) that no route takes: an
// operation the spec does not document, a shadow endpoint. Like NotFound
// it always enforces: there is no route to let it through to.
func Undocumented() Problem {
	return Problem{Status: http.StatusNotFound, Slug: "undocumented-endpoint", Title: "Not Found",
		Detail: "No documented operation matches this path.", Stage: StageRoute, Reason: "undocumented", Protocol: true,
		OWASP: owaspInventory, NIST: nistInventory()}
}

// MethodNotAllowed is the answer for a path whose routes do not accept the
// method; allow lists the methods that they do accept.
func MethodNotAllowed(allow string) Problem {
	return Problem{Status: http.StatusMethodNotAllowed, Slug: "method-not-allowed", Title: "Method Not Allowed",
		Detail: "This path does not accept this method.", Stage: StageRoute, Reason: "method_not_allowed",
		Header: http.Header{"Allow": {allow}}, Protocol: true, OWASP: owaspInventory, NIST: nistInventory()}
}

// NonCanonicalPath is the answer for a request path that is not in
// canonical form (dot segments, encoded separators, invalid UTF-8, ...).
// reason is a bounded snake_case label naming the class; detail is a fixed,
// safe sentence that never quotes the path.
func NonCanonicalPath(reason, detail string) Problem {
	return badRequest("non-canonical-path", reason, detail)
}

// BadFraming is the answer for a request whose message framing is
// ambiguous (Transfer-Encoding other than chunked, or with Content-Length).
func BadFraming(reason, detail string) Problem {
	return badRequest("bad-framing", reason, detail)
}

// BadHost is the redirect listener's answer for a request without a valid
// Host to redirect to.
func BadHost() Problem {
	return badRequest("bad-host", "bad_host", "The request has no valid Host to redirect to.")
}

func badRequest(slug, reason, detail string) Problem {
	return Problem{Status: http.StatusBadRequest, Slug: slug, Title: "Bad Request",
		Detail: detail, Stage: StageEdge, Reason: reason, Protocol: true, OWASP: owaspMisconfig, NIST: nistMisconfig()}
}

// HeadersTooLarge is the answer for too many header fields.
func HeadersTooLarge() Problem {
	return Problem{Status: http.StatusRequestHeaderFieldsTooLarge, Slug: "headers-too-large",
		Title: "Request Header Fields Too Large", Detail: "The request has too many header fields.",
		Stage: StageEdge, Reason: "too_many_headers", Protocol: true, OWASP: owaspResources, NIST: nistResources()}
}

// BodyTooLarge is the answer for a request body over the route's limit. It
// is the one edge denial that report mode can let through.
func BodyTooLarge() Problem {
	return Problem{Status: http.StatusRequestEntityTooLarge, Slug: "body-too-large",
		Title: "Content Too Large", Detail: "The request body is larger than this route accepts.",
		Stage: StageEdge, Reason: "body_too_large", OWASP: owaspResources, NIST: nistResources()}
}

// UpgradeRefused is the answer for an Upgrade (WebSocket) request on a
// route that does not allow it.
func UpgradeRefused() Problem {
	return Problem{Status: http.StatusBadRequest, Slug: "upgrade-not-allowed", Title: "Bad Request",
		Detail: "This route does not accept protocol upgrades.", Stage: StageEdge, Reason: "upgrade_not_allowed",
		OWASP: owaspMisconfig, NIST: nistMisconfig()}
}

// UpgradeUnsupported is the answer for an upgrade to a protocol other than
// WebSocket (h2c, ...). It always enforces: a tunnel opened through the
// gateway would carry requests that no route's chain sees.
func UpgradeUnsupported() Problem {
	return Problem{Status: http.StatusBadRequest, Slug: "upgrade-unsupported", Title: "Bad Request",
		Detail: "Only WebSocket upgrades are supported.", Stage: StageEdge, Reason: "upgrade_unsupported", Protocol: true,
		OWASP: owaspMisconfig, NIST: nistMisconfig()}
}

// CORSRefused is the answer for a preflight or cross-origin request that the
// route's CORS policy does not allow.
func CORSRefused() Problem {
	return Problem{Status: http.StatusForbidden, Slug: "cors-refused", Title: "Forbidden",
		Detail: "The cross-origin request is not allowed by this route's policy.", Stage: StageEdge, Reason: "cors_refused",
		OWASP: owaspMisconfig, NIST: nistMisconfig()}
}

// BadGateway is the answer when the upstream could not be reached or
// answered with something that is not HTTP.
func BadGateway() Problem {
	return Problem{Status: http.StatusBadGateway, Slug: "bad-gateway", Title: "Bad Gateway",
		Detail: "The upstream service could not be reached.", Stage: StageProxy, Reason: "upstream_error"}
}

// GatewayTimeout is the answer when the upstream did not answer in time.
func GatewayTimeout() Problem {
	return Problem{Status: http.StatusGatewayTimeout, Slug: "gateway-timeout", Title: "Gateway Timeout",
		Detail: "The upstream service did not answer in time.", Stage: StageProxy, Reason: "upstream_timeout"}
}

// AdminForbidden is the admin listener's answer to a peer outside
// admin.allow.
func AdminForbidden() Problem {
	return Problem{Status: http.StatusForbidden, Slug: "admin-forbidden", Title: "Forbidden",
		Detail: "This address may not use the admin endpoints.", Stage: StageAdmin, Reason: "admin_forbidden"}
}

// AdminUnauthorized is the admin listener's answer to a request without
// the configured admin token.
func AdminUnauthorized() Problem {
	return Problem{Status: http.StatusUnauthorized, Slug: "admin-unauthorized", Title: "Unauthorized",
		Detail: "The admin endpoints require a bearer token.", Stage: StageAdmin, Reason: "admin_unauthorized",
		Header: http.Header{"Www-Authenticate": {`Bearer realm="bulwark-admin"`}}}
}

// Internal is the answer for a recovered panic: no detail at all.
func Internal() Problem {
	return Problem{Status: http.StatusInternalServerError, Slug: "internal", Title: "Internal Server Error",
		Detail: "The gateway failed to handle this request.", Stage: StageEdge, Reason: "internal_error"}
}

// Unauthenticated is the answer for a request without credentials, or with
// credentials that were refused. reason is the bounded label of the
// failure; detail a coarse, safe sentence; challenges the WWW-Authenticate
// values (RFC 6750: no error parameter when credentials were absent).
func Unauthenticated(reason, detail string, challenges []string) Problem {
	owasp, nist := "API2:2023", []string{"IA-2", "IA-5", "AC-7"}
	if tokenTheft[reason] {
		nist = []string{"SC-23", "AC-12", "IA-5"}
	}
	return Problem{Status: http.StatusUnauthorized, Slug: "unauthenticated", Title: "Unauthorized",
		Detail: detail, Stage: StageAuthn, Reason: reason, Header: http.Header{"Www-Authenticate": challenges},
		OWASP: owasp, NIST: nist}
}

// tokenTheft are the authentication failures that stop a stolen or
// replayed credential (DESIGN.md "token theft and replay").
var tokenTheft = map[string]bool{
	"revoked": true, "certificate_mismatch": true, "dpop_missing": true, "dpop_invalid": true,
	"dpop_replayed": true, "dpop_key_mismatch": true, "dpop_required": true, "dpop_unsupported": true,
	"expired": true, "too_long_lived": true,
}

// BadCredentialRequest is the answer for a malformed authentication request
// (two Authorization headers, a token in two places, a query-string token on
// a route that does not take one): 400 with error="invalid_request".
func BadCredentialRequest(reason, detail string, challenges []string) Problem {
	return Problem{Status: http.StatusBadRequest, Slug: "invalid-credential-request", Title: "Bad Request",
		Detail: detail, Stage: StageAuthn, Reason: reason, Header: http.Header{"Www-Authenticate": challenges},
		OWASP: "API2:2023", NIST: []string{"IA-2", "IA-5"}}
}

// AuthUnavailable is the answer when an authenticator cannot decide (keys
// never loaded, introspection endpoint down): the gateway fails closed.
func AuthUnavailable(reason string) Problem {
	return Problem{Status: http.StatusServiceUnavailable, Slug: "authentication-unavailable", Title: "Service Unavailable",
		Detail: "The credential cannot be verified right now; try again later.", Stage: StageAuthn, Reason: reason,
		Header: http.Header{"Retry-After": {"5"}}, OWASP: "API2:2023", NIST: []string{"IA-2", "IA-5"}}
}

// InsufficientScope is the answer for a principal that lacks a scope the
// route requires (RFC 6750 error="insufficient_scope").
func InsufficientScope(challenge string) Problem {
	return Problem{Status: http.StatusForbidden, Slug: "insufficient-scope", Title: "Forbidden",
		Detail: "The access token does not grant the scopes this route requires.", Stage: StageAuthz,
		Reason: "insufficient_scope", Header: http.Header{"Www-Authenticate": {challenge}},
		OWASP: "API5:2023", NIST: []string{"AC-3", "AC-6"}}
}

// InsufficientPrivileges is the answer when the principal lacks a role or
// a claim value the route requires (require.roles, require.claims). reason
// is missing_role or claim_mismatch; the challenge is the route's
// insufficient_scope one, as RFC 6750 has no other error for it.
func InsufficientPrivileges(reason, challenge string) Problem {
	return Problem{Status: http.StatusForbidden, Slug: "insufficient-privileges", Title: "Forbidden",
		Detail: "The caller does not hold the roles or attributes this route requires.", Stage: StageAuthz,
		Reason: reason, Header: http.Header{"Www-Authenticate": {challenge}},
		OWASP: "API5:2023", NIST: []string{"AC-3", "AC-6"}}
}

// ObjectForbidden is the answer when an object-level rule (authorize.rules)
// does not hold or cannot be evaluated; rule is its name. With status 404
// the body is the router's NotFound, word for word, so that the answer
// does not reveal whether the object exists; the decision still says
// stage authz, reason rule_denied.
func ObjectForbidden(rule string, status int) Problem {
	p := Problem{Status: http.StatusForbidden, Slug: "forbidden", Title: "Forbidden",
		Detail: "The caller may not access this object."}
	if status == http.StatusNotFound {
		p = NotFound()
		p.Protocol = false
	}
	p.Stage, p.Reason, p.Rule = StageAuthz, "rule_denied", rule
	p.OWASP, p.NIST = "API1:2023", []string{"AC-3", "AC-6"}
	return p
}

// PolicyDenied is the answer when the route's policy decision point
// (authorize.policy) denies the request: 403, or with deny_status 404
// the answer of an unknown route. rule is "policy:<name>". A 403 carries
// the policy's reason, when it gave one (printable ASCII, bounded); a
// 404 never does, so that it reveals nothing.
func PolicyDenied(rule string, status int, reason string) Problem {
	p := Problem{Status: http.StatusForbidden, Slug: "forbidden", Title: "Forbidden",
		Detail: "The authorization policy denies this request."}
	if reason != "" {
		p.Detail = "The authorization policy denies this request: " + reason
	}
	if status == http.StatusNotFound {
		p = NotFound()
		p.Protocol = false
	}
	p.Stage, p.Reason, p.Rule = StageAuthz, "policy_denied", rule
	p.OWASP, p.NIST = "API1:2023", []string{"AC-3", "AC-6"}
	return p
}

// PolicyUnavailable is the answer when the route's policy decision point
// gives no decision (timeout, error, unexpected answer, circuit breaker
// open): the request is refused (fail closed) with 503, or 403 as
// policies.<name>.error_status says.
func PolicyUnavailable(rule string, status int) Problem {
	p := Problem{Status: http.StatusServiceUnavailable, Slug: "policy-unavailable", Title: "Service Unavailable",
		Detail: "Authorization could not be decided; the request is refused."}
	if status == http.StatusForbidden {
		p.Status, p.Title = http.StatusForbidden, "Forbidden"
	}
	p.Stage, p.Reason, p.Rule = StageAuthz, "policy_unavailable", rule
	p.OWASP, p.NIST = "API1:2023", []string{"AC-3", "AC-6"}
	return p
}

// FieldNotWritable is the answer when a request body sets a field of the
// route's authorize.writable_fields that the principal may not write
// (broken object property level authorization). The detail names the
// field path (from the config), never the value.
func FieldNotWritable(field string) Problem {
	return Problem{Status: http.StatusForbidden, Slug: "field-not-writable", Title: "Forbidden",
		Detail: "The caller may not write the field " + strconv.Quote(field) + ".", Stage: StageAuthz,
		Reason: "field_not_writable", Rule: field, OWASP: "API3:2023", NIST: []string{"AC-3", "AC-6"}}
}

// EnumerationBlocked is the answer to a principal (or client IP) that the
// route's enumeration detection caught collecting denials on many
// distinct objects and still blocks: 429 with Retry-After (retry seconds)
// or 403, as authorize.enumeration.block_status says.
func EnumerationBlocked(status int, retry int64) Problem {
	p := Problem{Status: http.StatusTooManyRequests, Slug: "enumeration-blocked", Title: "Too Many Requests",
		Detail: "Too many requests for objects the caller may not access; retry after the delay in Retry-After.",
		Header: http.Header{"Retry-After": {strconv.FormatInt(retry, 10)}}}
	if status == http.StatusForbidden {
		p = Problem{Status: http.StatusForbidden, Slug: "enumeration-blocked", Title: "Forbidden",
			Detail: "Too many requests for objects the caller may not access."}
	}
	p.Stage, p.Reason, p.OWASP, p.NIST = StageAuthz, "enumeration_blocked", "API1:2023", []string{"AC-3", "AC-6"}
	return p
}

// ParameterPollution is the answer to a request that repeats a query
// parameter or header that an object-level rule reads: the rule and the
// upstream could read different values. It always enforces.
func ParameterPollution() Problem {
	return Problem{Status: http.StatusBadRequest, Slug: "parameter-pollution", Title: "Bad Request",
		Detail: "A query parameter or header that authorization reads is repeated.", Stage: StageAuthz,
		Reason: "parameter_pollution", Protocol: true, OWASP: "API1:2023", NIST: []string{"AC-3", "SI-10"}}
}

// MethodOverride is the answer to a request whose query carries _method,
// which some frameworks read as the request's method: a client could reach
// a function its route does not allow (broken function level
// authorization). It always enforces.
func MethodOverride() Problem {
	return Problem{Status: http.StatusBadRequest, Slug: "method-override", Title: "Bad Request",
		Detail: "Method override parameters are not accepted.", Stage: StageEdge, Reason: "method_override",
		Protocol: true, OWASP: "API5:2023", NIST: []string{"AC-3", "AC-6"}}
}

// TooManyRequests is the answer for a request over a rate limit. layer is
// the reason (global, per_ip, plan, quota, route, auth_failures), rule the
// policy's name; retry is the Retry-After delay in whole seconds.
func TooManyRequests(layer, rule string, retry int64) Problem {
	return Problem{Status: http.StatusTooManyRequests, Slug: "rate-limited", Title: "Too Many Requests",
		Detail: "The request exceeds a rate limit; retry after the delay in Retry-After.", Stage: StageRateLimit,
		Reason: layer, Rule: rule, Header: http.Header{"Retry-After": {strconv.FormatInt(retry, 10)}},
		OWASP: "API4:2023", NIST: []string{"SC-5", "AC-10"}}
}

// RateLimitUnavailable is the answer when the rate-limit store cannot be
// reached and rate_limits.failure_mode is closed.
func RateLimitUnavailable() Problem {
	return Problem{Status: http.StatusServiceUnavailable, Slug: "rate-limit-unavailable", Title: "Service Unavailable",
		Detail: "Rate limits cannot be checked right now; try again later.", Stage: StageRateLimit,
		Reason: "store_unavailable", Header: http.Header{"Retry-After": {"1"}}, OWASP: "API4:2023", NIST: []string{"SC-5"}}
}

// The threats of the validation and response stages: request bodies and
// parameters that break the schema are mass assignment and property-level
// attacks (API3); JSON bombs exhaust resources (API4); responses that break
// the spec are unsafe consumption of the upstream (API10); leaking fields
// are excessive data exposure (API3).
const (
	owaspProperty    = "API3:2023"
	owaspConsumption = "API10:2023"
)

func nistInput() []string    { return []string{"SI-10"} }
func nistExposure() []string { return []string{"SI-15", "AC-4"} }
func nistUpstream() []string { return []string{"SI-10", "AC-20", "SR-3"} }

// InvalidRequest is the answer to a request that breaks its operation in
// the OpenAPI document. reason is a bounded label; detail names the field
// and the rule broken, never the submitted value.
func InvalidRequest(reason, detail string) Problem {
	return Problem{Status: http.StatusBadRequest, Slug: "invalid-request", Title: "Bad Request",
		Detail: detail, Stage: StageValidate, Reason: reason, OWASP: owaspProperty, NIST: nistInput()}
}

// UnsupportedMediaType is the answer to a body whose Content-Type the
// operation does not declare.
func UnsupportedMediaType() Problem {
	return Problem{Status: http.StatusUnsupportedMediaType, Slug: "unsupported-media-type", Title: "Unsupported Media Type",
		Detail: "The request body's Content-Type is not one this operation accepts.", Stage: StageValidate,
		Reason: "content_type", OWASP: owaspProperty, NIST: nistInput()}
}

// JSONRefused is the answer to a JSON body that crosses a threat limit
// (depth, members, elements, string length, size), repeats a member name
// or is not valid JSON. It is a protocol defence: it always enforces.
func JSONRefused(reason, detail string) Problem {
	return Problem{Status: http.StatusBadRequest, Slug: "invalid-json", Title: "Bad Request",
		Detail: detail, Stage: StageValidate, Reason: reason, Protocol: true,
		OWASP: owaspResources, NIST: nistResources()}
}

// InvalidResponse replaces an upstream response that breaks the OpenAPI
// document when response validation enforces.
func InvalidResponse(reason string) Problem {
	return Problem{Status: http.StatusBadGateway, Slug: "invalid-upstream-response", Title: "Bad Gateway",
		Detail: "The upstream service answered with a response this API does not declare.", Stage: StageValidate,
		Reason: reason, OWASP: owaspConsumption, NIST: nistUpstream()}
}

// UpstreamFailed replaces the body of an upstream 5xx answer (stack
// traces, SQL errors) with a generic problem of the same status. header
// carries Retry-After when the upstream sent one.
func UpstreamFailed(status int, header http.Header) Problem {
	title := http.StatusText(status)
	if title == "" {
		title = "Upstream Error"
	}
	return Problem{Status: status, Slug: "upstream-error", Title: title,
		Detail: "The upstream service failed to handle the request.", Stage: StageProxy, Reason: "upstream_status", Header: header}
}

// ResponseTooLarge is the answer when a route's response stages need the
// upstream body and it is larger than server.max_response_buffer.
func ResponseTooLarge() Problem {
	return Problem{Status: http.StatusBadGateway, Slug: "upstream-response-too-large", Title: "Bad Gateway",
		Detail: "The upstream response is too large for this route's response checks.", Stage: StageProxy, Reason: "response_too_large"}
}

// UnreadableResponse is the answer when the upstream body could not be
// read or decoded (an unknown Content-Encoding, a corrupt gzip stream).
func UnreadableResponse() Problem {
	return Problem{Status: http.StatusBadGateway, Slug: "unreadable-upstream-response", Title: "Bad Gateway",
		Detail: "The upstream response could not be read.", Stage: StageProxy, Reason: "response_unreadable"}
}

// ResponseNotFiltered is the answer when a filtered route's upstream
// response cannot be filtered (not JSON, not valid JSON): it fails closed.
func ResponseNotFiltered(reason string) Problem {
	return Problem{Status: http.StatusBadGateway, Slug: "unfilterable-upstream-response", Title: "Bad Gateway",
		Detail: "The upstream response could not be checked for this route.", Stage: StageFilter, Reason: reason,
		OWASP: owaspProperty, NIST: nistExposure()}
}

// SensitiveData is the answer when a response carries values that look
// like card numbers, tokens or keys on a route that blocks them.
func SensitiveData() Problem {
	return Problem{Status: http.StatusBadGateway, Slug: "sensitive-data-blocked", Title: "Bad Gateway",
		Detail: "The upstream response carried sensitive data and was withheld.", Stage: StageFilter,
		Reason: "sensitive_data", OWASP: owaspProperty, NIST: nistExposure()}
}

// NoView is the answer when a route filters by views and the principal
// holds the roles or scopes of none, and the route has no default.
func NoView() Problem {
	return Problem{Status: http.StatusForbidden, Slug: "no-view", Title: "Forbidden",
		Detail: "No view of this resource is granted to the caller.", Stage: StageFilter, Reason: "no_view",
		OWASP: owaspProperty, NIST: []string{"AC-3", "AC-4"}}
}
