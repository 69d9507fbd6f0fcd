// Package authn verifies credentials: JWTs (JWKS, OIDC discovery, static
// keys), opaque tokens by introspection (RFC 7662), API keys and client
// certificates. Each configured authenticator turns a request's credential
// into an exchange.Principal; the route stage (Stage) tries the route's
// authenticators in order, applies DPoP and certificate binding, revocation
// and scope requirements, and passes the principal upstream in headers.
//
// Every decision that refuses a credential is a *Failure with a bounded
// reason; its description is coarse on purpose (no detail that helps an
// attacker tune a forgery) and never holds a token, key or secret.
package authn

import (
	"context"
	"errors"
	"github.com/bulwark-gateway/bulwark/internal/authz"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// Authenticator verifies one kind of credential. Implementations are safe
// for concurrent use; all parsing and key loading starts in their
// constructor.
type Authenticator interface {
	// Authenticate returns the principal behind the request's credential.
	// It returns ErrNoCredentials when the request carries no credential
	// of its kind (the route's next authenticator may try), and a *Failure
	// when a credential is present but refused.
	Authenticate(ctx context.Context, in *Input) (*exchange.Principal, error)
	// Challenge returns the WWW-Authenticate challenge of this scheme
	// without an error, e.g. `Bearer realm="bulwark"`.
	Challenge() string
	// Ready returns "" once the authenticator can decide (its keys loaded
	// once), else why not.
	Ready() string
	// Close stops background work (key refresh). Requests still in flight
	// keep working with what was loaded.
	Close()
}

// Input is the credential material of one request, read once by the stage
// and handed to each authenticator of the route.
type Input struct {
	Request *http.Request
	// Token is the bearer token from Authorization (scheme Bearer or
	// DPoP) or from the route's opted-in query parameter; "" when none.
	Token string
	// DPoPScheme reports that the token came as Authorization: DPoP.
	DPoPScheme bool
}

// ErrNoCredentials says the request carries no credential for an
// authenticator; it is not a failure.
var ErrNoCredentials = errors.New("no credentials")

// Failure is a credential that was present and refused, or a decision that
// could not be made (keys never loaded, introspection endpoint down).
type Failure struct {
	// Status is 401 (bad credential), 400 (malformed request) or 503 (the
	// identity provider cannot be reached: fail closed).
	Status int
	// Reason is a bounded snake_case label for metrics and the audit event:
	// malformed, bad_signature, unknown_key, expired, not_yet_valid,
	// issued_in_future, bad_issuer, bad_audience, bad_type, bad_client,
	// too_long_lived, missing_claim, too_large, revoked, inactive,
	// disabled, unknown_key_id, keys_unavailable, introspection_error,
	// certificate_mismatch, dpop_invalid, no_identity, identity_not_allowed,
	// ... (docs/errors.md lists them all)
	Reason string
	// Code is the RFC 6750 error code: invalid_token or invalid_request
	// (for DPoP failures, invalid_dpop_proof).
	Code string
	// Description is a coarse, safe error_description.
	Description string
	// Credential names the verified credential that failed (an API key id
	// whose key matched but is expired or disabled; a verified token's
	// subject refused by revocation or binding); "" when nothing was
	// verified. The auth-failure lockout counts it: never an unverified
	// claim, or an attacker could lock out any user.
	Credential string
}

func (f *Failure) Error() string { return f.Reason + ": " + f.Description }

// invalidToken returns a 401 invalid_token failure.
func invalidToken(reason, description string) *Failure {
	return &Failure{Status: http.StatusUnauthorized, Reason: reason, Code: "invalid_token", Description: description}
}

// unavailable returns a 503 failure: the authenticator cannot decide, so
// it denies (fail closed).
func unavailable(reason, description string) *Failure {
	return &Failure{Status: http.StatusServiceUnavailable, Reason: reason, Code: "temporarily_unavailable", Description: description}
}

// Realm is the realm of every challenge, the authorization stage's too.
const Realm = authz.Realm

// Deps is what authenticators need besides their config.
type Deps struct {
	Log *zap.Logger
	// JWKSRefresh counts key set fetches, labels authenticator and result
	// (success or failure).
	JWKSRefresh *prometheus.CounterVec
	// Consumers are the configured consumers (api_key).
	Consumers []config.Consumer
}
