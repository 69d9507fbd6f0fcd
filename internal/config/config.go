// Package config holds Bulwark's configuration: the YAML types, strict loading
// with file:line:col positions, ${VAR} expansion, defaults and the
// cross-reference checks that run before anything is built from it.
//
// A Config is immutable once Load returns it; the gateway builds a complete
// handler from it and never reads the file again until a reload.
package config

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// maxFileSize caps the config file Load reads: a config is a few KiB, and a
// path pointing at a device or a huge file must not exhaust memory.
const maxFileSize = 16 << 20

// Load reads, expands, decodes, defaults and validates the config file at
// path. lookupEnv is os.LookupEnv in production; tests pass their own. On
// failure the error is Errors, holding every problem found.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: "cannot read the config: " + fileError(err), err: err}}
	}
	return Parse(path, data, lookupEnv)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

// Parse does what Load does, from data: file names the source in errors,
// and relative paths resolve against filepath.Dir(file). On failure the
// error is Errors, holding every problem found.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	root, errs := parseYAML(file, data)
	if errs != nil {
		return nil, errs
	}
	cfg := &Config{File: file, Dir: filepath.Dir(file)}
	cfg.setDefaults()
	d := &decoder{
		report: report{file: file},
		dir:    cfg.Dir,
		lookup: lookupEnv,
		pos:    positions{},
		keys:   positions{},
		bad:    map[string]bool{},
	}
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	cfg.pos, cfg.keys = d.pos, d.keys
	if !d.tooBig {
		(&checker{cfg: cfg, r: &d.report, bad: d.bad}).validate()
	}
	if len(d.errs) > 0 {
		sortErrors(d.errs)
		return nil, Errors(d.errs)
	}
	cfg.deriveDefaults()
	cfg.warnings = cfg.warn()
	return cfg, nil
}

// Mode says whether a stage that can deny enforces its decision or only
// reports it (DESIGN.md "Report mode"). The zero value inherits from the
// enclosing scope; the top level defaults to ModeEnforce.
type Mode string

// The modes a stage can run in.
const (
	ModeInherit Mode = ""
	ModeEnforce Mode = "enforce"
	ModeReport  Mode = "report"
)

// Config is the whole gateway configuration as loaded from one file.
type Config struct {
	// File is the path of the config file as given; Dir is the directory
	// every relative file path in it resolves against.
	File string `yaml:"-"`
	Dir  string `yaml:"-"`

	Mode           Mode                     `yaml:"mode" doc:"Default mode of every stage that can deny: enforce or report."`
	Server         Server                   `yaml:"server" doc:"The public listener: address, TLS termination, edge limits and timeouts."`
	Admin          Admin                    `yaml:"admin" doc:"The admin listener: /livez, /readyz, /healthz and /metrics."`
	Log            Log                      `yaml:"log" doc:"The process log (not the audit log)."`
	Reload         Reload                   `yaml:"reload" doc:"How a changed config is picked up; SIGHUP always reloads."`
	Upstreams      map[string]Upstream      `yaml:"upstreams" keys:"^[A-Za-z0-9_.-]+$" doc:"The backends that routes proxy to, by name."`
	Specs          map[string]Spec          `yaml:"specs" keys:"^[A-Za-z0-9_.-]+$" doc:"OpenAPI documents that routes validate against, by name."`
	Authenticators map[string]Authenticator `yaml:"authenticators" keys:"^[A-Za-z0-9_.-]+$" doc:"The ways a credential can be verified, by name; routes list them in auth."`
	Consumers      []Consumer               `yaml:"consumers" doc:"API consumers and their API keys (stored as SHA-256 hashes)."`
	Principal      PrincipalHeaders         `yaml:"principal_headers" doc:"Request headers that carry the verified principal upstream; client copies are always removed."`
	RateLimits     RateLimits               `yaml:"rate_limits" doc:"Rate limits: the store (local or Redis), global, per-IP, plan and auth-failure layers."`
	Audit          *Audit                   `yaml:"audit" doc:"The audit log: one JSON event per request, to stdout, a file, syslog or an HTTP collector. Absent: no audit events."`
	Policies       map[string]Policy        `yaml:"policies" keys:"^[A-Za-z0-9_.-]+$" doc:"External policy decision points (OPA's Data API), by name; routes consult one with authorize.policy."`
	Response       Responses                `yaml:"response" doc:"How every route treats upstream responses: error masking, fingerprint headers, the mask hash key."`
	Tracing        *Tracing                 `yaml:"tracing" doc:"OpenTelemetry span export over OTLP/HTTP: one server span per request and one span per stage of its chain. Absent: no spans (the trace context is still propagated)."`
	RoutesFromSpec []SpecRoutes             `yaml:"routes_from_spec" doc:"Specs that drive routes: one route per operation, authenticated as the spec's security says, and a catch-all that answers 404 to undocumented requests."`
	Routes         []Route                  `yaml:"routes" doc:"The method + path pairs the gateway serves; every other request gets 404 or 405."`

	specs    map[string]*validate.Spec // loaded specs, by name
	pos      positions                 // YAML path -> position of its value
	keys     positions                 // YAML path -> position of its key
	warnings []Error
}

