package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// rfc6750QueryParam is the query parameter RFC 6750 §2.3 names for bearer
// tokens; it is refused on routes that did not opt in to query tokens.
const rfc6750QueryParam = "access_token"

// stage authenticates the requests of one route.
type stage struct {
	next     http.Handler
	members  []*member
	bearer   bool   // some member takes bearer tokens
	query    string // opted-in query parameter for bearer tokens
	dpop     string // route override of the members' dpop mode; "" for none
	forward  *bool
	absent   []string
	headers  config.PrincipalHeaders
	problems *problem.Writer
	lockout  Lockout
	now      func() time.Time
}

var _ http.Handler = (*stage)(nil)

// Stage returns the authentication stage of route rt: it tries the route's
// authenticators in order (absent credentials let the next one try;
// present but refused ones are a 401 at once), checks revocation and the
// certificate and DPoP bindings, records the principal and sends it
// upstream in the principal headers. A public route (auth: none) gets no
// stage. Scope requirements are a stage of their own (Require), after
// the consumer and route rate limits.
func (s *Set) Stage(rt config.Route) (func(http.Handler) http.Handler, error) {
	if rt.Auth.None {
		return func(next http.Handler) http.Handler { return next }, nil
	}
	st := &stage{headers: s.headers, problems: s.opts.Problems, lockout: s.opts.Lockout, now: time.Now}
	for _, name := range rt.Auth.Names {
		m, ok := s.members[name]
		if !ok {
			return nil, fmt.Errorf("auth: unknown authenticator %q", name)
		}
		st.members = append(st.members, m)
		st.bearer = st.bearer || m.typ == "jwt" || m.typ == "introspection"
	}
	if a := rt.Authn; a != nil {
		st.query, st.dpop, st.forward = a.QueryParam, a.DPoP, a.ForwardCredential
	}
	for _, m := range st.members {
		st.absent = append(st.absent, m.challenge)
		if m.typ == "jwt" && st.dpopMode(m) != "off" && !containsPrefix(st.absent, "DPoP ") {
			st.absent = append(st.absent, `DPoP algs="`+m.dpopAlgs+`"`)
		}
	}
	return func(next http.Handler) http.Handler {
		c := *st
		c.next = next
		return &c
	}, nil
}

func (st *stage) dpopMode(m *member) string {
	if st.dpop != "" {
		return st.dpop
	}
	return m.dpopMode
}

func (st *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ip netip.Addr
	if st.lockout != nil {
		if rec := exchange.From(r.Context()); rec != nil {
			ip = rec.ClientIP
		}
		// Before any verification work: a locked-out client costs no
		// signature check.
		if retry, locked := st.lockout.Locked(r.Context(), ip, ""); locked {
			if st.problems.Deny(w, r, st.lockout.Problem(retry)) {
				return
			}
		}
	}
	in, f := st.input(r)
	if f != nil {
		if st.deny(w, r, nil, f) {
			return
		}
		st.next.ServeHTTP(w, r)
		return
	}
	var p *exchange.Principal
	var m *member
	for _, cand := range st.members {
		pr, err := cand.auth.Authenticate(r.Context(), &in)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		if err == nil {
			err = st.bindings(r, &in, cand, pr)
		}
		if err != nil {
			if !errors.As(err, &f) {
				f = unavailable("internal_error", "the credential cannot be verified right now")
			}
			if f.Status == http.StatusServiceUnavailable {
				cand.attempts[resultUnavailable].Inc()
			} else {
				cand.attempts[resultFailure].Inc()
			}
			if st.lockout != nil && f.Status == http.StatusUnauthorized {
				// A credential locked out by earlier failures gets 429;
				// the failure that starts a lockout is still a 401, like
				// the IP's.
				if f.Credential != "" {
					if retry, locked := st.lockout.Locked(r.Context(), ip, f.Credential); locked {
						if st.problems.Deny(w, r, st.lockout.Problem(retry)) {
							return
						}
					}
				}
				st.lockout.Failed(r.Context(), ip, f.Credential)
			}
			if st.deny(w, r, cand, f) {
				return
			}
			st.next.ServeHTTP(w, r) // report mode: through, without a principal
			return
		}
		cand.attempts[resultSuccess].Inc()
		p, m = pr, cand
		break
	}
	if p != nil && st.lockout != nil {
		// A locked-out credential stays locked even when presented
		// correctly (the lockout answers credential stuffing on it).
		if retry, locked := st.lockout.Verified(r.Context(), ip, credentialID(p)); locked {
			if st.problems.Deny(w, r, st.lockout.Problem(retry)) {
				return
			}
		}
	}
	if p == nil {
		if st.problems.Deny(w, r, problem.Unauthenticated("missing_credentials", "This route requires authentication.", st.absent)) {
			return
		}
		st.next.ServeHTTP(w, r)
		return
	}
	if rec := exchange.From(r.Context()); rec != nil {
		rec.Principal = p
	}
	st.forwardPrincipal(r, p)
	st.stripCredential(r, m, &in)
	st.next.ServeHTTP(w, r)
}

