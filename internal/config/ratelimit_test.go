package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// rateLimitsWith returns a config whose rate_limits section has keys, one
// per line from line 2, each at column 3 (so a value is at column
// len(key)+5), and a public route.
func rateLimitsWith(keys ...string) string {
	src := []string{"rate_limits:"}
	for _, k := range keys {
		src = append(src, "  "+k)
	}
	return lines(append(src, routeTail("none")...)...)
}

// redisWith returns a config with store: redis and a redis section whose
// keys are one per line from line 4, each at column 5 (a value at column
// len(key)+7), and a public route.
func redisWith(keys ...string) string {
	src := []string{"rate_limits:", "  store: redis", "  redis:"}
	for _, k := range keys {
		src = append(src, "    "+k)
	}
	return lines(append(src, routeTail("none")...)...)
}

// limitAuthenticators are the authenticators of limitRoute, lines 1 to 4:
// corp (jwt), opaque (introspection) and keys (api_key).
var limitAuthenticators = []string{
	"authenticators:",
	"  corp: { type: jwt, issuer: \"https://idp.example.com/realms/acme\", audiences: [orders], algorithms: [RS256], jwks_url: \"https://idp.example.com/jwks\" }",
	"  opaque: { type: introspection, endpoint: \"https://idp.example.com/introspect\", client_id: gateway, client_secret: not-a-real-secret }",
	"  keys: { type: api_key }",
}

// limitRoute returns a config with the authenticators corp (jwt), opaque
// (introspection) and keys (api_key), and one route, r, whose auth is on
// line 12 (auth "" leaves it out, keeping the line count) and whose
// rate_limit key is on line 13 at column 5: the value rateLimit[0] starts
// at column 17, and every further line follows at column 7 (a flow list
// item's "-" at column 7, its first key at column 11).
func limitRoute(auth string, rateLimit ...string) string {
	authLine := "    auth: " + auth
	if auth == "" {
		authLine = "    mode: enforce"
	}
	src := slices.Concat(limitAuthenticators, []string{
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - name: r",
		"    method: GET",
		"    path: /",
		"    upstream: app",
		authLine,
		"    rate_limit: " + rateLimit[0],
	})
	for _, l := range rateLimit[1:] {
		src = append(src, "      "+l)
	}
	return lines(src...)
}

// plansWith returns a config with the plans free and gold (lines 2 to 4),
// an api_key authenticator and the consumers list items one per line from
// line 8 (the "-" at column 3, a flow mapping's first key at column 7).
func plansWith(items ...string) string {
	src := []string{
		"rate_limits:",
		"  plans:",
		"    free: { limit: 10, per: 1m }",
		"    gold: { limit: 100, per: 1m, quota: { limit: 100000, per: month } }",
		"authenticators:",
		"  keys: { type: api_key }",
		"consumers:",
	}
	for _, it := range items {
		src = append(src, "  "+it)
	}
	return lines(append(src, routeTail("[keys]")...)...)
}

