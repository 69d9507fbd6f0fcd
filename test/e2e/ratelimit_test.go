package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The rate-limit tests run the real binary (docs/rate-limiting.md): local
// buckets on one instance, one redis-server shared by three instances, a
// Redis that dies and comes back under both failure modes, the
// auth-failure lockout, limit state across a reload, and the config
// check. Every denial also asserts that the upstream was not reached.
// Client IPs are played with X-Forwarded-For from 127.0.0.1, which the
// gateways trust as a proxy.

// maxStall is the longest a request may take while Redis is down: the
// store's timeout is 100ms and the breaker must keep a dead Redis from
// adding it to every request.
const maxStall = 500 * time.Millisecond

// trustLoopback makes the gateway believe X-Forwarded-For from the tests.
const trustLoopback = "trusted_proxies: [127.0.0.1/32]"

// keysAuthenticator is the api_key authenticator every test here uses.
const keysAuthenticator = "  keys: { type: api_key, header: X-API-Key }"

// from returns the headers of a request from client ip with API key key
// ("" for none).
func from(ip, key string) []string {
	h := []string{"X-Forwarded-For", ip}
	if key != "" {
		h = append(h, "X-API-Key", key)
	}
	return h
}

// consumer is one consumers[] entry with one API key (sha256 of key).
func consumer(id, plan, keyID, key string) string {
	p := ""
	if plan != "" {
		p = "plan: " + plan + ", "
	}
	return fmt.Sprintf("  - { id: %s, %sapi_keys: [ { id: %s, sha256: %q } ] }", id, p, keyID, sha256Hex(key))
}

// newAPIKey is a fresh API key.
func newAPIKey(t testing.TB) string { return "bwk_" + randomSecret(t) }

// checkLimited asserts that a is the 429 of policy (quota q per window w
// seconds): problem+json rate-limited, Retry-After, and exactly one
// RateLimit-Policy and one RateLimit item naming the policy with r=0 and
// t equal to Retry-After; and that the upstream saw nothing since before.
// It returns Retry-After in seconds.
func checkLimited(t testing.TB, a answer, policy string, q, w int, up *upstream, before int64) int {
	t.Helper()
	a.problem(t, http.StatusTooManyRequests, "rate-limited")
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || retry < 1 {
		t.Errorf("Retry-After = %q, want a whole number of seconds >= 1", a.header.Get("Retry-After"))
	}
	if got, want := a.header.Values("RateLimit-Policy"), []string{fmt.Sprintf(`"%s";q=%d;w=%d`, policy, q, w)}; !slices.Equal(got, want) {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	if got, want := a.header.Values("RateLimit"), []string{fmt.Sprintf(`"%s";r=0;t=%d`, policy, retry)}; !slices.Equal(got, want) {
		t.Errorf("RateLimit = %q, want %q (t equal to Retry-After)", got, want)
	}
	if hits := up.hits.Load() - before; hits != 0 {
		t.Errorf("upstream hits = %d after a 429, want 0", hits)
	}
	return retry
}

// sfItems parses the RateLimit or RateLimit-Policy items of h (all
// lines, comma-separated) into policy name → parameter → value.
func sfItems(t testing.TB, h http.Header, name string) map[string]map[string]string {
	t.Helper()
	items := map[string]map[string]string{}
	for _, line := range h.Values(name) {
		for item := range strings.SplitSeq(line, ",") {
			parts := strings.Split(strings.TrimSpace(item), ";")
			policy, err := strconv.Unquote(parts[0])
			if err != nil {
				t.Errorf("%s item %q: the policy name is not a quoted string", name, item)
				continue
			}
			if _, dup := items[policy]; dup {
				t.Errorf("%s names policy %q twice: %q", name, policy, h.Values(name))
			}
			params := map[string]string{}
			for _, p := range parts[1:] {
				k, v, _ := strings.Cut(p, "=")
				params[k] = v
			}
			items[policy] = params
		}
	}
	return items
}

// statuses sends n requests and returns their statuses.
func statuses(t testing.TB, n int, url string, hdr ...string) []int {
	t.Helper()
	codes := make([]int, n)
	for i := range codes {
		codes[i] = send(t, nil, "GET", url, hdr...).status
	}
	return codes
}

// repeat is n copies of code.
func repeat(code, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = code
	}
	return s
}

