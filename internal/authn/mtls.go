package authn

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// mtlsAuth authenticates a client by the certificate the TLS listener
// verified (server.tls.client_ca_file). It is safe for concurrent use.
type mtlsAuth struct {
	name     string
	identity string // subject_cn, san_uri or san_dns
	allowAny bool
	exact    map[string]struct{}
	prefixes []string
}

var _ Authenticator = (*mtlsAuth)(nil)

// newMTLS builds a client certificate authenticator. The allow list
// compiles here: exact identities, or prefixes ending in a single *; an
// empty list accepts any verified certificate.
func newMTLS(name string, cfg config.Authenticator, _ Deps) (*mtlsAuth, error) {
	a := &mtlsAuth{name: name, identity: cfg.Identity, exact: make(map[string]struct{}, len(cfg.Allow))}
	switch a.identity {
	case "":
		a.identity = "subject_cn"
	case "subject_cn", "san_uri", "san_dns":
	default:
		return nil, fmt.Errorf("mtls: unknown identity %q: use subject_cn, san_uri or san_dns", cfg.Identity)
	}
	a.allowAny = len(cfg.Allow) == 0
	for i, v := range cfg.Allow {
		prefix, wildcard := strings.CutSuffix(v, "*")
		switch {
		case v == "" || strings.Contains(prefix, "*"):
			return nil, fmt.Errorf("mtls: allow[%d]: must be an identity, or a prefix ending in a single *", i)
		case wildcard:
			a.prefixes = append(a.prefixes, prefix)
		default:
			a.exact[v] = struct{}{}
		}
	}
	return a, nil
}

// Authenticate returns the principal of the request's verified client
// certificate. It returns ErrNoCredentials when the listener verified no
// certificate (none sent, or one accepted without verification), and a 401
// *Failure (no_identity, identity_not_allowed) when the certificate has no
// acceptable identity.
func (a *mtlsAuth) Authenticate(_ context.Context, in *Input) (*exchange.Principal, error) {
	// Only a chain the handshake verified counts: PeerCertificates alone is
	// whatever the client sent (ClientAuth RequestClientCert or
	// RequireAnyClientCert do not verify it).
	if in == nil || in.Request == nil || in.Request.TLS == nil ||
		len(in.Request.TLS.VerifiedChains) == 0 || len(in.Request.TLS.VerifiedChains[0]) == 0 {
		return nil, ErrNoCredentials
	}
	leaf := in.Request.TLS.VerifiedChains[0][0]
	identity, f := a.identityOf(leaf)
	if f != nil {
		return nil, f
	}
	sum := sha256.Sum256(leaf.Raw)
	return &exchange.Principal{
		Subject:       identity,
		Method:        "mtls",
		Authenticator: a.name,
		KeyID:         hex.EncodeToString(sum[:]),
		Expiry:        leaf.NotAfter,
	}, nil
}

// identityOf returns the leaf's identity of the configured kind: the
// subject CN, or the first URI or DNS SAN that the allow list accepts.
func (a *mtlsAuth) identityOf(leaf *x509.Certificate) (string, *Failure) {
	var names []string
	switch a.identity {
	case "subject_cn":
		if cn := leaf.Subject.CommonName; cn != "" {
			names = []string{cn}
		}
	case "san_uri":
		for _, u := range leaf.URIs {
			names = append(names, u.String())
		}
	case "san_dns":
		names = leaf.DNSNames
	}
	if len(names) == 0 {
		return "", invalidToken("no_identity", "the client certificate has no usable identity")
	}
	for _, n := range names {
		if a.allowed(n) {
			return n, nil
		}
	}
	return "", invalidToken("identity_not_allowed", "the client certificate is not allowed")
}

// allowed reports whether the allow list accepts identity (exact match,
// or a configured prefix).
func (a *mtlsAuth) allowed(identity string) bool {
	if identity == "" {
		return false
	}
	if a.allowAny {
		return true
	}
	if _, ok := a.exact[identity]; ok {
		return true
	}
	for _, p := range a.prefixes {
		if strings.HasPrefix(identity, p) {
			return true
		}
	}
	return false
}

// Challenge returns the MutualTLS challenge.
func (a *mtlsAuth) Challenge() string { return `MutualTLS realm="` + Realm + `"` }

// Ready returns "": the listener holds the trust anchors.
func (a *mtlsAuth) Ready() string { return "" }

// Close does nothing: there is no background work.
func (a *mtlsAuth) Close() {}
