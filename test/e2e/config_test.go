package e2e

import (
	"fmt"
	"strings"
)

// baseConfig returns a config with loopback listeners on free ports, the
// given upstream URL as "api", and routes (YAML list items, indented by
// the caller with two spaces).
func baseConfig(upstreamURL string, routes ...string) string {
	return fmt.Sprintf(`server:
  listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
log:
  level: debug
upstreams:
  api:
    url: %q
routes:
%s
`, upstreamURL, strings.Join(routes, "\n"))
}

// route is one `auth: none` route to the "api" upstream, as a YAML list item.
func route(name, method, path string, extra ...string) string {
	s := fmt.Sprintf("  - name: %s\n    method: %s\n    path: %q\n    upstream: api\n    auth: none", name, method, path)
	for _, e := range extra {
		s += "\n    " + e
	}
	return s
}
