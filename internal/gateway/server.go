package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/bulwark-gateway/bulwark/internal/audit"
	"github.com/bulwark-gateway/bulwark/internal/authn"
	"github.com/bulwark-gateway/bulwark/internal/authz"
	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/inventory"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
	"github.com/bulwark-gateway/bulwark/internal/ratelimit"
	"github.com/bulwark-gateway/bulwark/internal/tracing"
)

// Options configure a Server beyond its config file.
type Options struct {
	// ConfigPath is re-read on every reload.
	ConfigPath string
	// LookupEnv expands ${VAR} in the config (os.LookupEnv in production).
	LookupEnv func(string) (string, bool)
	// Log is the process logger; Level is its level, updated on reload.
	Log   *zap.Logger
	Level zap.AtomicLevel
	// Build describes the binary for bulwark_build_info.
	Build metrics.BuildInfo
}

// Server runs the gateway: the public listener (HTTP or HTTPS), the
// optional redirecting plain-HTTP listener, the admin listener, certificate
// reloading, config reload and graceful shutdown.
type Server struct {
	opts     Options
	log      *zap.Logger
	metrics  *metrics.Metrics
	problems *problem.Writer
	authn    *authn.Registry
	// rate is the rate-limit store, kept for the process's life so limit
	// state survives reloads; failover is it when it is Redis behind a
	// local fallback (for /readyz).
	rate     ratelimit.Store
	failover *ratelimit.Failover
	// audit writes the audit events; nil without an audit section. Its
	// sink is opened once (audit settings need a restart).
	audit *audit.Logger
	// tracer exports spans; nil without a tracing section (tracing
	// settings need a restart).
	tracer *tracing.Tracer
	// inventory counts operation and undocumented requests for the
	// process's life, so /inventory survives reloads.
	inventory *inventory.Registry
	// enumeration is the enumeration detection state, kept for the
	// process's life so counts and blocks survive reloads.
	enumeration *authz.Detector

	active   atomic.Pointer[Handler]
	certs    *certStore // nil without TLS
	started  atomic.Bool
	draining atomic.Bool
	reloadMu sync.Mutex
}

// New builds a Server from an already loaded config. Nothing listens yet.
func New(cfg *config.Config, opts Options) (*Server, error) {
	m := metrics.New(opts.Build)
	s := &Server{
		opts:      opts,
		log:       opts.Log,
		metrics:   m,
		problems:  problem.New(opts.Log.Named("deny"), m.Denials),
		authn:     authn.NewRegistry(opts.Log.Named("authn"), m.JWKSRefresh),
		inventory: inventory.New(inventory.Options{Undocumented: m.Undocumented}),

		enumeration: authz.NewDetector(authz.DefaultEnumerationKeys),
	}
	m.SetKeySetAges(func(yield func(string, time.Duration)) {
		if h := s.active.Load(); h != nil {
			h.authn.KeySetAges(yield)
		}
	})
	if err := s.openRateStore(cfg.RateLimits); err != nil {
		return nil, fmt.Errorf("rate_limits: %w", err)
	}
	if cfg.Audit != nil {
		al, err := audit.New(*cfg.Audit, audit.Deps{Log: opts.Log.Named("audit"), Events: m.AuditEvents,
			Dropped: m.AuditDropped, Failed: m.AuditFailures})
		if err != nil {
			_ = s.rate.Close()
			return nil, err
		}
		s.audit = al
	}
	// Before Build: the chains wrap their stages in spans of this tracer.
	if cfg.Tracing != nil {
		var err error
		if s.tracer, err = tracing.New(*cfg.Tracing, opts.Build.Version, opts.Log.Named("tracing")); err != nil {
			_ = s.rate.Close()
			_ = s.audit.Close(context.Background())
			return nil, err
		}
	}
	h, err := Build(cfg, s.deps())
	if err != nil {
		_ = s.rate.Close()
		_ = s.audit.Close(context.Background())
		_ = s.tracer.Shutdown(context.Background())
		return nil, err
	}
	if cfg.Server.TLS != nil {
		if s.certs, err = newCertStore(*cfg.Server.TLS, opts.Log.Named("tls"), m); err != nil {
			h.Close()
			_ = s.tracer.Shutdown(context.Background())
			return nil, fmt.Errorf("server.tls: %w", err)
		}
	}
	s.active.Store(h)
	m.LastReloadSuccess.SetToCurrentTime()
	m.LastReloadSuccessful.Set(1)
	return s, nil
}

func (s *Server) deps() Deps {
	return Deps{Log: s.log, Metrics: s.metrics, Problems: s.problems, Authn: s.authn, RateStore: s.rate,
		Inventory: s.inventory, Undocumented: s.inventory, Enumeration: s.enumeration, Tracer: s.tracer}
}