// input reads the bearer token of the request: from Authorization (scheme
// Bearer or DPoP, case-insensitive), or from the route's opted-in query
// parameter. Two Authorization headers, a token in two places, or a token
// in the query string of a route that does not take one are 400s.
func (st *stage) input(r *http.Request) (Input, *Failure) {
	in := Input{Request: r}
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return in, badRequest("multiple_authorization", "the request carries more than one Authorization header")
	}
	if !st.bearer {
		return in, nil
	}
	if len(auth) == 1 {
		scheme, token, _ := strings.Cut(auth[0], " ")
		token = strings.TrimLeft(token, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
		case strings.EqualFold(scheme, "DPoP"):
			in.DPoPScheme = true
		default:
			token = "" // another scheme (Basic, ApiKey): not a bearer token
			scheme = ""
		}
		if scheme != "" {
			if !isToken68(token) {
				return in, invalidToken("malformed", "the access token is invalid")
			}
			in.Token = token
		}
	}
	if r.URL.RawQuery == "" {
		return in, nil
	}
	q := r.URL.Query()
	if st.query == "" {
		if _, ok := q[rfc6750QueryParam]; ok {
			return in, badRequest("query_token_refused", "this route does not accept access tokens in the query string")
		}
		return in, nil
	}
	switch v := q[st.query]; {
	case len(v) == 0:
	case len(v) > 1 || in.Token != "":
		return in, badRequest("multiple_credentials", "the request carries more than one access token")
	case !isToken68(v[0]):
		return in, invalidToken("malformed", "the access token is invalid")
	default:
		in.Token = v[0]
	}
	return in, nil
}

// bindings checks what holds for a principal whatever authenticator made
// it: revocation, the certificate binding (RFC 8705) and DPoP (RFC 9449).
func (st *stage) bindings(r *http.Request, in *Input, m *member, p *exchange.Principal) error {
	f := st.bound(r, in, m, p)
	if f != nil {
		f.Credential = credentialID(p) // the token was verified: its subject is known
		return f
	}
	return nil
}

// credentialID names a verified credential for the auth-failure lockout:
// the API key id, else the authenticator and subject.
func credentialID(p *exchange.Principal) string {
	if p.Method == "api_key" {
		return p.Authenticator + "/key/" + p.KeyID
	}
	if p.Subject == "" {
		return ""
	}
	return p.Authenticator + "/sub/" + p.Subject
}

func (st *stage) bound(r *http.Request, in *Input, m *member, p *exchange.Principal) *Failure {
	if m.revoked.revoked(p) {
		return invalidToken("revoked", "the access token was revoked")
	}
	if x5t := p.Confirmation.X5TS256; x5t != "" {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			return invalidToken("certificate_mismatch", "the access token is bound to a client certificate")
		}
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(x5t)) != 1 {
			return invalidToken("certificate_mismatch", "the access token is bound to another client certificate")
		}
	}
	bound := p.Confirmation.JKT != ""
	if m.typ != "jwt" {
		if bound || in.DPoPScheme {
			return dpopFailure("dpop_unsupported")
		}
		return nil
	}
	switch mode := st.dpopMode(m); {
	case mode == "off" && (bound || in.DPoPScheme):
		// A binding the gateway does not check must not be ignored.
		return dpopFailure("dpop_unsupported")
	case mode == "off":
		return nil
	case mode == "required" && (!bound || !in.DPoPScheme):
		return dpopFailure("dpop_required")
	case bound && !in.DPoPScheme:
		return dpopFailure("dpop_required")
	case !bound && !in.DPoPScheme:
		return nil // optional: an unbound bearer token
	}
	return m.dpop.verify(r.Context(), r.Header.Values("DPoP"), r.Method, requestURL(r), in.Token, p.Confirmation.JKT, st.now())
}

