// Package metrics holds the gateway's Prometheus collectors, registered on
// the gateway's own registry (never the global default). One Metrics lives
// for the whole process: reloads build new handlers that keep counting into
// the same series.
package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// BuildInfo describes the running binary for bulwark_build_info.
type BuildInfo struct {
	Version, Revision, Branch, GoVersion, GoOS, GoArch string
}

// Metrics is the set of collectors every part of the gateway reports to.
// All fields are safe for concurrent use.
type Metrics struct {
	// Registry is what /metrics serves.
	Registry *prometheus.Registry

	// Requests counts finished requests by route name, method and status.
	Requests *prometheus.CounterVec
	// Duration observes the whole time the gateway spent on a request.
	Duration *prometheus.HistogramVec
	// UpstreamDuration observes upstream round trips (request sent to
	// response headers received), by route and upstream.
	UpstreamDuration *prometheus.HistogramVec
	// InFlight is the number of requests being served now.
	InFlight prometheus.Gauge
	// Denials counts stage denials and report-mode would-denials.
	Denials *prometheus.CounterVec
	// Reloads counts config reloads by result (success, failure).
	Reloads *prometheus.CounterVec
	// LastReloadSuccess is the Unix time of the last successful load.
	LastReloadSuccess prometheus.Gauge
	// LastReloadSuccessful is 1 when the last reload attempt succeeded.
	LastReloadSuccessful prometheus.Gauge
	// TLSCertNotAfter is the expiry (Unix time) of the serving certificate.
	TLSCertNotAfter prometheus.Gauge
	// TLSCertReloads counts certificate reload attempts by result.
	TLSCertReloads *prometheus.CounterVec
	// AuthAttempts counts credential checks by authenticator and result
	// (success, failure, unavailable).
	AuthAttempts *prometheus.CounterVec
	// JWKSRefresh counts key set fetches by authenticator and result
	// (success, failure).
	JWKSRefresh *prometheus.CounterVec

	// RateLimitDecisions counts rate-limit decisions by layer (global,
	// per_ip, plan, quota, route, auth_failures) and result (allowed,
	// limited, error_allowed, error_denied).
	RateLimitDecisions *prometheus.CounterVec
	// RateLimitStoreDuration observes rate-limit store calls by store.
	RateLimitStoreDuration *prometheus.HistogramVec
	// Lockouts counts auth-failure lockouts started, by key kind (ip,
	// credential).
	Lockouts *prometheus.CounterVec

	// AuditEvents counts audit events queued, by kind (denied,
	// would_deny, allowed); AuditDropped those lost to a full queue;
	// AuditFailures failed delivery attempts to the sink.
	AuditEvents   *prometheus.CounterVec
	AuditDropped  prometheus.Counter
	AuditFailures prometheus.Counter

	// ValidationFailures counts requests and responses that broke their
	// OpenAPI operation or the JSON limits, by route, direction (request,
	// response) and reason; report mode counts too.
	ValidationFailures *prometheus.CounterVec
	// FilterActions counts what response filtering did, by route and
	// action: removed and masked (distinct paths per response), blocked,
	// failed (a response that could not be filtered) and passed (a
	// non-JSON response let through by non_json: pass).
	FilterActions *prometheus.CounterVec
	// SensitiveData counts sensitive-looking values found in responses, by
	// route and kind (card_number, jwt, private_key, secret).
	SensitiveData *prometheus.CounterVec
	// AuthzDecisions counts the evaluations of object-level rules, by
	// route, rule and result: allow, deny (the rule did not hold) or error
	// (it could not be evaluated, which denies). Report mode counts too.
	AuthzDecisions *prometheus.CounterVec
	// Enumerations counts the principals (or client IPs) that enumeration
	// detection reported, by route; EnumerationBlocks the blocks it
	// started, by route.
	Enumerations      *prometheus.CounterVec
	EnumerationBlocks *prometheus.CounterVec
	// PolicyDuration observes the calls to policy decision points, by
	// policy; PolicyErrors counts those that gave no decision and the
	// requests an open breaker refused, by policy and reason (timeout,
	// unavailable, bad_response, circuit_open); PolicyCacheHits the
	// decisions taken from a policy's cache, by policy.
	PolicyDuration  *prometheus.HistogramVec
	PolicyErrors    *prometheus.CounterVec
	PolicyCacheHits *prometheus.CounterVec
	// Undocumented counts requests to a spec-validated upstream that match
	// no operation of its spec, by upstream (API inventory).
	Undocumented *prometheus.CounterVec
	// Deprecated counts requests to operations their spec marks
	// deprecated, by route.
	Deprecated *prometheus.CounterVec

	keySetAge *keySetAge
}

