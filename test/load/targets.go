package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// bareName is the target the report compares every other one with, and
// the default baseline of a judged target's limits.
const bareName = "bare"

// passThroughName is bulwark's pass-through route, the baseline of the
// targets that add one capability to it (the rate-limited routes).
const passThroughName = "bulwark"

// auditDenialsName is the pass-through route with the audit log on for
// denials only, the baseline of the route that audits every request.
const auditDenialsName = "bulwark-audit-denials"

// bareTimeoutsName is the bare proxy with bulwark's default server
// timeouts (read, write, idle): not a yardstick, a reference that shows how
// much of the gap to bare is the price of those timeouts.
const bareTimeoutsName = "bare-timeouts"

// rig is the fixed part of a run that every target starts against.
type rig struct {
	self     string // this harness's executable, re-run in a role
	bulwark  string // the bulwark binary under test
	upstream string // host:port of the fixed upstream
	dir      string // scratch directory for generated configs and the files targets write
	cpu      string // taskset CPU list of the upstream and the proxy under test
	jwksURL  string // URL of the run's JWK Set, served by this process (see issuer.go)
	redisURL string // redis:// URL of the run's redis-server (see redis.go)
	// apiKeySHA256 is the hex SHA-256 of the API key the API-key routes
	// accept; the key itself is only in those targets' headers.
	apiKeySHA256 string
	procs        *children
}

// target is one thing the load generator measures. It is started fresh
// for each round, in front of the shared upstream, and stopped before the
// next target starts, so that only one proxy uses the proxies' CPU at a
// time.
type target struct {
	name string
	what string
	// headers are sent with every request ("Name: value"), for targets
	// whose route needs credentials.
	headers []string
	// limits are the targets for this target against its
	// baseline (bare unless they name another); nil for a target that is
	// measured but not judged (see verdicts).
	limits *limits
	start  func(ctx context.Context, r *rig) (instance, error)
}

// limits are a judged target's targets, as ratios to its baseline's
// figures in the same run. A zero ratio gives no verdict for that metric.
type limits struct {
	minRPS float64 // requests/s at least minRPS × the baseline's
	maxP99 float64 // p99 latency at most maxP99 × the baseline's
	// baseline names the target compared with; "" is bare.
	baseline string
}

// against returns the name of the target l compares with.
func (l *limits) against() string {
	if l.baseline == "" {
		return bareName
	}
	return l.baseline
}

// instance is a started target.
type instance struct {
	url  string // the URL wrk loads
	stop func()
}

// targets returns what one run measures, in the order of each round;
// token is the bearer token the JWT route accepts (see issuer), apiKey the
// API key the rate-limited routes accept (their configs hold only its
// SHA-256, rig.apiKeySHA256). Later capabilities add their own bulwark
// targets here (a validated route, a filtered route), each with its own
// config and limits, against bare or against the bulwark route they
// extend.
func targets(token, apiKey string) []target {
	jwtRoute := bulwarkTarget("bulwark-jwt", "bulwark, JWT route (RS256, JWKS over HTTP), the same token on every request",
		// The target for a JWT route with a repeated token; its
		// tail is reported but not judged.
		&limits{minRPS: 0.80},
		jwtConfig)
	jwtRoute.headers = []string{"Authorization: Bearer " + token}
	// The targets for rate limiting are relative to the
	// pass-through route, in the same run: a route with a local
	// per-consumer limit that is never reached at ≥ 0.85× its requests/s,
	// a Redis-backed one at ≥ 0.6×. A per-consumer limit needs a
	// consumer, so these routes also authenticate the API key (a SHA-256
	// of the header and a map lookup): that is part of what is judged.
	keyHeader := []string{apiKeyHeader + ": " + apiKey}
	localRoute := bulwarkTarget("bulwark-ratelimit-local",
		"bulwark, API-key auth (one consumer; the key's SHA-256 looked up per request) and a per-consumer rate limit never reached (10^8/s), counted in memory (store: local)",
		&limits{minRPS: 0.85, baseline: passThroughName},
		rateLimitLocalConfig)
	localRoute.headers = keyHeader
	redisRoute := bulwarkTarget("bulwark-ratelimit-redis",
		"the same, counted in Redis (store: redis, failure_mode: closed; one redis-server on loopback, pinned with the proxy)",
		&limits{minRPS: 0.60, baseline: passThroughName},
		rateLimitRedisConfig)
	redisRoute.headers = keyHeader
	// The target for the audit log: writing an event for every
	// request (to a file) at ≥ 0.90× the requests/s of the same route
	// with the audit log on but writing denials only, in the same run.
	// With allowed: none and a route that allows every request, the
	// baseline writes nothing: it measures the price of having the audit
	// log on (a record per request, the decision that no event is due),
	// so the verdict isolates building, queuing and writing the events.
	auditDenials := bulwarkTarget(auditDenialsName,
		"bulwark, pass-through route with the audit log on, sink file, allowed: none (every request is allowed: no event written)",
		nil, auditDenialsConfig)
	auditAll := bulwarkTarget("bulwark-audit-all",
		"the same with allowed: all: one event per request, appended to a file in the run's scratch directory",
		&limits{minRPS: 0.90, baseline: auditDenialsName},
		auditAllConfig)
	return []target{
		directTarget(),
		bareTarget(bareName, "httputil.ReverseProxy, tuned (buffer pool, 256 idle conns/host)"),
		bareTarget(bareTimeoutsName, "the same, plus bulwark's default server timeouts (read 60s, write 60s, idle 120s); reference only"),
		bulwarkTarget(passThroughName, "bulwark, pass-through route (auth: none)",
			// The targets for the pass-through route.
			&limits{minRPS: 0.90, maxP99: 1.20},
			passThroughConfig),
		jwtRoute,
		localRoute,
		redisRoute,
		auditDenials,
		auditAll,
	}
}

