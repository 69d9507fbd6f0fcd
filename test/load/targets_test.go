package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/authn"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/gateway"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func TestTargetsAndTheirBaselines(t *testing.T) {
	// Every target, with the limits it is judged by and the headers wrk
	// sends it. Adding a target means adding it here.
	post := request{method: "POST", body: benchOrder, contentType: "application/json", check: true}
	user := request{path: benchUserPath, check: true}
	want := map[string]struct {
		limits  *limits
		headers []string
		request request // zero: GET /bench, no body, the default check
	}{
		"direct":         {},
		bareName:         {},
		bareTimeoutsName: {},
		passThroughName:  {limits: &limits{minRPS: 0.90, maxP99: 1.20}},
		"bulwark-jwt":    {limits: &limits{minRPS: 0.80}, headers: []string{"Authorization: Bearer tok.en.sig"}},
		// The rate-limit targets are relative to the pass-through
		// route, not to bare.
		"bulwark-ratelimit-local": {limits: &limits{minRPS: 0.85, baseline: passThroughName}, headers: []string{"X-API-Key: bwk_key"}},
		"bulwark-ratelimit-redis": {limits: &limits{minRPS: 0.60, baseline: passThroughName}, headers: []string{"X-API-Key: bwk_key"}},
		// The audit target: auditing every request against the
		// same route auditing denials only, which is measured, not judged.
		auditDenialsName:    {},
		"bulwark-audit-all": {limits: &limits{minRPS: 0.90, baseline: auditDenialsName}},
		// The validation target: a validated POST against the
		// bare proxy given the same POST; the pass-through POST route is
		// measured to show the price of validation alone.
		barePostName:        {request: post},
		"bulwark-post":      {request: post},
		"bulwark-validated": {limits: &limits{minRPS: 0.65, baseline: barePostName}, request: post},
		// The filtering target: against the same document on a
		// pass-through route.
		userName:           {request: user},
		"bulwark-filtered": {limits: &limits{minRPS: 0.70, baseline: userName}, request: user},
		// The CEL target: one rule on the pass-through route.
		"bulwark-authorize": {limits: &limits{minRPS: 0.85, baseline: passThroughName}, headers: []string{"X-Tenant: acme"}},
	}
	tgs := targets("tok.en.sig", "bwk_key")
	index := map[string]int{}
	for i, tg := range tgs {
		index[tg.name] = i
	}
	seen := map[string]bool{}
	for i, tg := range tgs {
		// A baseline is another target of the same run; measuring it
		// first in each round keeps the two as close in time as the
		// interleaving allows.
		if tg.limits != nil {
			base := tg.limits.against()
			if j, ok := index[base]; !ok || base == tg.name || j > i {
				t.Errorf("target %q is compared with %q, want an earlier target of the same run", tg.name, base)
			}
		}
		if seen[tg.name] {
			t.Errorf("target %q defined twice, want unique names", tg.name)
		}
		seen[tg.name] = true
		if tg.start == nil {
			t.Errorf("target %q has no start, want one", tg.name)
		}
		w, ok := want[tg.name]
		if !ok {
			t.Errorf("unexpected target %q, want it listed in this test", tg.name)
			continue
		}
		if !reflect.DeepEqual(tg.limits, w.limits) {
			t.Errorf("target %q limits = %v, want %v", tg.name, tg.limits, w.limits)
		}
		if !slices.Equal(tg.headers, w.headers) {
			t.Errorf("target %q headers = %q, want %q", tg.name, tg.headers, w.headers)
		}
		got := request{method: tg.method, path: tg.path, body: tg.body, contentType: tg.contentType, check: tg.check != nil}
		if !reflect.DeepEqual(got, w.request) {
			t.Errorf("target %q request = %+v, want %+v", tg.name, got, w.request)
		}
		// wrk needs a script for anything but a plain GET.
		if tg.scripted() != (w.request.method != "" || w.request.body != nil) {
			t.Errorf("target %q scripted() = %v, want %v", tg.name, tg.scripted(), !tg.scripted())
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("targets() has no %q, want it", name)
		}
	}
}

// request is what a target sends and whether it checks the answer itself.
type request struct {
	method, path string
	body         []byte
	contentType  string
	check        bool
}

