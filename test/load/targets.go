package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
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

// barePostName is the bare proxy loaded with the POST of benchOrder, the
// baseline of the validated route.
const barePostName = "bare-post"

// userName is bulwark's pass-through route for the user document, the
// baseline of the route that filters it.
const userName = "bulwark-user"

// benchSpecFile is the name, in the run's scratch directory, of the bench
// OpenAPI document (testdata/bench-openapi.yaml), which the validated
// route's config names.
const benchSpecFile = "bench-openapi.yaml"

// benchSpec is testdata/bench-openapi.yaml: POST /bench (createOrder),
// whose request body benchOrder is.
//
//go:embed testdata/bench-openapi.yaml
var benchSpec []byte

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
	// method, path, body and contentType are the request wrk repeats:
	// "" is GET and benchPath, nil no body. A target with a body or
	// another method is loaded through a generated Lua script (wrkScript).
	method, path string
	body         []byte
	contentType  string
	// check judges the probe's answer, status and body, before the target
	// is loaded; nil wants 200 and benchBody, the upstream's answer to
	// GET /bench, unchanged.
	check func(status int, body []byte) error
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
	base string // scheme://host:port of what wrk loads; the target's path follows
	stop func()
}

// requestMethod is the method of tg's request.
func (tg target) requestMethod() string {
	if tg.method == "" {
		return http.MethodGet
	}
	return tg.method
}

// url returns the URL wrk loads on inst.
func (tg target) url(inst instance) string {
	if tg.path == "" {
		return inst.base + benchPath
	}
	return inst.base + tg.path
}

// scripted reports whether wrk needs a script for tg's request: plain wrk
// sends a GET without a body.
func (tg target) scripted() bool {
	return tg.body != nil || tg.requestMethod() != http.MethodGet
}

// checkAnswer judges the probe's answer to tg's request.
func (tg target) checkAnswer(status int, body []byte) error {
	if tg.check == nil {
		return wantExactly(benchBody)(status, body)
	}
	return tg.check(status, body)
}

// wantExactly wants 200 and want as the body: the upstream's answer,
// unchanged by the proxy.
func wantExactly(want string) func(int, []byte) error {
	return func(status int, body []byte) error {
		if status != http.StatusOK || string(body) != want {
			return fmt.Errorf("answer %d %q, want 200 with the upstream's body", status, body)
		}
		return nil
	}
}

// postTarget makes tg send benchOrder as a JSON POST to benchPath, and
// want the upstream's acknowledgement back: a validation that refuses the
// body (400, 415) fails the target before wrk measures a run of refusals.
func postTarget(tg target) target {
	tg.method = http.MethodPost
	tg.body = benchOrder
	tg.contentType = "application/json"
	tg.check = wantExactly(benchPostAnswer)
	return tg
}

// userTarget makes tg GET the user document, and want it back unchanged.
func userTarget(tg target) target {
	tg.path = benchUserPath
	tg.check = wantExactly(benchUserBody)
	return tg
}