// TestRateLimitLocal covers the local store on one instance: a route
// limit's exact count and headers, a bucket per consumer, the per-IP
// limit before routing and authentication, a plan's daily quota, and the
// RateLimit headers of allowed responses next to the upstream's own.
func TestRateLimitLocal(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reports" {
			// The API behind the gateway announces a limit of its own.
			w.Header().Set("RateLimit-Policy", `"upstream";q=50;w=60`)
			w.Header().Set("RateLimit", `"upstream";r=41;t=30`)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	acme, globex, initech, hooli := newAPIKey(t), newAPIKey(t), newAPIKey(t), newAPIKey(t)
	g := startGateway(t, authnSetup{
		upstream:       up.addr,
		server:         []string{trustLoopback},
		authenticators: []string{keysAuthenticator},
		top: `rate_limits:
  headers: true
  per_ip: { limit: 10, per: 1m, burst: 10 }
  plans:
    gold: { limit: 100, per: 1m }
    metered: { limit: 100, per: 1m, quota: { limit: 3, per: day } }
consumers:
` + strings.Join([]string{
			consumer("acme", "gold", "k1", acme),
			consumer("globex", "gold", "g1", globex),
			consumer("initech", "metered", "i1", initech),
			consumer("hooli", "gold", "h1", hooli),
		}, "\n"),
		routes: []string{
			authRoute("list-orders", "/orders", "[keys]", "rate_limit: { key: consumer, limit: 5, per: 1m, burst: 5 }"),
			authRoute("reports", "/reports", "[keys]", "rate_limit: { key: consumer, limit: 10, per: 1m }"),
			authRoute("catalog", "/catalog", "[keys]"),
		},
	}.yaml(), nil)

	t.Run("route limit allows exactly its burst", func(t *testing.T) {
		hdr := from("198.51.100.1", acme)
		for i := range 5 {
			a := send(t, nil, "GET", g.URL("/orders"), hdr...)
			if a.status != http.StatusOK {
				t.Fatalf("request %d = %d, want 200 (%s)", i+1, a.status, a.body)
			}
			if got, want := sfItems(t, a.header, "RateLimit")["list-orders"]["r"], strconv.Itoa(4-i); got != want {
				t.Errorf("request %d: RateLimit r of list-orders = %q, want %s (%q)", i+1, got, want, a.header.Values("RateLimit"))
			}
		}
		before := up.hits.Load()
		a := send(t, nil, "GET", g.URL("/orders"), hdr...)
		// 5 per minute: the next token comes 12s after the burst.
		if retry := checkLimited(t, a, "list-orders", 5, 60, up, before); retry < 11 || retry > 12 {
			t.Errorf("Retry-After = %d, want 12 (±1): one token every 60s/5", retry)
		}
		if v := metricSum(t, g, "bulwark_denials_total", `stage="ratelimit"`, `reason="route"`, `route="list-orders"`); v != 1 {
			t.Errorf(`bulwark_denials_total{stage="ratelimit",reason="route"} = %v, want 1`, v)
		}
		if v := metricSum(t, g, "bulwark_ratelimit_decisions_total", `layer="route"`, `result="limited"`); v != 1 {
			t.Errorf(`bulwark_ratelimit_decisions_total{layer="route",result="limited"} = %v, want 1`, v)
		}
		if v := metricSum(t, g, "bulwark_ratelimit_decisions_total", `layer="route"`, `result="allowed"`); v != 5 {
			t.Errorf(`bulwark_ratelimit_decisions_total{layer="route",result="allowed"} = %v, want 5`, v)
		}
	})

	t.Run("another consumer has its own bucket", func(t *testing.T) {
		// From the same IP as the exhausted consumer: the key is the
		// consumer, not the address.
		before := up.hits.Load()
		if a := send(t, nil, "GET", g.URL("/orders"), from("198.51.100.1", globex)...); a.status != http.StatusOK {
			t.Errorf("GET /orders as globex = %d, want 200 (%s)", a.status, a.body)
		}
		if hits := up.hits.Load() - before; hits != 1 {
			t.Errorf("upstream hits = %d, want 1", hits)
		}
		before = up.hits.Load()
		checkLimited(t, send(t, nil, "GET", g.URL("/orders"), from("198.51.100.2", acme)...), "list-orders", 5, 60, up, before)
	})

	t.Run("per_ip limit runs before authentication and routing", func(t *testing.T) {
		ip := "203.0.113.9"
		// Without credentials, authentication answers 401 ...
		if got, want := statuses(t, 10, g.URL("/orders"), from(ip, "")...), repeat(http.StatusUnauthorized, 10); !slices.Equal(got, want) {
			t.Fatalf("10 requests without credentials = %v, want %v", got, want)
		}
		// ... until the IP's bucket is empty: then the 429 comes first.
		before := up.hits.Load()
		a := send(t, nil, "GET", g.URL("/orders"), from(ip, "")...)
		if retry := checkLimited(t, a, "per_ip", 10, 60, up, before); retry < 5 || retry > 6 {
			t.Errorf("Retry-After = %d, want 6 (±1): one token every 60s/10", retry)
		}
		if ch := a.challenge(); ch != "" {
			t.Errorf("the per_ip 429 carries WWW-Authenticate %q: authentication ran", ch)
		}
		// Even a request with a valid key, and one for no route at all.
		checkLimited(t, send(t, nil, "GET", g.URL("/orders"), from(ip, acme)...), "per_ip", 10, 60, up, before)
		checkLimited(t, send(t, nil, "GET", g.URL("/no/such/route"), from(ip, "")...), "per_ip", 10, 60, up, before)
		if v := metricSum(t, g, "bulwark_denials_total", `stage="ratelimit"`, `reason="per_ip"`); v != 3 {
			t.Errorf(`bulwark_denials_total{stage="ratelimit",reason="per_ip"} = %v, want 3`, v)
		}
		// Other IPs are untouched.
		if a := send(t, nil, "GET", g.URL("/orders"), from("203.0.113.10", "")...); a.status != http.StatusUnauthorized {
			t.Errorf("another IP without credentials = %d, want 401", a.status)
		}
	})

	t.Run("plan quota per UTC day", func(t *testing.T) {
		hdr := from("198.51.100.3", initech)
		for i := range 3 {
			a := send(t, nil, "GET", g.URL("/catalog"), hdr...)
			if a.status != http.StatusOK {
				t.Fatalf("request %d = %d, want 200 (%s)", i+1, a.status, a.body)
			}
			q := sfItems(t, a.header, "RateLimit")["metered-quota"]
			if got, want := q["r"], strconv.Itoa(2-i); got != want {
				t.Errorf("request %d: RateLimit r of metered-quota = %q, want %s (%q)", i+1, got, want, a.header.Values("RateLimit"))
			}
		}
		before := up.hits.Load()
		a := send(t, nil, "GET", g.URL("/catalog"), hdr...)
		now := time.Now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		retry := checkLimited(t, a, "metered-quota", 3, 86400, up, before)
		if want := midnight.Sub(now).Seconds(); math.Abs(float64(retry)-want) > 5 {
			t.Errorf("Retry-After = %d, want %.0f (±5): the seconds to UTC midnight", retry, want)
		}
		if v := metricSum(t, g, "bulwark_denials_total", `stage="ratelimit"`, `reason="quota"`, `route="catalog"`); v != 1 {
			t.Errorf(`bulwark_denials_total{stage="ratelimit",reason="quota"} = %v, want 1`, v)
		}
		// The quota is the consumer's: another consumer on the route goes on.
		if a := send(t, nil, "GET", g.URL("/catalog"), from("198.51.100.3", globex)...); a.status != http.StatusOK {
			t.Errorf("GET /catalog as globex = %d, want 200 (%s)", a.status, a.body)
		}
	})

	t.Run("allowed responses carry RateLimit headers next to the upstream's", func(t *testing.T) {
		a := send(t, nil, "GET", g.URL("/reports"), from("198.51.100.4", hooli)...)
		if a.status != http.StatusOK {
			t.Fatalf("GET /reports = %d, want 200 (%s)", a.status, a.body)
		}
		policies := sfItems(t, a.header, "RateLimit-Policy")
		limits := sfItems(t, a.header, "RateLimit")
		want := []struct {
			policy, q, w, r string
		}{
			{policy: "per_ip", q: "10", w: "60", r: "9"},
			{policy: "gold", q: "100", w: "60", r: "99"},
			{policy: "reports", q: "10", w: "60", r: "9"},
			{policy: "upstream", q: "50", w: "60", r: "41"}, // the upstream's own, kept
		}
		for _, w := range want {
			p, ok := policies[w.policy]
			if !ok || p["q"] != w.q || p["w"] != w.w {
				t.Errorf("RateLimit-Policy item %q = %v (present %v), want q=%s;w=%s; all: %q",
					w.policy, p, ok, w.q, w.w, a.header.Values("RateLimit-Policy"))
			}
			l, ok := limits[w.policy]
			if !ok || l["r"] != w.r || l["t"] == "" {
				t.Errorf("RateLimit item %q = %v (present %v), want r=%s and a t; all: %q",
					w.policy, l, ok, w.r, a.header.Values("RateLimit"))
			}
		}
		if got := limits["upstream"]["t"]; got != "30" {
			t.Errorf(`the upstream's RateLimit item has t=%q, want 30 (unchanged)`, got)
		}
	})
}