// directTarget loads the upstream itself: the ceiling no proxy can reach.
func directTarget() target {
	return target{
		name: "direct",
		what: "upstream, no proxy",
		start: func(_ context.Context, r *rig) (instance, error) {
			return instance{url: "http://" + r.upstream + benchPath, stop: func() {}}, nil
		},
	}
}

// bareTarget is the tuned httputil.ReverseProxy of newBareProxy, run as
// this harness in the role of the same name.
func bareTarget(name, what string) target {
	return target{
		name: name,
		what: what,
		start: func(ctx context.Context, r *rig) (instance, error) {
			addr, err := freeAddr()
			if err != nil {
				return instance{}, err
			}
			p, err := r.procs.start(name, []string{
				"taskset", "-c", r.cpu, r.self, "-role", name, "-listen", addr, "-target", "http://" + r.upstream,
			})
			if err != nil {
				return instance{}, err
			}
			url := "http://" + addr + benchPath
			if err := waitReady(ctx, p, url); err != nil {
				p.stop()
				return instance{}, err
			}
			return instance{url: url, stop: p.stop}, nil
		},
	}
}

// bulwarkConfig is what a bulwark target's config template is filled with.
type bulwarkConfig struct {
	Listen   string // host:port of the public listener
	Admin    string // host:port of the admin listener
	Upstream string // base URL of the fixed upstream
	JWKSURL  string // URL of the run's JWK Set (see issuer.go)
	RedisURL string // redis:// URL of the run's redis-server (see redis.go)
	// APIKeySHA256 is the hex SHA-256 of the run's API key (see newAPIKey).
	APIKeySHA256 string
	// Dir is the run's scratch directory (absolute), for the files a
	// target writes, such as its audit log; it is removed when the run
	// ends.
	Dir string
}

// passThroughConfig routes GET /bench to the upstream with no
// authentication and every other setting at its default; only the log
// level is raised, as in production.
const passThroughConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
routes:
  - { name: bench, method: GET, path: /bench, upstream: bench, auth: none }
`

// jwtConfig is passThroughConfig with the route behind a JWT authenticator
// that trusts the run's issuer (see issuer.go), every authenticator
// setting at its default: the verified-token cache is on, so with the
// same token on every request this measures the cache's hit path. bulwark
// fetches the key set before /readyz answers 200, so waitReady covers it.
const jwtConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
authenticators:
  bench-jwt:
    type: jwt
    issuer: "` + benchIssuer + `"
    audiences: ["` + benchAudience + `"]
    algorithms: [RS256]
    jwks_url: "{{.JWKSURL}}"
routes:
  - { name: bench, method: GET, path: /bench, upstream: bench, auth: [bench-jwt] }
`

// apiKeyHeader is the header the API-key routes read the key from:
// bulwark's default for an api_key authenticator, spelled out in their
// configs too.
const apiKeyHeader = "X-API-Key"