func TestRateLimitsErrors(t *testing.T) {
	const (
		oneOrMore   = "must be 1 or more"
		perPositive = "must be greater than 0, e.g. 1s, 1m or 1h"
		limitReq    = "is required: the number of requests allowed per period"
		perReq      = "is required: the period, e.g. 1s, 1m or 1h"
		burstMin    = "must be 1 or more (leave it out to use limit)"
		planName    = "1 to 64 letters, digits, '_', '.' or '-'"
	)
	long := strings.Repeat("p", 65)
	runAuthnCases(t, []authnCase{
		// The store and how it fails.
		{name: "store unknown", src: rateLimitsWith("store: memcached"), want: []string{
			"2:10: rate_limits.store: must be local or redis"}},
		{name: "store is case-sensitive", src: rateLimitsWith("store: Redis"), want: []string{
			"2:10: rate_limits.store: must be local or redis"}},
		{name: "store from an empty variable", src: rateLimitsWith("store: ${EMPTY:-}"), want: []string{
			"2:10: rate_limits.store: must be local or redis"}},
		{name: "store as a list", src: rateLimitsWith("store: [local]"), want: []string{
			"2:10: rate_limits.store: expected a string, got a list"}},
		{name: "store redis without redis", src: rateLimitsWith("store: redis"), want: []string{
			"2:10: rate_limits.store: store: redis needs a redis section (url, or addrs)"}},
		{name: "failure_mode unknown", src: rateLimitsWith("failure_mode: fail"), want: []string{
			"2:17: rate_limits.failure_mode: must be open or closed"}},
		{name: "fallback_instances 0", src: rateLimitsWith("fallback_instances: 0"), want: []string{
			"2:23: rate_limits.fallback_instances: " + oneOrMore}},
		{name: "fallback_instances negative", src: rateLimitsWith("fallback_instances: -2"), want: []string{
			"2:23: rate_limits.fallback_instances: " + oneOrMore}},
		{name: "max_keys 0", src: rateLimitsWith("max_keys: 0"), want: []string{
			"2:13: rate_limits.max_keys: " + oneOrMore}},
		{name: "max_keys not an integer", src: rateLimitsWith("max_keys: 1e5"), want: []string{
			"2:13: rate_limits.max_keys: expected an integer"}},
		{name: "headers not a boolean", src: rateLimitsWith("headers: yes"), want: []string{
			"2:12: rate_limits.headers: expected true or false"}},
		{name: "mode unknown", src: rateLimitsWith("mode: audit"), want: []string{
			"2:9: rate_limits.mode: must be enforce or report"}},
		{name: "unknown key", src: rateLimitsWith("per_consumer: { limit: 1, per: 1s }"), want: []string{
			`2:3: rate_limits.per_consumer: unknown key "per_consumer" (known keys here: store, redis, failure_mode, fallback_instances, max_keys, headers, mode, global, per_ip, plans, auth_failures)`}},
		{name: "section not a mapping", src: lines(append([]string{"rate_limits: local"}, routeTail("none")...)...), want: []string{
			"1:14: rate_limits: expected a mapping, got a string"}},

		// global and per_ip: token buckets.
		{name: "global limit, per and burst", src: rateLimitsWith("global: { limit: 0, per: 0s, burst: -1 }"), want: []string{
			"2:20: rate_limits.global.limit: " + oneOrMore,
			"2:28: rate_limits.global.per: " + perPositive,
			"2:39: rate_limits.global.burst: " + burstMin,
		}},
		{name: "per_ip limit and per missing", src: rateLimitsWith("per_ip: { burst: 5 }"), want: []string{
			"2:11: rate_limits.per_ip.limit: " + limitReq,
			"2:11: rate_limits.per_ip.per: " + perReq,
		}},
		{name: "per_ip empty", src: rateLimitsWith("per_ip: {}"), want: []string{
			"2:11: rate_limits.per_ip.limit: " + limitReq,
			"2:11: rate_limits.per_ip.per: " + perReq,
		}},
		{name: "per_ip null is present", src: rateLimitsWith("per_ip:"), want: []string{
			"2:10: rate_limits.per_ip.limit: " + limitReq,
			"2:10: rate_limits.per_ip.per: " + perReq,
		}},
		{name: "per_ip explicit burst 0", src: rateLimitsWith("per_ip: { limit: 10, per: 1s, burst: 0 }"), want: []string{
			"2:40: rate_limits.per_ip.burst: " + burstMin}},
		{name: "per_ip per without unit", src: rateLimitsWith("per_ip: { limit: 10, per: 60 }"), want: []string{
			"2:29: rate_limits.per_ip.per: a duration needs a unit: use a unit, e.g. 30s"}},
		{name: "per_ip per negative", src: rateLimitsWith("per_ip: { limit: 10, per: -1s }"), want: []string{
			"2:29: rate_limits.per_ip.per: a duration must not be negative"}},
		{name: "per_ip limit not an integer", src: rateLimitsWith("per_ip: { limit: lots, per: 1s }"), want: []string{
			"2:20: rate_limits.per_ip.limit: expected an integer"}},
		{name: "per_ip a scalar", src: rateLimitsWith("per_ip: 100"), want: []string{
			"2:11: rate_limits.per_ip: expected a mapping, got a number"}},
		{name: "per_ip unknown key", src: rateLimitsWith("per_ip: { limit: 10, per: 1s, key: ip }"), want: []string{
			`2:33: rate_limits.per_ip.key: unknown key "key" (known keys here: limit, per, burst)`}},

		// plans.
		{name: "plan name with a space", src: rateLimitsWith("plans: { \"gold plan\": { limit: 1, per: 1s } }"), want: []string{
			`2:12: rate_limits.plans.gold plan: invalid plan name "gold plan": ` + planName}},
		{name: "plan name too long", src: rateLimitsWith("plans: { " + long + ": { limit: 1, per: 1s } }"), want: []string{
			"2:12: rate_limits.plans." + long + `: invalid plan name "` + long + `": ` + planName}},
		{name: "plan limit and per", src: rateLimitsWith("plans: { gold: { limit: 0, per: 0s } }"), want: []string{
			"2:27: rate_limits.plans.gold.limit: " + oneOrMore,
			"2:35: rate_limits.plans.gold.per: " + perPositive,
		}},
		{name: "plan empty", src: rateLimitsWith("plans: { gold: {} }"), want: []string{
			"2:18: rate_limits.plans.gold.limit: " + limitReq,
			"2:18: rate_limits.plans.gold.per: " + perReq,
		}},
		{name: "plan burst 0", src: rateLimitsWith("plans:", "  gold: { limit: 100, per: 1m, burst: 0 }"), want: []string{
			"3:41: rate_limits.plans.gold.burst: " + burstMin}},
		{name: "plans a list", src: rateLimitsWith("plans: [gold]"), want: []string{
			"2:10: rate_limits.plans: expected a mapping of names, got a list"}},
		{name: "quota limit and per", src: rateLimitsWith("plans:", "  gold:", "    limit: 100", "    per: 1m", "    quota: { limit: 0, per: week }"), want: []string{
			"6:23: rate_limits.plans.gold.quota.limit: " + oneOrMore,
			"6:31: rate_limits.plans.gold.quota.per: must be day or month",
		}},
		{name: "quota empty", src: rateLimitsWith("plans:", "  gold:", "    limit: 100", "    per: 1m", "    quota: {}"), want: []string{
			"6:14: rate_limits.plans.gold.quota.limit: is required: the number of requests allowed per day or month",
			"6:14: rate_limits.plans.gold.quota.per: is required: day or month",
		}},
		{name: "quota per a duration", src: rateLimitsWith("plans:", "  gold:", "    limit: 100", "    per: 1m", "    quota: { limit: 1000, per: 24h }"), want: []string{
			"6:34: rate_limits.plans.gold.quota.per: must be day or month"}},

		// auth_failures.
		{name: "auth_failures limit, per and lockout", src: rateLimitsWith("auth_failures: { limit: 0, per: 0s, lockout: 0s }"), want: []string{
			"2:27: rate_limits.auth_failures.limit: " + oneOrMore,
			"2:35: rate_limits.auth_failures.per: must be greater than 0",
			"2:48: rate_limits.auth_failures.lockout: must be greater than 0",
		}},
		{name: "auth_failures empty", src: rateLimitsWith("auth_failures: {}"), want: []string{
			"2:18: rate_limits.auth_failures.limit: is required: the failed authentications allowed per window",
			"2:18: rate_limits.auth_failures.per: is required: the window failures are counted in, e.g. 1m",
		}},
		{name: "auth_failures burst is not a key", src: rateLimitsWith("auth_failures: { limit: 5, per: 1m, burst: 5 }"), want: []string{
			`2:39: rate_limits.auth_failures.burst: unknown key "burst" (known keys here: limit, per, lockout)`}},

		// Every problem is reported, in file order.
		{name: "several", src: rateLimitsWith("store: disk", "max_keys: 0", "global: { limit: 0, per: 1s }"), want: []string{
			"2:10: rate_limits.store: must be local or redis",
			"3:13: rate_limits.max_keys: " + oneOrMore,
			"4:20: rate_limits.global.limit: " + oneOrMore,
		}},
	})
}

