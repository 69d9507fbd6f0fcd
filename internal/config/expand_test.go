package config

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{
		"HOST":  "example.com",
		"EMPTY": "",
		"PORT":  "8443",
		"EVIL":  "a: b\n c: [",
	})
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "no reference", in: "plain", want: "plain"},
		{name: "variable", in: "${HOST}", want: "example.com"},
		{name: "inside text", in: "https://${HOST}:${PORT}/x", want: "https://example.com:8443/x"},
		{name: "default unused when set", in: "${HOST:-other}", want: "example.com"},
		{name: "default when unset", in: "${NOPE:-1MiB}", want: "1MiB"},
		{name: "default when empty", in: "${EMPTY:-fallback}", want: "fallback"},
		{name: "empty default", in: "${NOPE:-}", want: ""},
		{name: "default taken literally", in: "${NOPE:-$HOST}", want: "$HOST"},
		{name: "set but empty without default", in: "[${EMPTY}]", want: "[]"},
		{name: "escaped", in: "$${HOST}", want: "${HOST}"},
		{name: "escaped then variable", in: "$${HOST}${HOST}", want: "${HOST}example.com"},
		{name: "bare dollar", in: "cost $5", want: "cost $5"},
		{name: "dollar name", in: "$HOST", want: "$HOST"},
		{name: "double dollar", in: "$$HOST", want: "$$HOST"},
		{name: "trailing dollar", in: "x$", want: "x$"},
		{name: "value with YAML structure stays text", in: "${EVIL}", want: "a: b\n c: ["},
		{name: "unset", in: "${NOPE}", wantErr: "environment variable NOPE is not set"},
		{name: "unterminated", in: "x${HOST", wantErr: "unterminated ${"},
		{name: "invalid name", in: "${1X}", wantErr: "invalid reference ${1X}"},
		{name: "empty name", in: "${}", wantErr: "invalid reference ${}"},
		{name: "other operator", in: "${HOST-x}", wantErr: "invalid reference ${HOST-x}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expand(tt.in, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("expand(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("expand(%q) error = %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestExpandInConfig checks expansion through the loader: it runs before a
// scalar is converted, only in values, and never leaks a value.
func TestExpandInConfig(t *testing.T) {
	env := map[string]string{
		"LIMIT": "2MiB",
		"EVIL":  "a: b\n c: [",
		"TOKEN": "0123456789abcdef-secret",
		"EMPTY": "",
	}
	cfg := mustParse(t, lines(
		"server:",
		"  listen: ${LISTEN:-127.0.0.1:8081}",
		"  max_body_size: ${LIMIT:-1MiB}",
		"  max_header_count: ${COUNT:-7}",
		"  write_timeout: ${WT:-0s}",
		"admin:",
		"  token: ${TOKEN}",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000/${EMPTY}\" }",
		"routes:",
		"  - name: r",
		"    method: GET",
		"    path: /x",
		"    host: ${HOST:-api.example.com}",
		"    upstream: app",
		"    auth: ${AUTH:-none}",
		"    websocket: ${WS:-true}",
	), env)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "default", got: cfg.Server.Listen, want: "127.0.0.1:8081"},
		{name: "size from env", got: cfg.Server.MaxBodySize, want: Size(2 << 20)},
		{name: "int from default", got: cfg.Server.MaxHeaderCount, want: 7},
		{name: "explicit zero from default", got: cfg.Server.WriteTimeout, want: Duration(0)},
		{name: "secret", got: string(cfg.Admin.Token), want: "0123456789abcdef-secret"},
		{name: "empty variable", got: cfg.Upstreams["app"].URL, want: "http://127.0.0.1:9000/"},
		{name: "default in a longer value", got: cfg.Routes[0].Host, want: "api.example.com"},
		{name: "auth none from default", got: cfg.Routes[0].Auth.None, want: true},
		{name: "bool from default", got: cfg.Routes[0].WebSocket, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestExpandInjectionStaysString(t *testing.T) {
	env := map[string]string{"EVIL": "a: b\n c: ["}
	// Expanded into a string field, the value is one string, newlines and
	// all; here it is refused as a header name at the scalar's position,
	// not parsed as YAML.
	errs := parseErrors(t, lines(
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - name: r",
		"    method: GET",
		"    path: /",
		"    upstream: app",
		"    auth: none",
		"    cors:",
		"      origins: [\"https://a.example\"]",
		"      headers: [\"${EVIL}\"]",
	), env)
	if len(errs) != 1 || where(errs[0]) != "11:17: routes[0].cors.headers[0]" {
		t.Fatalf("errors = %v, want one at 11:17: routes[0].cors.headers[0]", errs)
	}
	if strings.Contains(errs.Error(), "c: [") {
		t.Errorf("error %q repeats the variable's value", errs.Error())
	}
	// Into a free string field, the whole value survives as text.
	cfg := mustParse(t, lines(
		"admin: { token: \"${EVIL}xxxxxxxxxxxxxxxx\" }",
		minimal,
	), env)
	if got, want := string(cfg.Admin.Token), "a: b\n c: [xxxxxxxxxxxxxxxx"; got != want {
		t.Errorf("admin.token = %q, want %q", got, want)
	}
}

func TestExpandErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{
			name: "unset variable is named at the scalar",
			src:  lines("server:", "  listen: ${LISTEN}", minimal),
			want: "2:11: server.listen",
			msg:  "environment variable LISTEN is not set",
		},
		{
			name: "unset variable in a secret never shows a value",
			src:  lines("admin:", "  token: \"${TOKEN}\"", minimal),
			want: "2:10: admin.token",
			msg:  "environment variable TOKEN is not set",
		},
		{
			name: "unterminated",
			src:  lines("server:", "  listen: \"${LISTEN\"", minimal),
			want: "2:11: server.listen",
			msg:  "unterminated ${",
		},
		{
			name: "bad value after expansion is reported without the value",
			src:  lines("server:", "  max_body_size: ${LIMIT}", minimal),
			env:  map[string]string{"LIMIT": "lots"},
			want: "2:18: server.max_body_size",
			msg:  "not a size",
		},
		{
			name: "keys are never expanded",
			src:  lines("${KEY}:", "  listen: :80", minimal),
			env:  map[string]string{"KEY": "server"},
			want: "1:1: ${KEY}",
			msg:  `unknown key "${KEY}"`,
		},
	})
}
