package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// checker runs the checks that need more than one value (cross-references,
// required keys, files that must load) after decoding. Every problem is
// reported at the position of the value it is about.
type checker struct {
	cfg *Config
	r   *report
	// bad holds the paths the decoder already complained about, so a value
	// that did not decode is not reported a second time as missing.
	bad map[string]bool
}

func (c *checker) errf(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if c.bad[p] {
			return // its value did not decode; that error says it all
		}
	}
	c.r.add(c.cfg.Pos(path), path, format, args...)
}

// keyErrf reports a problem with a mapping key (a bad name) at the key.
func (c *checker) keyErrf(path, format string, args ...any) {
	c.r.add(c.cfg.keyPos(path), path, format, args...)
}

// set reports whether path was written in the file.
func (c *checker) set(path string) bool {
	_, ok := c.cfg.pos[path]
	return ok
}

func (c *checker) validate() {
	cfg := c.cfg
	c.checkServer()
	c.checkAdmin()
	switch cfg.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		c.errf("log.level", "must be debug, info, warn or error")
	}
	switch cfg.Log.Format {
	case "json", "console":
	default:
		c.errf("log.format", "must be json or console")
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c.checkUpstream(name, cfg.Upstreams[name])
	}
	if len(cfg.Routes) > 0 && len(cfg.Upstreams) == 0 {
		at := cfg.Pos("upstreams")
		if !c.set("upstreams") {
			at = cfg.keyPos("routes")
		}
		c.r.add(at, "upstreams", "at least one upstream is required when there are routes")
	}
	c.checkAuthenticators()
	c.checkConsumers()
	c.checkPrincipalHeaders()
	c.checkRateLimits()
	c.checkAudit()
	c.checkTracing()
	c.checkPolicies()
	c.checkResponses()
	c.checkSpecs()
	c.checkRoutesFromSpec() // expands routes_from_spec into routes, then checks every route
}

func (c *checker) checkServer() {
	s := &c.cfg.Server
	c.checkListen("server.listen", s.Listen)
	positive := []struct {
		path string
		ok   bool
	}{
		{"server.max_body_size", s.MaxBodySize > 0},
		{"server.max_header_bytes", s.MaxHeaderBytes > 0},
		{"server.max_header_count", s.MaxHeaderCount > 0},
		{"server.max_response_buffer", s.MaxResponseBuffer > 0},
		// 0 would make net/http fall back to read_timeout, or to no limit
		// at all: a slow-loris client could hold connections forever.
		{"server.read_header_timeout", s.ReadHeaderTimeout > 0},
		{"server.idle_timeout", s.IdleTimeout > 0},
	}
	for _, p := range positive {
		if !p.ok {
			c.errf(p.path, "must be greater than 0")
		}
	}
	if s.MaxHeaderBytes > 1<<30 {
		c.errf("server.max_header_bytes", "must be at most 1GiB")
	}
	for i, h := range s.IdentityHeaders {
		if !isToken(h) {
			c.errf(fmt.Sprintf("server.identity_headers[%d]", i), "not a valid header name")
		}
	}
	if s.TLS != nil {
		c.checkServerTLS(s.TLS)
	}
	if s.HTTPRedirect != nil {
		switch {
		case s.HTTPRedirect.Listen == "":
			c.errf("server.http_redirect.listen", "is required: the address of the plain-HTTP listener, e.g. :80")
		default:
			c.checkListen("server.http_redirect.listen", s.HTTPRedirect.Listen)
			c.checkSameAddress("server.http_redirect.listen", s.HTTPRedirect.Listen, "server.listen", s.Listen)
		}
		if s.TLS == nil {
			c.errf("server.http_redirect", "needs server.tls: it redirects to the HTTPS listener")
		}
	}
}

func (c *checker) checkServerTLS(t *TLS) {
	if t.CertFile == "" {
		c.errf("server.tls.cert_file", "is required with server.tls")
	}
	if t.KeyFile == "" {
		c.errf("server.tls.key_file", "is required with server.tls")
	}
	if t.CertFile != "" && t.KeyFile != "" {
		c.checkKeyPair("server.tls", t.CertFile, t.KeyFile)
	}
	c.checkTLSVersion("server.tls.min_version", t.MinVersion)
	if t.ClientAuth != "" {
		switch {
		case t.ClientAuth != "request" && t.ClientAuth != "require":
			c.errf("server.tls.client_auth", "must be request or require")
		case t.ClientCAFile == "":
			c.errf("server.tls.client_auth", "needs client_ca_file: client certificates must chain to a CA you name")
		}
	}
	if t.ClientCAFile != "" {
		if err := checkCAFile(string(t.ClientCAFile)); err != nil {
			c.errf("server.tls.client_ca_file", "%s", err.Error())
		}
	}
	if t.ReloadInterval <= 0 {
		c.errf("server.tls.reload_interval", "must be greater than 0")
	}
}

func (c *checker) checkTLSVersion(path, v string) {
	if v != "1.2" && v != "1.3" {
		c.errf(path, `must be "1.2" or "1.3"`)
	}
}