// Server configures the public listener, TLS termination and the edge limits.
type Server struct {
	Listen            string         `yaml:"listen" doc:"Address of the public listener."`
	TLS               *TLS           `yaml:"tls" doc:"TLS termination; present means HTTPS."`
	HTTPRedirect      *HTTPRedirect  `yaml:"http_redirect" doc:"Optional plain-HTTP listener that only redirects to HTTPS."`
	TrustedProxies    []netip.Prefix `yaml:"trusted_proxies" doc:"CIDRs of proxies whose X-Forwarded-For and X-Request-Id are believed."`
	IdentityHeaders   []string       `yaml:"identity_headers" doc:"Client headers that upstreams often trust for identity; stripped from every request."`
	MaxBodySize       Size           `yaml:"max_body_size" doc:"Largest request body accepted (413 above it)."`
	MaxHeaderBytes    Size           `yaml:"max_header_bytes" doc:"Largest request header section (431 above it)."`
	MaxHeaderCount    int            `yaml:"max_header_count" doc:"Most header fields in one request (431 above it)."`
	MaxResponseBuffer Size           `yaml:"max_response_buffer" doc:"Largest upstream response a response-side stage buffers (502 above it)."`
	ReadHeaderTimeout Duration       `yaml:"read_header_timeout" doc:"Time allowed to read the request headers."`
	ReadTimeout       Duration       `yaml:"read_timeout" doc:"Time allowed to read the whole request, body included."`
	WriteTimeout      Duration       `yaml:"write_timeout" doc:"Time allowed to write the response; 0 disables (long streams)."`
	IdleTimeout       Duration       `yaml:"idle_timeout" doc:"How long an idle keep-alive connection is kept."`
	ShutdownDelay     Duration       `yaml:"shutdown_delay" doc:"After SIGTERM, how long /readyz reports not ready before listeners close."`
	ShutdownTimeout   Duration       `yaml:"shutdown_timeout" doc:"After SIGTERM, how long in-flight requests may take to drain."`
}

// TLS configures TLS termination on the public listener.
type TLS struct {
	CertFile       Path     `yaml:"cert_file" required:"true" doc:"PEM certificate chain."`
	KeyFile        Path     `yaml:"key_file" required:"true" doc:"PEM private key."`
	MinVersion     string   `yaml:"min_version" enum:"1.2,1.3" doc:"Lowest TLS version accepted: \"1.2\" or \"1.3\"."`
	ClientCAFile   Path     `yaml:"client_ca_file" doc:"PEM CA bundle that client certificates must chain to (mTLS)."`
	ClientAuth     string   `yaml:"client_auth" enum:"request,require" doc:"request (verify a certificate when one is presented) or require."`
	ReloadInterval Duration `yaml:"reload_interval" doc:"How often the certificate, key and client CA files are checked for changes."`
	HSTS           HSTS     `yaml:"hsts" doc:"Strict-Transport-Security header on HTTPS responses."`
}

// HSTS configures the Strict-Transport-Security response header.
type HSTS struct {
	MaxAge            Duration `yaml:"max_age" doc:"max-age of the header; 0 disables the header."`
	IncludeSubdomains bool     `yaml:"include_subdomains" doc:"Add includeSubDomains."`
	Preload           bool     `yaml:"preload" doc:"Add preload."`
}

// HTTPRedirect configures a plain-HTTP listener whose only answer is a
// permanent redirect to the HTTPS listener.
type HTTPRedirect struct {
	Listen string `yaml:"listen" required:"true" doc:"Address of the redirecting plain-HTTP listener."`
}

// Admin configures the admin listener (/livez, /readyz, /healthz, /metrics).
type Admin struct {
	Listen string         `yaml:"listen" doc:"Address of the admin listener."`
	Allow  []netip.Prefix `yaml:"allow" doc:"CIDRs allowed to reach /metrics and /healthz when the listener is not on loopback."`
	Token  Secret         `yaml:"token" doc:"Bearer token required for /metrics and /healthz when the listener is not on loopback."`
}

// Log configures the process log (not the audit log).
type Log struct {
	Level  string `yaml:"level" enum:"debug,info,warn,error" doc:"debug, info, warn or error."`
	Format string `yaml:"format" enum:"json,console" doc:"json or console."`
}

// Reload configures how a changed config is picked up (SIGHUP always works).
type Reload struct {
	Watch    bool     `yaml:"watch" doc:"Also reload when the config file changes on disk."`
	Debounce Duration `yaml:"debounce" doc:"Quiet time after the last file change before reloading."`
}

