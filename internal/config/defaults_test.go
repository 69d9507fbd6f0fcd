package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimal, nil)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "mode", got: cfg.Mode, want: ModeEnforce},
		{name: "server.listen", got: cfg.Server.Listen, want: ":8080"},
		{name: "server.tls", got: cfg.Server.TLS, want: (*TLS)(nil)},
		{name: "server.max_body_size", got: cfg.Server.MaxBodySize, want: Size(1 << 20)},
		{name: "server.max_header_bytes", got: cfg.Server.MaxHeaderBytes, want: Size(32 << 10)},
		{name: "server.max_header_count", got: cfg.Server.MaxHeaderCount, want: 100},
		{name: "server.max_response_buffer", got: cfg.Server.MaxResponseBuffer, want: Size(10 << 20)},
		{name: "server.read_header_timeout", got: cfg.Server.ReadHeaderTimeout, want: Duration(10 * time.Second)},
		{name: "server.read_timeout", got: cfg.Server.ReadTimeout, want: Duration(60 * time.Second)},
		{name: "server.write_timeout", got: cfg.Server.WriteTimeout, want: Duration(60 * time.Second)},
		{name: "server.idle_timeout", got: cfg.Server.IdleTimeout, want: Duration(120 * time.Second)},
		{name: "server.shutdown_delay", got: cfg.Server.ShutdownDelay, want: Duration(0)},
		{name: "server.shutdown_timeout", got: cfg.Server.ShutdownTimeout, want: Duration(30 * time.Second)},
		{
			name: "server.identity_headers",
			got:  cfg.Server.IdentityHeaders,
			want: []string{"X-User", "X-User-Id", "X-Remote-User", "X-Forwarded-User", "X-Auth-Subject", "X-Authenticated-User", "X-Consumer-Id",
				"X-Bulwark-Subject", "X-Bulwark-Consumer", "X-Bulwark-Scopes"},
		},
		{name: "admin.listen", got: cfg.Admin.Listen, want: "127.0.0.1:9901"},
		{name: "log.level", got: cfg.Log.Level, want: "info"},
		{name: "log.format", got: cfg.Log.Format, want: "json"},
		{name: "reload.watch", got: cfg.Reload.Watch, want: false},
		{name: "reload.debounce", got: cfg.Reload.Debounce, want: Duration(500 * time.Millisecond)},
		{
			name: "upstream",
			got:  cfg.Upstreams["app"],
			want: Upstream{
				URL:                   "http://127.0.0.1:9000",
				ConnectTimeout:        Duration(5 * time.Second),
				ResponseHeaderTimeout: Duration(30 * time.Second),
				Timeout:               Duration(60 * time.Second),
				IdleConnTimeout:       Duration(90 * time.Second),
				MaxIdleConnsPerHost:   256,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestDefaultsOfPresentSections(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile}
	cfg := mustParse(t, lines(
		"server:",
		"  tls:",
		"    cert_file: ${CERT}",
		"    key_file: ${KEY}",
		"    client_ca_file: ${CA}",
		"  identity_headers: [x-tenant-id, X-USER, X-Tenant-Id]",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"  secure:",
		"    url: https://127.0.0.1:9443",
		"    tls: {}",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, auth: none }",
		"  - { name: s, method: GET, path: /s, upstream: secure, auth: none }",
	), env)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "tls.min_version", got: cfg.Server.TLS.MinVersion, want: "1.2"},
		{name: "tls.client_auth with a client CA", got: cfg.Server.TLS.ClientAuth, want: "require"},
		{name: "tls.reload_interval", got: cfg.Server.TLS.ReloadInterval, want: Duration(10 * time.Second)},
		{name: "tls.hsts.max_age", got: cfg.Server.TLS.HSTS.MaxAge, want: Duration(8760 * time.Hour)},
		{name: "upstream tls.min_version", got: cfg.Upstreams["secure"].TLS.MinVersion, want: "1.2"},
		{name: "second upstream gets its own defaults", got: cfg.Upstreams["secure"].MaxIdleConnsPerHost, want: 256},
		{
			name: "identity headers are added to the built-in list, canonical and once",
			got:  cfg.Server.IdentityHeaders,
			want: []string{"X-User", "X-User-Id", "X-Remote-User", "X-Forwarded-User", "X-Auth-Subject", "X-Authenticated-User", "X-Consumer-Id", "X-Tenant-Id",
				"X-Bulwark-Subject", "X-Bulwark-Consumer", "X-Bulwark-Scopes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestExplicitZeroSurvives checks that a 0 written in the file is kept
// where 0 means something (no timeout, no HSTS header).
func TestExplicitZeroSurvives(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{"CERT": p.certFile, "KEY": p.keyFile}
	cfg := mustParse(t, lines(
		"server:",
		"  write_timeout: 0s",
		"  read_timeout: 0",
		"  shutdown_delay: 0s",
		"  tls:",
		"    cert_file: ${CERT}",
		"    key_file: ${KEY}",
		"    hsts: { max_age: 0s }",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\", timeout: 0s, idle_conn_timeout: 0s }",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, auth: none }",
	), env)
	tests := []struct {
		name string
		got  Duration
	}{
		{name: "server.write_timeout", got: cfg.Server.WriteTimeout},
		{name: "server.read_timeout", got: cfg.Server.ReadTimeout},
		{name: "server.shutdown_delay", got: cfg.Server.ShutdownDelay},
		{name: "server.tls.hsts.max_age", got: cfg.Server.TLS.HSTS.MaxAge},
		{name: "upstreams.app.timeout", got: cfg.Upstreams["app"].Timeout},
		{name: "upstreams.app.idle_conn_timeout", got: cfg.Upstreams["app"].IdleConnTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != 0 {
				t.Errorf("got %v, want 0", tt.got)
			}
		})
	}
	// The other defaults of the same sections are still there.
	if got, want := cfg.Server.TLS.ReloadInterval, Duration(10*time.Second); got != want {
		t.Errorf("tls.reload_interval = %v, want %v", got, want)
	}
	if got, want := cfg.Upstreams["app"].ConnectTimeout, Duration(5*time.Second); got != want {
		t.Errorf("upstream connect_timeout = %v, want %v", got, want)
	}
}

// TestClientAuthRequest checks that an explicit client_auth is kept.
func TestClientAuthRequest(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile}
	cfg := mustParse(t, lines(
		"server:",
		"  tls: { cert_file: \"${CERT}\", key_file: \"${KEY}\", client_ca_file: \"${CA}\", client_auth: request }",
		minimal,
	), env)
	if got, want := cfg.Server.TLS.ClientAuth, "request"; got != want {
		t.Errorf("client_auth = %q, want %q", got, want)
	}
}
