package audit

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

const (
	httpDefaultTimeout = 5 * time.Second
	// httpMaxDrain is the most of a collector's answer read (and thrown
	// away) so its connection can be reused.
	httpMaxDrain = 64 << 10
)

// httpSink is the HTTP sink.
type httpSink struct {
	url    string
	target string // scheme://host/path: for errors, without user info or query
	auth   string // the Authorization header, or ""
	client *http.Client
}

// NewHTTP returns a sink that POSTs each batch to cfg.URL as
// application/x-ndjson (one event per line), with "Authorization: Bearer
// <token>" when cfg.Token is set and cfg.Timeout (default 5s) per POST. An
// https collector is verified with cfg.CAFile, or the system roots; TLS
// 1.2 at least. Any 2xx answer means delivered; any other answer (a
// redirect is never followed) or a network error is an error, and the
// writer retries the batch, so a collector may see a batch twice when its
// answer was lost. Errors name the collector by scheme, host and path
// only: never the token, user info, query or an event.
func NewHTTP(cfg config.AuditHTTP) (Sink, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url's errors repeat the URL, user info and query included.
		return nil, errors.New("audit http: url: not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("audit http: url: must be an absolute http:// or https:// URL")
	}
	if cfg.CAFile != "" && u.Scheme != "https" {
		return nil, errors.New("audit http: ca_file needs an https url")
	}
	for _, c := range []byte(cfg.Token) {
		if c < 0x20 || c == 0x7f {
			return nil, errors.New("audit http: token: contains control characters")
		}
	}
	timeout := cfg.Timeout.D()
	if timeout <= 0 {
		timeout = httpDefaultTimeout
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(string(cfg.CAFile))
		if err != nil {
			return nil, fmt.Errorf("audit http: ca_file: %w", err)
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("audit http: ca_file %s: no PEM certificate", cfg.CAFile)
		}
	}
	s := &httpSink{
		url:    cfg.URL,
		target: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(),
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
				TLSClientConfig:       tlsCfg,
				TLSHandshakeTimeout:   timeout,
				ResponseHeaderTimeout: timeout,
				MaxIdleConnsPerHost:   2, // one writer: one POST at a time
				IdleConnTimeout:       90 * time.Second,
				ForceAttemptHTTP2:     true,
			},
			Timeout: timeout,
			// A collector that moved is a config error to fix, not a
			// reason to send events (and the token) elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if cfg.Token != "" {
		s.auth = "Bearer " + string(cfg.Token)
	}
	return s, nil
}

// Write POSTs the batch and reads the answer.
func (s *httpSink) Write(batch [][]byte) error {
	if len(batch) == 0 {
		return nil
	}
	n := 0
	for _, ev := range batch {
		n += len(ev) + 1
	}
	// A new body each time: the transport may still read it after Do
	// returns.
	body := appendLines(make([]byte, 0, n), batch)
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("audit http: post %s: cannot build the request", s.target)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error repeats the URL (query included): keep only its cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("audit http: post %s: %w", s.target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, httpMaxDrain))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The answer's body is not quoted: a collector may echo events.
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return fmt.Errorf("audit http: post %s: collector answered %d (redirects are not followed)", s.target, resp.StatusCode)
		}
		return fmt.Errorf("audit http: post %s: collector answered %d", s.target, resp.StatusCode)
	}
	return nil
}

// Close closes idle connections to the collector.
func (s *httpSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
