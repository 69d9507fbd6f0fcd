package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

func (c *checker) checkRateLimits() {
	rl := &c.cfg.RateLimits
	const p = "rate_limits"
	c.checkEnum(p+".store", rl.Store, "local", "redis")
	c.checkEnum(p+".failure_mode", rl.FailureMode, "open", "closed")
	if rl.FallbackInstances < 1 {
		c.errf(p+".fallback_instances", "must be 1 or more")
	}
	if rl.MaxKeys < 1 {
		c.errf(p+".max_keys", "must be 1 or more")
	}
	switch {
	case rl.Store == "redis" && rl.Redis == nil:
		c.errf(p+".store", "store: redis needs a redis section (url, or addrs)")
	case rl.Redis != nil:
		c.checkRedis(p+".redis", rl.Redis)
	}
	if rl.Global != nil {
		c.checkLimit(p+".global", rl.Global.Limit, rl.Global.Per, &rl.Global.Burst)
	}
	if rl.PerIP != nil {
		c.checkLimit(p+".per_ip", rl.PerIP.Limit, rl.PerIP.Per, &rl.PerIP.Burst)
	}
	for _, name := range sortedNames(rl.Plans) {
		plan := rl.Plans[name]
		pp := joinPath(p+".plans", name)
		if !validName(name, 64) {
			c.keyErrf(pp, "invalid plan name %q: 1 to 64 letters, digits, '_', '.' or '-'", name)
		}
		c.checkLimit(pp, plan.Limit, plan.Per, &plan.Burst)
		if q := plan.Quota; q != nil {
			switch {
			case !c.set(pp + ".quota.limit"):
				c.errf(pp+".quota.limit", "is required: the number of requests allowed per day or month")
			case q.Limit < 1:
				c.errf(pp+".quota.limit", "must be 1 or more")
			}
			if !c.set(pp + ".quota.per") {
				c.errf(pp+".quota.per", "is required: day or month")
			} else {
				c.checkEnum(pp+".quota.per", q.Per, "day", "month")
			}
		}
		rl.Plans[name] = plan
	}
	if a := rl.AuthFailures; a != nil {
		const ap = p + ".auth_failures"
		switch {
		case !c.set(ap + ".limit"):
			c.errf(ap+".limit", "is required: the failed authentications allowed per window")
		case a.Limit < 1:
			c.errf(ap+".limit", "must be 1 or more")
		}
		switch {
		case !c.set(ap + ".per"):
			c.errf(ap+".per", "is required: the window failures are counted in, e.g. 1m")
		case a.Per <= 0:
			c.errf(ap+".per", "must be greater than 0")
		}
		if a.Lockout <= 0 {
			c.errf(p+".auth_failures.lockout", "must be greater than 0")
		}
	}
	if len(rl.Plans) > 0 {
		for i, cs := range c.cfg.Consumers {
			if _, ok := rl.Plans[cs.Plan]; cs.Plan != "" && !ok {
				c.errf(fmt.Sprintf("consumers[%d].plan", i), "unknown plan %q: rate_limits.plans has %s", cs.Plan, strings.Join(sortedNames(rl.Plans), ", "))
			}
		}
	}
}

// checkLimit checks a token bucket and defaults its burst to its limit.
// A burst written in the file must be 1 or more: an explicit 0 would be a
// bucket that never holds a token, so it is refused rather than taken as
// the default (the schema refuses it too).
func (c *checker) checkLimit(p string, limit int, per Duration, burst *int) {
	switch {
	case !c.set(p + ".limit"):
		c.errf(p+".limit", "is required: the number of requests allowed per period")
	case limit < 1:
		c.errf(p+".limit", "must be 1 or more")
	}
	switch {
	case !c.set(p + ".per"):
		c.errf(p+".per", "is required: the period, e.g. 1s, 1m or 1h")
	case per <= 0:
		c.errf(p+".per", "must be greater than 0, e.g. 1s, 1m or 1h")
	}
	switch {
	case !c.set(p + ".burst"):
		*burst = limit
	case *burst < 1:
		c.errf(p+".burst", "must be 1 or more (leave it out to use limit)")
	}
}