// targets returns what one run measures, in the order of each round;
// token is the bearer token the JWT route accepts (see issuer), apiKey the
// API key the rate-limited routes accept (their configs hold only its
// SHA-256, rig.apiKeySHA256). Each capability adds its own bulwark
// targets here, each with its own config and limits, against bare or
// against the target it extends; a baseline comes before the targets
// judged against it.
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
	// The target for OpenAPI request validation: a validated POST
	// of a ~1 KB JSON order at ≥ 0.65× the requests/s of the bare proxy
	// given the same POST, in the same run. bulwark-post, the same POST
	// on a pass-through route, is measured (not judged) so that the report
	// shows what validation alone costs.
	barePost := postTarget(bareTarget(barePostName,
		"the bare proxy loaded with POST /bench and the ~1 KB JSON order (wrk -s, Content-Type: application/json)"))
	bulwarkPost := postTarget(bulwarkTarget("bulwark-post",
		"bulwark, pass-through POST route (auth: none), the same POST; no validation",
		nil, postConfig))
	validated := postTarget(bulwarkTarget("bulwark-validated",
		"bulwark, the same POST route validated against an OpenAPI 3.0 spec (createOrder; request: enforce, strict, JSON limits on)",
		&limits{minRPS: 0.65, baseline: barePostName},
		validatedConfig))
	// The target for response filtering: a route that filters a
	// ~2.5 KB JSON user document (an allow-list of five paths, one of them
	// masked) at ≥ 0.70× the requests/s of the same document on a
	// pass-through route, in the same run.
	user := userTarget(bulwarkTarget(userName,
		"bulwark, pass-through route for GET /bench-user, a ~2.5 KB JSON user document",
		nil, userConfig))
	filtered := userTarget(bulwarkTarget("bulwark-filtered",
		"bulwark, the same document filtered: allow-list of 5 paths ($.orders[*].id, ...), $.email masked (redact)",
		&limits{minRPS: 0.70, baseline: userName},
		filteredConfig))
	filtered.check = wantFiltered
	// The target for object-level authorization: the pass-through
	// route with one CEL rule (reading a request header that wrk sends,
	// so the rule allows every request) at >= 0.85x the pass-through
	// route's requests/s, in the same run.
	authorized := bulwarkTarget("bulwark-authorize",
		"bulwark, the pass-through route with one CEL rule (request.headers[\"x-tenant\"] == \"acme\"), allowing every request",
		&limits{minRPS: 0.85, baseline: passThroughName},
		authorizeConfig)
	authorized.headers = []string{"X-Tenant: acme"}
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
		barePost,
		bulwarkPost,
		validated,
		user,
		filtered,
		authorized,
	}
}

// selectTargets returns the targets of all that list names (comma
// separated; "" names them all), in the order of all, which measures
// baselines first. The bare proxy, which the report compares every target
// with, and the baseline of every judged target selected must be
// selected too.
func selectTargets(all []target, list string) ([]target, error) {
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	known := make(map[string]bool, len(all))
	var names []string
	for _, tg := range all {
		known[tg.name] = true
		names = append(names, tg.name)
	}
	want := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !known[name] {
			return nil, fmt.Errorf("-targets: unknown target %q; the targets are %s", name, strings.Join(names, ","))
		}
		want[name] = true
	}
	if !want[bareName] {
		return nil, fmt.Errorf("-targets: %s is needed: the report compares every target with it", bareName)
	}
	var out []target
	for _, tg := range all {
		if !want[tg.name] {
			continue
		}
		if tg.limits != nil && !want[tg.limits.against()] {
			return nil, fmt.Errorf("-targets: %s is judged against %s: add it", tg.name, tg.limits.against())
		}
		out = append(out, tg)
	}
	return out, nil
}

// directTarget loads the upstream itself: the ceiling no proxy can reach.
func directTarget() target {
	return target{
		name: "direct",
		what: "upstream, no proxy",
		start: func(_ context.Context, r *rig) (instance, error) {
			return instance{base: "http://" + r.upstream, stop: func() {}}, nil
		},
	}
}

// bareRole is the role a bare target runs this harness in: the bare
// proxy with bulwark's server timeouts for bare-timeouts, the bare proxy
// for the others (bare, bare-post).
func bareRole(name string) string {
	if name == bareTimeoutsName {
		return bareTimeoutsName
	}
	return "bare"
}

// bareTarget is the tuned httputil.ReverseProxy of newBareProxy, run as
// this harness in the role bareRole(name).
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
				"taskset", "-c", r.cpu, r.self, "-role", bareRole(name), "-listen", addr, "-target", "http://" + r.upstream,
			})
			if err != nil {
				return instance{}, err
			}
			base := "http://" + addr
			if err := waitReady(ctx, p, base+benchPath); err != nil {
				p.stop()
				return instance{}, err
			}
			return instance{base: base, stop: p.stop}, nil
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