// authnSummary is what the bench configs say about one authenticator.
type authnSummary struct {
	Type, Issuer, JWKSURL string
	Audiences, Algorithms []string
	CacheSize             int
	Header                string // api_key only
}

// rateSummary is what the bench configs say about rate limiting: where
// limits are counted, the consumers' key hashes by consumer id, and the
// route's limits.
type rateSummary struct {
	Store, FailureMode, RedisURL string
	Keys                         map[string][]string
	Route                        []routeLimitSummary
}

// routeLimitSummary is one limit of the route.
type routeLimitSummary struct {
	Key          string
	Limit, Burst int
	Per          time.Duration
}

// validateSummary is what the bench configs say about the route's
// validation, with the file of its spec.
type validateSummary struct {
	Spec, SpecFile, Operation, Request, Response string
	Strict, StrictQuery                          bool
}

// responseSummary is what the bench configs say about the route's
// response rules.
type responseSummary struct {
	Allow, Deny     []string
	Mask            map[string]string
	Preset, Detect  string
	NonJSON, Mode   string
	Filters         bool
	UpstreamErrors  string
	HeadersToRemove []string
}

// auditSummary is what the bench configs say about the audit log.
type auditSummary struct {
	Sink, Path, Allowed, OnFull string
	QueueSize                   int
}

