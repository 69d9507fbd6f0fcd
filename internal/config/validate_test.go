package config

import (
	"strings"
	"testing"
)

func TestValidateServer(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	notPEM := writeFile(t, t.TempDir(), "ca.txt", "not a certificate\n")
	env := map[string]string{
		"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile,
		"OTHER_KEY": other.keyFile, "NOT_PEM": notPEM, "MISSING": p.certFile + ".missing",
	}
	// tlsWith returns a config with server.tls on line 2 and extra on
	// line 5.
	tlsWith := func(extra string) string {
		return lines("server:", "  tls:", "    cert_file: ${CERT}", "    key_file: ${KEY}", "    "+extra, minimal)
	}
	runErrorCases(t, withEnv(env, []errorCase{
		{name: "listen without port", src: lines("server:", "  listen: localhost", minimal), want: "2:11: server.listen", msg: "must be host:port"},
		{name: "listen port out of range", src: lines("server:", "  listen: \":99999\"", minimal), want: "2:11: server.listen", msg: "invalid port"},
		{name: "listen named port", src: lines("server:", "  listen: \":http\"", minimal), want: "2:11: server.listen", msg: "invalid port"},
		{name: "listen bad host", src: lines("server:", "  listen: \"bad host:80\"", minimal), want: "2:11: server.listen", msg: "invalid host"},
		{name: "admin on the server port", src: lines("admin:", "  listen: \"0.0.0.0:8080\"", minimal), want: "2:11: admin.listen", msg: "uses the same port as server.listen"},
		{name: "max_body_size 0", src: lines("server:", "  max_body_size: 0", minimal), want: "2:18: server.max_body_size", msg: "must be greater than 0"},
		{name: "max_header_bytes 0", src: lines("server:", "  max_header_bytes: 0KiB", minimal), want: "2:21: server.max_header_bytes", msg: "must be greater than 0"},
		{name: "max_header_count 0", src: lines("server:", "  max_header_count: 0", minimal), want: "2:21: server.max_header_count", msg: "must be greater than 0"},
		{name: "max_response_buffer 0", src: lines("server:", "  max_response_buffer: 0", minimal), want: "2:24: server.max_response_buffer", msg: "must be greater than 0"},
		{name: "read_header_timeout 0", src: lines("server:", "  read_header_timeout: 0s", minimal), want: "2:24: server.read_header_timeout", msg: "must be greater than 0"},
		{name: "idle_timeout 0", src: lines("server:", "  idle_timeout: 0s", minimal), want: "2:17: server.idle_timeout", msg: "must be greater than 0"},
		{name: "identity header not a token", src: lines("server:", "  identity_headers: [\"X User\"]", minimal), want: "2:22: server.identity_headers[0]", msg: "not a valid header name"},
		{name: "tls without cert_file", src: lines("server:", "  tls:", "    key_file: ${KEY}", minimal), want: "3:5: server.tls.cert_file", msg: "is required with server.tls"},
		{name: "tls without key_file", src: lines("server:", "  tls: { cert_file: \"${CERT}\" }", minimal), want: "2:8: server.tls.key_file", msg: "is required with server.tls"},
		{name: "tls key does not match", src: lines("server:", "  tls:", "    cert_file: ${CERT}", "    key_file: ${OTHER_KEY}", minimal), want: "3:16: server.tls.cert_file", msg: "cannot load the certificate and key: tls: private key does not match public key"},
		{name: "tls cert missing", src: lines("server:", "  tls:", "    cert_file: ${MISSING}", "    key_file: ${KEY}", minimal), want: "3:16: server.tls.cert_file", msg: "cannot read the certificate: no such file or directory"},
		{name: "tls key missing", src: lines("server:", "  tls:", "    cert_file: ${CERT}", "    key_file: ${MISSING}", minimal), want: "4:15: server.tls.key_file", msg: "cannot read the key: no such file or directory"},
		{name: "tls key is not a key", src: lines("server:", "  tls:", "    cert_file: ${CERT}", "    key_file: ${CA}", minimal), want: "3:16: server.tls.cert_file", msg: "cannot load the certificate and key: tls:"},
		{name: "tls min_version", src: tlsWith("min_version: \"1.1\""), want: "5:18: server.tls.min_version", msg: `must be "1.2" or "1.3"`},
		{name: "tls client_auth without CA", src: tlsWith("client_auth: require"), want: "5:18: server.tls.client_auth", msg: "needs client_ca_file"},
		{name: "tls client_auth value", src: lines("server:", "  tls:", "    cert_file: ${CERT}", "    key_file: ${KEY}", "    client_ca_file: ${CA}", "    client_auth: optional", minimal), want: "6:18: server.tls.client_auth", msg: "must be request or require"},
		{name: "tls client CA not PEM", src: tlsWith("client_ca_file: ${NOT_PEM}"), want: "5:21: server.tls.client_ca_file", msg: "the CA file holds no PEM certificate"},
		{name: "tls reload_interval 0", src: tlsWith("reload_interval: 0s"), want: "5:22: server.tls.reload_interval", msg: "must be greater than 0"},
		{name: "http_redirect without tls", src: lines("server:", "  http_redirect: { listen: \":8081\" }", minimal), want: "2:18: server.http_redirect", msg: "needs server.tls"},
		{name: "http_redirect without listen", src: lines("server:", "  http_redirect: {}", "  tls:", "    cert_file: ${CERT}", "    key_file: ${KEY}", minimal), want: "2:18: server.http_redirect.listen", msg: "is required"},
		{name: "http_redirect listen", src: lines("server:", "  http_redirect: { listen: \"80\" }", "  tls:", "    cert_file: ${CERT}", "    key_file: ${KEY}", minimal), want: "2:28: server.http_redirect.listen", msg: "must be host:port"},
		{name: "http_redirect on the server port", src: lines("server:", "  listen: \":8443\"", "  http_redirect: { listen: \":8443\" }", "  tls:", "    cert_file: ${CERT}", "    key_file: ${KEY}", minimal), want: "3:28: server.http_redirect.listen", msg: "uses the same port as server.listen"},
		{name: "admin token too short", src: lines("admin:", "  token: short", minimal), want: "2:10: admin.token", msg: "must be at least 16 bytes"},
		{name: "log level", src: lines("log:", "  level: verbose", minimal), want: "2:10: log.level", msg: "must be debug, info, warn or error"},
		{name: "log format", src: lines("log:", "  format: text", minimal), want: "2:11: log.format", msg: "must be json or console"},
	}))
}

