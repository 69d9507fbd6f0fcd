package config

import (
	"fmt"
	"net/url"
	"slices"
)

// checkPolicies checks the policies: section.
func (c *checker) checkPolicies() {
	names := make([]string, 0, len(c.cfg.Policies))
	for name := range c.cfg.Policies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		pol := c.cfg.Policies[name]
		c.checkPolicy(name, &pol)
	}
}

func (c *checker) checkPolicy(name string, pol *Policy) {
	p := joinPath("policies", name)
	if !validName(name, 64) {
		c.keyErrf(p, "invalid policy name %q: 1 to 64 letters, digits, '_', '.' or '-' (it is a metric label)", name)
	}
	https := false
	if u, err := url.Parse(pol.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.errf(p+".url", "must be an http or https URL such as http://127.0.0.1:8181/v1/data/bulwark/authz")
	} else if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		c.errf(p+".url", "must not have user info, a query or a fragment (send credentials with headers)")
	} else {
		https = u.Scheme == "https"
	}
	if pol.Timeout <= 0 {
		c.errf(p+".timeout", "must be greater than 0")
	}
	if pol.CacheTTL < 0 {
		c.errf(p+".cache_ttl", "must be 0 (no cache) or more")
	}
	if pol.CacheSize < 1 {
		c.errf(p+".cache_size", "must be 1 or more")
	}
	if pol.BreakerFailures < 1 {
		c.errf(p+".breaker_failures", "must be 1 or more")
	}
	if pol.BreakerCooldown <= 0 {
		c.errf(p+".breaker_cooldown", "must be greater than 0")
	}
	if pol.ErrorStatus != 503 && pol.ErrorStatus != 403 {
		c.errf(p+".error_status", "must be 503 or 403")
	}
	for hname := range pol.Headers {
		if !isToken(hname) {
			c.keyErrf(joinPath(p+".headers", hname), "not a valid header name")
		}
	}
	for i, h := range pol.Input.Headers {
		hp := fmt.Sprintf("%s.input.headers[%d]", p, i)
		switch {
		case !isToken(h):
			c.errf(hp, "not a valid header name")
		case c.credentialHeader(h):
			c.errf(hp, "%s carries a credential: it is never sent to a policy server (the verified principal is)", h)
		}
	}
	if pol.TLS != nil {
		if pol.URL != "" && !https && !c.bad[p+".url"] {
			c.errf(p+".tls", "is only allowed with an https url")
		}
		c.checkClientTLS(p+".tls", pol.TLS)
	}
}

// checkClientTLS checks a TLS section towards a service.
func (c *checker) checkClientTLS(p string, t *ClientTLS) {
	c.checkTLSFiles(p, t.CAFile, t.CertFile, t.KeyFile)
}

// checkTLSFiles checks the files of a TLS client section at p: the CA
// bundle parses, and a client certificate comes with its key and matches
// it.
func (c *checker) checkTLSFiles(p string, ca, cert, key Path) {
	if ca != "" {
		if err := checkCAFile(string(ca)); err != nil {
			c.errf(p+".ca_file", "%s", err.Error())
		}
	}
	switch {
	case cert == "" && key == "":
	case cert == "":
		c.errf(p+".cert_file", "is required with key_file")
	case key == "":
		c.errf(p+".key_file", "is required with cert_file")
	default:
		c.checkKeyPair(p, cert, key)
	}
}