func TestBulwarkConfigs(t *testing.T) {
	keyHash := apiKeyHash("bwk_key")
	// The scratch directory must exist: bulwark refuses an audit file
	// whose directory does not. The run writes the bench spec into it
	// (see measure).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, benchSpecFile), benchSpec, 0o600); err != nil {
		t.Fatal(err)
	}
	fill := bulwarkConfig{
		Listen: "127.0.0.1:1", Admin: "127.0.0.1:2", Upstream: "http://127.0.0.1:3", JWKSURL: "http://127.0.0.1:4/jwks.json",
		RedisURL: "redis://127.0.0.1:5/0", APIKeySHA256: keyHash, Dir: dir,
	}
	common := []string{
		`listen: "127.0.0.1:1"`,
		`admin: { listen: "127.0.0.1:2" }`,
		`url: "http://127.0.0.1:3"`,
		"level: warn",
	}
	// Not rate limited: bulwark's defaults, no consumer, no route limit.
	noLimits := rateSummary{Store: "local", FailureMode: "open", Keys: map[string][]string{}}
	// The rate-limited routes: the run's key by its hash only, and a
	// limit per consumer that no run reaches.
	keyAuthn := map[string]authnSummary{"bench-key": {Type: "api_key", Header: "X-API-Key", CacheSize: 10000}}
	keys := map[string][]string{"bench": {keyHash}}
	routeLimit := []routeLimitSummary{{Key: "consumer", Limit: 100_000_000, Burst: 100_000_000, Per: time.Second}}
	tests := []struct {
		name      string
		template  string
		wantAuth  config.AuthList
		wantAuthn map[string]authnSummary
		wantRate  rateSummary
		wantAudit *auditSummary // nil: no audit section
		wantRoute string        // method and path; "" is GET /bench
		// nil: no validate, no response section
		wantValidate *validateSummary
		wantResponse *responseSummary
		wantText     []string
	}{
		{
			name:      "pass-through",
			template:  passThroughConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantRate:  noLimits,
			wantText:  append(slices.Clone(common), "auth: none"),
		},
		{
			name:     "jwt",
			template: jwtConfig,
			wantAuth: config.AuthList{Names: []string{"bench-jwt"}},
			wantAuthn: map[string]authnSummary{"bench-jwt": {
				Type:       "jwt",
				Issuer:     benchIssuer,
				JWKSURL:    "http://127.0.0.1:4/jwks.json",
				Audiences:  []string{benchAudience},
				Algorithms: []string{"RS256"},
				CacheSize:  10000, // bulwark's default: the cache path is what is measured
			}},
			wantRate: noLimits,
			wantText: append(slices.Clone(common), "auth: [bench-jwt]"),
		},
		{
			name:      "rate limit, local",
			template:  rateLimitLocalConfig,
			wantAuth:  config.AuthList{Names: []string{"bench-key"}},
			wantAuthn: keyAuthn,
			wantRate:  rateSummary{Store: "local", FailureMode: "open", Keys: keys, Route: routeLimit},
			wantText:  append(slices.Clone(common), "auth: [bench-key]", "store: local"),
		},
		{
			name:      "rate limit, redis",
			template:  rateLimitRedisConfig,
			wantAuth:  config.AuthList{Names: []string{"bench-key"}},
			wantAuthn: keyAuthn,
			// closed: a Redis that fails is a failed run, never a run
			// that measured the local fallback under this name.
			wantRate: rateSummary{Store: "redis", FailureMode: "closed", RedisURL: "redis://127.0.0.1:5/0", Keys: keys, Route: routeLimit},
			wantText: append(slices.Clone(common), "auth: [bench-key]", "store: redis"),
		},
		{
			// Every request of the route is allowed: with allowed: none
			// nothing is written.
			name:      "audit, denials only",
			template:  auditDenialsConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantRate:  noLimits,
			wantAudit: &auditSummary{Sink: "file", Path: filepath.Join(dir, "audit-denials.jsonl"), Allowed: "none", OnFull: "drop", QueueSize: 10000},
			wantText:  append(slices.Clone(common), "auth: none"),
		},
		{
			name:      "audit, every request",
			template:  auditAllConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantRate:  noLimits,
			// The same file sink and queue as the baseline, another file.
			wantAudit: &auditSummary{Sink: "file", Path: filepath.Join(dir, "audit-all.jsonl"), Allowed: "all", OnFull: "drop", QueueSize: 10000},
			wantText:  append(slices.Clone(common), "auth: none"),
		},
		{
			// The price of validation alone is this route against the
			// next.
			name:      "POST, pass-through",
			template:  postConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantRate:  noLimits,
			wantRoute: "POST /bench",
			wantText:  append(slices.Clone(common), "auth: none"),
		},
		{
			// Every validation setting at its default: the issue's
			// target is for request: enforce with strict objects.
			name:      "POST, validated",
			template:  validatedConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantRate:  noLimits,
			wantRoute: "POST /bench",
			wantValidate: &validateSummary{
				Spec: "bench", SpecFile: filepath.Join(dir, benchSpecFile),
				Request: "enforce", Response: "off", Strict: true,
			},
			wantText: append(slices.Clone(common), "auth: none", "validate: { spec: bench }"),
		},
		{
			name:      "user, pass-through",
			template:  userConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantRate:  noLimits,
			wantRoute: "GET /bench-user",
			wantText:  append(slices.Clone(common), "auth: none"),
		},
		{
			name:      "user, filtered",
			template:  filteredConfig,
			wantAuth:  config.AuthList{None: true},
			wantAuthn: map[string]authnSummary{},
			wantRate:  noLimits,
			wantRoute: "GET /bench-user",
			wantResponse: &responseSummary{
				Allow:   []string{"$.id", "$.name", "$.email", "$.orders[*].id", "$.orders[*].total"},
				Mask:    map[string]string{"$.email": "redact"},
				Detect:  "off",
				NonJSON: "fail",
				Filters: true,
			},
			wantText: append(slices.Clone(common), "auth: none"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := template.Must(template.New(tt.name).Option("missingkey=error").Parse(tt.template))
			var b strings.Builder
			if err := tmpl.Execute(&b, fill); err != nil {
				t.Fatal(err)
			}
			noEnv := func(string) (string, bool) { return "", false }
			cfg, err := config.Parse("bench.yaml", []byte(b.String()), noEnv)
			if err != nil {
				t.Fatalf("bulwark refuses the %s config: %v\n%s", tt.name, err, b.String())
			}
			if got := len(cfg.Routes); got != 1 {
				t.Fatalf("routes = %+v, want one", cfg.Routes)
			}
			wantRoute := tt.wantRoute
			if wantRoute == "" {
				wantRoute = "GET " + benchPath
			}
			if got := cfg.Routes[0].Method + " " + cfg.Routes[0].Path; got != wantRoute {
				t.Errorf("route = %s, want %s", got, wantRoute)
			}
			var gotValidate *validateSummary
			if v := cfg.Routes[0].Validate; v != nil {
				gotValidate = &validateSummary{
					Spec: v.Spec, Operation: v.Operation, Request: v.Request, Response: v.Response,
					Strict: v.Strict, StrictQuery: v.StrictQuery,
				}
				if spec, ok := cfg.Specs[v.Spec]; ok {
					gotValidate.SpecFile = string(spec.File)
				}
				// Loaded when the config loads, and the route's
				// operation found in it (createOrder, by method and
				// path).
				if cfg.Spec(v.Spec) == nil {
					t.Errorf("spec %q not loaded", v.Spec)
				} else if info, ok := cfg.Spec(v.Spec).Find(cfg.Routes[0].Method, cfg.Routes[0].Path); !ok || info.ID != "createOrder" {
					t.Errorf("operation of %s = %+v (found %v), want createOrder", wantRoute, info, ok)
				}
			}
			if !reflect.DeepEqual(gotValidate, tt.wantValidate) {
				t.Errorf("validate = %+v, want %+v", gotValidate, tt.wantValidate)
			}
			var gotResponse *responseSummary
			if r := cfg.Routes[0].Response; r != nil {
				gotResponse = &responseSummary{
					Allow: r.Allow, Deny: r.Deny, Mask: r.Mask, Preset: r.Preset, Detect: r.Detect,
					NonJSON: r.NonJSON, Mode: string(r.Mode), Filters: r.Filters(),
					UpstreamErrors: r.UpstreamErrors, HeadersToRemove: r.Headers.Remove,
				}
			}
			if !reflect.DeepEqual(gotResponse, tt.wantResponse) {
				t.Errorf("response = %+v, want %+v", gotResponse, tt.wantResponse)
			}
			// What bulwark validate does after loading: compile every
			// route's chain.
			m := metrics.New(metrics.BuildInfo{})
			h, err := gateway.Build(cfg, gateway.Deps{Log: zap.NewNop(), Metrics: m, Problems: problem.New(zap.NewNop(), m.Denials)})
			if err != nil {
				t.Fatalf("bulwark cannot build the %s config: %v\n%s", tt.name, err, b.String())
			}
			h.Close()
			if got := cfg.Routes[0].Auth; !reflect.DeepEqual(got, tt.wantAuth) {
				t.Errorf("route auth = %+v, want %+v", got, tt.wantAuth)
			}
			gotAuthn := map[string]authnSummary{}
			for name, a := range cfg.Authenticators {
				gotAuthn[name] = authnSummary{
					Type: a.Type, Issuer: a.Issuer, JWKSURL: a.JWKSURL,
					Audiences: a.Audiences, Algorithms: a.Algorithms, CacheSize: a.CacheSize,
					Header: a.Header,
				}
				if a.Type != "api_key" {
					gotAuthn[name] = withoutHeader(gotAuthn[name])
				}
			}
			if !reflect.DeepEqual(gotAuthn, tt.wantAuthn) {
				t.Errorf("authenticators = %+v, want %+v", gotAuthn, tt.wantAuthn)
			}
			rl := cfg.RateLimits
			gotRate := rateSummary{Store: rl.Store, FailureMode: rl.FailureMode, Keys: map[string][]string{}}
			if rl.Redis != nil {
				gotRate.RedisURL = string(rl.Redis.URL)
			}
			for _, c := range cfg.Consumers {
				for _, k := range c.APIKeys {
					gotRate.Keys[c.ID] = append(gotRate.Keys[c.ID], k.SHA256)
				}
			}
			for _, l := range cfg.Routes[0].RateLimit {
				gotRate.Route = append(gotRate.Route, routeLimitSummary{Key: l.Key, Limit: l.Limit, Burst: l.Burst, Per: l.Per.D()})
			}
			if !reflect.DeepEqual(gotRate, tt.wantRate) {
				t.Errorf("rate limiting = %+v, want %+v", gotRate, tt.wantRate)
			}
			var gotAudit *auditSummary
			if a := cfg.Audit; a != nil {
				gotAudit = &auditSummary{Sink: a.Sink, Allowed: string(a.Allowed), OnFull: a.OnFull, QueueSize: a.QueueSize}
				if a.File != nil {
					gotAudit.Path = string(a.File.Path)
				}
			}
			if !reflect.DeepEqual(gotAudit, tt.wantAudit) {
				t.Errorf("audit = %+v, want %+v", gotAudit, tt.wantAudit)
			}
			if strings.Contains(b.String(), "bwk_key") {
				t.Errorf("config = %q, want the API key only as its hash", b.String())
			}
			for _, want := range tt.wantText {
				if !strings.Contains(b.String(), want) {
					t.Errorf("config = %q, want it to contain %q", b.String(), want)
				}
			}
		})
	}
}

