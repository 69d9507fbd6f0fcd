package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// maxIdPResponse caps what the gateway reads from an identity provider
// (JWKS, discovery document, introspection answer).
const maxIdPResponse = 1 << 20

// newIdPClient returns the HTTP client an authenticator talks to its
// identity provider with: the configured timeout per call, the CA bundle
// (or the system roots), TLS 1.2 at least, and redirects only to https (or
// to loopback http, as the config allows for the first URL).
func newIdPClient(cfg config.Authenticator) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(string(cfg.CAFile))
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("ca_file: no PEM certificate in it")
		}
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   cfg.Timeout.D(),
		ResponseHeaderTimeout: cfg.Timeout.D(),
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout.D(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if config.CheckIdPURL(req.URL.String()) != nil {
				return errors.New("redirect to a non-https URL refused")
			}
			return nil
		},
	}, nil
}

// discovery is the part of an OpenID Provider's metadata the gateway uses.
type discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discover fetches {issuer}/.well-known/openid-configuration and checks
// that the document names the same issuer (OpenID Connect Discovery §4.3:
// otherwise a document could redirect trust to another issuer's keys).
func discover(ctx context.Context, client *http.Client, issuer string) (*discovery, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	var d discovery
	if err := getJSON(ctx, client, u, &d); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if d.Issuer != issuer {
		return nil, errors.New("discovery: the document's issuer differs from the configured issuer")
	}
	return &d, nil
}

// getJSON GETs u and decodes a JSON body of at most maxIdPResponse bytes.
// Errors never include the body.
func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIdPResponse+1))
	if err != nil {
		return err
	}
	if len(body) > maxIdPResponse {
		return errors.New("response too large")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errors.New("response is not valid JSON")
	}
	return nil
}