// TestRateLimitRedisShared runs three gateways on one redis-server: a
// route limit holds across all of them, under concurrent clients.
func TestRateLimitRedisShared(t *testing.T) {
	rs := startRedis(t)
	up := startUpstream(t, nil)
	key := newAPIKey(t)
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{keysAuthenticator},
		top: fmt.Sprintf(`rate_limits:
  store: redis
  redis: { url: %q, timeout: 100ms, breaker_failures: 3, breaker_cooldown: 2s }
  fallback_instances: 3
consumers:
%s`, rs.url(), consumer("acme", "", "k1", key)),
		// An hour-long window: refill (one token a minute) cannot blur the count.
		routes: []string{authRoute("list-orders", "/orders", "[keys]", "rate_limit: { key: consumer, limit: 60, per: 1h, burst: 60 }")},
	}.yaml()
	gws := []*gateway{startGateway(t, cfg, nil), startGateway(t, cfg, nil), startGateway(t, cfg, nil)}

	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	t.Cleanup(client.CloseIdleConnections)
	const clients, perClient = 6, 25 // 150 requests
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		slow  time.Duration
		wg    sync.WaitGroup
	)
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				g := gws[(c+i)%len(gws)]
				req, err := http.NewRequest("GET", g.URL("/orders"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("X-API-Key", key)
				began := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("client %d request %d: %v", c, i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(began)
				mu.Lock()
				codes[resp.StatusCode]++
				slow = max(slow, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests over %d gateways in %v (slowest %v): %v", clients*perClient, len(gws), time.Since(start), slow, codes)

	ok, limited := codes[http.StatusOK], codes[http.StatusTooManyRequests]
	if ok < 57 || ok > 63 {
		t.Errorf("200s = %d across three gateways, want 60 (57-63): the limit must hold across instances", ok)
	} else if ok != 60 {
		t.Logf("200s = %d: within ±5%% of 60, but GCRA in Redis should be exact", ok)
	}
	if ok+limited != clients*perClient {
		t.Errorf("statuses = %v, want only 200 and 429", codes)
	}
	if hits := up.hits.Load(); hits != int64(ok) {
		t.Errorf("upstream hits = %d, want %d (one per 200)", hits, ok)
	}
	allowed := 0.0
	for _, g := range gws {
		allowed += max(metricSum(t, g, "bulwark_ratelimit_decisions_total", `layer="route"`, `result="allowed"`), 0)
		if v := metricSum(t, g, "bulwark_ratelimit_fallback_decisions_total"); v > 0 {
			t.Errorf("gateway %s made %v fallback decisions with Redis up, want 0", g.public, v)
		}
	}
	if int(allowed) != ok {
		t.Errorf("route decisions allowed, summed over the gateways = %v, want %d", allowed, ok)
	}
	// The buckets live in Redis, under the key prefix.
	keys := rs.do("KEYS", "bulwark:rl:*")
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "list-orders") }) {
		t.Errorf("Redis keys = %q, want a bucket of list-orders under bulwark:rl:", keys)
	}
	// One more, from each gateway: all refused, and the upstream not hit.
	before := up.hits.Load()
	for _, g := range gws {
		checkLimited(t, send(t, nil, "GET", g.URL("/orders"), "X-API-Key", key), "list-orders", 60, 3600, up, before)
	}
}