// Upstream is one backend that routes proxy to.
type Upstream struct {
	URL                   string       `yaml:"url" required:"true" pattern:"^https?://" doc:"Base URL (http or https) of the upstream; its path is a prefix."`
	ConnectTimeout        Duration     `yaml:"connect_timeout" doc:"TCP (and TLS) connect timeout."`
	ResponseHeaderTimeout Duration     `yaml:"response_header_timeout" doc:"Time to wait for the upstream's response headers (504 after it)."`
	Timeout               Duration     `yaml:"timeout" doc:"Overall time for one proxied exchange, body included; 0 disables (long streams)."`
	IdleConnTimeout       Duration     `yaml:"idle_conn_timeout" doc:"How long an idle pooled connection is kept."`
	MaxIdleConnsPerHost   int          `yaml:"max_idle_conns_per_host" doc:"Idle connections kept per upstream host."`
	TLS                   *UpstreamTLS `yaml:"tls" doc:"TLS towards an https upstream."`
}

// UpstreamTLS configures TLS from the gateway to an upstream.
type UpstreamTLS struct {
	CAFile     Path     `yaml:"ca_file" doc:"PEM CA bundle to verify the upstream with (instead of the system roots)."`
	CertFile   Path     `yaml:"cert_file" doc:"Client certificate presented to the upstream."`
	KeyFile    Path     `yaml:"key_file" doc:"Key of the client certificate."`
	ServerName string   `yaml:"server_name" doc:"Name to verify the upstream certificate against (and send as SNI)."`
	MinVersion string   `yaml:"min_version" enum:"1.2,1.3" doc:"Lowest TLS version: \"1.2\" or \"1.3\"."`
	PinSHA256  []string `yaml:"pin_sha256" doc:"Base64 SHA-256 hashes of allowed upstream public keys (SPKI); one must match."`
}

// Route is one method + path that the gateway serves, with its chain.
type Route struct {
	Name        string          `yaml:"name" required:"true" pattern:"^[A-Za-z0-9_.-]{1,64}$" doc:"Unique route name; used in metrics and audit events."`
	Method      string          `yaml:"method" required:"true" enum:"GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS" doc:"HTTP method (GET, POST, ...)."`
	Path        string          `yaml:"path" required:"true" pattern:"^/" doc:"Path pattern with {params}, matched against the canonical path."`
	Host        string          `yaml:"host" doc:"Only match requests for this host (optional)."`
	Upstream    string          `yaml:"upstream" required:"true" doc:"Name of the upstream to proxy to."`
	Auth        AuthList        `yaml:"auth" required:"true" doc:"none, or a list of authenticators (any one must accept)."`
	Mode        Mode            `yaml:"mode" doc:"Mode of the route's stages: enforce or report (overrides the top level)."`
	MaxBodySize Size            `yaml:"max_body_size" doc:"Largest request body for this route (overrides server.max_body_size)."`
	WebSocket   bool            `yaml:"websocket" doc:"Allow WebSocket (Upgrade) requests on this route."`
	CORS        *CORS           `yaml:"cors" doc:"Cross-origin policy; the gateway answers preflights itself."`
	Authn       *RouteAuthn     `yaml:"authn" doc:"How this route reads and forwards credentials."`
	Require     *Require        `yaml:"require" doc:"What the principal must hold: scopes."`
	Validate    *RouteValidate  `yaml:"validate" doc:"OpenAPI validation of requests and responses, and JSON body limits."`
	RateLimit   RouteLimits     `yaml:"rate_limit" doc:"One limit, or a list of limits, on this route: requests per period per key."`
	Authorize   *RouteAuthorize `yaml:"authorize" doc:"Object-level rules in CEL over the principal and the request (path, query, headers, JSON body)."`
	Response    *RouteResponse  `yaml:"response" doc:"Response field filtering, sensitive-data detection and upstream error masking."`
}

// CORS is a route's cross-origin resource sharing policy.
type CORS struct {
	Origins       []string `yaml:"origins" required:"true" doc:"Allowed origins (exact, e.g. https://app.example.com) or \"*\"."`
	Methods       []string `yaml:"methods" doc:"Methods allowed in preflights (default: the route's method)."`
	Headers       []string `yaml:"headers" doc:"Request headers allowed in preflights."`
	ExposeHeaders []string `yaml:"expose_headers" doc:"Response headers exposed to the browser."`
	Credentials   bool     `yaml:"credentials" doc:"Allow credentials (cookies, Authorization); not with \"*\"."`
	MaxAge        Duration `yaml:"max_age" doc:"How long browsers may cache a preflight answer."`
}

// AuthList is a route's `auth:` value: the scalar `none` (explicitly
// public) or a non-empty list of authenticator names, any one of which
// must accept the request.
type AuthList struct {
	None  bool
	Names []string
}

// Unbuilt marks a key whose stage does not exist in this build. Loading a
// config that sets it fails with a clear error: ignoring a security key
// would fail open.
type Unbuilt struct{ set bool }

// Secret is a string that never prints: String and MarshalText redact it.
type Secret string

// String returns a redacted form, so a secret cannot leak through %v.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText returns the same redacted form as String, so a secret cannot
// leak through an encoder either.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GoString returns the same redacted form as String, for %#v.
func (s Secret) GoString() string { return s.String() }

// Path is a file path; a relative path is resolved against the directory of
// the config file when it loads.
type Path string

// Duration is a time.Duration written as "30s", "5m" or "1h30m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as 1048576, "512KiB", "1MiB", "10MB".
type Size int64