func dpopFailure(reason string) *Failure {
	return &Failure{Status: http.StatusUnauthorized, Reason: reason, Code: "invalid_dpop_proof", Description: "the DPoP proof is missing or invalid"}
}

func badRequest(reason, description string) *Failure {
	return &Failure{Status: http.StatusBadRequest, Reason: reason, Code: "invalid_request", Description: description}
}

// deny writes the answer for f; m is the authenticator that refused (nil
// for a malformed request). It returns false in report mode.
func (st *stage) deny(w http.ResponseWriter, r *http.Request, m *member, f *Failure) bool {
	challenge := func(base string) []string {
		c := base + `, error="` + f.Code + `", error_description="` + f.Description + `"`
		return []string{c}
	}
	var p problem.Problem
	switch {
	case f.Status == http.StatusServiceUnavailable:
		p = problem.AuthUnavailable(f.Reason)
	case f.Status == http.StatusBadRequest:
		p = problem.BadCredentialRequest(f.Reason, capitalize(f.Description), challenge(`Bearer realm="`+Realm+`"`))
	case f.Code == "invalid_dpop_proof":
		p = problem.Unauthenticated(f.Reason, capitalize(f.Description), challenge(`DPoP realm="`+Realm+`", algs="`+m.dpopAlgs+`"`))
	default:
		base := `Bearer realm="` + Realm + `"`
		if m != nil {
			base = m.challenge
		}
		p = problem.Unauthenticated(f.Reason, capitalize(f.Description), challenge(base))
	}
	return st.problems.Deny(w, r, p)
}

// forwardPrincipal sends the principal upstream in the configured headers.
// The edge already removed whatever the client sent under these names.
func (st *stage) forwardPrincipal(r *http.Request, p *exchange.Principal) {
	set := func(name, value string) {
		if name != "" && value != "" && safeHeaderValue(value) {
			r.Header.Set(name, value)
		}
	}
	set(st.headers.Subject, p.Subject)
	set(st.headers.Consumer, p.Consumer)
	set(st.headers.Issuer, p.Issuer)
	set(st.headers.Method, p.Method)
	if st.headers.Scopes != "" && len(p.Scopes) > 0 {
		set(st.headers.Scopes, strings.Join(p.Scopes, " "))
	}
	if st.headers.Roles != "" && len(p.Roles) > 0 {
		set(st.headers.Roles, strings.Join(p.Roles, " "))
	}
}

// stripCredential removes the client's credential from the upstream
// request unless the route forwards it: by default a bearer token is
// forwarded (existing APIs expect it) and an API key is not.
func (st *stage) stripCredential(r *http.Request, m *member, in *Input) {
	forward := m.typ == "jwt" || m.typ == "introspection"
	if st.forward != nil {
		forward = *st.forward
	}
	if forward {
		return
	}
	switch m.typ {
	case "api_key":
		m.auth.(*apiKeyAuth).strip(r)
	case "jwt", "introspection":
		r.Header.Del("Authorization")
		r.Header.Del("DPoP")
		if st.query != "" {
			removeQueryParam(r, st.query)
		}
		if m.cookieName != "" {
			removeCookie(r, m.cookieName)
		}
	}
}

// requestURL is the URL the client addressed, for the DPoP htu check:
// scheme, host and path, no query.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// isToken68 reports whether s is a token68 (RFC 9110 §11.2), the syntax of
// a bearer token.
func isToken68(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			continue
		}
		break
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// safeHeaderValue reports whether v can go in a header: no control
// characters (a claim value with CR LF must not split the header).
func safeHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:] + "."
}