func (c *checker) checkRedis(p string, r *Redis) {
	switch {
	case r.URL == "" && len(r.Addrs) == 0:
		if !c.bad[p+".url"] && !c.bad[p+".addrs"] { // else the decoder said why
			c.errf(p, "needs url (a standalone server) or addrs (Cluster nodes or Sentinels)")
		}
	case r.URL != "" && len(r.Addrs) > 0:
		c.errf(p+".addrs", "use url or addrs, not both")
	case r.URL != "":
		// The messages never repeat the URL: it may hold a password.
		// What go-redis's ParseURL would refuse when the gateway starts is
		// refused here, at load; query options are refused too, since they
		// would override the keys of this section (or, skip_verify=true,
		// turn off TLS verification).
		u, err := url.Parse(string(r.URL))
		switch {
		case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" || !validPort(u.Port()):
			c.errf(p+".url", "must be redis://[user:password@]host:port[/db] or rediss://... (TLS)")
		case !redisDBPath(u.Path):
			c.errf(p+".url", "the path must be a database number, e.g. /0")
		case u.RawQuery != "" || u.ForceQuery || strings.Contains(string(r.URL), "#"):
			c.errf(p+".url", "must not have a query or fragment: set timeout and pool_size with their own keys")
		}
		for _, k := range []string{"username", "password", "db", "tls", "master_name"} {
			if c.set(p + "." + k) {
				c.errf(p+"."+k, "only with addrs: with url, put it in the URL (rediss:// for TLS)")
			}
		}
	default:
		for i, a := range r.Addrs {
			// The message never repeats the address: one written as a URL
			// may hold a password.
			if !validRedisAddr(a) {
				c.errf(fmt.Sprintf("%s.addrs[%d]", p, i), "must be host:port, e.g. 10.0.0.5:6379 (no scheme, no credentials: use username and password)")
			}
		}
		// go-redis makes several addresses without master_name a Cluster
		// client, which has no db: the key would be ignored.
		if len(r.Addrs) > 1 && r.MasterName == "" && r.DB != 0 {
			c.errf(p+".db", "a Redis Cluster has only database 0: db is for one address or a Sentinel group (master_name)")
		}
	}
	if r.Timeout <= 0 {
		c.errf(p+".timeout", "must be greater than 0")
	}
	if r.DB < 0 {
		c.errf(p+".db", "must not be negative")
	}
	if r.PoolSize < 0 {
		c.errf(p+".pool_size", "must not be negative (0 uses go-redis's default)")
	}
	if r.BreakerFailures < 1 {
		c.errf(p+".breaker_failures", "must be 1 or more")
	}
	if r.BreakerCooldown <= 0 {
		c.errf(p+".breaker_cooldown", "must be greater than 0")
	}
	if t := r.TLS; t != nil {
		c.checkClientTLS(p+".tls", t)
	}
}

// redisDBPath reports whether path, the path of a Redis URL, is empty or
// names a database: "", "/" or "/N".
func redisDBPath(path string) bool {
	if path == "" || path == "/" {
		return true
	}
	digits := path[1:]
	if path[0] != '/' || strings.Trim(digits, "0123456789") != "" {
		return false
	}
	_, err := strconv.Atoi(digits)
	return err == nil
}

// validPort reports whether p is empty (the default port) or a port
// number from 1 to 65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n > 0
}

// validRedisAddr reports whether a is host:port with a port from 1 to
// 65535 and a host that is empty (localhost), an IP address or a host
// name: never a URL or user info.
func validRedisAddr(a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	if port == "" || !validPort(port) {
		return false
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" && !validHostname(host) {
		return false
	}
	return true
}