// redisDownSetup is the config of a gateway whose Redis will die.
func redisDownSetup(up *upstream, rs *redisServer, key, failureMode string) string {
	return authnSetup{
		upstream:       up.addr,
		authenticators: []string{keysAuthenticator},
		top: fmt.Sprintf(`rate_limits:
  store: redis
  redis: { url: %q, timeout: 100ms, breaker_failures: 3, breaker_cooldown: 2s }
  failure_mode: %s
  fallback_instances: 2
  per_ip: { limit: 1000, per: 1s }
consumers:
%s`, rs.url(), failureMode, consumer("acme", "", "k1", key)),
		routes: []string{authRoute("list-orders", "/orders", "[keys]", "rate_limit: { key: consumer, limit: 10, per: 1m }")},
	}.yaml()
}

// timedSend is send, also returning how long the request took.
func timedSend(t testing.TB, url string, hdr ...string) (answer, time.Duration) {
	t.Helper()
	began := time.Now()
	a := send(t, nil, "GET", url, hdr...)
	return a, time.Since(began)
}

// readyz returns the status and body of g's /readyz.
func readyz(t testing.TB, g *gateway) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// TestRateLimitRedisDown kills redis-server under a running gateway and
// brings it back on the same port, under both failure modes.
func TestRateLimitRedisDown(t *testing.T) {
	t.Run("failure_mode open counts locally", func(t *testing.T) {
		rs := startRedis(t)
		up := startUpstream(t, nil)
		key := newAPIKey(t)
		g := startGateway(t, redisDownSetup(up, rs, key, "open"), nil)
		orders := g.URL("/orders")

		if got, want := statuses(t, 2, orders, "X-API-Key", key), repeat(http.StatusOK, 2); !slices.Equal(got, want) {
			t.Fatalf("with Redis up: %v, want %v", got, want)
		}
		if keys := rs.do("KEYS", "bulwark:rl:*"); len(keys) == 0 {
			t.Fatalf("Redis holds no bulwark:rl: keys: the gateway does not count in Redis")
		}

		rs.kill()
		// Each instance now allows 10/2 = 5 per minute, from a fresh
		// local bucket; nothing may wait for the dead Redis.
		var got []int
		before := up.hits.Load()
		for range 7 {
			a, took := timedSend(t, orders, "X-API-Key", key)
			got = append(got, a.status)
			if took > maxStall {
				t.Errorf("GET /orders with Redis down took %v, want under %v", took, maxStall)
			}
			if a.status == http.StatusTooManyRequests {
				a.problem(t, http.StatusTooManyRequests, "rate-limited")
			}
		}
		if want := append(repeat(http.StatusOK, 5), repeat(http.StatusTooManyRequests, 2)...); !slices.Equal(got, want) {
			t.Errorf("with Redis down: %v, want %v (the local share: 10 / fallback_instances 2)", got, want)
		}
		if hits := up.hits.Load() - before; hits != 5 {
			t.Errorf("upstream hits with Redis down = %d, want 5", hits)
		}
		if code, body := readyz(t, g); code != http.StatusOK || !strings.Contains(body, "degraded") {
			t.Errorf("/readyz with Redis down = %d %q, want 200 with \"degraded\"", code, body)
		}
		if v := g.metric(t, `bulwark_ratelimit_store_errors_total{store="redis"}`); v <= 0 {
			t.Errorf(`bulwark_ratelimit_store_errors_total{store="redis"} = %v, want > 0`, v)
		}
		if v := g.metric(t, "bulwark_ratelimit_fallback_decisions_total"); v <= 0 {
			t.Errorf("bulwark_ratelimit_fallback_decisions_total = %v, want > 0", v)
		}

		rs.start()
		// The breaker probes Redis after its cooldown (2s). Requests for
		// no route still pass the per_ip layer, which probes, without
		// spending the route's tokens.
		restarted := time.Now()
		for {
			a, took := timedSend(t, g.URL("/no/such/route"))
			if a.status != http.StatusNotFound {
				t.Errorf("GET /no/such/route while Redis recovers = %d, want 404", a.status)
			}
			if took > maxStall {
				t.Errorf("GET /no/such/route while Redis recovers took %v, want under %v", took, maxStall)
			}
			if _, body := readyz(t, g); body == "ready" {
				break
			}
			if time.Since(restarted) > 10*time.Second {
				code, body := readyz(t, g)
				t.Fatalf("/readyz = %d %q 10s after Redis came back, want 200 \"ready\" (breaker_cooldown is 2s)", code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("ready again %v after Redis restarted", time.Since(restarted))
		// Redis restarted empty: the whole shared limit (10), not the
		// local share (5), is available again.
		before = up.hits.Load()
		got = statuses(t, 12, orders, "X-API-Key", key)
		if want := append(repeat(http.StatusOK, 10), repeat(http.StatusTooManyRequests, 2)...); !slices.Equal(got, want) {
			t.Errorf("after Redis came back: %v, want %v (the shared limit counted in Redis)", got, want)
		}
		if hits := up.hits.Load() - before; hits != 10 {
			t.Errorf("upstream hits after Redis came back = %d, want 10", hits)
		}
	})

	t.Run("failure_mode open does not stall on a hung Redis", func(t *testing.T) {
		// A Redis that accepts connections but never answers costs each
		// call its timeout (100ms) until the breaker opens, then nothing.
		rs := startRedis(t)
		up := startUpstream(t, nil)
		key := newAPIKey(t)
		g := startGateway(t, redisDownSetup(up, rs, key, "open"), nil)
		orders := g.URL("/orders")
		if a := send(t, nil, "GET", orders, "X-API-Key", key); a.status != http.StatusOK {
			t.Fatalf("with Redis up: %d, want 200 (%s)", a.status, a.body)
		}

		rs.pause()
		t.Cleanup(rs.resume) // before the kill of startRedis's cleanup
		var got []int
		var took []time.Duration
		for range 7 {
			a, d := timedSend(t, orders, "X-API-Key", key)
			got, took = append(got, a.status), append(took, d)
		}
		if want := append(repeat(http.StatusOK, 5), repeat(http.StatusTooManyRequests, 2)...); !slices.Equal(got, want) {
			t.Errorf("with Redis hung: %v, want %v (the local share: 10 / fallback_instances 2)", got, want)
		}
		if slices.Max(took) > maxStall {
			t.Errorf("request durations with Redis hung = %v, want each under %v", took, maxStall)
		}
		t.Logf("request durations with Redis hung: %v", took)
		if code, body := readyz(t, g); code != http.StatusOK || !strings.Contains(body, "degraded") {
			t.Errorf("/readyz with Redis hung = %d %q, want 200 with \"degraded\"", code, body)
		}
	})

	t.Run("failure_mode closed refuses", func(t *testing.T) {
		rs := startRedis(t)
		up := startUpstream(t, nil)
		key := newAPIKey(t)
		g := startGateway(t, redisDownSetup(up, rs, key, "closed"), nil)
		orders := g.URL("/orders")
		if a := send(t, nil, "GET", orders, "X-API-Key", key); a.status != http.StatusOK {
			t.Fatalf("with Redis up: %d, want 200 (%s)", a.status, a.body)
		}

		rs.kill()
		before := up.hits.Load()
		for i := range 5 {
			a, took := timedSend(t, orders, "X-API-Key", key)
			a.problem(t, http.StatusServiceUnavailable, "rate-limit-unavailable")
			if took > maxStall {
				t.Errorf("request %d with Redis down took %v, want under %v", i+1, took, maxStall)
			}
		}
		if hits := up.hits.Load() - before; hits != 0 {
			t.Errorf("upstream hits with Redis down under failure_mode closed = %d, want 0", hits)
		}
		if code, body := readyz(t, g); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz with Redis down = %d %q, want 503", code, body)
		}
		if v := metricSum(t, g, "bulwark_denials_total", `stage="ratelimit"`); v < 5 {
			t.Errorf(`bulwark_denials_total{stage="ratelimit"} = %v, want >= 5`, v)
		}
		if v := g.metric(t, `bulwark_ratelimit_store_errors_total{store="redis"}`); v <= 0 {
			t.Errorf(`bulwark_ratelimit_store_errors_total{store="redis"} = %v, want > 0`, v)
		}

		rs.start()
		restarted := time.Now()
		for {
			a, took := timedSend(t, orders, "X-API-Key", key)
			if took > maxStall {
				t.Errorf("GET /orders while Redis recovers took %v, want under %v", took, maxStall)
			}
			if a.status == http.StatusOK {
				break
			}
			if a.status != http.StatusServiceUnavailable {
				t.Fatalf("GET /orders while Redis recovers = %d, want 503 or 200 (%s)", a.status, a.body)
			}
			if time.Since(restarted) > 10*time.Second {
				t.Fatalf("still 503 10s after Redis came back (breaker_cooldown is 2s)")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, body := readyz(t, g); code != http.StatusOK || body != "ready" {
			t.Errorf("/readyz after Redis came back = %d %q, want 200 \"ready\"", code, body)
		}
	})
}

// TestRateLimitLockout covers the auth-failure lockout: per client IP
// before any verification, per verified credential across IPs, and never
// one client's failures locking out another.
func TestRateLimitLockout(t *testing.T) {
	up := startUpstream(t, nil)
	good, expired, other, wrong := newAPIKey(t), newAPIKey(t), newAPIKey(t), newAPIKey(t)
	g := startGateway(t, authnSetup{
		upstream:       up.addr,
		server:         []string{trustLoopback},
		authenticators: []string{keysAuthenticator},
		top: fmt.Sprintf(`rate_limits:
  auth_failures: { limit: 3, per: 1m, lockout: 10m }
consumers:
  - id: acme
    api_keys:
      - { id: k1, sha256: %q }
      - { id: k2, sha256: %q, expires: %s }
%s`, sha256Hex(good), sha256Hex(expired), time.Now().AddDate(0, 0, -2).Format(time.DateOnly),
			consumer("globex", "", "g1", other)),
		routes: []string{authRoute("orders", "/orders", "[keys]")},
	}.yaml(), nil)
	orders := g.URL("/orders")
	unauth := refusal{status: http.StatusUnauthorized, slug: "unauthenticated"}

	t.Run("an IP is locked out after limit failures, even with the right key", func(t *testing.T) {
		const ipA = "198.51.100.20"
		for i := range 3 {
			before := up.hits.Load()
			checkRefused(t, send(t, nil, "GET", orders, from(ipA, wrong)...), unauth, up, before, wrong)
			if t.Failed() {
				t.Fatalf("wrong key %d was not a plain 401", i+1)
			}
		}
		before := up.hits.Load()
		a := send(t, nil, "GET", orders, from(ipA, good)...)
		a.problem(t, http.StatusTooManyRequests, "rate-limited")
		if retry, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || retry < 590 || retry > 600 {
			t.Errorf("Retry-After = %q, want about 600 (lockout: 10m)", a.header.Get("Retry-After"))
		}
		if hits := up.hits.Load() - before; hits != 0 {
			t.Errorf("upstream hits = %d for a locked-out IP, want 0", hits)
		}
		// Further wrong keys from A are refused before verification: 429,
		// not 401, and no second lockout.
		checkLimitedLockout(t, send(t, nil, "GET", orders, from(ipA, wrong)...), up, before)
		if v := metricSum(t, g, "bulwark_ratelimit_lockouts_total", `kind="ip"`); v != 1 {
			t.Errorf(`bulwark_ratelimit_lockouts_total{kind="ip"} = %v, want 1`, v)
		}
		if v := metricSum(t, g, "bulwark_denials_total", `stage="ratelimit"`, `reason="auth_failures"`); v != 2 {
			t.Errorf(`bulwark_denials_total{stage="ratelimit",reason="auth_failures"} = %v, want 2`, v)
		}
	})

	t.Run("the attacker's IP does not lock out other IPs", func(t *testing.T) {
		for _, ip := range []string{"198.51.100.21", "198.51.100.22"} {
			if a := send(t, nil, "GET", orders, from(ip, good)...); a.status != http.StatusOK {
				t.Errorf("right key from %s = %d, want 200 (%s)", ip, a.status, a.body)
			}
		}
	})

	t.Run("a verified credential is locked across IPs, not the IPs", func(t *testing.T) {
		ips := []string{"198.51.100.30", "198.51.100.31", "198.51.100.32"}
		for i, ip := range ips {
			before := up.hits.Load()
			a := send(t, nil, "GET", orders, from(ip, expired)...)
			// The limit-th failure starts the lockout; whether it answers
			// 401 or already 429, it is refused and not forwarded.
			if i == len(ips)-1 && a.status == http.StatusTooManyRequests {
				t.Logf("the failure that starts the credential lockout answered 429")
				checkLimitedLockout(t, a, up, before)
				continue
			}
			checkRefused(t, a, unauth, up, before, expired)
		}
		before := up.hits.Load()
		a := send(t, nil, "GET", orders, from("198.51.100.33", expired)...)
		checkLimitedLockout(t, a, up, before)
		if v := metricSum(t, g, "bulwark_ratelimit_lockouts_total", `kind="credential"`); v != 1 {
			t.Errorf(`bulwark_ratelimit_lockouts_total{kind="credential"} = %v, want 1`, v)
		}
		// The IPs are not locked: each failed once. Another consumer's
		// key, and the same consumer's other key, still work from them.
		for _, ip := range append(ips, "198.51.100.33") {
			for _, k := range []string{other, good} {
				if a := send(t, nil, "GET", orders, from(ip, k)...); a.status != http.StatusOK {
					t.Errorf("a valid key from %s = %d, want 200 (%s)", ip, a.status, a.body)
				}
			}
		}
	})

	t.Run("the lockout's 429 carries the RateLimit headers", func(t *testing.T) {
		// DESIGN.md contracts: "429 carries Retry-After and the RateLimit
		// headers" (docs/rate-limiting.md, Answers: every denied request).
		a := send(t, nil, "GET", orders, from("198.51.100.20", good)...)
		a.problem(t, http.StatusTooManyRequests, "rate-limited")
		if got := a.header.Values("RateLimit-Policy"); len(got) != 1 {
			t.Errorf("RateLimit-Policy = %q on the lockout's 429, want one item", got)
		}
		if got, want := a.header.Values("RateLimit"), fmt.Sprintf(";r=0;t=%s", a.header.Get("Retry-After")); len(got) != 1 || !strings.HasSuffix(got[0], want) {
			t.Errorf("RateLimit = %q on the lockout's 429, want one item ending in %q", got, want)
		}
	})
}

// checkLimitedLockout asserts that a is the lockout's 429 and that the
// upstream saw nothing since before.
func checkLimitedLockout(t testing.TB, a answer, up *upstream, before int64) {
	t.Helper()
	a.problem(t, http.StatusTooManyRequests, "rate-limited")
	if retry, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || retry < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", a.header.Get("Retry-After"))
	}
	if ch := a.challenge(); ch != "" {
		t.Errorf("the lockout's 429 carries WWW-Authenticate %q", ch)
	}
	if hits := up.hits.Load() - before; hits != 0 {
		t.Errorf("upstream hits = %d for a locked-out attempt, want 0", hits)
	}
}

// TestRateLimitSurvivesReload: limit state lives as long as the process,
// not the config.
func TestRateLimitSurvivesReload(t *testing.T) {
	up := startUpstream(t, nil)
	url := "http://" + up.addr
	limited := route("list-orders", "GET", "/orders", "rate_limit: { key: ip, limit: 3, per: 1m }")
	g := startGateway(t, baseConfig(url, limited), nil)
	if got, want := statuses(t, 3, g.URL("/orders")), repeat(http.StatusOK, 3); !slices.Equal(got, want) {
		t.Fatalf("before the reload: %v, want %v", got, want)
	}
	before := up.hits.Load()
	checkLimited(t, send(t, nil, "GET", g.URL("/orders")), "list-orders", 3, 60, up, before)

	g.reload(t, baseConfig(url, limited, route("health", "GET", "/health")))
	if n := strings.Count(g.Logs(), `"config reloaded"`); n != 1 {
		t.Fatalf("the reload was not applied (%d \"config reloaded\" lines):\n%s", n, g.Logs())
	}
	if a := send(t, nil, "GET", g.URL("/health")); a.status != http.StatusOK {
		t.Errorf("GET /health (added by the reload) = %d, want 200", a.status)
	}
	before = up.hits.Load()
	checkLimited(t, send(t, nil, "GET", g.URL("/orders")), "list-orders", 3, 60, up, before)
}

// TestRateLimitConfigValidate: a limit counted by consumer on a route
// that can yield no consumer does not load, with file:line:col.
func TestRateLimitConfigValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, rateLimit string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, []byte(`server:
  listen: "127.0.0.1:0"
upstreams:
  api: { url: "http://127.0.0.1:9" }
routes:
  - name: public-orders
    method: GET
    path: /orders
    upstream: api
    auth: none
    rate_limit: `+rateLimit+`
`))
		return path
	}
	mapping := write("mapping.yaml", "{ key: consumer, limit: 5, per: 1m }")
	list := write("list.yaml", "[ { key: ip, limit: 50, per: 1m }, { key: consumer, limit: 5, per: 1m } ]")
	byIP := write("ip.yaml", "{ key: ip, limit: 5, per: 1m }")
	tests := []struct {
		name     string
		path     string
		wantCode int
		want     string // a pattern some line of the output matches
	}{
		{name: "key consumer on auth none", path: mapping, wantCode: 1,
			want: `^` + regexp.QuoteMeta(mapping) + `:11:24: routes\[0\]\.rate_limit\.key: .*consumer`},
		{name: "key consumer in a list on auth none", path: list, wantCode: 1,
			want: `^` + regexp.QuoteMeta(list) + `:11:59: routes\[0\]\.rate_limit\[1\]\.key: .*consumer`},
		{name: "key ip on auth none", path: byIP, wantCode: 0, want: `ok \(1 routes, 1 upstreams\)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, "validate", "--config", tt.path)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if out := stdout + stderr; !regexp.MustCompile(`(?m)` + tt.want).MatchString(out) {
				t.Errorf("output does not match %q:\n%s", tt.want, out)
			}
		})
	}
}
