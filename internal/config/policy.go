package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// Policy is one external policy decision point (`policies.<name>`) that
// speaks OPA's Data API: the gateway POSTs {"input": …} to URL and reads
// {"result": true} or {"result": {"allow": bool, "reason": "…"}}. Routes
// use it with authorize.policy (docs/authorization.md, "Policy hook").
type Policy struct {
	URL             string            `yaml:"url" required:"true" pattern:"^https?://" doc:"URL of the decision document, e.g. http://127.0.0.1:8181/v1/data/bulwark/authz for the Rego package bulwark.authz."`
	Timeout         Duration          `yaml:"timeout" doc:"Time allowed for one decision; past it the request is refused (fail closed)."`
	Headers         map[string]Secret `yaml:"headers" doc:"Header lines sent with every call, such as Authorization: Bearer ${OPA_TOKEN}."`
	TLS             *ClientTLS        `yaml:"tls" doc:"TLS towards an https policy server (ca_file, cert_file, key_file, server_name)."`
	Input           PolicyInput       `yaml:"input" doc:"What the input document carries besides the principal, the method, path, path parameters, query and route."`
	CacheTTL        Duration          `yaml:"cache_ttl" doc:"How long a decision is reused for the same input (by its SHA-256); 0 (the default) asks the policy server every time."`
	CacheSize       int               `yaml:"cache_size" doc:"Most decisions kept in the cache (with cache_ttl)."`
	BreakerFailures int               `yaml:"breaker_failures" doc:"Consecutive failed calls (errors, timeouts, unexpected answers) that open the circuit breaker; while open, requests are refused at once without a call."`
	BreakerCooldown Duration          `yaml:"breaker_cooldown" doc:"How long the breaker stays open before one call tries the policy server again."`
	ErrorStatus     int               `yaml:"error_status" min:"403" doc:"Status of a request refused because the policy server could not decide: 503 (the default) or 403."`
}

// PolicyInput is what a policy's input document carries beyond its
// fixed part.
type PolicyInput struct {
	Body     bool     `yaml:"body" doc:"The JSON request body (decoded under the route's JSON limits); a route whose body is not JSON sends none."`
	Headers  []string `yaml:"headers" doc:"Request headers to include, by name (credentials such as Authorization, Cookie and API key headers are refused)."`
	ClientIP bool     `yaml:"client_ip" doc:"The client IP address (this makes cached decisions per client)."`
}

func (p *Policy) setDefaults() {
	p.Timeout = Duration(100 * time.Millisecond)
	p.CacheSize = 10000
	p.BreakerFailures = 5
	p.BreakerCooldown = Duration(5 * time.Second)
	p.ErrorStatus = 503
}

// Config returns the client TLS configuration t describes: the system
// roots unless ca_file names others, and a client certificate when one is
// given. what names the section in errors.
func (t *ClientTLS) Config(what string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(string(t.CAFile))
		if err != nil {
			return nil, fmt.Errorf("%s: tls ca_file: %w", what, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: tls ca_file %s: no PEM certificate", what, t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(string(t.CertFile), string(t.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("%s: tls client certificate: %w", what, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