// Ready implements readiness: ready once every listener is up and every
// authenticator has loaded its keys once, not ready again as soon as
// shutdown begins.
func (s *Server) Ready() string {
	switch {
	case s.draining.Load():
		return "draining"
	case !s.started.Load():
		return "starting"
	}
	if reason := s.rate.Ready(); reason != "" {
		return reason
	}
	return s.active.Load().Ready()
}

// Degraded reports what runs degraded while the gateway stays ready: the
// Redis rate-limit store down under failure_mode: open.
func (s *Server) Degraded() string {
	if s.failover != nil && s.failover.Degraded() {
		return "rate-limit store unreachable, counting locally"
	}
	return ""
}

// openRateStore opens the rate-limit store of cfg: local, or Redis with a
// local fallback (failure_mode: open) or none (closed). It also exports
// the store's own counters.
func (s *Server) openRateStore(cfg config.RateLimits) error {
	local := ratelimit.NewLocal(cfg.MaxKeys, nil)
	reg := s.metrics.Registry
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "bulwark_ratelimit_local_evictions_total",
		Help: "Buckets the local rate-limit store dropped before they refilled, because it held rate_limits.max_keys keys.",
	}, func() float64 { return float64(local.Evictions()) }))
	observe := func(store string) func(time.Duration) {
		h := s.metrics.RateLimitStoreDuration.WithLabelValues(store)
		return func(d time.Duration) { h.Observe(d.Seconds()) }
	}
	if cfg.Store != "redis" {
		s.rate = ratelimit.Timed(local, observe("local"))
		return nil
	}
	rs, err := ratelimit.NewRedis(*cfg.Redis, s.log.Named("ratelimit"))
	if err != nil {
		_ = local.Close()
		return err
	}
	s.failover = ratelimit.NewFailover(rs, local, cfg.FallbackInstances, cfg.FailureMode == "closed")
	s.authn.ShareReplay(rs, cfg.FailureMode == "open")
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "bulwark_ratelimit_store_errors_total",
			Help:        "Rate-limit store calls that failed (timeouts, refused connections, an open circuit breaker).",
			ConstLabels: prometheus.Labels{"store": "redis"},
		}, func() float64 { return float64(rs.Errors()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bulwark_ratelimit_fallback_decisions_total",
			Help: "Rate-limit decisions made by the local fallback while Redis was unreachable (failure_mode: open).",
		}, func() float64 { return float64(s.failover.FallbackDecisions()) }),
	)
	s.rate = ratelimit.Timed(s.failover, observe("redis"))
	return nil
}

// Run listens and serves until ctx ends (SIGTERM, SIGINT), then drains:
// /readyz turns 503, the listeners stay open for server.shutdown_delay,
// then close, and in-flight requests get server.shutdown_timeout to finish.
// A value on reload (SIGHUP) reloads the config and re-reads certificates.
// Run returns nil after a graceful shutdown.
func (s *Server) Run(ctx context.Context, reload <-chan struct{}) error {
	cfg := s.active.Load().Config()
	public, admin, redirect := s.servers(cfg)
	type listener struct {
		name string
		srv  *http.Server
		ln   net.Listener
	}
	var lns []listener
	closeAll := func() {
		for _, l := range lns {
			_ = l.ln.Close() // start-up failed; the listen error is what matters
		}
	}
	for _, l := range []listener{{name: "public", srv: public}, {name: "admin", srv: admin}, {name: "redirect", srv: redirect}} {
		if l.srv == nil {
			continue
		}
		ln, err := net.Listen("tcp", l.srv.Addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		l.ln = ln
		lns = append(lns, l)
	}

	if redirect != nil {
		redirect.Handler = redirectHandler(httpsPort(lns[0].ln.Addr().String()), s.problems)
	}

	watchCtx, stopWatching := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatching()
	var wg sync.WaitGroup
	serveErr := make(chan error, len(lns))
	for _, l := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if l.name == "public" && s.certs != nil {
				err = l.srv.ServeTLS(l.ln, "", "")
			} else {
				err = l.srv.Serve(l.ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("%s listener: %w", l.name, err)
			}
		}()
		s.log.Info("listening", zap.String("listener", l.name), zap.String("address", l.ln.Addr().String()),
			zap.Bool("tls", l.name == "public" && s.certs != nil))
	}
	if s.certs != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.certs.watch(watchCtx) }()
	}
	fileChanged := make(chan struct{}, 1)
	if cfg.Reload.Watch {
		w, err := newFileWatch(s.opts.ConfigPath, cfg.Reload.Debounce.D(), s.log.Named("watch"))
		if err != nil {
			s.log.Error("config file watching disabled", zap.Error(err))
		} else {
			wg.Add(1)
			go func() { defer wg.Done(); w.run(watchCtx, fileChanged) }()
		}
	}
	s.started.Store(true)
	s.log.Info("bulwark started", zap.Int("routes", len(cfg.Routes)))

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			runErr = err
			break loop
		case <-reload:
			s.reloadAll()
		case <-fileChanged:
			_ = s.Reload() // Reload logs and counts its own failure
		}
	}
	s.shutdown(public, redirect, admin)
	stopWatching()
	wg.Wait()
	s.active.Load().Close()
	if err := s.rate.Close(); err != nil {
		s.log.Warn("closing the rate-limit store", zap.Error(err))
	}
	// Every request has finished: deliver the queued audit events.
	flushCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
	defer cancel()
	if err := s.audit.Close(flushCtx); err != nil {
		s.log.Error("audit events were not all delivered at shutdown", zap.Error(err))
	}
	if err := s.tracer.Shutdown(flushCtx); err != nil {
		s.log.Error("spans were not all exported at shutdown", zap.Error(err))
	}
	return runErr
}

