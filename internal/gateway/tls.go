package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
)

// certStore serves the public listener's TLS settings and re-reads the
// certificate, key and client CA files when they change on disk (checked
// every reload_interval and on SIGHUP). Existing connections keep the
// certificate they were made with; new handshakes get the new one, so a
// rotation needs no restart and drops no connection. A file that fails to
// load (a half-written rotation, say) leaves the last good settings in place
// and is tried again at the next check.
type certStore struct {
	log     *zap.Logger
	metrics *metrics.Metrics

	mu       sync.Mutex // guards cfg and digest
	cfg      config.TLS
	digest   [32]byte
	current  atomic.Pointer[tls.Config]
	interval chan time.Duration
}

func newCertStore(cfg config.TLS, log *zap.Logger, m *metrics.Metrics) (*certStore, error) {
	s := &certStore{log: log, metrics: m, cfg: cfg, interval: make(chan time.Duration, 1)}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// tlsConfig is what the listener uses: every handshake asks for the current
// settings.
func (s *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current.Load(), nil
		},
	}
}

// update points the store at the TLS section of a reloaded config and loads
// it; on error the previous settings stay.
func (s *certStore) update(cfg config.TLS) error {
	s.mu.Lock()
	old := s.cfg
	s.cfg = cfg
	s.digest = [32]byte{} // force a rebuild: versions or client auth may differ
	s.mu.Unlock()
	if _, err := s.reload(); err != nil {
		s.mu.Lock()
		s.cfg = old
		s.mu.Unlock()
		return err
	}
	select {
	case s.interval <- cfg.ReloadInterval.D():
	default:
	}
	return nil
}

// reload reads the files and, when their content changed, builds new
// settings. It reports whether anything changed.
func (s *certStore) reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert, err := os.ReadFile(string(s.cfg.CertFile))
	if err != nil {
		return false, s.failed(fmt.Errorf("read cert_file: %w", err))
	}
	key, err := os.ReadFile(string(s.cfg.KeyFile))
	if err != nil {
		return false, s.failed(fmt.Errorf("read key_file: %w", err))
	}
	var ca []byte
	if s.cfg.ClientCAFile != "" {
		if ca, err = os.ReadFile(string(s.cfg.ClientCAFile)); err != nil {
			return false, s.failed(fmt.Errorf("read client_ca_file: %w", err))
		}
	}
	digest := sha256.Sum256(bytes.Join([][]byte{cert, key, ca}, []byte{0}))
	if digest == s.digest {
		return false, nil
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return false, s.failed(fmt.Errorf("load certificate and key: %w", err))
	}
	next := &tls.Config{
		MinVersion:   minVersion(s.cfg.MinVersion),
		NextProtos:   []string{"h2", "http/1.1"},
		Certificates: []tls.Certificate{pair},
	}
	if s.cfg.ClientCAFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return false, s.failed(errors.New("client_ca_file: no PEM certificates"))
		}
		next.ClientCAs = pool
		// "request" verifies a certificate whenever one is presented and
		// never accepts an unverified one; "require" also demands one.
		next.ClientAuth = tls.VerifyClientCertIfGiven
		if s.cfg.ClientAuth == "require" {
			next.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	s.current.Store(next)
	s.digest = digest
	s.metrics.TLSCertReloads.WithLabelValues("success").Inc()
	if pair.Leaf != nil {
		s.metrics.TLSCertNotAfter.Set(float64(pair.Leaf.NotAfter.Unix()))
	}
	return true, nil
}

func (s *certStore) failed(err error) error {
	s.metrics.TLSCertReloads.WithLabelValues("failure").Inc()
	return err
}

// watch re-reads the files every reload_interval until ctx ends.
func (s *certStore) watch(ctx context.Context) {
	s.mu.Lock()
	every := s.cfg.ReloadInterval.D()
	s.mu.Unlock()
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-s.interval:
			if d > 0 {
				t.Reset(d)
			}
		case <-t.C:
			s.check()
		}
	}
}

// check reloads and logs the outcome; used by the ticker and SIGHUP.
func (s *certStore) check() {
	changed, err := s.reload()
	switch {
	case err != nil:
		s.log.Error("tls certificate reload failed; keeping the current certificate", zap.Error(err))
	case changed:
		s.log.Info("tls certificate reloaded")
	}
}

func minVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}