// rateLimitConfig is passThroughConfig with the route behind an api_key
// authenticator that knows one consumer, whose one key is the run's (by
// its SHA-256 only), and a per-consumer limit of 10^8 requests per second,
// which no run reaches: what is measured is the price of counting, never
// a 429. The rate_limits section, which says where the limit is counted,
// is added by rateLimitLocalConfig and rateLimitRedisConfig.
const rateLimitConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
authenticators:
  bench-key: { type: api_key, header: ` + apiKeyHeader + ` }
consumers:
  - { id: bench, api_keys: [ { id: bench-key-1, sha256: "{{.APIKeySHA256}}" } ] }
routes:
  - name: bench
    method: GET
    path: /bench
    upstream: bench
    auth: [bench-key]
    rate_limit: { key: consumer, limit: 100000000, per: 1s }
`

// rateLimitLocalConfig counts the route's limit in bulwark's memory.
const rateLimitLocalConfig = rateLimitConfig + `rate_limits: { store: local }
`

// rateLimitRedisConfig counts the route's limit in the run's redis-server
// (one pipelined round trip per request). failure_mode is closed, not the
// default open: with open, a Redis that is down or too slow (the default
// 100ms call timeout) would be answered from a local fallback and the run
// would silently measure the local store under this target's name; with
// closed such a request gets 503, which the probe or wrk's non-2xx count
// turns into a failed run. While Redis answers, both modes take the same
// path.
const rateLimitRedisConfig = rateLimitConfig + `rate_limits:
  store: redis
  failure_mode: closed
  redis: { url: "{{.RedisURL}}" }
`

// auditConfig is passThroughConfig with the audit log on, writing to a
// file in the run's scratch directory (every other audit setting at its
// default: queue_size 10000, on_full: drop). The allowed key, which says
// whether the route's requests (all allowed) get an event, is added by
// auditDenialsConfig and auditAllConfig, each with its own file.
const auditConfig = passThroughConfig + `audit:
  sink: file
`

// auditDenialsConfig audits denials only: on this route, nothing.
const auditDenialsConfig = auditConfig + `  file: { path: "{{.Dir}}/audit-denials.jsonl" }
  allowed: none
`

// auditAllConfig audits every request.
const auditAllConfig = auditConfig + `  file: { path: "{{.Dir}}/audit-all.jsonl" }
  allowed: all
`

// bulwarkTarget runs the bulwark binary with the config that configTemplate
// (a text/template over bulwarkConfig) describes, judged by lim (nil: not
// judged). The config must route GET /bench to the upstream.
func bulwarkTarget(name, what string, lim *limits, configTemplate string) target {
	tmpl := template.Must(template.New(name).Option("missingkey=error").Parse(configTemplate))
	return target{
		name:   name,
		what:   what,
		limits: lim,
		start: func(ctx context.Context, r *rig) (instance, error) {
			listen, err := freeAddr()
			if err != nil {
				return instance{}, err
			}
			admin, err := freeAddr()
			if err != nil {
				return instance{}, err
			}
			var cfg strings.Builder
			if err := tmpl.Execute(&cfg, bulwarkConfig{
				Listen: listen, Admin: admin, Upstream: "http://" + r.upstream, JWKSURL: r.jwksURL,
				RedisURL: r.redisURL, APIKeySHA256: r.apiKeySHA256, Dir: r.dir,
			}); err != nil {
				return instance{}, fmt.Errorf("target %s: config: %w", name, err)
			}
			file := filepath.Join(r.dir, name+".yaml")
			if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
				return instance{}, fmt.Errorf("target %s: %w", name, err)
			}
			p, err := r.procs.start(name, []string{"taskset", "-c", r.cpu, r.bulwark, "serve", "--config", file})
			if err != nil {
				return instance{}, err
			}
			if err := waitReady(ctx, p, "http://"+admin+"/readyz"); err != nil {
				p.stop()
				return instance{}, err
			}
			return instance{url: "http://" + listen + benchPath, stop: p.stop}, nil
		},
	}
}

// newAPIKey returns a fresh random API key for the run, of the shape and
// length bulwark hash-key --generate makes ("bwk_" and 32 random bytes,
// base64url), and its hex SHA-256, the only form of it that goes into a
// config.
func newAPIKey() (key, sha256Hex string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("api key: %w", err)
	}
	key = "bwk_" + base64.RawURLEncoding.EncodeToString(b)
	return key, apiKeyHash(key), nil
}

// apiKeyHash is the hex SHA-256 of key, as bulwark hash-key prints it.
func apiKeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