// shutdown drains the listeners (see Run).
func (s *Server) shutdown(public, redirect, admin *http.Server) {
	s.draining.Store(true)
	cfg := s.active.Load().Config()
	s.log.Info("shutting down: draining", zap.Duration("delay", cfg.Server.ShutdownDelay.D()),
		zap.Duration("timeout", cfg.Server.ShutdownTimeout.D()))
	if d := cfg.Server.ShutdownDelay.D(); d > 0 {
		time.Sleep(d) // load balancers stop sending while /readyz says draining
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{public, redirect} {
		if srv == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				s.log.Warn("drain timed out; closing remaining connections", zap.Error(err))
				_ = srv.Close() // past the deadline: nothing more to wait for
			}
		}()
	}
	wg.Wait()
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	_ = admin.Shutdown(actx) // probes and scrapes are short; closing them is fine
	s.log.Info("shutdown complete")
}

// reloadAll answers SIGHUP: the config and the certificate files.
func (s *Server) reloadAll() {
	if s.certs != nil {
		s.certs.check()
	}
	_ = s.Reload() // Reload logs and counts its own failure
}

// Reload loads, validates and compiles the config file again and swaps the
// result in atomically. On any error the running config keeps serving; the
// error is logged (with file:line:col) and counted.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	err := s.reload()
	if err != nil {
		s.metrics.Reloads.WithLabelValues("failure").Inc()
		s.metrics.LastReloadSuccessful.Set(0)
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				s.log.Error("config reload refused; the running config keeps serving", zap.String("error", e.Error()))
			}
		} else {
			s.log.Error("config reload refused; the running config keeps serving", zap.Error(err))
		}
		return err
	}
	s.metrics.Reloads.WithLabelValues("success").Inc()
	s.metrics.LastReloadSuccessful.Set(1)
	s.metrics.LastReloadSuccess.SetToCurrentTime()
	return nil
}

func (s *Server) reload() error {
	cfg, err := config.Load(s.opts.ConfigPath, s.opts.LookupEnv)
	if err != nil {
		return err
	}
	h, err := Build(cfg, s.deps())
	if err != nil {
		return err
	}
	// A changed authenticator fetches its keys before the new config takes
	// traffic, so a reload does not fail its requests closed meanwhile.
	// After reloadReadyWait it swaps anyway: that authenticator fails closed
	// until its keys arrive, and /readyz says so.
	if reason := waitReady(h, reloadReadyWait); reason != "" {
		s.log.Warn("new config is not ready yet; it takes over anyway", zap.String("reason", reason))
	}
	old := s.active.Load().Config()
	if (cfg.Server.TLS == nil) != (s.certs == nil) {
		h.Close()
		return errors.New("server.tls: switching between HTTP and HTTPS needs a restart")
	}
	if s.certs != nil {
		if err := s.certs.update(*cfg.Server.TLS); err != nil {
			h.Close()
			return fmt.Errorf("server.tls: %w", err)
		}
	}
	for _, c := range restartOnly(old, cfg) {
		s.log.Warn("setting changed but needs a restart to apply; the running value stays", zap.String("key", c))
	}
	if lvl, err := zapcore.ParseLevel(cfg.Log.Level); err == nil {
		s.opts.Level.SetLevel(lvl)
	}
	prev := s.active.Swap(h)
	prev.Close()
	s.log.Info("config reloaded", zap.Int("routes", len(cfg.Routes)))
	return nil
}

