package config

import "time"

// RateLimits is the `rate_limits:` section: where limits are counted and
// the layers shared by every route (DESIGN.md request flow: global and
// per-IP limits before routing, plans and route limits after
// authentication, auth-failure lockout inside authentication).
type RateLimits struct {
	Store             string          `yaml:"store" enum:"local,redis" doc:"Where limits are counted: local (this instance) or redis (exact across instances)."`
	Redis             *Redis          `yaml:"redis" doc:"The Redis server, Sentinel group or Cluster of store: redis."`
	FailureMode       string          `yaml:"failure_mode" enum:"open,closed" doc:"When Redis is unreachable: open (fall back to local limits) or closed (503)."`
	FallbackInstances int             `yaml:"fallback_instances" doc:"Under failure_mode: open, each instance allows 1/N of every limit while Redis is down (N = the number of instances)."`
	MaxKeys           int             `yaml:"max_keys" doc:"Most keys (IPs, consumers, ...) the local store tracks; idle keys expire once refilled."`
	Headers           bool            `yaml:"headers" doc:"Also send RateLimit and RateLimit-Policy headers on allowed responses (always on 429)."`
	Mode              Mode            `yaml:"mode" doc:"Mode of the rate-limit stage: enforce or report (overrides the top level)."`
	Global            *Limit          `yaml:"global" doc:"One limit for all requests, before routing."`
	PerIP             *Limit          `yaml:"per_ip" doc:"A limit per client IP, before routing and authentication (floods are shed before any signature check)."`
	Plans             map[string]Plan `yaml:"plans" keys:"^[A-Za-z0-9_.-]+$" doc:"Named limits that consumers reference with consumers[].plan."`
	AuthFailures      *AuthFailures   `yaml:"auth_failures" doc:"Lockout after repeated authentication failures, per client IP and per verified credential."`
}

// Limit is a token bucket: limit requests per period, with bursts up to
// burst (default: limit).
type Limit struct {
	Limit int      `yaml:"limit" required:"true" doc:"Requests allowed per period."`
	Per   Duration `yaml:"per" required:"true" doc:"The period, e.g. 1s, 1m, 1h."`
	Burst int      `yaml:"burst" doc:"Largest burst (default: limit)."`
}

// Plan is a named limit for the consumers on it, with an optional quota.
type Plan struct {
	Limit int      `yaml:"limit" required:"true" doc:"Requests allowed per period."`
	Per   Duration `yaml:"per" required:"true" doc:"The period, e.g. 1s, 1m, 1h."`
	Burst int      `yaml:"burst" doc:"Largest burst (default: limit)."`
	Quota *Quota   `yaml:"quota" doc:"Requests allowed per calendar day or month (UTC), counted in the store."`
}

// Quota is a count of requests per calendar period.
type Quota struct {
	Limit int    `yaml:"limit" required:"true" doc:"Requests allowed per period."`
	Per   string `yaml:"per" required:"true" enum:"day,month" doc:"day or month (UTC calendar periods)."`
}

// AuthFailures configures the auth-failure lockout.
type AuthFailures struct {
	Limit   int      `yaml:"limit" required:"true" doc:"Failed authentications allowed per window before the lockout."`
	Per     Duration `yaml:"per" required:"true" doc:"The window failures are counted in."`
	Lockout Duration `yaml:"lockout" doc:"How long further attempts get 429."`
}

// Redis configures the Redis store (go-redis universal client: one address
// for a standalone server, several for a Cluster, master_name for
// Sentinel).
type Redis struct {
	URL             Secret     `yaml:"url" doc:"redis:// or rediss:// URL of a standalone server (may hold a password: write it as ${ENV})."`
	Addrs           []string   `yaml:"addrs" doc:"host:port of Cluster nodes or Sentinels (instead of url)."`
	MasterName      string     `yaml:"master_name" doc:"Sentinel master name (with addrs)."`
	Username        string     `yaml:"username" doc:"ACL user name (with addrs)."`
	Password        Secret     `yaml:"password" doc:"Password (with addrs); write it as ${ENV_VAR}."`
	DB              int        `yaml:"db" min:"0" doc:"Database number (with addrs, standalone or Sentinel)."`
	TLS             *ClientTLS `yaml:"tls" doc:"TLS towards Redis (with addrs; a rediss:// url turns TLS on by itself)."`
	Timeout         Duration   `yaml:"timeout" doc:"Deadline of one rate-limit call to Redis; short, since every request waits for it."`
	PoolSize        int        `yaml:"pool_size" min:"0" doc:"Connections per node; 0 uses go-redis's default (10 per CPU)."`
	KeyPrefix       string     `yaml:"key_prefix" doc:"Prefix of every key Bulwark writes."`
	BreakerFailures int        `yaml:"breaker_failures" doc:"Consecutive Redis errors that open the circuit breaker (calls then skip Redis)."`
	BreakerCooldown Duration   `yaml:"breaker_cooldown" doc:"How long the breaker stays open before one call tries Redis again."`
}

// ClientTLS configures TLS from the gateway to a service it uses (Redis,
// a syslog receiver, a policy server).
type ClientTLS struct {
	CAFile     Path   `yaml:"ca_file" doc:"PEM CA bundle to verify the server with (instead of the system roots)."`
	CertFile   Path   `yaml:"cert_file" doc:"Client certificate presented to the server."`
	KeyFile    Path   `yaml:"key_file" doc:"Key of the client certificate."`
	ServerName string `yaml:"server_name" doc:"Name to verify the server certificate against."`
}

// RouteLimit is one limit of a route: requests per period per key.
type RouteLimit struct {
	Name  string   `yaml:"name" pattern:"^[A-Za-z0-9_.-]{1,64}$" doc:"Policy name in RateLimit headers and metrics (default: the route name, with -2, -3, ... for further limits)."`
	Key   string   `yaml:"key" required:"true" doc:"What is counted: consumer, principal, ip, header:NAME or claim:NAME."`
	Limit int      `yaml:"limit" required:"true" doc:"Requests allowed per period."`
	Per   Duration `yaml:"per" required:"true" doc:"The period, e.g. 1s, 1m, 1h."`
	Burst int      `yaml:"burst" doc:"Largest burst (default: limit)."`
}

// RouteLimits is a route's `rate_limit:` value: one limit (a mapping) or a
// list of limits, all of which apply.
type RouteLimits []RouteLimit

func (r *RateLimits) setDefaults() {
	r.Store = "local"
	r.FailureMode = "open"
	r.FallbackInstances = 1
	r.MaxKeys = 100000
}

func (r *Redis) setDefaults() {
	r.Timeout = Duration(100 * time.Millisecond)
	r.KeyPrefix = "bulwark:rl:"
	r.BreakerFailures = 3
	r.BreakerCooldown = Duration(2 * time.Second)
}

func (a *AuthFailures) setDefaults() {
	a.Lockout = Duration(15 * time.Minute)
}
