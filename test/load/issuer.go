package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// The claims of the bench token, and what the bulwark-jwt route's
// authenticator expects of them (see jwtConfig).
const (
	benchIssuer   = "https://bench.bulwark.test"
	benchAudience = "bench"
	benchSubject  = "load-harness"
	benchScope    = "bench:read"
)

// jwksPath is where the run's JWK Set is served.
const jwksPath = "/jwks.json"

// issuer is the run's token issuer for the bulwark-jwt target: an RSA-2048
// key made at the start of the run, the one RS256 token that target sends
// with every request, and the JWK Set that publishes the public key under
// the token's kid. It is read-only once made.
type issuer struct {
	key   *rsa.PrivateKey
	kid   string
	token string // compact JWS
	jwks  []byte // JWK Set document
}

// newIssuer makes a fresh key and mints a token issued at now and valid for
// lifetime.
func newIssuer(now time.Time, lifetime time.Duration) (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("issuer: generate key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	// A kid derived from the key: each run's key has its own.
	sum := sha256.Sum256(der)
	kid := "bench-" + hex.EncodeToString(sum[:8])

	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgRS256, KID: kid, USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, fmt.Errorf("issuer: jwk: %w", err)
	}
	set, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		return nil, fmt.Errorf("issuer: jwk set: %w", err)
	}

	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, benchClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    benchIssuer,
			Subject:   benchSubject,
			Audience:  jwt.ClaimStrings{benchAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
		},
		Scope: benchScope,
	})
	tok.Header[jwkset.HeaderKID] = kid
	token, err := tok.SignedString(key)
	if err != nil {
		return nil, fmt.Errorf("issuer: sign token: %w", err)
	}
	return &issuer{key: key, kid: kid, token: token, jwks: set}, nil
}

// benchClaims are the bench token's claims.
type benchClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
}

// tokenLifetime is how long the run's token stays valid: two hours more
// than the longest a run with o and this many targets per round can take
// (every target started as slowly as waitReady allows, then probed, warmed
// up and measured), so that bulwark never sees it expire, however long the
// flags make the run.
func tokenLifetime(o options, targets int) time.Duration {
	perTarget := readyTimeout + time.Minute + o.warmup + o.duration // the minute covers the probe and wrk's start and stop
	return 2*time.Hour + time.Duration(o.rounds*targets)*perTarget
}

// jwksServer serves one JWK Set at jwksPath on a loopback port, in this
// process rather than in a child role: the key is made here and never
// leaves this process, and the set is fetched only while a bulwark target
// starts (bulwark's background refresh, every 15 minutes by default,
// outlives each instance), so the server is idle while wrk measures and
// takes nothing from the proxies' CPU.
type jwksServer struct {
	url  string // the JWK Set's URL
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// startJWKS serves set until stop is called.
func startJWKS(set []byte) (*jwksServer, error) {
	// Listening here, not on a freeAddr, leaves no window in which another
	// process could take the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("jwks server: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+jwksPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(set)
	})
	s := &jwksServer{
		url:  "http://" + ln.Addr().String() + jwksPath,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		// Serve returns ErrServerClosed after stop. Any other error is a
		// failed Accept: the next bulwark-jwt target then cannot load
		// its keys and fails its readiness check, with bulwark's reason.
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// stop closes the server and its connections and waits for it to end. It
// may be called more than once.
func (s *jwksServer) stop() {
	_ = s.srv.Close()
	<-s.done
}