// latencyBuckets are OpenTelemetry's default HTTP server buckets (seconds),
// finer than Prometheus' defaults at the low end where a gateway lives.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// New creates and registers every collector, with the Go and process
// collectors and bulwark_build_info.
func New(info BuildInfo) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_requests_total",
			Help: "Requests answered, by route name (\"_unmatched\" when no route matched), method and status code.",
		}, []string{"route", "method", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulwark_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of the response, by route and method.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulwark_upstream_request_duration_seconds",
			Help:    "Time from sending a request upstream to receiving its response headers, by route and upstream.",
			Buckets: latencyBuckets,
		}, []string{"route", "upstream"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulwark_requests_in_flight",
			Help: "Requests being served now.",
		}),
		Denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_denials_total",
			Help: "Requests denied by a stage (mode=enforce) or that report mode let through (mode=report), by route, stage and reason.",
		}, []string{"route", "stage", "reason", "mode"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_config_reloads_total",
			Help: "Config reload attempts by result (success, failure).",
		}, []string{"result"}),
		LastReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulwark_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load.",
		}),
		LastReloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulwark_config_last_reload_successful",
			Help: "1 when the last config reload attempt succeeded, 0 when it was refused.",
		}),
		TLSCertNotAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulwark_tls_certificate_not_after_timestamp_seconds",
			Help: "Expiry (Unix time) of the certificate the public listener serves; 0 without TLS.",
		}),
		TLSCertReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_tls_certificate_reloads_total",
			Help: "Reloads of the serving certificate from disk, by result (success, failure).",
		}, []string{"result"}),
		AuthAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_auth_attempts_total",
			Help: "Credential checks by authenticator and result (success, failure, unavailable: the identity provider could not be reached and the request was denied).",
		}, []string{"authenticator", "result"}),
		JWKSRefresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_jwks_refresh_total",
			Help: "JSON Web Key Set fetches by authenticator and result (success, failure).",
		}, []string{"authenticator", "result"}),
		RateLimitDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_ratelimit_decisions_total",
			Help: "Rate-limit decisions by layer (global, per_ip, plan, quota, route, auth_failures) and result (allowed, limited, error_allowed, error_denied).",
		}, []string{"layer", "result"}),
		RateLimitStoreDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulwark_ratelimit_store_duration_seconds",
			Help:    "Time of one rate-limit store call (all buckets of a request), by store (local, redis).",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25},
		}, []string{"store"}),
		Lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_ratelimit_lockouts_total",
			Help: "Auth-failure lockouts started, by key kind (ip, credential).",
		}, []string{"kind"}),
		AuditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_audit_events_total",
			Help: "Audit events queued for the sink, by kind (denied, would_deny, allowed).",
		}, []string{"kind"}),
		ValidationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_validation_failures_total",
			Help: "Requests and responses that broke their OpenAPI operation or the JSON limits, by route, direction and reason.",
		}, []string{"route", "direction", "reason"}),
		FilterActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_filter_actions_total",
			Help: "Response filtering actions, by route and action (removed, masked, blocked, failed, passed).",
		}, []string{"route", "action"}),
		SensitiveData: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_sensitive_data_detected_total",
			Help: "Sensitive-looking values found in responses, by route and kind.",
		}, []string{"route", "kind"}),
		AuthzDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_authz_decisions_total",
			Help: "Evaluations of object-level rules, by route, rule and result (allow, deny, error).",
		}, []string{"route", "rule", "result"}),
		Enumerations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_bola_enumeration_suspected_total",
			Help: "Principals or client IPs denied on more distinct objects of a route than its enumeration threshold allows within the window, by route.",
		}, []string{"route"}),
		EnumerationBlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_bola_blocked_total",
			Help: "Enumeration blocks started (authorize.enumeration.block), by route.",
		}, []string{"route"}),
		PolicyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulwark_policy_hook_duration_seconds",
			Help:    "Duration of the calls to policy decision points (authorize.policy), by policy; cached decisions make no call.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}, []string{"policy"}),
		PolicyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_policy_hook_errors_total",
			Help: "Policy decisions that could not be had (the request is refused), by policy and reason: timeout, unavailable, bad_response, circuit_open.",
		}, []string{"policy", "reason"}),
		PolicyCacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_policy_hook_cache_hits_total",
			Help: "Policy decisions taken from the decision cache instead of a call, by policy.",
		}, []string{"policy"}),
		Undocumented: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_undocumented_requests_total",
			Help: "Requests to a spec-validated upstream that matched no operation of its spec (shadow or zombie endpoints), by upstream.",
		}, []string{"upstream"}),
		Deprecated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_deprecated_requests_total",
			Help: "Requests to operations their OpenAPI spec marks deprecated, by route.",
		}, []string{"route"}),
		AuditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_audit_events_dropped_total",
			Help: "Audit events lost because the queue was full (audit.on_full), or undelivered at shutdown.",
		}),
		AuditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_audit_delivery_failures_total",
			Help: "Failed attempts to deliver a batch of audit events to the sink (each is retried).",
		}),
		keySetAge: &keySetAge{desc: prometheus.NewDesc("bulwark_jwks_age_seconds",
			"Seconds since the authenticator's key set was last loaded successfully.", []string{"authenticator"}, nil)},
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bulwark_build_info",
		Help: "Build of the running binary; the value is always 1.",
		ConstLabels: prometheus.Labels{
			"version": info.Version, "revision": info.Revision, "branch": info.Branch,
			"goversion": info.GoVersion, "goos": info.GoOS, "goarch": info.GoArch,
		},
	})
	buildInfo.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.Requests, m.Duration, m.UpstreamDuration, m.InFlight, m.Denials,
		m.Reloads, m.LastReloadSuccess, m.LastReloadSuccessful, m.TLSCertNotAfter, m.TLSCertReloads,
		m.AuthAttempts, m.JWKSRefresh, m.keySetAge,
		m.RateLimitDecisions, m.RateLimitStoreDuration, m.Lockouts,
		m.AuditEvents, m.AuditDropped, m.AuditFailures,
		m.ValidationFailures, m.FilterActions, m.SensitiveData, m.AuthzDecisions, m.Enumerations, m.EnumerationBlocks,
		m.Undocumented, m.Deprecated, m.PolicyDuration, m.PolicyErrors, m.PolicyCacheHits,
	)
	for _, result := range []string{"success", "failure"} {
		m.Reloads.WithLabelValues(result)
		m.TLSCertReloads.WithLabelValues(result)
	}
	return m
}

// KeySetAges is a source of key set ages: it calls yield once per
// authenticator that has a key set.
type KeySetAges func(yield func(authenticator string, age time.Duration))

// SetKeySetAges sets where bulwark_jwks_age_seconds reads from at scrape
// time (the running config's authenticators); nil reports nothing.
func (m *Metrics) SetKeySetAges(src KeySetAges) {
	m.keySetAge.src.Store(&src)
}

// keySetAge is the collector of bulwark_jwks_age_seconds: ages are computed
// when scraped, so they grow between refreshes as they should.
type keySetAge struct {
	desc *prometheus.Desc
	src  atomic.Pointer[KeySetAges]
}

func (k *keySetAge) Describe(ch chan<- *prometheus.Desc) { ch <- k.desc }

func (k *keySetAge) Collect(ch chan<- prometheus.Metric) {
	src := k.src.Load()
	if src == nil || *src == nil {
		return
	}
	(*src)(func(name string, age time.Duration) {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.GaugeValue, age.Seconds(), name)
	})
}