func (c *checker) checkAdmin() {
	a := &c.cfg.Admin
	c.checkListen("admin.listen", a.Listen)
	c.checkSameAddress("admin.listen", a.Listen, "server.listen", c.cfg.Server.Listen)
	if r := c.cfg.Server.HTTPRedirect; r != nil {
		c.checkSameAddress("admin.listen", a.Listen, "server.http_redirect.listen", r.Listen)
	}
	// An empty token (${ADMIN_TOKEN:-} left unset) means no token.
	if a.Token != "" && len(a.Token) < 16 {
		c.errf("admin.token", "must be at least 16 bytes (a bearer token that short can be guessed)")
	}
}

// checkListen checks a listen address: host:port, host optional, port a
// number (0 picks a free port).
func (c *checker) checkListen(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.errf(path, "must be host:port, e.g. :8080 or 127.0.0.1:8080")
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		c.errf(path, "invalid port: must be a number from 0 to 65535")
		return
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" && !validHostname(host) {
		c.errf(path, "invalid host: must be an IP address or a host name")
	}
}

// checkSameAddress reports two listeners that would bind the same port on
// overlapping addresses (port 0 means any free port, so never clashes).
func (c *checker) checkSameAddress(path, addr, otherPath, other string) {
	h1, p1, err1 := net.SplitHostPort(addr)
	h2, p2, err2 := net.SplitHostPort(other)
	if err1 != nil || err2 != nil || p1 != p2 || p1 == "0" {
		return
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if h1 == h2 || wildcard(h1) || wildcard(h2) {
		c.errf(path, "uses the same port as %s", otherPath)
	}
}

func (c *checker) checkUpstream(name string, u Upstream) {
	path := joinPath("upstreams", name)
	if !validName(name, 128) {
		c.keyErrf(path, "invalid upstream name %q: use letters, digits, '_', '.' and '-'", name)
	}
	isHTTPS := false
	switch {
	case u.URL == "":
		c.errf(path+".url", "is required: the upstream's base URL, e.g. http://127.0.0.1:9000")
	default:
		var err error
		isHTTPS, err = checkUpstreamURL(u.URL)
		if err != nil {
			c.errf(path+".url", "%s", err.Error())
		}
	}
	if u.ConnectTimeout <= 0 {
		c.errf(path+".connect_timeout", "must be greater than 0")
	}
	if u.ResponseHeaderTimeout <= 0 {
		c.errf(path+".response_header_timeout", "must be greater than 0")
	}
	if u.MaxIdleConnsPerHost <= 0 {
		c.errf(path+".max_idle_conns_per_host", "must be greater than 0")
	}
	if u.TLS == nil {
		return
	}
	tp := path + ".tls"
	if !isHTTPS && u.URL != "" && !c.bad[path+".url"] {
		c.errf(tp, "is only allowed with an https upstream url")
	}
	t := u.TLS
	c.checkTLSFiles(tp, t.CAFile, t.CertFile, t.KeyFile)
	c.checkTLSVersion(tp+".min_version", t.MinVersion)
	for i, pin := range t.PinSHA256 {
		if b, err := base64.StdEncoding.DecodeString(pin); err != nil || len(b) != 32 {
			c.errf(fmt.Sprintf("%s.pin_sha256[%d]", tp, i), "must be the standard base64 of a 32-byte SHA-256 hash (44 characters ending in =)")
		}
	}
}

// checkKeyPair checks that a certificate and its key load as a pair. A file
// that cannot be read is reported at its own key; a pair that does not
// match, at cert_file. Messages never include the files' content.
func (c *checker) checkKeyPair(path string, cert, key Path) {
	certOK, keyOK := true, true
	if _, err := os.ReadFile(string(cert)); err != nil {
		c.errf(path+".cert_file", "cannot read the certificate: %s", fileError(err))
		certOK = false
	}
	if _, err := os.ReadFile(string(key)); err != nil {
		c.errf(path+".key_file", "cannot read the key: %s", fileError(err))
		keyOK = false
	}
	if !certOK || !keyOK {
		return
	}
	if _, err := tls.LoadX509KeyPair(string(cert), string(key)); err != nil {
		c.errf(path+".cert_file", "cannot load the certificate and key: %s", fileError(err))
	}
}

// checkUpstreamURL checks an upstream base URL and reports whether it is
// https. Its messages never repeat the URL: it could hold credentials.
func checkUpstreamURL(s string) (https bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, fmt.Errorf("not a valid URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return false, errors.New("scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return false, errors.New("must have a host, e.g. http://127.0.0.1:9000")
	case u.User != nil:
		return false, errors.New("must not hold user info (credentials in a URL end up in logs); authenticate to the upstream with upstream tls client certificates")
	case u.RawQuery != "" || u.ForceQuery:
		return false, errors.New("must not have a query")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return false, errors.New("must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return false, errors.New("invalid port")
		}
	}
	return u.Scheme == "https", nil
}

// checkCAFile checks that a CA bundle holds at least one PEM certificate
// and nothing that fails to parse.
func checkCAFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the CA file: %s", fileError(err))
	}
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d in the CA file does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("the CA file holds no PEM certificate")
	}
	return nil
}

// fileError drops the path from an *os.PathError (the message is already
// reported at the key that names the file).
func fileError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// validName reports whether s is a name made of [A-Za-z0-9_.-], at most
// maxLen bytes: route and upstream names end up in metric labels.
func validName(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// validHostname reports whether s is a DNS host name (letters, digits, '-'
// and '_' in dot-separated labels of 1 to 63 bytes).
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2): a valid
// header name or method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