// restartOnly lists the keys whose change a reload cannot apply.
func restartOnly(old, cfg *config.Config) []string {
	var keys []string
	check := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}
	check("server.listen", old.Server.Listen != cfg.Server.Listen)
	check("audit", !reflect.DeepEqual(old.Audit, cfg.Audit))
	check("tracing", !reflect.DeepEqual(old.Tracing, cfg.Tracing))
	check("rate_limits store (store, redis, failure_mode, fallback_instances, max_keys)",
		old.RateLimits.Store != cfg.RateLimits.Store || !reflect.DeepEqual(old.RateLimits.Redis, cfg.RateLimits.Redis) ||
			old.RateLimits.FailureMode != cfg.RateLimits.FailureMode ||
			old.RateLimits.FallbackInstances != cfg.RateLimits.FallbackInstances || old.RateLimits.MaxKeys != cfg.RateLimits.MaxKeys)
	check("admin", old.Admin.Listen != cfg.Admin.Listen || old.Admin.Token != cfg.Admin.Token ||
		fmt.Sprint(old.Admin.Allow) != fmt.Sprint(cfg.Admin.Allow))
	check("server.http_redirect", (old.Server.HTTPRedirect == nil) != (cfg.Server.HTTPRedirect == nil) ||
		(old.Server.HTTPRedirect != nil && *old.Server.HTTPRedirect != *cfg.Server.HTTPRedirect))
	check("server timeouts and header limits", old.Server.ReadHeaderTimeout != cfg.Server.ReadHeaderTimeout ||
		old.Server.ReadTimeout != cfg.Server.ReadTimeout || old.Server.WriteTimeout != cfg.Server.WriteTimeout ||
		old.Server.IdleTimeout != cfg.Server.IdleTimeout || old.Server.MaxHeaderBytes != cfg.Server.MaxHeaderBytes)
	check("log.format", old.Log.Format != cfg.Log.Format)
	check("reload.watch", old.Reload != cfg.Reload)
	return keys
}

// observer returns the public listener's outermost handler.
func (s *Server) observer() *observer {
	o := newObserver(&s.active, s.metrics, s.audit)
	o.tracer = s.tracer
	return o
}

// servers builds the http.Servers for cfg; redirect is nil when not
// configured.
func (s *Server) servers(cfg *config.Config) (public, admin, redirect *http.Server) {
	errLog := zap.NewStdLog(s.log.Named("http").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	sc := cfg.Server
	public = &http.Server{
		Addr:              sc.Listen,
		Handler:           s.observer(),
		ReadHeaderTimeout: sc.ReadHeaderTimeout.D(),
		ReadTimeout:       sc.ReadTimeout.D(),
		WriteTimeout:      sc.WriteTimeout.D(),
		IdleTimeout:       sc.IdleTimeout.D(),
		MaxHeaderBytes:    int(sc.MaxHeaderBytes),
		ErrorLog:          errLog,
		// "OPTIONS *" goes to the edge (and is refused there) instead of
		// being answered by net/http itself.
		DisableGeneralOptionsHandler: true,
	}
	if s.certs != nil {
		public.TLSConfig = s.certs.tlsConfig()
	}
	metricsH := promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{Registry: s.metrics.Registry})
	admin = &http.Server{
		Addr:              cfg.Admin.Listen,
		Handler:           newAdminHandler(cfg.Admin, s, metricsH, http.HandlerFunc(s.serveInventory), s.problems),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}
	if sc.HTTPRedirect != nil {
		redirect = &http.Server{
			Addr: sc.HTTPRedirect.Listen,
			// Handler is set in Run, once the public port is known.
			ReadHeaderTimeout: sc.ReadHeaderTimeout.D(),
			ReadTimeout:       sc.ReadHeaderTimeout.D(),
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       sc.IdleTimeout.D(),
			MaxHeaderBytes:    int(sc.MaxHeaderBytes),
			ErrorLog:          errLog,
		}
	}
	return public, admin, redirect
}

// serveInventory answers GET /inventory on the admin listener: the
// running config's specs and operations with their request counts, and
// the undocumented paths seen (inventory.Snapshot as JSON).
func (s *Server) serveInventory(w http.ResponseWriter, r *http.Request) {
	body, err := json.MarshalIndent(s.inventory.Snapshot(s.active.Load().Catalog()), "", "  ")
	if err != nil { // strings, numbers and times cannot fail to marshal
		s.problems.Write(w, r, problem.Internal())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n')) // a client that hung up needs no answer
	}
}

// httpsPort is the port redirects point at, from the public listener's
// bound address: "" for 443.
func httpsPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" {
		return ""
	}
	return port
}

// reloadReadyWait bounds how long a reload waits for new authenticators to
// load their keys.
const reloadReadyWait = 10 * time.Second

// waitReady waits until h is ready or max passes, and returns h.Ready().
func waitReady(h *Handler, max time.Duration) string {
	deadline := time.Now().Add(max)
	for {
		reason := h.Ready()
		if reason == "" || time.Now().After(deadline) {
			return reason
		}
		time.Sleep(20 * time.Millisecond)
	}
}
