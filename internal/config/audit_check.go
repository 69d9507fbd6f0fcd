package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func (c *checker) checkAudit() {
	a := c.cfg.Audit
	if a == nil {
		return
	}
	const p = "audit"
	c.checkEnum(p+".sink", a.Sink, "stdout", "file", "syslog", "http")
	c.checkEnum(p+".on_full", a.OnFull, "block", "drop")
	sections := map[string]bool{"file": a.File != nil, "syslog": a.Syslog != nil, "http": a.HTTP != nil}
	for name, set := range sections {
		switch {
		case a.Sink == name && !set:
			c.errf(p+".sink", "sink: %s needs an audit.%s section", name, name)
		case a.Sink != name && set:
			c.errf(p+"."+name, "not used: sink is %s", a.Sink)
		}
	}
	switch a.Allowed {
	case "all", "none":
	default:
		// !(f >= 0 && f <= 1) also refuses NaN, which ParseFloat accepts.
		if f, err := strconv.ParseFloat(string(a.Allowed), 64); err != nil || !(f >= 0 && f <= 1) {
			c.errf(p+".allowed", "must be all, none or a ratio between 0 and 1 such as 0.1")
		}
	}
	if a.QueueSize < 1 {
		c.errf(p+".queue_size", "must be 1 or more")
	}
	if a.BlockFor <= 0 {
		c.errf(p+".block_timeout", "must be greater than 0")
	}
	for i, h := range a.Headers {
		hp := fmt.Sprintf("%s.headers[%d]", p, i)
		switch strings.ToLower(h) {
		case "authorization", "proxy-authorization", "cookie", "set-cookie", "dpop":
			c.errf(hp, "%s carries a credential: it never goes into the audit log", h)
		default:
			if !isToken(h) {
				c.errf(hp, "not a valid header name")
			} else if c.credentialHeader(h) {
				c.errf(hp, "%s carries an API key: it never goes into the audit log", h)
			}
		}
	}
	if f := a.File; f != nil {
		switch {
		case f.Path == "":
			c.errf(p+".file.path", "is required: the audit file")
		default:
			if st, err := os.Stat(filepath.Dir(string(f.Path))); err != nil || !st.IsDir() {
				c.errf(p+".file.path", "its directory does not exist")
			}
		}
		if f.MaxSize < 1<<10 {
			c.errf(p+".file.max_size", "must be at least 1KiB")
		}
		if f.MaxBackups < 0 {
			c.errf(p+".file.max_backups", "must not be negative")
		}
	}
	if s := a.Syslog; s != nil {
		if _, port, err := net.SplitHostPort(s.Address); err != nil || port == "" || !validPort(port) {
			c.errf(p+".syslog.address", "must be host:port")
		}
		if s.AppName != "" && !syslogAppName(s.AppName) {
			c.errf(p+".syslog.app_name", "must be 1 to 48 printable ASCII characters, no spaces (RFC 5424 APP-NAME)")
		}
		if s.Facility < 0 || s.Facility > 23 {
			c.errf(p+".syslog.facility", "must be 0 to 23")
		}
		if t := s.TLS; t != nil {
			c.checkClientTLS(p+".syslog.tls", t)
		}
	}
	if h := a.HTTP; h != nil {
		plain := false // the URL is valid and http://
		if h.URL == "" {
			c.errf(p+".http.url", "is required: the collector URL, e.g. https://siem.example.com/ingest")
		} else if https, err := checkUpstreamURL(h.URL); err != nil {
			c.errf(p+".http.url", "%s", err.Error())
		} else if err := CheckIdPURL(h.URL); err != nil {
			// Events and the bearer token cross the network: https, or
			// plain http only to a loopback collector.
			c.errf(p+".http.url", "%s", err.Error())
		} else {
			plain = !https
		}
		if strings.ContainsFunc(string(h.Token), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			// The message never repeats the token.
			c.errf(p+".http.token", "must not contain control characters (a newline from a secret file?)")
		}
		if h.BatchSize < 1 {
			c.errf(p+".http.batch_size", "must be 1 or more")
		}
		if h.FlushInterval <= 0 {
			c.errf(p+".http.flush_interval", "must be greater than 0")
		}
		if h.Timeout <= 0 {
			c.errf(p+".http.timeout", "must be greater than 0")
		}
		if h.CAFile != "" {
			if plain {
				c.errf(p+".http.ca_file", "needs an https url: a CA verifies the collector's TLS certificate")
			} else if err := checkCAFile(string(h.CAFile)); err != nil {
				c.errf(p+".http.ca_file", "%s", err.Error())
			}
		}
	}
}

// syslogAppName reports whether s is a valid RFC 5424 APP-NAME: 1 to 48
// printable US-ASCII characters (33 to 126).
func syslogAppName(s string) bool {
	if s == "" || len(s) > 48 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}