func TestRedisErrors(t *testing.T) {
	p := newPKI(t)
	env := map[string]string{"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile, "OTHER_KEY": newPKI(t).keyFile}
	const (
		urlForm   = "must be redis://[user:password@]host:port[/db] or rediss://... (TLS)"
		onlyAddrs = "only with addrs: with url, put it in the URL (rediss:// for TLS)"
		hostPort  = "must be host:port, e.g. 10.0.0.5:6379 (no scheme, no credentials: use username and password)"
	)
	runAuthnCases(t, withAuthnEnv(env, []authnCase{
		{name: "empty", src: rateLimitsWith("store: redis", "redis: {}"), want: []string{
			"3:10: rate_limits.redis: needs url (a standalone server) or addrs (Cluster nodes or Sentinels)"}},
		{name: "null is present", src: rateLimitsWith("redis:"), want: []string{
			"2:9: rate_limits.redis: needs url (a standalone server) or addrs (Cluster nodes or Sentinels)"}},
		{name: "url from an empty variable", src: redisWith("url: ${REDIS_URL:-}"), want: []string{
			"4:5: rate_limits.redis: needs url (a standalone server) or addrs (Cluster nodes or Sentinels)"}},
		{name: "addrs empty", src: redisWith("addrs: []"), want: []string{
			"4:5: rate_limits.redis: needs url (a standalone server) or addrs (Cluster nodes or Sentinels)"}},
		{name: "url and addrs", src: redisWith("url: redis://127.0.0.1:6379/0", "addrs: [\"10.0.0.1:6379\"]"), want: []string{
			"5:12: rate_limits.redis.addrs: use url or addrs, not both"}},

		// url.
		{name: "url scheme http", src: redisWith("url: http://127.0.0.1:6379"), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url scheme unix", src: redisWith("url: unix:///run/redis.sock"), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url without host", src: redisWith("url: redis:///0"), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url is an address", src: redisWith("url: 127.0.0.1:6379"), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url unparsable", src: redisWith("url: \"redis://[::1\""), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url port", src: redisWith("url: redis://127.0.0.1:redis"), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url port out of range", src: redisWith("url: redis://127.0.0.1:65536"), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url port 0", src: redisWith("url: redis://127.0.0.1:0/0"), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "url database not a number", src: redisWith("url: redis://127.0.0.1:6379/zero"), want: []string{
			"4:10: rate_limits.redis.url: the path must be a database number, e.g. /0"}},
		{name: "url path of two segments", src: redisWith("url: redis://127.0.0.1:6379/0/1"), want: []string{
			"4:10: rate_limits.redis.url: the path must be a database number, e.g. /0"}},
		{name: "url query", src: redisWith("url: \"rediss://127.0.0.1:6379/0?skip_verify=true\""), want: []string{
			"4:10: rate_limits.redis.url: must not have a query or fragment: set timeout and pool_size with their own keys"}},
		{name: "url empty fragment", src: redisWith("url: \"redis://127.0.0.1:6379/0#\""), want: []string{
			"4:10: rate_limits.redis.url: must not have a query or fragment: set timeout and pool_size with their own keys"}},
		{name: "url fragment", src: redisWith("url: \"redis://127.0.0.1:6379/0#x\""), want: []string{
			"4:10: rate_limits.redis.url: must not have a query or fragment: set timeout and pool_size with their own keys"}},
		{
			name: "url with the keys of addrs",
			src:  redisWith("url: redis://127.0.0.1:6379", "username: app", "password: not-a-real-password", "db: 1", "tls: {}", "master_name: main"),
			want: []string{
				"5:15: rate_limits.redis.username: " + onlyAddrs,
				"6:15: rate_limits.redis.password: " + onlyAddrs,
				"7:9: rate_limits.redis.db: " + onlyAddrs,
				"8:10: rate_limits.redis.tls: " + onlyAddrs,
				"9:18: rate_limits.redis.master_name: " + onlyAddrs,
			},
		},
		{name: "url with an explicit db 0", src: redisWith("url: redis://127.0.0.1:6379", "db: 0"), want: []string{
			"5:9: rate_limits.redis.db: " + onlyAddrs}},

		// addrs.
		{
			name: "addrs entries",
			src: redisWith(
				"addrs:",
				"  - localhost",
				"  - \"redis://app:pw@10.0.0.1:6379\"",
				"  - \"10.0.0.1:redis\"",
				"  - \"10.0.0.1:0\"",
				"  - \"10.0.0.1:65536\"",
				"  - \"\"",
				"  - \"bad host!:6379\"",
				"  - \"[::1]:6379\"",
				"  - \"redis-0.redis.svc:6379\"",
				"  - \":6379\"",
			),
			want: []string{
				"5:9: rate_limits.redis.addrs[0]: " + hostPort,
				"6:9: rate_limits.redis.addrs[1]: " + hostPort,
				"7:9: rate_limits.redis.addrs[2]: " + hostPort,
				"8:9: rate_limits.redis.addrs[3]: " + hostPort,
				"9:9: rate_limits.redis.addrs[4]: " + hostPort,
				"10:9: rate_limits.redis.addrs[5]: " + hostPort,
				"11:9: rate_limits.redis.addrs[6]: " + hostPort,
			},
		},
		{name: "addrs a string", src: redisWith("addrs: \"10.0.0.1:6379\""), want: []string{
			"4:12: rate_limits.redis.addrs: expected a list, got a string"}},
		{name: "db negative", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "db: -1"), want: []string{
			"5:9: rate_limits.redis.db: must not be negative"}},
		{name: "db on a Cluster", src: redisWith("addrs: [\"10.0.0.1:6379\", \"10.0.0.2:6379\"]", "db: 2"), want: []string{
			"5:9: rate_limits.redis.db: a Redis Cluster has only database 0: db is for one address or a Sentinel group (master_name)"}},

		// The keys of both forms.
		{
			name: "timeout, pool and breaker",
			src:  redisWith("url: redis://127.0.0.1:6379", "timeout: 0s", "pool_size: -1", "breaker_failures: 0", "breaker_cooldown: 0s"),
			want: []string{
				"5:14: rate_limits.redis.timeout: must be greater than 0",
				"6:16: rate_limits.redis.pool_size: must not be negative (0 uses go-redis's default)",
				"7:23: rate_limits.redis.breaker_failures: must be 1 or more",
				"8:23: rate_limits.redis.breaker_cooldown: must be greater than 0",
			},
		},
		{name: "timeout without unit", src: redisWith("url: redis://127.0.0.1:6379", "timeout: 100"), want: []string{
			"5:14: rate_limits.redis.timeout: a duration needs a unit: use a unit, e.g. 30s"}},
		{name: "unknown key", src: redisWith("url: redis://127.0.0.1:6379", "sentinel: true"), want: []string{
			`5:5: rate_limits.redis.sentinel: unknown key "sentinel" (known keys here: url, addrs, master_name, username, password, db, tls, timeout, pool_size, key_prefix, breaker_failures, breaker_cooldown)`}},

		// tls (with addrs).
		{name: "tls ca_file missing", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "tls: { ca_file: nope.pem }"), want: []string{
			"5:21: rate_limits.redis.tls.ca_file: cannot read the CA file: no such file or directory"}},
		{name: "tls ca_file not a CA", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "tls: { ca_file: \"${KEY}\" }"), want: []string{
			"5:21: rate_limits.redis.tls.ca_file: the CA file holds no PEM certificate"}},
		{name: "tls key_file without cert_file", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "tls: { key_file: \"${KEY}\" }"), want: []string{
			"5:10: rate_limits.redis.tls.cert_file: is required with key_file"}},
		{name: "tls cert_file without key_file", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "tls: { cert_file: \"${CERT}\" }"), want: []string{
			"5:10: rate_limits.redis.tls.key_file: is required with cert_file"}},
		{name: "tls files missing", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "tls: { cert_file: c.pem, key_file: k.pem }"), want: []string{
			"5:23: rate_limits.redis.tls.cert_file: cannot read the certificate: no such file or directory",
			"5:40: rate_limits.redis.tls.key_file: cannot read the key: no such file or directory",
		}},
		{name: "tls pair that does not match", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "tls: { cert_file: \"${CERT}\", key_file: \"${OTHER_KEY}\" }"), want: []string{
			"5:23: rate_limits.redis.tls.cert_file: cannot load the certificate and key: tls: private key does not match public key"}},
		{name: "tls unknown key", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "tls: { insecure_skip_verify: true }"), want: []string{
			`5:12: rate_limits.redis.tls.insecure_skip_verify: unknown key "insecure_skip_verify" (known keys here: ca_file, cert_file, key_file, server_name)`}},
	}))
}