// authorizeConfig is passThroughConfig with one object-level rule in CEL
// on the route, compiled at load and evaluated per request.
const authorizeConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
routes:
  - name: bench
    method: GET
    path: /bench
    upstream: bench
    auth: none
    authorize:
      rules:
        - { name: tenant, expr: 'request.headers["x-tenant"] == "acme"' }
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

// postConfig routes POST /bench to the upstream with no authentication and
// no validation: the baseline of validation alone (the route's body limit,
// server.max_body_size, applies as on every route).
const postConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
routes:
  - { name: bench-post, method: POST, path: /bench, upstream: bench, auth: none }
`

// validatedConfig is postConfig with the route validated against the bench
// spec (written into the run's scratch directory as benchSpecFile), every
// validation setting at its default: request: enforce, strict: true (closed
// objects), the JSON limits on, response validation off.
const validatedConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
specs:
  bench: { file: "{{.Dir}}/` + benchSpecFile + `" }
routes:
  - name: bench-post
    method: POST
    path: /bench
    upstream: bench
    auth: none
    validate: { spec: bench }
`

// userConfig routes GET /bench-user to the upstream with no authentication:
// the user document passes unchanged (streamed, not buffered).
const userConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
routes:
  - { name: bench-user, method: GET, path: /bench-user, upstream: bench, auth: none }
`

// filteredConfig is userConfig with the response filtered: five paths kept
// (everything else dropped), one of them masked. The response is buffered
// (server.max_response_buffer), parsed, filtered and written again.
const filteredConfig = `server: { listen: "{{.Listen}}" }
admin: { listen: "{{.Admin}}" }
log: { level: warn, format: json }
upstreams:
  bench: { url: "{{.Upstream}}" }
routes:
  - name: bench-filtered
    method: GET
    path: /bench-user
    upstream: bench
    auth: none
    response:
      allow: ["$.id", "$.name", "$.email", "$.orders[*].id", "$.orders[*].total"]
      mask: { "$.email": redact }
`

// filteredUser is what filteredConfig's rules make of the user document
// doc: its id and name, its email redacted, and of each order its id and
// total; nothing else.
func filteredUser(doc []byte) (map[string]any, error) {
	var u struct {
		ID     any `json:"id"`
		Name   any `json:"name"`
		Orders []struct {
			ID    any `json:"id"`
			Total any `json:"total"`
		} `json:"orders"`
	}
	if err := json.Unmarshal(doc, &u); err != nil {
		return nil, err
	}
	orders := make([]any, len(u.Orders))
	for i, o := range u.Orders {
		orders[i] = map[string]any{"id": o.ID, "total": o.Total}
	}
	return map[string]any{"id": u.ID, "name": u.Name, "email": "***", "orders": orders}, nil
}

// wantFiltered judges the filtered route's answer: 200, not the
// upstream's document, and exactly what the route's rules keep of it (as
// JSON values: the order of members and the spelling of numbers may
// differ). An answer that is not filtered would measure a route that
// does not filter.
func wantFiltered(status int, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("answer %d %q, want 200 with the filtered document", status, body)
	}
	if bytes.Equal(bytes.TrimSpace(body), bytes.TrimSpace([]byte(benchUserBody))) {
		return errors.New("answer is the upstream's document unchanged: the route did not filter")
	}
	want, err := filteredUser([]byte(benchUserBody))
	if err != nil {
		return fmt.Errorf("the upstream's document: %w", err)
	}
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Errorf("answer %q is not JSON: %w", body, err)
	}
	if !reflect.DeepEqual(got, any(want)) {
		wantJSON, _ := json.Marshal(want)
		return fmt.Errorf("answer %s, want the filtered document %s", body, wantJSON)
	}
	return nil
}

// bulwarkTarget runs the bulwark binary with the config that configTemplate
// (a text/template over bulwarkConfig) describes, judged by lim (nil: not
// judged). The config must route the target's request (GET /bench unless
// the caller sets another) to the upstream.
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
			return instance{base: "http://" + listen, stop: p.stop}, nil
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
