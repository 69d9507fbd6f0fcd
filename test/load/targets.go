package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// bareName is the target every other one is compared with.
const bareName = "bare"

// bareTimeoutsName is the bare proxy with bulwark's default server
// timeouts (read, write, idle): not a yardstick, a reference that shows how
// much of the gap to bare is the price of those timeouts.
const bareTimeoutsName = "bare-timeouts"

// rig is the fixed part of a run that every target starts against.
type rig struct {
	self     string // this harness's executable, re-run in a role
	bulwark  string // the bulwark binary under test
	upstream string // host:port of the fixed upstream
	dir      string // scratch directory for generated configs
	cpu      string // taskset CPU list of the upstream and the proxy under test
	jwksURL  string // URL of the run's JWK Set, served by this process (see issuer.go)
	procs    *children
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
	// limits are the targets for this target against bare; nil
	// for a target that is measured but not judged (see verdicts).
	limits *limits
	start  func(ctx context.Context, r *rig) (instance, error)
}

// limits are a judged target's targets, as ratios to bare's figures in the
// same run. A zero ratio gives no verdict for that metric.
type limits struct {
	minRPS float64 // requests/s at least minRPS × bare's
	maxP99 float64 // p99 latency at most maxP99 × bare's
}

// instance is a started target.
type instance struct {
	url  string // the URL wrk loads
	stop func()
}

// targets returns what one run measures, in the order of each round;
// token is the bearer token the JWT route accepts (see issuer). Later
// capabilities add their own bulwark targets here (a rate limited route, a
// validated route, a filtered route), each with its own config and limits;
// bare stays the yardstick.
func targets(token string) []target {
	jwtRoute := bulwarkTarget("bulwark-jwt", "bulwark, JWT route (RS256, JWKS over HTTP), the same token on every request",
		// The target for a JWT route with a repeated token; its
		// tail is reported but not judged.
		&limits{minRPS: 0.80},
		jwtConfig)
	jwtRoute.headers = []string{"Authorization: Bearer " + token}
	return []target{
		directTarget(),
		bareTarget(bareName, "httputil.ReverseProxy, tuned (buffer pool, 256 idle conns/host)"),
		bareTarget(bareTimeoutsName, "the same, plus bulwark's default server timeouts (read 60s, write 60s, idle 120s); reference only"),
		bulwarkTarget("bulwark", "bulwark, pass-through route (auth: none)",
			// The targets for the pass-through route.
			&limits{minRPS: 0.90, maxP99: 1.20},
			passThroughConfig),
		jwtRoute,
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
			if err := tmpl.Execute(&cfg, bulwarkConfig{Listen: listen, Admin: admin, Upstream: "http://" + r.upstream, JWKSURL: r.jwksURL}); err != nil {
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