func TestRouteLimitErrors(t *testing.T) {
	const (
		scalar  = "expected a limit ({ key: ..., limit: ..., per: ... }) or a list of limits, got "
		keys    = "consumer, principal, ip, header:NAME or claim:NAME"
		badName = "invalid limit name: 1 to 64 letters, digits, '_', '.' or '-' (it names the policy in RateLimit headers and metrics)"
	)
	p := newPKI(t)
	mtlsRoute := lines(
		"server:",
		"  tls: { cert_file: \"${CERT}\", key_file: \"${KEY}\", client_ca_file: \"${CA}\" }",
		"authenticators:",
		"  certs: { type: mtls }",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: r, method: GET, path: /, upstream: app, auth: [certs], rate_limit: { key: consumer, limit: 5, per: 1m } }",
	)
	runAuthnCases(t, []authnCase{
		// The decoder: one mapping or a list of mappings.
		{name: "a string", src: limitRoute("none", "5/m"), want: []string{
			"13:17: routes[0].rate_limit: " + scalar + "a string"}},
		{name: "a number", src: limitRoute("none", "100"), want: []string{
			"13:17: routes[0].rate_limit: " + scalar + "a number"}},
		{name: "null", src: limitRoute("none", "~"), want: []string{
			"13:17: routes[0].rate_limit: " + scalar + "null"}},
		{name: "from a variable", src: limitRoute("none", "${LIMIT:-5}"), want: []string{
			"13:17: routes[0].rate_limit: " + scalar + "a string"}},
		{name: "empty list", src: limitRoute("none", "[]"), want: []string{
			"13:17: routes[0].rate_limit: an empty list sets no limit: remove rate_limit, or list the limits"}},
		{name: "list of scalars", src: limitRoute("none", "", "- 5"), want: []string{
			"14:9: routes[0].rate_limit[0]: expected a mapping, got a number"}},
		{name: "unknown key in the mapping", src: limitRoute("none", "{ key: ip, limit: 1, per: 1s, window: 1m }"), want: []string{
			`13:47: routes[0].rate_limit.window: unknown key "window" (known keys here: name, key, limit, per, burst)`}},
		{name: "unknown key in a list item", src: limitRoute("none", "", "- { key: ip, limit: 1, per: 1s }", "- { key: ip, limit: 1, per: 1s, window: 1m }"), want: []string{
			`15:39: routes[0].rate_limit[1].window: unknown key "window" (known keys here: name, key, limit, per, burst)`}},

		// The bucket, in both forms: the path says which.
		{name: "mapping limit 0", src: limitRoute("none", "{ key: ip, limit: 0, per: 1m }"), want: []string{
			"13:35: routes[0].rate_limit.limit: must be 1 or more"}},
		{name: "mapping empty", src: limitRoute("none", "{}"), want: []string{
			"13:17: routes[0].rate_limit.key: is required: " + keys,
			"13:17: routes[0].rate_limit.limit: is required: the number of requests allowed per period",
			"13:17: routes[0].rate_limit.per: is required: the period, e.g. 1s, 1m or 1h",
		}},
		{name: "mapping burst", src: limitRoute("none", "{ key: ip, limit: 5, per: 1m, burst: -5 }"), want: []string{
			"13:54: routes[0].rate_limit.burst: must be 1 or more (leave it out to use limit)"}},
		{name: "list per 0", src: limitRoute("none", "", "- { key: ip, limit: 5, per: 1s }", "- { key: ip, limit: 100, per: 0s }"), want: []string{
			"15:37: routes[0].rate_limit[1].per: must be greater than 0, e.g. 1s, 1m or 1h"}},
		{name: "list item without key", src: limitRoute("none", "", "- { key: ip, limit: 5, per: 1s }", "- { limit: 100, per: 1m }"), want: []string{
			"15:9: routes[0].rate_limit[1].key: is required: " + keys}},
		{name: "block list", src: limitRoute("none", "", "- key: ip", "  limit: 5", "  per: 1s", "- key: user", "  limit: 100", "  per: 1m"), want: []string{
			`17:14: routes[0].rate_limit[1].key: unknown key "user": use ` + keys}},

		// Names.
		{name: "explicit names twice", src: limitRoute("none", "", "- { name: orders, key: ip, limit: 5, per: 1s }", "- { name: orders, key: ip, limit: 100, per: 1m }"), want: []string{
			`15:17: routes[0].rate_limit[1].name: duplicate limit name "orders" on this route`}},
		{name: "a default name taken", src: limitRoute("none", "", "- { name: r-2, key: ip, limit: 5, per: 1s }", "- { key: ip, limit: 100, per: 1m }"), want: []string{
			`15:9: routes[0].rate_limit[1].name: duplicate limit name "r-2" on this route`}},
		{name: "name with a space", src: limitRoute("none", "{ name: \"per minute\", key: ip, limit: 5, per: 1m }"), want: []string{
			"13:25: routes[0].rate_limit.name: " + badName}},
		{name: "name with a quote", src: limitRoute("none", "{ name: 'a\"b', key: ip, limit: 5, per: 1m }"), want: []string{
			"13:25: routes[0].rate_limit.name: " + badName}},
		{name: "name not ASCII", src: limitRoute("none", "{ name: größe, key: ip, limit: 5, per: 1m }"), want: []string{
			"13:25: routes[0].rate_limit.name: " + badName}},
		{name: "name empty", src: limitRoute("none", "{ name: \"\", key: ip, limit: 5, per: 1m }"), want: []string{
			"13:25: routes[0].rate_limit.name: " + badName}},
		{name: "name too long", src: limitRoute("none", "", "- { name: "+strings.Repeat("n", 65)+", key: ip, limit: 5, per: 1m }"), want: []string{
			"14:17: routes[0].rate_limit[0].name: " + badName}},
		{name: "a bad name and a bad key", src: limitRoute("none", "{ name: \"a b\", key: user, limit: 5, per: 1m }"), want: []string{
			"13:25: routes[0].rate_limit.name: " + badName,
			`13:37: routes[0].rate_limit.key: unknown key "user": use ` + keys,
		}},

		// Keys.
		{name: "key unknown", src: limitRoute("none", "{ key: user, limit: 5, per: 1m }"), want: []string{
			`13:24: routes[0].rate_limit.key: unknown key "user": use ` + keys}},
		{name: "key is case-sensitive", src: limitRoute("[keys]", "{ key: Consumer, limit: 5, per: 1m }"), want: []string{
			`13:24: routes[0].rate_limit.key: unknown key "Consumer": use ` + keys}},
		{name: "key empty", src: limitRoute("none", "{ key: \"\", limit: 5, per: 1m }"), want: []string{
			"13:24: routes[0].rate_limit.key: is required: " + keys}},
		{name: "header without a name", src: limitRoute("none", "{ key: \"header:\", limit: 5, per: 1m }"), want: []string{
			`13:24: routes[0].rate_limit.key: unknown key "header:": use ` + keys}},
		{name: "header not a header name", src: limitRoute("none", "{ key: \"header:X Tenant\", limit: 5, per: 1m }"), want: []string{
			"13:24: routes[0].rate_limit.key: header:X Tenant: not a valid header name"}},
		{name: "claim without a name", src: limitRoute("[corp]", "{ key: \"claim:\", limit: 5, per: 1m }"), want: []string{
			`13:24: routes[0].rate_limit.key: unknown key "claim:": use ` + keys}},
		{name: "claim on an api_key route", src: limitRoute("[keys]", "{ key: \"claim:tenant\", limit: 5, per: 1m }"), want: []string{
			"13:24: routes[0].rate_limit.key: key: claim:tenant needs a jwt or introspection authenticator in the route's auth"}},
		{name: "claim on a public route", src: limitRoute("none", "{ key: \"claim:tenant\", limit: 5, per: 1m }"), want: []string{
			"13:24: routes[0].rate_limit.key: key: claim:tenant needs a jwt or introspection authenticator in the route's auth"}},
		{name: "consumer on a public route", src: limitRoute("none", "{ key: consumer, limit: 5, per: 1m }"), want: []string{
			"13:24: routes[0].rate_limit.key: key: consumer needs an api_key, jwt or introspection authenticator in the route's auth: this route's authentication yields no consumer"}},
		{name: "consumer on an mtls route", src: mtlsRoute, env: map[string]string{"CERT": p.certFile, "KEY": p.keyFile, "CA": p.caFile}, want: []string{
			"8:87: routes[0].rate_limit.key: key: consumer needs an api_key, jwt or introspection authenticator in the route's auth: this route's authentication yields no consumer"}},
		{name: "principal on a public route", src: limitRoute("none", "{ key: principal, limit: 5, per: 1m }"), want: []string{
			"13:24: routes[0].rate_limit.key: key: principal needs authentication: a public route (auth: none) has no principal"}},
		{name: "the second limit's key", src: limitRoute("none", "", "- { key: ip, limit: 5, per: 1s }", "- { key: consumer, limit: 100, per: 1m }"), want: []string{
			"15:16: routes[0].rate_limit[1].key: key: consumer needs an api_key, jwt or introspection authenticator in the route's auth: this route's authentication yields no consumer"}},

		// A route whose auth is already wrong gets that error only, not
		// one more for each key that depends on it.
		{name: "auth missing", src: limitRoute("", "", "- { key: consumer, limit: 5, per: 1s }", "- { key: principal, limit: 5, per: 1s }", "- { key: \"claim:tenant\", limit: 5, per: 1s }"), want: []string{
			"8:5: routes[0].auth: is required: auth: none for a public route, or auth: [name, ...] for the authenticators that may accept it"}},
		{name: "auth unknown", src: limitRoute("[nope]", "{ key: consumer, limit: 5, per: 1s }"), want: []string{
			`12:12: routes[0].auth[0]: unknown authenticator "nope"`}},
		{name: "auth not decoded", src: limitRoute("[none]", "{ key: consumer, limit: 5, per: 1s }"), want: []string{
			"12:12: routes[0].auth[0]: none cannot be listed with authenticators: write auth: none alone for a public route"}},
	})
}

