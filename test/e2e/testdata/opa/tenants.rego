# The policy of the e2e policy-hook tests (authorize_policy_test.go), run
# by a real OPA server. The gateway's input document is
# {principal: {sub, consumer, scopes, roles, claims, ...},
#  request: {method, path (the route's path parameters), query, headers, body},
#  route: {name, path, upstream}}.
package bulwark.authz

import rego.v1

# decision answers {"allow": bool, "reason": "..."}: a principal reads the
# documents of its own tenant, writes there only documents it owns, and an
# admin reads every tenant.
default decision := {"allow": false, "reason": "the principal is not a member of this tenant"}

decision := {"allow": true} if allowed

allowed if {
	input.request.method == "GET"
	input.principal.claims.tenant == input.request.path.tenant
}

allowed if {
	input.request.method == "POST"
	input.principal.claims.tenant == input.request.path.tenant
	input.request.body.owner == input.principal.sub
}

allowed if {
	input.request.method == "GET"
	"admin" in input.principal.roles
}

# allow is the same decision as a plain boolean.
default allow := false

allow if allowed

# slow asks a server that takes its time before it decides.
slow if {
	resp := http.send({"method": "GET", "url": opa.runtime().env.BULWARK_TEST_SLOW_URL, "timeout": "10s"})
	resp.status_code == 200
}

# bad is not a decision.
bad := "yes"
