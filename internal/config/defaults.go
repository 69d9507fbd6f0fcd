package config

import (
	"net/http"
	"slices"
	"time"
)

// Every default below is documented in docs/configuration.md. Defaults are
// set before the file is decoded over them, so an explicit 0 in the file
// (timeout: 0s, hsts.max_age: 0s) is kept.

func (c *Config) setDefaults() {
	c.Mode = ModeEnforce
	c.Server.setDefaults()
	c.Admin.setDefaults()
	c.Log.setDefaults()
	c.Reload.setDefaults()
	c.Principal.setDefaults()
	c.RateLimits.setDefaults()
	c.Response.setDefaults()
}

func (s *Server) setDefaults() {
	s.Listen = ":8080"
	s.MaxBodySize = 1 << 20
	s.MaxHeaderBytes = 32 << 10
	s.MaxHeaderCount = 100
	s.MaxResponseBuffer = 10 << 20
	s.ReadHeaderTimeout = Duration(10 * time.Second)
	s.ReadTimeout = Duration(60 * time.Second)
	s.WriteTimeout = Duration(60 * time.Second)
	s.IdleTimeout = Duration(120 * time.Second)
	s.ShutdownDelay = 0
	s.ShutdownTimeout = Duration(30 * time.Second)
}

func (t *TLS) setDefaults() {
	t.MinVersion = "1.2"
	t.ReloadInterval = Duration(10 * time.Second)
	t.HSTS.MaxAge = Duration(8760 * time.Hour)
}

func (a *Admin) setDefaults() {
	a.Listen = "127.0.0.1:9901"
}

func (l *Log) setDefaults() {
	l.Level = "info"
	l.Format = "json"
}

func (r *Reload) setDefaults() {
	r.Watch = false
	r.Debounce = Duration(500 * time.Millisecond)
}

func (u *Upstream) setDefaults() {
	u.ConnectTimeout = Duration(5 * time.Second)
	u.ResponseHeaderTimeout = Duration(30 * time.Second)
	u.Timeout = Duration(60 * time.Second)
	u.IdleConnTimeout = Duration(90 * time.Second)
	u.MaxIdleConnsPerHost = 256
}

func (t *UpstreamTLS) setDefaults() {
	t.MinVersion = "1.2"
}

// builtinIdentityHeaders are the identity headers that upstreams commonly
// trust and that the edge always strips from client requests; the user's
// server.identity_headers are added to them, never replace them.
func builtinIdentityHeaders() []string {
	return []string{
		"X-User", "X-User-Id", "X-Remote-User", "X-Forwarded-User",
		"X-Auth-Subject", "X-Authenticated-User", "X-Consumer-Id",
	}
}

// deriveDefaults sets the defaults that depend on other keys; it runs
// after decoding.
func (c *Config) deriveDefaults() {
	if t := c.Server.TLS; t != nil && t.ClientCAFile != "" && t.ClientAuth == "" {
		t.ClientAuth = "require"
	}
	// The principal headers are stripped from client requests like the
	// other identity headers: only the authentication stage sets them, so
	// an upstream that trusts them never sees a client's copy, on public
	// routes too.
	p := c.Principal
	headers := builtinIdentityHeaders()
	for _, h := range slices.Concat(c.Server.IdentityHeaders, []string{p.Subject, p.Consumer, p.Scopes, p.Roles, p.Issuer, p.Method}) {
		if h = http.CanonicalHeaderKey(h); h != "" && !slices.Contains(headers, h) {
			headers = append(headers, h)
		}
	}
	c.Server.IdentityHeaders = headers
}