// TestRouteLimitKeysAccepted checks the keys each kind of authentication
// can count by.
func TestRouteLimitKeysAccepted(t *testing.T) {
	tests := []struct {
		auth, key string
	}{
		{auth: "none", key: "ip"},
		{auth: "none", key: "\"header:X-Tenant-Id\""},
		{auth: "[keys]", key: "consumer"},
		{auth: "[corp]", key: "consumer"},
		{auth: "[opaque]", key: "consumer"},
		{auth: "[keys]", key: "principal"},
		{auth: "[corp]", key: "\"claim:tenant\""},
		{auth: "[opaque]", key: "\"claim:org_id\""},
		{auth: "[keys, corp]", key: "\"claim:tenant\""},
		{auth: "[keys]", key: "ip"},
	}
	for _, tt := range tests {
		t.Run(tt.auth+" "+tt.key, func(t *testing.T) {
			cfg := mustParse(t, limitRoute(tt.auth, "{ key: "+tt.key+", limit: 5, per: 1m }"), nil)
			if got, want := cfg.Routes[0].RateLimit[0].Key, strings.Trim(tt.key, "\""); got != want {
				t.Errorf("key = %q, want %q", got, want)
			}
		})
	}
}

// TestPlanCrossCheck checks consumers[].plan against rate_limits.plans:
// when there are plans, a consumer's plan must be one of them.
func TestPlanCrossCheck(t *testing.T) {
	h1, h2 := hashOf("bwk_first"), hashOf("bwk_second")
	runAuthnCases(t, []authnCase{
		{name: "unknown plan", src: plansWith("- { id: acme, plan: silver }"), want: []string{
			`8:23: consumers[0].plan: unknown plan "silver": rate_limits.plans has free, gold`}},
		{name: "plan names are case-sensitive", src: plansWith("- { id: acme, plan: gold }", "- { id: beta, plan: Gold }"), want: []string{
			`9:23: consumers[1].plan: unknown plan "Gold": rate_limits.plans has free, gold`}},
		{name: "plan from a variable", src: plansWith("- { id: acme, plan: \"${PLAN}\" }"), env: map[string]string{"PLAN": "platinum"}, want: []string{
			`8:23: consumers[0].plan: unknown plan "platinum": rate_limits.plans has free, gold`}},
	})
	accepted := []struct {
		name string
		src  string
	}{
		{name: "known plans", src: plansWith(
			"- { id: acme, plan: gold, api_keys: [ { id: k1, sha256: "+h1+" } ] }",
			"- { id: beta, plan: free, api_keys: [ { id: k2, sha256: "+h2+" } ] }",
		)},
		{name: "a consumer without a plan", src: plansWith("- { id: acme }")},
		{name: "no plans: any plan name is a label", src: consumersWith("- { id: acme, plan: anything }")},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			mustParse(t, tt.src, nil)
		})
	}
}