func TestValidateServerTLSLoads(t *testing.T) {
	p := newPKI(t)
	cfg := mustParse(t, lines(
		"server:",
		"  listen: \"127.0.0.1:0\"",
		"  http_redirect: { listen: \"127.0.0.1:0\" }",
		"  tls:",
		"    cert_file: ${CERT}",
		"    key_file: ${KEY}",
		"    min_version: 1.3",
		"admin:",
		"  listen: \"127.0.0.1:0\"",
		"  token: \"\"",
		minimal,
	), map[string]string{"CERT": p.certFile, "KEY": p.keyFile})
	if got, want := cfg.Server.TLS.MinVersion, "1.3"; got != want {
		t.Errorf("min_version = %q, want %q", got, want)
	}
}

func TestValidateUpstreams(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	env := map[string]string{
		"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile, "OTHER_KEY": other.keyFile,
		"NOT_PEM": writeFile(t, t.TempDir(), "ca.txt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
	}
	// up returns a config whose upstream "app" has the given url and
	// extra key on line 4; the route is on line 6.
	up := func(url, extra string) string {
		return lines(
			"upstreams:",
			"  app:",
			"    url: "+url,
			"    "+extra,
			"routes:",
			"  - { name: r, method: GET, path: /, upstream: app, auth: none }",
		)
	}
	https := "https://127.0.0.1:9443"
	runErrorCases(t, withEnv(env, []errorCase{
		{name: "bad name", src: lines("upstreams:", "  \"bad name\": { url: \"http://127.0.0.1:9000\" }", "routes: []"), want: "2:3: upstreams.bad name", msg: `invalid upstream name "bad name"`},
		{name: "url missing", src: up("", "timeout: 1s"), want: "3:9: upstreams.app.url", msg: "expected a string, got null"},
		{name: "url empty", src: up(`""`, "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "is required"},
		{name: "url scheme", src: up("ftp://127.0.0.1", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "scheme must be http or https"},
		{name: "url without host", src: up("http:///x", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "must have a host"},
		{name: "url relative", src: up("/x", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "scheme must be http or https"},
		{name: "url user info", src: up("http://user:hunter2@127.0.0.1:9000", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "must not hold user info"},
		{name: "url query", src: up("http://127.0.0.1:9000/?a=1", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "must not have a query"},
		{name: "url empty query", src: up("http://127.0.0.1:9000/?", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "must not have a query"},
		{name: "url fragment", src: up("\"http://127.0.0.1:9000/#x\"", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "must not have a fragment"},
		{name: "url unparsable", src: up("\"http://[::1\"", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "not a valid URL"},
		{name: "url port", src: up("http://127.0.0.1:99999", "timeout: 1s"), want: "3:10: upstreams.app.url", msg: "invalid port"},
		{name: "tls with http", src: up("http://127.0.0.1:9000", "tls: { server_name: x }"), want: "4:10: upstreams.app.tls", msg: "only allowed with an https upstream url"},
		{name: "tls ca not a certificate", src: up(https, "tls: { ca_file: \"${NOT_PEM}\" }"), want: "4:21: upstreams.app.tls.ca_file", msg: "certificate 1 in the CA file does not parse"},
		{name: "tls ca missing", src: up(https, "tls: { ca_file: nope.pem }"), want: "4:21: upstreams.app.tls.ca_file", msg: "cannot read the CA file: no such file or directory"},
		{name: "tls cert without key", src: up(https, "tls: { cert_file: \"${CERT}\" }"), want: "4:10: upstreams.app.tls.key_file", msg: "is required with cert_file"},
		{name: "tls key without cert", src: up(https, "tls: { key_file: \"${KEY}\" }"), want: "4:10: upstreams.app.tls.cert_file", msg: "is required with key_file"},
		{name: "tls pair mismatch", src: up(https, "tls: { cert_file: \"${CERT}\", key_file: \"${OTHER_KEY}\" }"), want: "4:23: upstreams.app.tls.cert_file", msg: "private key does not match public key"},
		{name: "tls min_version", src: up(https, "tls: { min_version: \"1.0\" }"), want: "4:25: upstreams.app.tls.min_version", msg: `must be "1.2" or "1.3"`},
		{name: "pin not base64", src: up(https, "tls: { pin_sha256: [\"not base64!\"] }"), want: "4:25: upstreams.app.tls.pin_sha256[0]", msg: "must be the standard base64 of a 32-byte SHA-256 hash"},
		{name: "pin wrong length", src: up(https, "tls: { pin_sha256: [\"AAAA\"] }"), want: "4:25: upstreams.app.tls.pin_sha256[0]", msg: "32-byte"},
		{name: "pin url-safe base64", src: up(https, "tls: { pin_sha256: [\"-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-=\"] }"), want: "4:25: upstreams.app.tls.pin_sha256[0]", msg: "standard base64"},
		{name: "max_idle_conns_per_host 0", src: up(https, "max_idle_conns_per_host: 0"), want: "4:30: upstreams.app.max_idle_conns_per_host", msg: "must be greater than 0"},
		{name: "connect_timeout 0", src: up(https, "connect_timeout: 0s"), want: "4:22: upstreams.app.connect_timeout", msg: "must be greater than 0"},
		{name: "response_header_timeout 0", src: up(https, "response_header_timeout: 0s"), want: "4:30: upstreams.app.response_header_timeout", msg: "must be greater than 0"},
	}))
}

// TestValidateUpstreamURLNotEchoed checks that a URL with a password is
// refused without repeating it.
func TestValidateUpstreamURLNotEchoed(t *testing.T) {
	errs := parseErrors(t, lines(
		"upstreams:",
		"  app: { url: \"http://user:hunter2@127.0.0.1:9000\" }",
		"routes: []",
	), nil)
	if got := errs.Error(); strings.Contains(got, "hunter2") || strings.Contains(got, "user:") {
		t.Errorf("error %q repeats the URL's credentials", got)
	}
}

func TestValidateUpstreamTLSLoads(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile, "PIN": p.pin}
	cfg := mustParse(t, lines(
		"upstreams:",
		"  app:",
		"    url: https://127.0.0.1:9443/base",
		"    tls:",
		"      ca_file: ${CA}",
		"      cert_file: ${CERT}",
		"      key_file: ${KEY}",
		"      server_name: localhost",
		"      min_version: \"1.3\"",
		"      pin_sha256: [\"${PIN}\"]",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, auth: none }",
	), env)
	if got, want := cfg.Upstreams["app"].TLS.PinSHA256, p.pin; len(got) != 1 || got[0] != want {
		t.Errorf("pin_sha256 = %v, want [%v]", got, want)
	}
}

func TestValidateNoUpstreams(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{
			name: "section missing",
			src:  lines("routes:", "  - { name: r, method: GET, path: /, upstream: app, auth: none }"),
			want: "t.yaml:1:1: upstreams: at least one upstream is required when there are routes\n" +
				`t.yaml:2:48: routes[0].upstream: unknown upstream "app"`,
		},
		{
			name: "section empty",
			src:  lines("upstreams: {}", "routes:", "  - { name: r, method: GET, path: /, upstream: app, auth: none }"),
			want: "t.yaml:1:12: upstreams: at least one upstream is required when there are routes\n" +
				`t.yaml:3:48: routes[0].upstream: unknown upstream "app"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErrors(t, tt.src, nil).Error(); got != tt.want {
				t.Errorf("errors =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// withEnv gives every case the same environment.
func withEnv(env map[string]string, tests []errorCase) []errorCase {
	for i := range tests {
		tests[i].env = env
	}
	return tests
}