// withoutHeader drops the api_key header default that every authenticator
// carries, for the types it does not apply to.
func withoutHeader(a authnSummary) authnSummary {
	a.Header = ""
	return a
}

func TestNewAPIKey(t *testing.T) {
	key, sum, err := newAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	// bulwark checks the key it reads against this hash: the two must
	// agree on how a key is hashed.
	if want := authn.HashKey(key); sum != want || apiKeyHash(key) != want {
		t.Errorf("newAPIKey() hash = %q, want bulwark's %q", sum, want)
	}
	if !strings.HasPrefix(key, "bwk_") || len(key) != len("bwk_")+43 || strings.ContainsAny(key, " :\r\n") {
		t.Errorf("newAPIKey() = %q, want bwk_ and 43 base64url characters, fit for a header", key)
	}
	other, _, err := newAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if other == key {
		t.Errorf("newAPIKey() twice = %q, want a new key each run", key)
	}
}

func TestSelectTargets(t *testing.T) {
	all := targets("tok.en.sig", "bwk_key")
	names := func(tgs []target) string {
		var out []string
		for _, tg := range tgs {
			out = append(out, tg.name)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name string
		list string
		want string // names, in measuring order
	}{
		{name: "default: all", list: "", want: names(all)},
		{name: "blank: all", list: "  ", want: names(all)},
		// In the order of targets(), baselines first, whatever the
		// order given; spaces and repeats do not matter.
		{
			name: "the new targets",
			list: "bulwark-filtered, bulwark-user,bare,bulwark-validated,bare-post,bulwark-post,bare",
			want: "bare,bare-post,bulwark-post,bulwark-validated,bulwark-user,bulwark-filtered",
		},
		{name: "bare alone", list: "bare", want: "bare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectTargets(all, tt.list)
			if err != nil {
				t.Fatalf("selectTargets(%q) error = %v", tt.list, err)
			}
			if names(got) != tt.want {
				t.Errorf("selectTargets(%q) = %s, want %s", tt.list, names(got), tt.want)
			}
		})
	}
}