func TestRateLimitDefaults(t *testing.T) {
	t.Run("no section", func(t *testing.T) {
		cfg := mustParse(t, minimal, nil)
		want := RateLimits{Store: "local", FailureMode: "open", FallbackInstances: 1, MaxKeys: 100000}
		if got := cfg.RateLimits; !reflect.DeepEqual(got, want) {
			t.Errorf("rate_limits =\n%+v\nwant\n%+v", got, want)
		}
		if got := cfg.Routes[0].RateLimit; got != nil {
			t.Errorf("route rate_limit = %+v, want nil", got)
		}
	})
	t.Run("empty section", func(t *testing.T) {
		cfg := mustParse(t, rateLimitsWith("mode: report"), nil)
		want := RateLimits{Store: "local", FailureMode: "open", FallbackInstances: 1, MaxKeys: 100000, Mode: ModeReport}
		if got := cfg.RateLimits; !reflect.DeepEqual(got, want) {
			t.Errorf("rate_limits =\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("present sections", func(t *testing.T) {
		cfg := mustParse(t, rateLimitsWith(
			"store: redis",
			"redis: { url: \"redis://127.0.0.1:6379/0\" }",
			"global: { limit: 1000, per: 1s }",
			"per_ip: { limit: 100, per: 1s, burst: 200 }",
			"plans: { gold: { limit: 50, per: 1m } }",
			"auth_failures: { limit: 5, per: 1m }",
		), nil)
		rl := cfg.RateLimits
		tests := []struct {
			name string
			got  any
			want any
		}{
			{name: "redis", got: *rl.Redis, want: Redis{
				URL:             "redis://127.0.0.1:6379/0",
				Timeout:         Duration(100 * time.Millisecond),
				KeyPrefix:       "bulwark:rl:",
				BreakerFailures: 3,
				BreakerCooldown: Duration(2 * time.Second),
			}},
			{name: "failure_mode", got: rl.FailureMode, want: "open"},
			{name: "fallback_instances", got: rl.FallbackInstances, want: 1},
			{name: "max_keys", got: rl.MaxKeys, want: 100000},
			{name: "headers", got: rl.Headers, want: false},
			{name: "mode inherits", got: rl.Mode, want: ModeInherit},
			{name: "global burst is its limit", got: *rl.Global, want: Limit{Limit: 1000, Per: Duration(time.Second), Burst: 1000}},
			{name: "per_ip burst as written", got: *rl.PerIP, want: Limit{Limit: 100, Per: Duration(time.Second), Burst: 200}},
			{name: "plan burst is its limit", got: rl.Plans["gold"], want: Plan{Limit: 50, Per: Duration(time.Minute), Burst: 50}},
			{name: "auth_failures lockout", got: *rl.AuthFailures, want: AuthFailures{Limit: 5, Per: Duration(time.Minute), Lockout: Duration(15 * time.Minute)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if !reflect.DeepEqual(tt.got, tt.want) {
					t.Errorf("got %+v, want %+v", tt.got, tt.want)
				}
			})
		}
	})
	t.Run("explicit values survive", func(t *testing.T) {
		cfg := mustParse(t, rateLimitsWith(
			"store: redis",
			"redis: { url: \"redis://127.0.0.1:6379/0\", key_prefix: \"\", breaker_failures: 1, timeout: 1s }",
			"failure_mode: closed",
			"auth_failures: { limit: 5, per: 1m, lockout: 1h }",
		), nil)
		rl := cfg.RateLimits
		if got, want := []any{rl.Redis.KeyPrefix, rl.Redis.BreakerFailures, rl.Redis.Timeout, rl.FailureMode, rl.AuthFailures.Lockout},
			[]any{"", 1, Duration(time.Second), "closed", Duration(time.Hour)}; !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

// TestRouteLimitDefaults checks that a route limit's burst defaults to its
// limit and its name to the route's name, then name-2, name-3, ... by
// position in the list.
func TestRouteLimitDefaults(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want RouteLimits
	}{
		{
			name: "one mapping",
			src:  limitRoute("[keys]", "{ key: consumer, limit: 5, per: 1m }"),
			want: RouteLimits{{Name: "r", Key: "consumer", Limit: 5, Per: Duration(time.Minute), Burst: 5}},
		},
		{
			name: "one mapping with a name and burst",
			src:  limitRoute("[keys]", "{ name: orders-per-consumer, key: consumer, limit: 5, per: 1m, burst: 10 }"),
			want: RouteLimits{{Name: "orders-per-consumer", Key: "consumer", Limit: 5, Per: Duration(time.Minute), Burst: 10}},
		},
		{
			name: "a list",
			src: limitRoute("[keys, corp]", "",
				"- { key: consumer, limit: 5, per: 1s }",
				"- { name: daily, key: \"claim:tenant\", limit: 1000, per: 24h, burst: 100 }",
				"- { key: \"header:X-Tenant-Id\", limit: 100, per: 1m }",
				"- { key: ip, limit: 10, per: 1s }",
			),
			want: RouteLimits{
				{Name: "r", Key: "consumer", Limit: 5, Per: Duration(time.Second), Burst: 5},
				{Name: "daily", Key: "claim:tenant", Limit: 1000, Per: Duration(24 * time.Hour), Burst: 100},
				{Name: "r-3", Key: "header:X-Tenant-Id", Limit: 100, Per: Duration(time.Minute), Burst: 100},
				{Name: "r-4", Key: "ip", Limit: 10, Per: Duration(time.Second), Burst: 10},
			},
		},
		{
			name: "a list of one",
			src:  limitRoute("none", "[ { key: ip, limit: 5, per: 1s } ]"),
			want: RouteLimits{{Name: "r", Key: "ip", Limit: 5, Per: Duration(time.Second), Burst: 5}},
		},
		{
			name: "an aliased limit",
			src:  limitRoute("none", "", "- &l { key: ip, limit: 5, per: 1s }", "- *l"),
			want: RouteLimits{
				{Name: "r", Key: "ip", Limit: 5, Per: Duration(time.Second), Burst: 5},
				{Name: "r-2", Key: "ip", Limit: 5, Per: Duration(time.Second), Burst: 5},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.src, nil)
			if got := cfg.Routes[0].RateLimit; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rate_limit =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	// Names are per route: two routes may both have a limit named after
	// themselves, and the same explicit name.
	cfg := mustParse(t, lines(
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - { name: a, method: GET, path: /a, upstream: app, auth: none, rate_limit: [ { key: ip, limit: 1, per: 1s }, { name: shared, key: ip, limit: 9, per: 1m } ] }",
		"  - { name: b, method: GET, path: /b, upstream: app, auth: none, rate_limit: [ { key: ip, limit: 1, per: 1s }, { name: shared, key: ip, limit: 9, per: 1m } ] }",
	), nil)
	var got []string
	for _, rt := range cfg.Routes {
		for _, l := range rt.RateLimit {
			got = append(got, l.Name)
		}
	}
	if want := []string{"a", "shared", "b", "shared"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names = %v, want %v", got, want)
	}
}

// TestRateLimitsLoad loads a config that sets every rate-limit key, from a
// file, and checks all of it.
func TestRateLimitsLoad(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	writeFile(t, dir, "tls/redis-ca.crt", mustRead(t, p.caFile))
	env := map[string]string{"CERT": p.certFile, "KEY": p.keyFile, "REDIS_PASSWORD": "not-a-real-password"}
	path := writeFile(t, dir, "bulwark.yaml", lines(
		"rate_limits:",
		"  store: redis",
		"  redis:",
		"    addrs: [\"redis-sentinel-0:26379\", \"redis-sentinel-1:26379\", \"10.0.0.7:26379\"]",
		"    master_name: bulwark",
		"    username: gateway",
		"    password: ${REDIS_PASSWORD}",
		"    db: 2",
		"    tls:",
		"      ca_file: tls/redis-ca.crt",
		"      cert_file: ${CERT}",
		"      key_file: ${KEY}",
		"      server_name: redis.internal",
		"    timeout: 50ms",
		"    pool_size: 20",
		"    key_prefix: \"acme:rl:\"",
		"    breaker_failures: 5",
		"    breaker_cooldown: 10s",
		"  failure_mode: closed",
		"  fallback_instances: 3",
		"  max_keys: 50000",
		"  headers: true",
		"  mode: report",
		"  global: { limit: 10000, per: 1s, burst: 20000 }",
		"  per_ip: { limit: 100, per: 1s, burst: 200 }",
		"  plans:",
		"    free: { limit: 10, per: 1m }",
		"    gold:",
		"      limit: 1000",
		"      per: 1m",
		"      burst: 2000",
		"      quota: { limit: 1000000, per: month }",
		"    trial: { limit: 5, per: 1s, quota: { limit: 500, per: day } }",
		"  auth_failures: { limit: 10, per: 5m, lockout: 30m }",
		"authenticators:",
		"  keys: { type: api_key }",
		"  corp: { type: jwt, issuer: \"https://idp.example.com/realms/acme\", audiences: [orders], algorithms: [RS256], jwks_url: \"https://idp.example.com/jwks\" }",
		"consumers:",
		"  - { id: acme, plan: gold }",
		"  - { id: beta, plan: trial }",
		"upstreams:",
		"  app: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - name: list-orders",
		"    method: GET",
		"    path: /orders",
		"    upstream: app",
		"    auth: [keys, corp]",
		"    rate_limit: { key: consumer, limit: 5, per: 1m, burst: 5 }",
		"  - name: search",
		"    method: GET",
		"    path: /search",
		"    upstream: app",
		"    auth: [corp]",
		"    rate_limit:",
		"      - { name: search-burst, key: principal, limit: 2, per: 1s }",
		"      - { key: \"claim:tenant\", limit: 1000, per: 1h, burst: 100 }",
		"      - { key: \"header:X-Tenant-Id\", limit: 100, per: 1m }",
		"      - { key: ip, limit: 20, per: 1s }",
		"  - { name: health, method: GET, path: /health, upstream: app, auth: none }",
	))
	cfg, err := Load(path, envOf(env))
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	want := RateLimits{
		Store: "redis",
		Redis: &Redis{
			Addrs:      []string{"redis-sentinel-0:26379", "redis-sentinel-1:26379", "10.0.0.7:26379"},
			MasterName: "bulwark",
			Username:   "gateway",
			Password:   "not-a-real-password",
			DB:         2,
			TLS: &ClientTLS{
				CAFile:     Path(filepath.Join(dir, "tls/redis-ca.crt")),
				CertFile:   Path(p.certFile),
				KeyFile:    Path(p.keyFile),
				ServerName: "redis.internal",
			},
			Timeout:         Duration(50 * time.Millisecond),
			PoolSize:        20,
			KeyPrefix:       "acme:rl:",
			BreakerFailures: 5,
			BreakerCooldown: Duration(10 * time.Second),
		},
		FailureMode:       "closed",
		FallbackInstances: 3,
		MaxKeys:           50000,
		Headers:           true,
		Mode:              ModeReport,
		Global:            &Limit{Limit: 10000, Per: Duration(time.Second), Burst: 20000},
		PerIP:             &Limit{Limit: 100, Per: Duration(time.Second), Burst: 200},
		Plans: map[string]Plan{
			"free":  {Limit: 10, Per: Duration(time.Minute), Burst: 10},
			"gold":  {Limit: 1000, Per: Duration(time.Minute), Burst: 2000, Quota: &Quota{Limit: 1000000, Per: "month"}},
			"trial": {Limit: 5, Per: Duration(time.Second), Burst: 5, Quota: &Quota{Limit: 500, Per: "day"}},
		},
		AuthFailures: &AuthFailures{Limit: 10, Per: Duration(5 * time.Minute), Lockout: Duration(30 * time.Minute)},
	}
	if got := cfg.RateLimits; !reflect.DeepEqual(got, want) {
		t.Errorf("rate_limits =\n%#v\nwant\n%#v", got, want)
		if !reflect.DeepEqual(got.Redis, want.Redis) {
			t.Errorf("redis =\n%#v\nwant\n%#v", *got.Redis, *want.Redis)
		}
	}
	routes := []RouteLimits{
		{{Name: "list-orders", Key: "consumer", Limit: 5, Per: Duration(time.Minute), Burst: 5}},
		{
			{Name: "search-burst", Key: "principal", Limit: 2, Per: Duration(time.Second), Burst: 2},
			{Name: "search-2", Key: "claim:tenant", Limit: 1000, Per: Duration(time.Hour), Burst: 100},
			{Name: "search-3", Key: "header:X-Tenant-Id", Limit: 100, Per: Duration(time.Minute), Burst: 100},
			{Name: "search-4", Key: "ip", Limit: 20, Per: Duration(time.Second), Burst: 20},
		},
		nil,
	}
	for i, want := range routes {
		if got := cfg.Routes[i].RateLimit; !reflect.DeepEqual(got, want) {
			t.Errorf("routes[%d].rate_limit =\n%+v\nwant\n%+v", i, got, want)
		}
	}
	if got, want := []string{cfg.Consumers[0].Plan, cfg.Consumers[1].Plan}, []string{"gold", "trial"}; !reflect.DeepEqual(got, want) {
		t.Errorf("consumer plans = %v, want %v", got, want)
	}
	// The positions of the new keys are known, for the gateway's errors.
	if got, want := cfg.Pos("routes[1].rate_limit[2].key"), (Pos{Line: 58, Col: 16}); got != want {
		t.Errorf("Pos(routes[1].rate_limit[2].key) = %v, want %v", got, want)
	}
	if got, want := cfg.Pos("routes[0].rate_limit.limit"), (Pos{Line: 49, Col: 41}); got != want {
		t.Errorf("Pos(routes[0].rate_limit.limit) = %v, want %v", got, want)
	}

	// The other form of redis: one URL, TLS by its scheme.
	cfg = mustParse(t, redisWith(
		"url: \"rediss://gateway:${REDIS_PASSWORD}@redis.internal:6380/3\"",
		"pool_size: 0",
	), env)
	wantRedis := Redis{
		URL:             "rediss://gateway:not-a-real-password@redis.internal:6380/3",
		Timeout:         Duration(100 * time.Millisecond),
		KeyPrefix:       "bulwark:rl:",
		BreakerFailures: 3,
		BreakerCooldown: Duration(2 * time.Second),
	}
	if got := *cfg.RateLimits.Redis; !reflect.DeepEqual(got, wantRedis) {
		t.Errorf("redis = %#v, want %#v", got, wantRedis)
	}
	for _, u := range []string{"redis://localhost", "redis://127.0.0.1:6379/", "redis://:pw@[::1]:6379/15", "redis://user@10.0.0.1"} {
		t.Run(u, func(t *testing.T) {
			mustParse(t, redisWith("url: \""+u+"\""), nil)
		})
	}
}

// TestRedisSecretsNotEchoed checks that no error repeats the Redis URL or
// password, which hold credentials, whatever is wrong around them; and
// that a loaded config does not print them either.
func TestRedisSecretsNotEchoed(t *testing.T) {
	const secret = "S3cret-Redis-pw"
	env := map[string]string{"REDIS_URL": "redis://gateway:" + secret + "@10.0.0.1:6379/" + secret, "REDIS_PASSWORD": secret}
	const (
		urlForm   = "must be redis://[user:password@]host:port[/db] or rediss://... (TLS)"
		onlyAddrs = "only with addrs: with url, put it in the URL (rediss:// for TLS)"
	)
	tests := []authnCase{
		{name: "scheme", src: redisWith("url: \"http://gateway:" + secret + "@10.0.0.1:6379\""), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "unparsable", src: redisWith("url: \"redis://gateway:" + secret + "@[::1\""), want: []string{
			"4:10: rate_limits.redis.url: " + urlForm}},
		{name: "password in the path", src: redisWith("url: \"redis://gateway:" + secret + "@10.0.0.1:6379/" + secret + "\""), want: []string{
			"4:10: rate_limits.redis.url: the path must be a database number, e.g. /0"}},
		{name: "password in the query", src: redisWith("url: \"redis://10.0.0.1:6379/0?password=" + secret + "\""), want: []string{
			"4:10: rate_limits.redis.url: must not have a query or fragment: set timeout and pool_size with their own keys"}},
		{name: "from the environment", src: redisWith("url: ${REDIS_URL}", "db: 1"), want: []string{
			"4:10: rate_limits.redis.url: the path must be a database number, e.g. /0",
			"5:9: rate_limits.redis.db: " + onlyAddrs,
		}},
		{name: "url and addrs", src: redisWith("url: \"redis://gateway:"+secret+"@10.0.0.1:6379\"", "addrs: [\"10.0.0.1:6379\"]"), want: []string{
			"5:12: rate_limits.redis.addrs: use url or addrs, not both"}},
		{name: "url and password", src: redisWith("url: \"redis://gateway:"+secret+"@10.0.0.1:6379\"", "password: "+secret), want: []string{
			"5:15: rate_limits.redis.password: " + onlyAddrs}},
		{name: "a URL in addrs", src: redisWith("addrs: [\"redis://gateway:" + secret + "@10.0.0.1:6379\"]"), want: []string{
			"4:13: rate_limits.redis.addrs[0]: must be host:port, e.g. 10.0.0.5:6379 (no scheme, no credentials: use username and password)"}},
		{name: "user info in addrs", src: redisWith("addrs: [\"gateway:" + secret + "@10.0.0.1:6379\"]"), want: []string{
			"4:13: rate_limits.redis.addrs[0]: must be host:port, e.g. 10.0.0.5:6379 (no scheme, no credentials: use username and password)"}},
		{name: "password as a list", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "password: [\""+secret+"\"]"), want: []string{
			"5:15: rate_limits.redis.password: expected a string, got a list"}},
		{name: "other errors next to the password", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "password: ${REDIS_PASSWORD}", "timeout: 0s"), want: []string{
			"6:14: rate_limits.redis.timeout: must be greater than 0"}},
	}
	for i := range tests {
		if tests[i].env == nil {
			tests[i].env = env
		}
	}
	runAuthnCases(t, tests)
	for _, tt := range tests {
		t.Run(tt.name+" not echoed", func(t *testing.T) {
			if got := parseErrors(t, tt.src, tt.env).Error(); strings.Contains(got, secret) {
				t.Errorf("errors repeat the secret:\n%s", got)
			}
		})
	}
	cfg := mustParse(t, redisWith("url: \"redis://gateway:"+secret+"@10.0.0.1:6379/0\""), nil)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(format, *cfg.RateLimits.Redis); strings.Contains(got, secret) {
			t.Errorf("Sprintf(%q) of the redis section shows the password: %s", format, got)
		}
	}
	cfg = mustParse(t, redisWith("addrs: [\"10.0.0.1:6379\"]", "password: "+secret), nil)
	if got := fmt.Sprintf("%+v", *cfg.RateLimits.Redis); strings.Contains(got, secret) || !strings.Contains(got, "[redacted]") {
		t.Errorf("Sprintf(%%+v) of the redis section = %s, want the password redacted", got)
	}
}

// TestRateLimitSchema checks what the editor schema accepts for the
// rate-limit keys.
func TestRateLimitSchema(t *testing.T) {
	sch := compileSchema(t)
	tests := []struct {
		name string
		src  string
		ok   bool
	}{
		{name: "local per_ip", src: rateLimitsWith("store: local", "per_ip: { limit: 100, per: 1s, burst: 200 }"), ok: true},
		{name: "redis url", src: redisWith("url: \"redis://127.0.0.1:6379/0\"", "pool_size: 0"), ok: true},
		{name: "plans with quotas", src: rateLimitsWith("plans: { gold: { limit: 5, per: 1s, quota: { limit: 100, per: month } } }"), ok: true},
		{name: "route limit mapping", src: limitRoute("[keys]", "{ key: consumer, limit: 5, per: 1m, burst: 5 }"), ok: true},
		{name: "route limit list", src: limitRoute("[keys]", "", "- { key: consumer, limit: 5, per: 1m }", "- { name: daily, key: ip, limit: 100, per: 24h }"), ok: true},
		{name: "store unknown", src: rateLimitsWith("store: memcached")},
		{name: "failure_mode unknown", src: rateLimitsWith("failure_mode: fail")},
		{name: "burst 0", src: rateLimitsWith("per_ip: { limit: 100, per: 1s, burst: 0 }")},
		{name: "limit missing", src: rateLimitsWith("global: { per: 1s }")},
		{name: "quota per a duration", src: rateLimitsWith("plans: { gold: { limit: 5, per: 1s, quota: { limit: 100, per: 24h } } }")},
		{name: "plan name", src: rateLimitsWith("plans: { \"gold plan\": { limit: 5, per: 1s } }")},
		{name: "db negative", src: redisWith("addrs: [\"10.0.0.1:6379\"]", "db: -1")},
		{name: "route limit scalar", src: limitRoute("none", "5/m")},
		{name: "route limit empty list", src: limitRoute("none", "[]")},
		{name: "route limit without key", src: limitRoute("none", "{ limit: 5, per: 1m }")},
		{name: "route limit unknown key", src: limitRoute("none", "{ key: ip, limit: 5, per: 1m, window: 1m }")},
		{name: "route limit name", src: limitRoute("none", "{ name: \"a b\", key: ip, limit: 5, per: 1m }")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sch.Validate(yamlToJSON(t, []byte(tt.src)))
			if got := err == nil; got != tt.ok {
				t.Errorf("valid = %v, want %v (%v)", got, tt.ok, err)
			}
		})
	}
}

// TestExampleRateLimits checks that configs/bulwark.example.yaml shows the
// rate limits it documents: a per-IP limit, the plan of its consumer with
// a quota, the auth-failure lockout and a route limit by consumer.
func TestExampleRateLimits(t *testing.T) {
	cfg, err := Load(filepath.Join(configsDir, "bulwark.example.yaml"), envOf(configsEnv(t)))
	if err != nil {
		t.Fatalf("Load() error:\n%v", err)
	}
	rl := cfg.RateLimits
	if rl.Store != "local" || rl.PerIP == nil || rl.AuthFailures == nil {
		t.Errorf("example rate_limits = %+v, want store local with per_ip and auth_failures", rl)
	}
	plan, ok := rl.Plans[cfg.Consumers[0].Plan]
	if !ok || plan.Quota == nil {
		t.Errorf("example consumer's plan %q is not a plan with a quota in %v", cfg.Consumers[0].Plan, rl.Plans)
	}
	found := false
	for _, rt := range cfg.Routes {
		for _, l := range rt.RateLimit {
			found = found || l.Key == "consumer"
		}
	}
	if !found {
		t.Errorf("no example route has a rate_limit with key: consumer")
	}
}

func TestRouteLimitKeyRefusesCredentials(t *testing.T) {
	for _, header := range []string{"Authorization", "cookie", "X-API-Key", "DPoP"} {
		src := `
upstreams:
  app: { url: "http://127.0.0.1:9000" }
authenticators:
  keys: { type: api_key, header: X-API-Key }
routes:
  - { name: r, method: GET, path: /, upstream: app, auth: [keys], rate_limit: { key: "header:` + header + `", limit: 1, per: 1s } }
`
		_, err := Parse("t.yaml", []byte(src), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), "routes[0].rate_limit.key: header:"+header+" carries a credential") {
			t.Errorf("header:%s: err = %v, want it refused as a credential", header, err)
		}
	}
}

func TestRedisUnusedWarning(t *testing.T) {
	src := `
upstreams:
  app: { url: "http://127.0.0.1:9000" }
rate_limits:
  redis: { url: "redis://127.0.0.1:6379/0" }
routes:
  - { name: r, method: GET, path: /, upstream: app, auth: none }
`
	cfg, err := Parse("t.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range cfg.Warnings() {
		found = found || strings.Contains(w.Error(), "rate_limits.redis: not used: rate_limits.store is local")
	}
	if !found {
		t.Errorf("warnings = %v, want rate_limits.redis not used", cfg.Warnings())
	}
}
