package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

// errPinMismatch fails a handshake whose verified chain holds none of the
// pinned public keys.
var errPinMismatch = errors.New("proxy: upstream public key matches no pin_sha256")

// newTLSConfig builds the client TLS config towards an https upstream. cfg
// may be nil: the system roots verify the upstream, TLS 1.2 minimum. Chain
// and name verification always happen; pins only add a check on top.
func newTLSConfig(cfg *config.UpstreamTLS) (*tls.Config, error) {
	if cfg == nil {
		cfg = &config.UpstreamTLS{}
	}
	minVersion, err := parseMinVersion(cfg.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("min_version: %w", err)
	}
	c := &tls.Config{MinVersion: minVersion, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(string(cfg.CAFile))
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s: no PEM certificate found", cfg.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case cfg.CertFile != "" && cfg.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(string(cfg.CertFile), string(cfg.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("cert_file, key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case cfg.CertFile != "":
		return nil, errors.New("cert_file: set without key_file")
	case cfg.KeyFile != "":
		return nil, errors.New("key_file: set without cert_file")
	}
	if len(cfg.PinSHA256) > 0 {
		pins, err := parsePins(cfg.PinSHA256)
		if err != nil {
			return nil, fmt.Errorf("pin_sha256: %w", err)
		}
		c.VerifyConnection = pins.verify
	}
	return c, nil
}

func parseMinVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	default:
		return 0, fmt.Errorf("%q: must be \"1.2\" or \"1.3\"", v)
	}
}

// pinSet is a set of SHA-256 hashes of SubjectPublicKeyInfo structures.
type pinSet map[[sha256.Size]byte]struct{}

// parsePins decodes standard base64 SHA-256 hashes (as printed by
// `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst
// -sha256 -binary | base64`).
func parsePins(encoded []string) (pinSet, error) {
	pins := make(pinSet, len(encoded))
	for i, e := range encoded {
		raw, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: not standard base64", i)
		}
		if len(raw) != sha256.Size {
			return nil, fmt.Errorf("[%d]: %d bytes, want a %d-byte SHA-256", i, len(raw), sha256.Size)
		}
		pins[[sha256.Size]byte(raw)] = struct{}{}
	}
	return pins, nil
}

// verify runs after the normal chain verification succeeded: it accepts the
// connection when a certificate of a verified chain (leaf, intermediate or
// root) has a pinned public key. Pinning a CA's key keeps working across
// leaf rotations.
func (p pinSet) verify(cs tls.ConnectionState) error {
	for _, chain := range cs.VerifiedChains {
		for _, cert := range chain {
			if _, ok := p[sha256.Sum256(cert.RawSubjectPublicKeyInfo)]; ok {
				return nil
			}
		}
	}
	return errPinMismatch
}