func TestWantFiltered(t *testing.T) {
	want, err := filteredUser([]byte(benchUserBody))
	if err != nil {
		t.Fatal(err)
	}
	filtered, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	// What the route keeps: five paths of a ~2.5 KB document.
	if n := len(filtered); n*3 > len(benchUserBody) {
		t.Errorf("filtered document = %d bytes of %d, want most of it dropped", n, len(benchUserBody))
	}
	withExtra := strings.Replace(string(filtered), `"id"`, `"phone":"+49 30 1234567","id"`, 1)
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string // "" for none
	}{
		{name: "filtered", status: 200, body: string(filtered)},
		{name: "members in another order", status: 200, body: `{"orders":` + mustJSON(t, want["orders"]) + `,"email":"***","name":"Ann Example","id":"usr_7Q2M9K4T"}`},
		{name: "not filtered", status: 200, body: benchUserBody, wantErr: "did not filter"},
		{name: "a field too many", status: 200, body: withExtra, wantErr: "want the filtered document"},
		{name: "email not masked", status: 200, body: strings.Replace(string(filtered), `"***"`, `"ann.example@example.com"`, 1), wantErr: "want the filtered document"},
		{name: "an error", status: 502, body: `{"type":"about:blank"}`, wantErr: "answer 502"},
		{name: "not JSON", status: 200, body: "<html>", wantErr: "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wantFiltered(tt.status, []byte(tt.body))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("wantFiltered(%d, %.60q...) = %v, want error %q", tt.status, tt.body, err, tt.wantErr)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