// checkRouteLimits checks a route's rate_limit and names its limits.
func (c *checker) checkRouteLimits(p string, rt *Route) {
	if c.set(p+".rate_limit") && len(rt.RateLimit) == 0 {
		c.errf(p+".rate_limit", "an empty list sets no limit: remove rate_limit, or list the limits")
	}
	names := map[string]bool{}
	for i := range rt.RateLimit {
		l := &rt.RateLimit[i]
		lp := fmt.Sprintf("%s.rate_limit[%d]", p, i)
		if !c.set(lp) {
			lp = p + ".rate_limit" // written as one mapping
		}
		c.checkLimit(lp, l.Limit, l.Per, &l.Burst)
		// The name is the policy's in the RateLimit headers (a structured
		// field string, printable ASCII only) and a metric label.
		switch {
		case c.set(lp+".name") && !validName(l.Name, 64):
			c.errf(lp+".name", "invalid limit name: 1 to 64 letters, digits, '_', '.' or '-' (it names the policy in RateLimit headers and metrics)")
		case l.Name == "":
			l.Name = rt.Name
			if i > 0 {
				l.Name = fmt.Sprintf("%s-%d", rt.Name, i+1)
			}
			fallthrough
		default:
			if names[l.Name] {
				c.errf(lp+".name", "duplicate limit name %q on this route", l.Name)
			}
			names[l.Name] = true
		}
		c.checkLimitKey(lp+".key", l.Key, rt)
	}
}

// checkLimitKey checks what a route limit counts by, against what the
// route's authenticators can yield.
func (c *checker) checkLimitKey(p, key string, rt *Route) {
	types := map[string]bool{}
	// A route whose auth is missing, did not decode or names an unknown
	// authenticator already has its error there; the keys that depend on
	// auth are not checked against it as well.
	authKnown := rt.Auth.None || len(rt.Auth.Names) > 0
	for _, name := range rt.Auth.Names {
		a, ok := c.cfg.Authenticators[name]
		authKnown = authKnown && ok
		types[a.Type] = true
	}
	kind, arg, _ := strings.Cut(key, ":")
	switch {
	case key == "ip":
	case !authKnown && (key == "consumer" || key == "principal" || kind == "claim" && arg != ""):
	case key == "consumer":
		// api_key consumers always have an id; jwt and introspection
		// principals have one when the token names its client (azp or
		// client_id). mTLS and public routes never do.
		if !types["api_key"] && !types["jwt"] && !types["introspection"] {
			c.errf(p, "key: consumer needs an api_key, jwt or introspection authenticator in the route's auth: this route's authentication yields no consumer")
		}
	case key == "principal":
		if rt.Auth.None {
			c.errf(p, "key: principal needs authentication: a public route (auth: none) has no principal")
		}
	case kind == "header" && arg != "":
		switch {
		case !isToken(arg):
			c.errf(p, "header:%s: not a valid header name", arg)
		case c.credentialHeader(arg):
			// The key would be a credential, kept in memory and written
			// to Redis as the bucket's name.
			c.errf(p, "header:%s carries a credential; count by consumer or principal instead", arg)
		}
	case kind == "claim" && arg != "":
		if !types["jwt"] && !types["introspection"] {
			c.errf(p, "key: claim:%s needs a jwt or introspection authenticator in the route's auth", arg)
		}
	case key == "":
		c.errf(p, "is required: consumer, principal, ip, header:NAME or claim:NAME")
	default:
		c.errf(p, "unknown key %q: use consumer, principal, ip, header:NAME or claim:NAME", key)
	}
}

// credentialHeader reports whether a header carries a credential: the
// standard ones, and the headers of the api_key authenticators.
func (c *checker) credentialHeader(name string) bool {
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization", "cookie", "dpop":
		return true
	}
	for _, a := range c.cfg.Authenticators {
		if a.Type == "api_key" && strings.EqualFold(a.Header, name) {
			return true
		}
	}
	return false
}
