package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// maxAPIKeySize caps a presented API key; generated keys are far shorter.
const maxAPIKeySize = 512

// apiKeyAuth verifies API keys against the consumers' SHA-256 hashes. The
// key itself is never stored: the presented key is hashed and the hash
// looked up. The lookup by hash leaks nothing useful about the key (an
// attacker cannot steer SHA-256 output), and the stored and presented
// hashes are then compared in constant time.
type apiKeyAuth struct {
	name      string
	header    string
	query     string
	challenge string
	keys      map[[sha256.Size]byte]*apiKey
	now       func() time.Time
}

type apiKey struct {
	hash      [sha256.Size]byte
	expires   time.Time // zero: no expiry
	disabled  bool
	principal *exchange.Principal
}

var _ Authenticator = (*apiKeyAuth)(nil)

func newAPIKey(name string, cfg config.Authenticator, deps Deps) (*apiKeyAuth, error) {
	a := &apiKeyAuth{
		name:      name,
		header:    http.CanonicalHeaderKey(cfg.Header),
		query:     cfg.QueryParam,
		challenge: `ApiKey realm="` + Realm + `", header="` + http.CanonicalHeaderKey(cfg.Header) + `"`,
		keys:      map[[sha256.Size]byte]*apiKey{},
		now:       time.Now,
	}
	for i := range deps.Consumers {
		c := &deps.Consumers[i]
		for _, k := range c.APIKeys {
			h, err := decodeHash(k.SHA256)
			if err != nil {
				return nil, err
			}
			a.keys[h] = &apiKey{
				hash:     h,
				expires:  k.Expires.Time,
				disabled: k.Disabled,
				principal: &exchange.Principal{
					Subject:       c.ID,
					Consumer:      c.ID,
					Plan:          c.Plan,
					Scopes:        c.Scopes,
					Roles:         c.Roles,
					Method:        "api_key",
					Authenticator: name,
					KeyID:         k.ID,
					Expiry:        k.Expires.Time,
				},
			}
		}
	}
	return a, nil
}

func (a *apiKeyAuth) Authenticate(_ context.Context, in *Input) (*exchange.Principal, error) {
	r := in.Request
	values := r.Header.Values(a.header)
	if a.query != "" {
		if q, ok := r.URL.Query()[a.query]; ok {
			values = append(values, q...)
		}
	}
	switch {
	case len(values) == 0:
		return nil, ErrNoCredentials
	case len(values) > 1:
		return nil, &Failure{Status: http.StatusBadRequest, Reason: "multiple_credentials", Code: "invalid_request",
			Description: "the request carries more than one API key"}
	}
	key := values[0]
	if key == "" || len(key) > maxAPIKeySize {
		return nil, invalidToken("malformed", "the API key is invalid")
	}
	sum := sha256.Sum256([]byte(key))
	k, ok := a.keys[sum]
	if !ok || subtle.ConstantTimeCompare(k.hash[:], sum[:]) != 1 {
		return nil, invalidToken("unknown_key", "the API key is invalid")
	}
	var f *Failure
	switch {
	case k.disabled:
		f = invalidToken("disabled", "the API key is invalid")
	case !k.expires.IsZero() && !a.now().Before(k.expires):
		f = invalidToken("expired", "the API key expired")
	default:
		return k.principal, nil
	}
	f.Credential = credentialID(k.principal)
	return nil, f
}

func (a *apiKeyAuth) Challenge() string { return a.challenge }
func (a *apiKeyAuth) Ready() string     { return "" }
func (a *apiKeyAuth) Close()            {}

// strip removes the API key from a request that goes upstream.
func (a *apiKeyAuth) strip(r *http.Request) {
	r.Header.Del(a.header)
	if a.query != "" {
		removeQueryParam(r, a.query)
	}
}

// removeQueryParam deletes a query parameter from the request URL.
func removeQueryParam(r *http.Request, name string) {
	q := r.URL.Query()
	if _, ok := q[name]; !ok {
		return
	}
	q.Del(name)
	r.URL.RawQuery = q.Encode()
}

// removeCookie deletes one cookie from the request, keeping the others.
func removeCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != name {
			r.AddCookie(c)
		}
	}
}
