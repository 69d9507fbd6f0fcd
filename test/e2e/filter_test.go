package e2e

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/golang-jwt/jwt/v5"
)

// The response filtering tests run the real binary against upstreams that
// serve fixed documents (docs/configuration.md, `response` and route
// response rules): allow, deny and mask paths, the sensitive preset, views
// by role, encoded bodies, non-JSON and invalid bodies, upstream error
// masking, fingerprint headers, sensitive-data detection, report mode,
// the buffer limit and the config checks. Bodies are compared byte for
// byte: the filter's output is compact JSON that keeps key order and
// number text.

// fltDoc is one response an upstream serves.
type fltDoc struct {
	status int    // 0: 200
	ct     string // Content-Type; "-" sends none
	body   string
	header map[string]string // more response headers
}

// fltUpstream serves docs by request path (404 for any other path).
func fltUpstream(t testing.TB, docs map[string]fltDoc) *upstream {
	t.Helper()
	return startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fltWrite(w, d)
	}))
}

func fltWrite(w http.ResponseWriter, d fltDoc) {
	switch d.ct {
	case "":
		w.Header().Set("Content-Type", "application/json")
	case "-":
		w.Header()["Content-Type"] = nil // no sniffing either
	default:
		w.Header().Set("Content-Type", d.ct)
	}
	for k, v := range d.header {
		w.Header().Set(k, v)
	}
	if d.status != 0 {
		w.WriteHeader(d.status)
	}
	_, _ = w.Write([]byte(d.body))
}

// fltStart is startGateway with the race detector's one-second sleep at
// exit turned off (GORACE atexit_sleep_ms): each test here starts one or
// two gateways, and the sleep would be most of its time.
func fltStart(t testing.TB, cfg string, files map[string][]byte, env ...string) *gateway {
	t.Helper()
	return startGateway(t, cfg, files, append(env, fltGORACE())...)
}

// fltGORACE is the GORACE setting of the processes the tests start.
func fltGORACE() string {
	return strings.TrimSpace("GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0")
}

// fltValidate runs bulwark validate on config with env added.
func fltValidate(t testing.TB, config string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, "validate", "--config", config)
	cmd.Env = append(append(os.Environ(), fltGORACE()), env...)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run bulwark validate: %v", err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// fltIndent pretty-prints a compact JSON document, so that the upstream
// sends whitespace the filter must drop (json.Indent changes whitespace
// only: string escapes and number text stay as they are).
func fltIndent(t testing.TB, compact string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(compact), "", "  "); err != nil {
		t.Fatalf("indent %s: %v", compact, err)
	}
	return b.String()
}

// fltHash is the hash mask as internal/filter describes it: "hmac-sha256:"
// and the hex of the first 16 bytes of HMAC-SHA256(hash_key, value), the
// value being a string's unescaped text or a number's text.
func fltHash(key, value string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(value))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// fltCheckJSON asserts a 200 whose body is exactly want, with a matching
// Content-Length and no Content-Encoding.
func fltCheckJSON(t testing.TB, a answer, want string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", a.status, a.body)
	}
	if string(a.body) != want {
		t.Errorf("body:\n got %s\nwant %s", a.body, want)
	}
	if cl := a.header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
		t.Errorf("Content-Length = %q, body has %d bytes", cl, len(a.body))
	}
	if ce := a.header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding = %q, want none", ce)
	}
}

// Documents of TestFilterRules.
const (
	fltUserDoc    = `{"id":7,"name":"Ana","email":"ana@example.com","password":"hunter2","profile":{"password":"p2","bio":"hi","address":{"city":"Lyon","zip":"69001"}},"orders":[{"id":1,"total":12.5,"secret":"s1"},{"id":2,"total":7,"secret":"s2"}],"tags":["a","b","c"]}`
	fltPayDoc     = `{"email":"ana@example.com","phone":"+33612345678","card":{"number":"4111111111111111","cvc":123},"account":9876543210,"short":"abc","empty":"","nil":null,"obj":{"a":1},"uni":"café—crème"}`
	fltIntlDoc    = `{"prénom":"Zoé","名前":"太郎","nom":"Martin","données":{"clé":"v","autre":1},"a b":1,"it's":2,"p\u0061ssword":"hunter2"}`
	fltNumbersDoc = `{"big":12345678901234567890123,"neg":-98765432109876543210.5e-3,"tiny":1e-400,"huge":1E+400,"float":0.1000000000000000055511151231257827,"zero":-0,"list":[12345678901234567890123,1.0,1.50],"drop":1}`
	fltEmptyDoc   = `{"a":null,"b":"","c":{},"d":[],"e":{"x":null,"y":[]},"f":[null,{},[]],"g":0,"h":false}`
	fltListDoc    = `[{"id":1,"pw":"x"},{"id":2,"pw":"y","extra":{"pw":"z"}}]`
	fltSecretsDoc = `{"id":1,"Password":"x","api_key":"k1","apiKey":"k2","X-API-Key":"k3","user":{"name":"n","ssn":"123-45-6789","card_number":"4111111111111111","CVV":"123"},"sessions":[{"access_token":"t1","refresh-token":"t2","type":"bearer"}],"passwordHint":"h","tokens":3,"p\u0061ssword":"esc"}`
	fltHashDoc    = `{"email":"ana@example.com","contact":{"email":"ana@example.com"},"other":"bob@example.com","n":42,"esc":"an\u0061"}`
)

// fltManyDoc has 40 members besides id.
var fltManyDoc = func() string {
	var b strings.Builder
	b.WriteString(`{"id":1`)
	for i := range 40 {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	return b.String() + "}"
}()

// TestFilterRules drives allow, deny and mask rules, the sensitive preset
// and the mask strategies through one gateway: every route has its own
// path, where the upstream serves the route's document.
func TestFilterRules(t *testing.T) {
	hashKey := randomSecret(t) + randomSecret(t) // 64 bytes
	h := func(v string) string { return strconv.Quote(fltHash(hashKey, v)) }
	tests := []struct {
		name   string // route name, and path /t/<name>
		doc    string
		pretty bool   // the upstream sends doc indented
		rules  string // the route's response: mapping (YAML flow)
		want   string
	}{
		// Whitespace between tokens is dropped everywhere, also inside
		// subtrees that no rule touches.
		{name: "pretty-unchanged", doc: fltUserDoc, pretty: true, rules: `{ deny: ["$.nope"] }`, want: fltUserDoc},
		{name: "pretty-deny", doc: fltUserDoc, pretty: true, rules: `{ deny: ["$.password"] }`,
			want: `{"id":7,"name":"Ana","email":"ana@example.com","profile":{"password":"p2","bio":"hi","address":{"city":"Lyon","zip":"69001"}},"orders":[{"id":1,"total":12.5,"secret":"s1"},{"id":2,"total":7,"secret":"s2"}],"tags":["a","b","c"]}`},
		{name: "pretty-allow", doc: fltUserDoc, pretty: true, rules: `{ allow: ["$.profile", "$.tags"] }`,
			want: `{"profile":{"password":"p2","bio":"hi","address":{"city":"Lyon","zip":"69001"}},"tags":["a","b","c"]}`},
		{name: "pretty-mask", doc: fltNumbersDoc, pretty: true, rules: `{ mask: { "$.drop": redact } }`,
			want: `{"big":12345678901234567890123,"neg":-98765432109876543210.5e-3,"tiny":1e-400,"huge":1E+400,"float":0.1000000000000000055511151231257827,"zero":-0,"list":[12345678901234567890123,1.0,1.50],"drop":"***"}`},
		{name: "users-compact", doc: fltUserDoc, rules: `{ deny: ["$.nope"] }`, want: fltUserDoc},
		{name: "users-allow", doc: fltUserDoc,
			rules: `{ allow: ["$.id", "$.name", "$.orders[*].id", "$.profile.address.city"] }`,
			want:  `{"id":7,"name":"Ana","profile":{"address":{"city":"Lyon"}},"orders":[{"id":1},{"id":2}]}`},
		{name: "users-deny-desc", doc: fltUserDoc, rules: `{ deny: ["$..password"] }`,
			want: `{"id":7,"name":"Ana","email":"ana@example.com","profile":{"bio":"hi","address":{"city":"Lyon","zip":"69001"}},"orders":[{"id":1,"total":12.5,"secret":"s1"},{"id":2,"total":7,"secret":"s2"}],"tags":["a","b","c"]}`},
		{name: "users-deny-wildcards", doc: fltUserDoc,
			rules: `{ deny: ["$.orders[*].secret", "$.orders[*].total", "$.tags[1]", "$.profile.*"] }`,
			want:  `{"id":7,"name":"Ana","email":"ana@example.com","password":"hunter2","profile":{},"orders":[{"id":1},{"id":2}],"tags":["a","c"]}`},
		{name: "users-deny-desc-bracket", doc: fltUserDoc, rules: `{ deny: ["$..['secret']", "$..zip"] }`,
			want: `{"id":7,"name":"Ana","email":"ana@example.com","password":"hunter2","profile":{"password":"p2","bio":"hi","address":{"city":"Lyon"}},"orders":[{"id":1,"total":12.5},{"id":2,"total":7}],"tags":["a","b","c"]}`},
		{name: "users-allow-deny", doc: fltUserDoc,
			rules: `{ allow: ["$.id", "$.profile", "$.orders"], deny: ["$..password", "$..secret", "$.orders[0]"] }`,
			want:  `{"id":7,"profile":{"bio":"hi","address":{"city":"Lyon","zip":"69001"}},"orders":[{"id":2,"total":7}]}`},
		{name: "users-allow-index", doc: fltUserDoc, rules: `{ allow: ["$.orders[1].id", "$.tags[0]"] }`,
			want: `{"orders":[{"id":2}],"tags":["a"]}`},

		{name: "pay-mask", doc: fltPayDoc,
			rules: `{ mask: { "$.email": redact, "$.phone": last4, "$.card.number": last4, "$.card.cvc": redact, "$.account": last4, "$.short": last4, "$.empty": redact, "$.obj": redact, "$.uni": last4 } }`,
			want:  `{"email":"***","phone":"***5678","card":{"number":"***1111","cvc":"***"},"account":"***3210","short":"***","empty":"***","nil":null,"obj":"***","uni":"***rème"}`},
		{name: "pay-mask-desc", doc: fltPayDoc, rules: `{ mask: { "$..a": redact, "$..number": last4 } }`,
			want: `{"email":"ana@example.com","phone":"+33612345678","card":{"number":"***1111","cvc":123},"account":9876543210,"short":"abc","empty":"","nil":null,"obj":{"a":"***"},"uni":"café—crème"}`},
		{name: "pay-deny-wins", doc: fltPayDoc,
			rules: `{ deny: ["$.card", "$.email"], mask: { "$.card.number": last4, "$.email": redact } }`,
			want:  `{"phone":"+33612345678","account":9876543210,"short":"abc","empty":"","nil":null,"obj":{"a":1},"uni":"café—crème"}`},
		{name: "pay-allow-mask", doc: fltPayDoc,
			rules: `{ allow: ["$.email", "$.card.number"], mask: { "$.card.number": last4, "$.phone": redact } }`,
			want:  `{"email":"ana@example.com","card":{"number":"***1111"}}`},

		{name: "intl-allow", doc: fltIntlDoc, rules: `{ allow: ["$['prénom']", "$.名前", "$.données.clé", "$['a b']"] }`,
			want: `{"prénom":"Zoé","名前":"太郎","données":{"clé":"v"},"a b":1}`},
		// $.password also removes "p\u0061ssword": names match unescaped.
		{name: "intl-deny", doc: fltIntlDoc,
			rules: `{ deny: ["$[\"nom\"]", "$..autre", "$['it\\'s']", "$.名前", "$.password"] }`,
			want:  `{"prénom":"Zoé","données":{"clé":"v"},"a b":1}`},

		{name: "numbers", doc: fltNumbersDoc, rules: `{ deny: ["$.drop"] }`,
			want: `{"big":12345678901234567890123,"neg":-98765432109876543210.5e-3,"tiny":1e-400,"huge":1E+400,"float":0.1000000000000000055511151231257827,"zero":-0,"list":[12345678901234567890123,1.0,1.50]}`},
		{name: "numbers-allow", doc: fltNumbersDoc, rules: `{ allow: ["$.big", "$.list[*]"] }`,
			want: `{"big":12345678901234567890123,"list":[12345678901234567890123,1.0,1.50]}`},

		{name: "empty-allow", doc: fltEmptyDoc, rules: `{ allow: ["$.a", "$.b", "$.c", "$.d", "$.e.x", "$.f[*]", "$.h"] }`,
			want: `{"a":null,"b":"","c":{},"d":[],"e":{"x":null},"f":[null,{},[]],"h":false}`},
		{name: "empty-deny", doc: fltEmptyDoc, rules: `{ deny: ["$.e.y", "$.f[0]", "$.g"] }`,
			want: `{"a":null,"b":"","c":{},"d":[],"e":{"x":null},"f":[{},[]],"h":false}`},
		{name: "empty-allow-nothing", doc: fltEmptyDoc, rules: `{ allow: ["$.nope"] }`, want: `{}`},

		{name: "list-allow", doc: fltListDoc, rules: `{ allow: ["$[*].id"] }`, want: `[{"id":1},{"id":2}]`},
		{name: "list-deny", doc: fltListDoc, rules: `{ deny: ["$..pw"] }`, want: `[{"id":1},{"id":2,"extra":{}}]`},

		{name: "preset", doc: fltSecretsDoc, rules: `{ preset: sensitive }`,
			want: `{"id":1,"user":{"name":"n"},"sessions":[{"type":"bearer"}],"passwordHint":"h","tokens":3}`},
		{name: "preset-allow", doc: fltSecretsDoc, rules: `{ preset: sensitive, allow: ["$.user", "$.Password"] }`,
			want: `{"user":{"name":"n"}}`},

		{name: "hash-a", doc: fltHashDoc, rules: `{ mask: { "$.email": hash, "$.other": hash, "$.n": hash } }`,
			want: `{"email":` + h("ana@example.com") + `,"contact":{"email":"ana@example.com"},"other":` + h("bob@example.com") + `,"n":` + h("42") + `,"esc":"an\u0061"}`},
		{name: "many", doc: fltManyDoc, rules: `{ allow: ["$.id"] }`, want: `{"id":1}`},
		{name: "hash-b", doc: fltHashDoc, rules: `{ mask: { "$.contact.email": hash, "$.esc": hash } }`,
			want: `{"email":"ana@example.com","contact":{"email":` + h("ana@example.com") + `},"other":"bob@example.com","n":42,"esc":` + h("ana") + `}`},
	}

	docs := map[string]fltDoc{}
	var routes []string
	for _, tt := range tests {
		p := "/t/" + tt.name
		body := tt.doc
		if tt.pretty {
			body = fltIndent(t, body)
		}
		docs[p] = fltDoc{body: body}
		routes = append(routes, route(tt.name, "GET", p, "response: "+tt.rules))
	}
	up := fltUpstream(t, docs)
	cfg := baseConfig("http://"+up.addr, routes...) + "response:\n  hash_key: ${BW_FILTER_HASH_KEY}\n"
	g := fltStart(t, cfg, nil, "BW_FILTER_HASH_KEY="+hashKey)

	bodies := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, nil, "GET", g.URL("/t/"+tt.name))
			if tt.pretty {
				// Subtrees the filter copies whole keep the upstream's
				// whitespace (docs/response-filtering.md): compare the
				// document, after checking it is valid JSON.
				var compact bytes.Buffer
				if err := json.Compact(&compact, a.body); err != nil {
					t.Fatalf("body is not valid JSON: %v: %s", err, a.body)
				}
				if compact.String() != tt.want {
					t.Errorf("body (compacted):\n got %s\nwant %s", compact.Bytes(), tt.want)
				}
				tt.want = string(a.body)
			}
			fltCheckJSON(t, a, tt.want)
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			bodies[tt.name] = string(a.body)
		})
	}

	t.Run("hash joinable across routes", func(t *testing.T) {
		var a, b struct {
			Email   string `json:"email"`
			Other   string `json:"other"`
			Contact struct {
				Email string `json:"email"`
			} `json:"contact"`
		}
		if json.Unmarshal([]byte(bodies["hash-a"]), &a) != nil || json.Unmarshal([]byte(bodies["hash-b"]), &b) != nil {
			t.Fatalf("hash bodies are not JSON: %q %q", bodies["hash-a"], bodies["hash-b"])
		}
		hashRE := regexp.MustCompile(`^hmac-sha256:[0-9a-f]{32}$`)
		for _, v := range []string{a.Email, a.Other, b.Contact.Email} {
			if !hashRE.MatchString(v) {
				t.Errorf("masked value %q is not hmac-sha256:<32 hex>", v)
			}
		}
		if a.Email != b.Contact.Email {
			t.Errorf("one value hashed on two routes: %q and %q, want equal", a.Email, b.Contact.Email)
		}
		if a.Email == a.Other {
			t.Errorf("two values hashed to the same %q", a.Email)
		}
		if strings.Contains(a.Email+a.Other+b.Contact.Email, "example.com") {
			t.Errorf("a hash mask carries the clear value")
		}
	})

	if hits := up.hits.Load(); hits != int64(len(tests)) {
		t.Errorf("upstream hits = %d, want %d", hits, len(tests))
	}
	// The actions count distinct paths per response.
	t.Run("actions metric", func(t *testing.T) { fltCheckActions(t, g) })
}

func fltCheckActions(t *testing.T, g *gateway) {
	for _, m := range []struct {
		route, action string
		want          float64
	}{
		// email, password, profile.password, profile.bio,
		// profile.address.zip, tags, and orders[*].total and
		// orders[*].secret once per order (every occurrence counts)
		{"users-allow", "removed", 10},
		{"pay-mask", "masked", 9},
		// Password, api_key, apiKey, X-API-Key, user.ssn,
		// user.card_number, user.CVV, sessions[*].access_token,
		// sessions[*]['refresh-token'], p\u0061ssword
		{"preset", "removed", 10},
		{"users-compact", "removed", 0},
		{"many", "removed", 40}, // k0 ... k39
	} {
		if got := metricSum(t, g, "bulwark_filter_actions_total", `route="`+m.route+`"`, `action="`+m.action+`"`); got != m.want {
			t.Errorf(`bulwark_filter_actions_total{route=%q,action=%q} = %v, want %v`, m.route, m.action, got, m.want)
		}
	}
}

// TestFilterViews chooses the allow-list by the principal's roles and
// scopes: the first view that matches, else the route's allow-list; a
// route with views and no allow-list refuses a principal without a view
// before the upstream is called.
func TestFilterViews(t *testing.T) {
	const doc = `{"id":1,"name":"Ana","email":"ana@example.com","ssn":"123-45-6789","password":"x","notes":"vip"}`
	up := fltUpstream(t, map[string]fltDoc{"/profile": {body: doc}, "/strict": {body: doc}})
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	cfg := authnSetup{
		upstream:       up.addr,
		authenticators: []string{jwtAuthenticator("corp", keys.url())},
		routes: []string{
			authRoute("profile", "/profile", "[corp]", `response:
      allow: ["$.id"]
      deny: ["$.password"]
      views:
        - when: { roles: [auditor], scopes: [audit] }
          allow: ["$.id", "$.notes"]
        - when: { roles: [admin] }
          allow: ["$.id", "$.name", "$.email", "$.ssn", "$.password"]
        - when: { roles: [support] }
          allow: ["$.id", "$.name", "$.email"]
        - when: { scopes: ["users:read:pii"] }
          allow: ["$.id", "$.ssn"]`),
			authRoute("strict", "/strict", "[corp]", `response:
      views:
        - when: { roles: [admin] }
          allow: ["$.id", "$.name"]`),
		},
	}.yaml()
	g := fltStart(t, cfg, nil)

	token := func(scope string, roles ...string) string {
		return "Bearer " + signRS256(t, key, "a", claims("alice", scope, func(c jwt.MapClaims) {
			if roles != nil {
				c["roles"] = roles
			}
		}))
	}
	tests := []struct {
		name   string
		path   string
		auth   string
		status int
		slug   string // for a refusal
		want   string // for a 200
	}{
		// deny applies in every view: the admin view allows $.password in vain.
		{name: "admin view", path: "/profile", auth: token("", "admin"), status: 200,
			want: `{"id":1,"name":"Ana","email":"ana@example.com","ssn":"123-45-6789"}`},
		{name: "support view", path: "/profile", auth: token("", "support"), status: 200,
			want: `{"id":1,"name":"Ana","email":"ana@example.com"}`},
		{name: "first matching view wins", path: "/profile", auth: token("", "support", "admin"), status: 200,
			want: `{"id":1,"name":"Ana","email":"ana@example.com","ssn":"123-45-6789"}`},
		{name: "scope view", path: "/profile", auth: token("openid users:read:pii"), status: 200,
			want: `{"id":1,"ssn":"123-45-6789"}`},
		{name: "role and scope both held", path: "/profile", auth: token("audit", "auditor"), status: 200,
			want: `{"id":1,"notes":"vip"}`},
		{name: "role without the scope", path: "/profile", auth: token("", "auditor"), status: 200, want: `{"id":1}`},
		{name: "no matching role", path: "/profile", auth: token("", "guest"), status: 200, want: `{"id":1}`},
		{name: "roles match exactly", path: "/profile", auth: token("", "Admin", "admin "), status: 200, want: `{"id":1}`},
		{name: "no roles claim", path: "/profile", auth: token(""), status: 200, want: `{"id":1}`},
		{name: "views only, admin", path: "/strict", auth: token("", "admin"), status: 200, want: `{"id":1,"name":"Ana"}`},
		{name: "views only, no view", path: "/strict", auth: token("", "support"), status: 403, slug: "no-view"},
		{name: "views only, no roles", path: "/strict", auth: token("users:read:pii"), status: 403, slug: "no-view"},
		{name: "views only, no token", path: "/strict", status: 401, slug: "unauthenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			before := up.hits.Load()
			a := send(t, nil, "GET", g.URL(tt.path), hdr...)
			if tt.slug != "" {
				a.problem(t, tt.status, tt.slug)
				if hits := up.hits.Load() - before; hits != 0 {
					t.Errorf("upstream hits = %d on a %d, want 0", hits, tt.status)
				}
				return
			}
			fltCheckJSON(t, a, tt.want)
			if hits := up.hits.Load() - before; hits != 1 {
				t.Errorf("upstream hits = %d, want 1", hits)
			}
		})
	}
	if got := metricSum(t, g, "bulwark_denials_total", `route="strict"`, `stage="filter"`, `reason="no_view"`, `mode="enforce"`); got != 2 {
		t.Errorf(`bulwark_denials_total{route="strict",stage="filter",reason="no_view"} = %v, want 2`, got)
	}
}

// fltEncode encodes body with a content coding.
func fltEncode(t testing.TB, coding, body string) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate": // zlib-wrapped, as RFC 9110 defines it
		w = zlib.NewWriter(&b)
	case "raw-deflate": // what some servers send as "deflate"
		fw, err := flate.NewWriter(&b, flate.DefaultCompression)
		if err != nil {
			t.Fatal(err)
		}
		w = fw
	case "br":
		w = brotli.NewWriter(&b)
	default:
		t.Fatalf("unknown coding %q", coding)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fltRawClient is a client that does not ask for or decode compression
// by itself: what the test sends and gets is on the wire.
func fltRawClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// TestFilterEncodedResponses: a compressed upstream body is decoded,
// filtered and sent as identity with a recomputed Content-Length and a
// weak ETag; an unfiltered route relays it untouched.
func TestFilterEncodedResponses(t *testing.T) {
	const doc = `{"id":1,"secret":"s3cr3t","name":"Zoé","list":[1,2,3]}`
	const want = `{"id":1,"name":"Zoé","list":[1,2,3]}`
	docs := map[string]fltDoc{}
	encoded := map[string][]byte{}
	for _, coding := range []string{"gzip", "deflate", "raw-deflate", "br"} {
		encoded[coding] = fltEncode(t, coding, doc)
		wire := strings.TrimPrefix(coding, "raw-")
		d := fltDoc{body: string(encoded[coding]), header: map[string]string{"Content-Encoding": wire, "ETag": `"v1"`, "Vary": "Accept-Encoding"}}
		docs["/f/"+coding], docs["/p/"+coding] = d, d
	}
	docs["/f/weak"] = fltDoc{body: string(encoded["gzip"]), header: map[string]string{"Content-Encoding": "gzip", "ETag": `W/"v2"`}}
	docs["/f/identity"] = fltDoc{body: doc, header: map[string]string{"ETag": `"v3"`}}
	docs["/f/corrupt"] = fltDoc{body: "\x1f\x8b\x08\x00garbage, not gzip", header: map[string]string{"Content-Encoding": "gzip"}}
	docs["/f/unknown"] = fltDoc{body: doc, header: map[string]string{"Content-Encoding": "compress"}}
	up := fltUpstream(t, docs)
	g := fltStart(t, baseConfig("http://"+up.addr,
		route("encoded", "GET", "/f/{coding}", `response: { deny: ["$.secret"] }`),
		route("encoded-plain", "GET", "/p/{coding}"),
	), nil)
	c := fltRawClient(t)

	for _, coding := range []string{"gzip", "deflate", "raw-deflate", "br"} {
		t.Run(coding, func(t *testing.T) {
			a := send(t, c, "GET", g.URL("/f/"+coding), "Accept-Encoding", "gzip, deflate, br")
			fltCheckJSON(t, a, want)
			if etag := a.header.Get("ETag"); etag != `W/"v1"` {
				t.Errorf(`ETag = %q, want W/"v1"`, etag)
			}
			if _, req := up.lastRequest(); req == nil {
				t.Fatal("the upstream saw no request")
			}
		})
		t.Run(coding+" unfiltered", func(t *testing.T) {
			a := send(t, c, "GET", g.URL("/p/"+coding), "Accept-Encoding", "gzip, deflate, br")
			if a.status != http.StatusOK || !bytes.Equal(a.body, encoded[coding]) {
				t.Errorf("status %d, body %q; want 200 and the upstream's bytes", a.status, a.body)
			}
			if ce, wire := a.header.Get("Content-Encoding"), strings.TrimPrefix(coding, "raw-"); ce != wire {
				t.Errorf("Content-Encoding = %q, want %q", ce, wire)
			}
			if etag := a.header.Get("ETag"); etag != `"v1"` {
				t.Errorf(`ETag = %q, want "v1" (untouched)`, etag)
			}
		})
	}
	t.Run("weak etag stays weak", func(t *testing.T) {
		a := send(t, c, "GET", g.URL("/f/weak"), "Accept-Encoding", "gzip")
		fltCheckJSON(t, a, want)
		if etag := a.header.Get("ETag"); etag != `W/"v2"` {
			t.Errorf(`ETag = %q, want W/"v2"`, etag)
		}
	})
	t.Run("identity", func(t *testing.T) {
		a := send(t, c, "GET", g.URL("/f/identity"))
		fltCheckJSON(t, a, want)
		if etag := a.header.Get("ETag"); etag != `W/"v3"` {
			t.Errorf(`ETag = %q, want W/"v3"`, etag)
		}
	})
	t.Run("corrupt gzip", func(t *testing.T) {
		send(t, c, "GET", g.URL("/f/corrupt"), "Accept-Encoding", "gzip").problem(t, http.StatusBadGateway, "unreadable-upstream-response")
	})
	t.Run("unknown coding", func(t *testing.T) {
		a := send(t, c, "GET", g.URL("/f/unknown"), "Accept-Encoding", "gzip")
		a.problem(t, http.StatusBadGateway, "unreadable-upstream-response")
		if bytes.Contains(a.body, []byte("secret")) {
			t.Errorf("the refusal carries the upstream body: %s", a.body)
		}
	})
}

// TestFilterNonJSONResponses: a filtered route fails closed on a body it
// cannot filter; non_json: pass relays a non-JSON body byte for byte but
// never invalid JSON.
func TestFilterNonJSONResponses(t *testing.T) {
	const html = "<html><body>password=hunter2</body></html>\n"
	docs := map[string]fltDoc{
		"text":      {ct: "text/plain; charset=utf-8", body: "plain text, password=hunter2\n"},
		"html":      {ct: "text/html", body: html},
		"none":      {ct: "-", body: `{"id":1,"secret":"x"}`},
		"badjson":   {body: `{"id":1,"secret":"x"`},
		"dup":       {body: `{"id":1,"secret":"x","secret":"y"}`},
		"dupesc":    {body: `{"id":1,"s\u0065cret":"x","secret":"y"}`}, // the same name, once escaped
		"trailing":  {body: `{"id":1} {"secret":"x"}`},
		"badutf8":   {body: "{\"id\":1,\"name\":\"\xff\xfe\"}"},
		"vnd":       {ct: "application/vnd.api+json", body: `{"id":1,"secret":"x"}`},
		"charset":   {ct: "application/json; charset=utf-8", body: `{"id":1,"secret":"x"}`},
		"deep512":   {body: strings.Repeat("[", 512) + strings.Repeat("]", 512)},
		"deep513":   {body: strings.Repeat("[", 513) + strings.Repeat("]", 513)},
		"deepobj":   {body: `{"id":1,"a":` + strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat("}", 600) + `}`},
		"problem":   {ct: "application/problem+json", body: `{"id":1,"secret":"x"}`},
		"textjsony": {ct: "text/plain", body: `{"id":1,"secret":"x"}`},
		"empty":     {ct: "-", body: ""},
		"emptyjson": {body: ""},
	}
	paths := map[string]fltDoc{}
	for name, d := range docs {
		paths["/fail/"+name], paths["/pass/"+name] = d, d
	}
	up := fltUpstream(t, paths)
	g := fltStart(t, baseConfig("http://"+up.addr,
		route("nonjson-fail", "GET", "/fail/{doc}", `response: { deny: ["$.secret"] }`),
		route("nonjson-pass", "GET", "/pass/{doc}", `response: { deny: ["$.secret"], non_json: pass }`),
	), nil)
	c := fltRawClient(t)

	tests := []struct {
		doc      string
		fail     string // on the fail route: a problem slug, "filtered" or "relayed"
		pass     string // on the pass route: a slug, "filtered" or "relayed"
		contains string // what a refusal must not echo
	}{
		{doc: "text", fail: "unfilterable-upstream-response", pass: "relayed", contains: "hunter2"},
		{doc: "html", fail: "unfilterable-upstream-response", pass: "relayed", contains: "hunter2"},
		{doc: "textjsony", fail: "unfilterable-upstream-response", pass: "relayed", contains: "secret"},
		{doc: "none", fail: "unfilterable-upstream-response", contains: "secret"},
		{doc: "badjson", fail: "unfilterable-upstream-response", pass: "unfilterable-upstream-response", contains: "secret"},
		{doc: "dup", fail: "unfilterable-upstream-response", pass: "unfilterable-upstream-response", contains: "secret"},
		{doc: "dupesc", fail: "unfilterable-upstream-response", pass: "unfilterable-upstream-response", contains: "secret"},
		{doc: "trailing", fail: "unfilterable-upstream-response", pass: "unfilterable-upstream-response", contains: "secret"},
		{doc: "badutf8", fail: "unfilterable-upstream-response", pass: "unfilterable-upstream-response"},
		{doc: "deep513", fail: "unfilterable-upstream-response", pass: "unfilterable-upstream-response"},
		{doc: "deepobj", fail: "unfilterable-upstream-response", pass: "unfilterable-upstream-response"},
		{doc: "deep512", fail: "relayed"},
		// An empty body has nothing to leak: it passes, whatever its type.
		{doc: "empty", fail: "relayed", pass: "relayed"},
		{doc: "emptyjson", fail: "relayed", pass: "relayed"},
		{doc: "vnd", fail: "filtered", pass: "filtered"},
		{doc: "charset", fail: "filtered", pass: "filtered"},
		{doc: "problem", fail: "filtered", pass: "filtered"},
	}
	failed := map[string]float64{}
	for _, tt := range tests {
		for _, r := range []struct{ route, prefix, expect string }{
			{"nonjson-fail", "/fail/", tt.fail}, {"nonjson-pass", "/pass/", tt.pass},
		} {
			if r.expect == "" {
				continue
			}
			t.Run(r.route+"/"+tt.doc, func(t *testing.T) {
				before := up.hits.Load()
				a := send(t, c, "GET", g.URL(r.prefix+tt.doc))
				switch r.expect {
				case "filtered":
					fltCheckJSON(t, a, `{"id":1}`)
				case "relayed":
					d := docs[tt.doc]
					if a.status != http.StatusOK || string(a.body) != d.body {
						t.Errorf("status %d, body %q; want 200 and %q byte for byte", a.status, a.body, d.body)
					}
					want := cmpOr(d.ct, "application/json")
					if want == "-" {
						want = "" // the upstream sent none
					}
					if ct := a.header.Get("Content-Type"); ct != want {
						t.Errorf("Content-Type = %q, want %q", ct, want)
					}
				default:
					a.problem(t, http.StatusBadGateway, r.expect)
					failed[r.route]++
					if tt.contains != "" && bytes.Contains(a.body, []byte(tt.contains)) {
						t.Errorf("the refusal echoes the upstream body: %s", a.body)
					}
				}
				if hits := up.hits.Load() - before; hits != 1 {
					t.Errorf("upstream hits = %d, want 1", hits)
				}
			})
		}
	}
	for _, m := range []struct {
		route, action string
		want          float64
	}{
		{"nonjson-fail", "failed", failed["nonjson-fail"]},
		{"nonjson-pass", "failed", failed["nonjson-pass"]},
		{"nonjson-pass", "passed", 3},
		{"nonjson-fail", "passed", 0},
	} {
		if got := metricSum(t, g, "bulwark_filter_actions_total", `route="`+m.route+`"`, `action="`+m.action+`"`); got != m.want {
			t.Errorf(`bulwark_filter_actions_total{route=%q,action=%q} = %v, want %v`, m.route, m.action, got, m.want)
		}
	}
}

// Upstream error bodies of TestFilterUpstreamErrors: what must never
// reach a client of a masking route.
const (
	fltStackTrace = "java.lang.NullPointerException: user was null\n\tat com.acme.users.UserService.find(UserService.java:42)\n" +
		"org.postgresql.util.PSQLException: ERROR: syntax error at or near \"FROM\" in SELECT password FROM users WHERE id='1' -- db-primary-7.internal:5432\n"
	fltBadGatewayBody = `{"error":"connection refused by 10.0.0.7:5432","trace":"at db.connect (/srv/app/db.js:12)"}`
)

// TestFilterUpstreamErrors: an upstream 5xx body is replaced by an
// upstream-error problem with the same status (a 503 keeps Retry-After);
// upstream_errors: pass relays it; a route overrides the top level.
func TestFilterUpstreamErrors(t *testing.T) {
	leaks := []string{"NullPointerException", "SELECT", "PSQLException", "db-primary-7", "10.0.0.7", "db.js", "maintenance window"}
	docs := map[string]fltDoc{}
	for _, prefix := range []string{"/mask", "/pass", "/filtered", "/override"} {
		docs[prefix+"/500"] = fltDoc{status: 500, ct: "text/plain", body: fltStackTrace,
			header: map[string]string{"Server": "Apache-Coyote/1.1", "X-Powered-By": "Servlet/3.0"}}
		docs[prefix+"/502"] = fltDoc{status: 502, body: fltBadGatewayBody}
		docs[prefix+"/503"] = fltDoc{status: 503, ct: "text/plain", body: "maintenance window: db-primary-7 down\n",
			header: map[string]string{"Retry-After": "30"}}
		docs[prefix+"/404"] = fltDoc{status: 404, body: `{"error":"no such user"}`}
	}
	up := fltUpstream(t, docs)
	routes := []string{
		route("err-mask", "GET", "/mask/{status}"),
		route("err-pass", "GET", "/pass/{status}", "response: { upstream_errors: pass }"),
		route("err-filtered", "GET", "/filtered/{status}", `response: { deny: ["$.trace"] }`),
	}
	g := fltStart(t, baseConfig("http://"+up.addr, routes...), nil)

	checkMasked := func(t *testing.T, a answer, status int) {
		t.Helper()
		a.problem(t, status, "upstream-error")
		for _, leak := range leaks {
			if bytes.Contains(a.body, []byte(leak)) {
				t.Errorf("the %d answer carries the upstream's %q: %s", status, leak, a.body)
			}
		}
		for _, h := range []string{"Server", "X-Powered-By"} {
			if v := a.header.Get(h); v != "" {
				t.Errorf("%s = %q on the %d answer, want none", h, v, status)
			}
		}
	}
	for _, prefix := range []string{"/mask", "/filtered"} {
		t.Run(prefix[1:], func(t *testing.T) {
			for _, status := range []int{500, 502, 503} {
				before := up.hits.Load()
				a := send(t, nil, "GET", g.URL(fmt.Sprintf("%s/%d", prefix, status)))
				checkMasked(t, a, status)
				if hits := up.hits.Load() - before; hits != 1 {
					t.Errorf("upstream hits = %d, want 1 (the gateway does not retry)", hits)
				}
				if ra := a.header.Get("Retry-After"); status == 503 && ra != "30" {
					t.Errorf("Retry-After = %q on the 503, want 30", ra)
				}
			}
			// A 4xx is the API's answer, not a failure: it is relayed.
			a := send(t, nil, "GET", g.URL(prefix+"/404"))
			if a.status != 404 || string(a.body) != `{"error":"no such user"}` {
				t.Errorf("404: status %d body %s; want it relayed", a.status, a.body)
			}
		})
	}
	t.Run("pass", func(t *testing.T) {
		for _, status := range []int{500, 502, 503} {
			a := send(t, nil, "GET", g.URL(fmt.Sprintf("/pass/%d", status)))
			d := docs[fmt.Sprintf("/pass/%d", status)]
			if a.status != status || string(a.body) != d.body {
				t.Errorf("status %d body %q; want %d and the upstream's body relayed", a.status, a.body, status)
			}
		}
	})

	t.Run("top-level pass, route mask", func(t *testing.T) {
		g := fltStart(t, baseConfig("http://"+up.addr,
			route("err-default", "GET", "/pass/{status}"),
			route("err-route-mask", "GET", "/override/{status}", "response: { upstream_errors: mask }"),
		)+"response:\n  upstream_errors: pass\n", nil)
		a := send(t, nil, "GET", g.URL("/pass/500"))
		if a.status != 500 || string(a.body) != fltStackTrace {
			t.Errorf("status %d body %q; want 500 and the upstream's body relayed", a.status, a.body)
		}
		checkMasked(t, send(t, nil, "GET", g.URL("/override/500")), 500)
	})
}

// TestFilterFingerprintHeaders: the fingerprint headers are removed on
// every route, filtered or not, and on errors; headers.remove removes
// more on its route; a strip_headers list replaces the default list.
func TestFilterFingerprintHeaders(t *testing.T) {
	fingerprints := map[string]string{
		"Server": "Apache/2.4.1 (Unix)", "X-Powered-By": "PHP/5.6.40", "X-AspNet-Version": "4.0.30319",
		"X-AspNetMvc-Version": "5.2", "X-Runtime": "0.012", "X-Version": "3.1.4", "X-Generator": "Drupal 7",
		"X-Drupal-Cache": "HIT", "X-Drupal-Dynamic-Cache": "MISS", "X-Backend-Server": "app-7.internal", "X-Served-By": "cache-fra-1",
	}
	header := map[string]string{"X-Internal-Id": "node-7", "X-Request-Cost": "3", "X-Custom-Fp": "fp"}
	for k, v := range fingerprints {
		header[k] = v
	}
	doc := fltDoc{body: `{"id":1,"secret":"x"}`, header: header}
	up := fltUpstream(t, map[string]fltDoc{
		"/plain": doc, "/filtered": doc, "/removing": doc, "/err": {status: 500, body: "boom", header: header},
	})
	g := fltStart(t, baseConfig("http://"+up.addr,
		route("fp-plain", "GET", "/plain"),
		route("fp-filtered", "GET", "/filtered", `response: { deny: ["$.secret"] }`),
		route("fp-removing", "GET", "/removing", "response: { headers: { remove: [x-internal-id] } }"),
		route("fp-err", "GET", "/err"),
	), nil)

	for _, p := range []string{"/plain", "/filtered", "/removing", "/err"} {
		t.Run(p[1:], func(t *testing.T) {
			a := send(t, nil, "GET", g.URL(p))
			for name := range fingerprints {
				if v := a.header.Values(name); len(v) > 0 {
					t.Errorf("%s = %q, want it removed", name, v)
				}
			}
			internal := a.header.Get("X-Internal-Id")
			switch p {
			case "/removing":
				if internal != "" {
					t.Errorf("X-Internal-Id = %q, want it removed by headers.remove", internal)
				}
			case "/err":
			default:
				if internal != "node-7" {
					t.Errorf("X-Internal-Id = %q, want node-7 (only its route removes it)", internal)
				}
			}
			if p != "/err" && a.header.Get("X-Request-Cost") != "3" {
				t.Errorf("X-Request-Cost = %q, want 3 (not a fingerprint header)", a.header.Get("X-Request-Cost"))
			}
		})
	}

	t.Run("strip_headers replaces the default list", func(t *testing.T) {
		g := fltStart(t, baseConfig("http://"+up.addr, route("fp-custom", "GET", "/plain"))+
			"response:\n  strip_headers: [X-Custom-Fp, x-served-by]\n", nil)
		a := send(t, nil, "GET", g.URL("/plain"))
		for _, name := range []string{"X-Custom-Fp", "X-Served-By"} {
			if v := a.header.Get(name); v != "" {
				t.Errorf("%s = %q, want it removed", name, v)
			}
		}
		if v := a.header.Get("X-Powered-By"); v != "PHP/5.6.40" {
			t.Errorf("X-Powered-By = %q, want it relayed (the list replaces the default)", v)
		}
	})
}

// fltEvent is an audit event with the filter field (the other fields as
// TestAuditFileEvents reads them; an unknown field is an error).
type fltEvent struct {
	auditEvent
	Filter *fltAudit `json:"filter"`
}

type fltAudit struct {
	Removed  []string     `json:"removed"`
	Masked   []string     `json:"masked"`
	Detected []fltFinding `json:"detected"`
}

type fltFinding struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
}

// fltAuditGateway starts a gateway over up with routes and the file audit
// sink; stop it (g.stop) before fltReadAudit.
func fltAuditGateway(t *testing.T, up *upstream, routes ...string) *gateway {
	t.Helper()
	return fltStart(t, baseConfig("http://"+up.addr, routes...)+"audit: { sink: file, file: { path: audit.jsonl } }\n", nil)
}

// fltReadAudit stops g and returns its audit events by request id, and
// the raw file.
func fltReadAudit(t *testing.T, g *gateway) (map[string]fltEvent, []byte) {
	t.Helper()
	g.stop(t)
	raw, err := os.ReadFile(filepath.Join(g.dir, "audit.jsonl"))
	if err != nil {
		t.Fatalf("read the audit file: %v", err)
	}
	events := map[string]fltEvent{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var ev fltEvent
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("audit line is not a documented event: %v\n%s", err, sc.Bytes())
		}
		events[ev.RequestID] = ev
	}
	return events, raw
}

// The detection document: a card number as text and as a number, a JWT, an
// AWS access key id; 4111111111111112 fails the Luhn check.
const (
	fltCardText  = "4111 1111 1111 1111"
	fltCardNum   = "5555555555554444"
	fltJWT       = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	fltAWSKey    = "AKIAIOSFODNN7EXAMPLE"
	fltDetectDoc = `{"id":1,"payment":{"card":"` + fltCardText + `"},"items":[{"pan":` + fltCardNum + `}],"debug":"tok=` + fltJWT +
		`","aws":"` + fltAWSKey + `","masked":"4111111111111111","denied":"4111111111111111","ref":"4111111111111112","phone":"+33 6 12 34 56 78"}`
	fltCleanDoc = `{"id":1,"ref":"4111111111111112","order":1234567890123,"phone":"+33 6 12 34 56 78","note":"eyJ alone"}`
)

// TestFilterDetect: detect: report leaves the body as it is, counts the
// findings by kind and writes their kind and path (never the value) into
// the audit event; detect: block withholds the response; masked and
// denied values are not findings.
func TestFilterDetect(t *testing.T) {
	up := fltUpstream(t, map[string]fltDoc{
		"/report": {body: fltDetectDoc}, "/scrub": {body: fltDetectDoc},
		"/block": {body: fltDetectDoc}, "/clean": {body: fltCleanDoc},
		"/keyed":   {body: `{"cards":{"` + fltCardNum + `":{"exp":"12/30"}}}`},
		"/escaped": {body: `{"note":"card \u0034111-1111-1111-1111 on file"}`},
	})
	g := fltAuditGateway(t, up,
		route("detect-report", "GET", "/report", "response: { detect: report }"),
		route("detect-scrub", "GET", "/scrub", `response: { detect: report, mask: { "$.masked": last4 }, deny: ["$.denied"] }`),
		route("detect-block", "GET", "/block", "response: { detect: block }"),
		route("detect-clean", "GET", "/clean", "response: { detect: block }"),
		route("detect-keyed", "GET", "/keyed", "response: { detect: block }"),
		route("detect-escaped", "GET", "/escaped", "response: { detect: block }"),
	)
	values := []string{fltCardText, fltCardNum, fltJWT, fltAWSKey, "4111111111111111", "1111 1111"}

	report := send(t, nil, "GET", g.URL("/report"))
	fltCheckJSON(t, report, fltDetectDoc)

	scrub := send(t, nil, "GET", g.URL("/scrub"))
	fltCheckJSON(t, scrub, strings.Replace(strings.Replace(fltDetectDoc, `"masked":"4111111111111111"`, `"masked":"***1111"`, 1),
		`,"denied":"4111111111111111"`, "", 1))

	before := up.hits.Load()
	block := send(t, nil, "GET", g.URL("/block"))
	block.problem(t, http.StatusBadGateway, "sensitive-data-blocked")
	for _, v := range values {
		if bytes.Contains(block.body, []byte(v)) {
			t.Errorf("the blocked answer carries %q: %s", v, block.body)
		}
	}
	if hits := up.hits.Load() - before; hits != 1 {
		t.Errorf("upstream hits = %d, want 1", hits)
	}

	fltCheckJSON(t, send(t, nil, "GET", g.URL("/clean")), fltCleanDoc)

	t.Run("card number written with escapes", func(t *testing.T) {
		a := send(t, nil, "GET", g.URL("/escaped"))
		a.problem(t, http.StatusBadGateway, "sensitive-data-blocked")
		if bytes.Contains(a.body, []byte("1111")) {
			t.Errorf("the blocked answer carries the card number: %s", a.body)
		}
	})
	t.Run("card number as a member name", func(t *testing.T) {
		// Member names are sent too: a map keyed by card number is as
		// much a leak as a card number value.
		a := send(t, nil, "GET", g.URL("/keyed"))
		if a.status != http.StatusBadGateway || bytes.Contains(a.body, []byte(fltCardNum)) {
			t.Errorf("status %d, body %s; want 502 sensitive-data-blocked without the card number", a.status, a.body)
		} else {
			a.problem(t, http.StatusBadGateway, "sensitive-data-blocked")
		}
	})

	for _, m := range []struct {
		route, kind string
		want        float64
	}{
		{"detect-report", "card_number", 4}, {"detect-report", "jwt", 1}, {"detect-report", "secret", 1},
		{"detect-scrub", "card_number", 2}, {"detect-scrub", "jwt", 1}, {"detect-scrub", "secret", 1},
		{"detect-block", "card_number", 4},
	} {
		if got := metricSum(t, g, "bulwark_sensitive_data_detected_total", `route="`+m.route+`"`, `kind="`+m.kind+`"`); got != m.want {
			t.Errorf(`bulwark_sensitive_data_detected_total{route=%q,kind=%q} = %v, want %v`, m.route, m.kind, got, m.want)
		}
	}
	if got := metricSum(t, g, "bulwark_sensitive_data_detected_total", `route="detect-clean"`); got > 0 {
		t.Errorf(`bulwark_sensitive_data_detected_total{route="detect-clean"} = %v, want none`, got)
	}
	if got := metricSum(t, g, "bulwark_filter_actions_total", `route="detect-block"`, `action="blocked"`); got != 1 {
		t.Errorf(`bulwark_filter_actions_total{route="detect-block",action="blocked"} = %v, want 1`, got)
	}
	if got := metricSum(t, g, "bulwark_denials_total", `route="detect-block"`, `stage="filter"`, `reason="sensitive_data"`, `mode="enforce"`); got != 1 {
		t.Errorf(`bulwark_denials_total{route="detect-block",reason="sensitive_data"} = %v, want 1`, got)
	}

	events, raw := fltReadAudit(t, g)
	for _, v := range values {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the audit file carries the value %q:\n%s", v, raw)
		}
	}
	all := []fltFinding{
		{"card_number", "$.payment.card"}, {"card_number", "$.items[*].pan"}, {"jwt", "$.debug"}, {"secret", "$.aws"},
		{"card_number", "$.masked"}, {"card_number", "$.denied"},
	}
	for _, c := range []struct {
		name     string
		a        answer
		status   int
		decision auditDecision
		want     fltAudit
	}{
		{name: "report", a: report, status: 200, decision: auditDecision{Allowed: true}, want: fltAudit{Detected: all}},
		{name: "scrub", a: scrub, status: 200, decision: auditDecision{Allowed: true},
			want: fltAudit{Removed: []string{"$.denied"}, Masked: []string{"$.masked"}, Detected: all[:4]}},
		{name: "block", a: block, status: 502, decision: auditDecision{Stage: "filter", Reason: "sensitive_data", Mode: "enforce"},
			want: fltAudit{Detected: all}},
	} {
		ev, ok := events[c.a.header.Get("X-Request-Id")]
		if !ok {
			t.Errorf("%s: no audit event for request %q", c.name, c.a.header.Get("X-Request-Id"))
			continue
		}
		if ev.Status != c.status || ev.UpstreamStatus != 200 {
			t.Errorf("%s: event status %d, upstream_status %d; want %d, 200", c.name, ev.Status, ev.UpstreamStatus, c.status)
		}
		if ev.Decision != c.decision {
			t.Errorf("%s: decision %+v, want %+v", c.name, ev.Decision, c.decision)
		}
		if ev.Filter == nil || !reflectEqualAudit(*ev.Filter, c.want) {
			t.Errorf("%s: filter = %+v, want %+v", c.name, ev.Filter, c.want)
		}
	}
	if ev, ok := events[""]; ok {
		t.Errorf("an audit event has no request id: %+v", ev)
	}
}

func reflectEqualAudit(a, b fltAudit) bool {
	return slices.Equal(a.Removed, b.Removed) && slices.Equal(a.Masked, b.Masked) && slices.Equal(a.Detected, b.Detected)
}

// TestFilterReportMode: response.mode report relays the upstream's body
// byte for byte and audits what enforcing would have removed, masked and
// blocked.
func TestFilterReportMode(t *testing.T) {
	pretty := fltIndent(t, fltUserDoc)
	up := fltUpstream(t, map[string]fltDoc{
		"/report": {body: pretty, header: map[string]string{"ETag": `"u1"`}},
		"/block":  {body: fltDetectDoc},
		"/nojson": {ct: "text/plain", body: "password=hunter2"},
		"/route":  {body: pretty},
	})
	g := fltAuditGateway(t, up,
		route("filter-report", "GET", "/report",
			`response: { allow: ["$.id", "$.email", "$.orders"], deny: ["$..secret"], mask: { "$.email": redact }, mode: report }`),
		route("filter-report-block", "GET", "/block", "response: { detect: block, mode: report }"),
		route("filter-report-nojson", "GET", "/nojson", `response: { deny: ["$.x"], mode: report }`),
		route("filter-route-report", "GET", "/route", "mode: report", `response: { deny: ["$..password"] }`),
	)
	a := send(t, nil, "GET", g.URL("/report"))
	if a.status != 200 || string(a.body) != pretty {
		t.Errorf("report: status %d body %q; want 200 and the upstream's bytes", a.status, a.body)
	}
	if etag := a.header.Get("ETag"); etag != `"u1"` {
		t.Errorf(`report: ETag = %q, want "u1" (the body is the upstream's)`, etag)
	}
	b := send(t, nil, "GET", g.URL("/block"))
	if b.status != 200 || string(b.body) != fltDetectDoc {
		t.Errorf("report block: status %d body %q; want 200 and the upstream's bytes", b.status, b.body)
	}
	n := send(t, nil, "GET", g.URL("/nojson"))
	if n.status != 200 || string(n.body) != "password=hunter2" {
		t.Errorf("report non-JSON: status %d body %q; want 200 and the upstream's bytes", n.status, n.body)
	}
	// response.mode defaults to the route's mode.
	r := send(t, nil, "GET", g.URL("/route"))
	if r.status != 200 || string(r.body) != pretty {
		t.Errorf("route in report mode: status %d body %q; want 200 and the upstream's bytes", r.status, r.body)
	}

	for _, m := range []struct {
		route, action string
		want          float64
	}{
		// name, password, profile, tags, and orders[*].secret once
		// per order (every occurrence counts)
		{"filter-report", "removed", 6},
		{"filter-report", "masked", 1},
	} {
		if got := metricSum(t, g, "bulwark_filter_actions_total", `route="`+m.route+`"`, `action="`+m.action+`"`); got != m.want {
			t.Errorf(`bulwark_filter_actions_total{route=%q,action=%q} = %v, want %v`, m.route, m.action, got, m.want)
		}
	}
	for _, m := range []struct{ route, reason string }{
		{"filter-report-block", "sensitive_data"}, {"filter-report-nojson", "non_json"},
	} {
		if got := metricSum(t, g, "bulwark_denials_total", `route="`+m.route+`"`, `stage="filter"`, `reason="`+m.reason+`"`, `mode="report"`); got != 1 {
			t.Errorf(`bulwark_denials_total{route=%q,stage="filter",reason=%q,mode="report"} = %v, want 1`, m.route, m.reason, got)
		}
	}

	events, raw := fltReadAudit(t, g)
	if bytes.Contains(raw, []byte("hunter2")) || bytes.Contains(raw, []byte(fltAWSKey)) {
		t.Errorf("the audit file carries a value:\n%s", raw)
	}
	ev := events[a.header.Get("X-Request-Id")]
	want := fltAudit{Removed: []string{"$.name", "$.password", "$.profile", "$.orders[*].secret", "$.tags"}, Masked: []string{"$.email"}}
	if ev.Filter == nil || !reflectEqualAudit(*ev.Filter, want) {
		t.Errorf("report: filter = %+v, want %+v", ev.Filter, want)
	}
	if !ev.Decision.Allowed || ev.Status != 200 {
		t.Errorf("report: decision %+v status %d; want allowed, 200", ev.Decision, ev.Status)
	}
	if ev := events[r.header.Get("X-Request-Id")]; ev.Filter == nil ||
		!reflectEqualAudit(*ev.Filter, fltAudit{Removed: []string{"$.password", "$.profile.password"}}) {
		t.Errorf("route in report mode: filter = %+v, want removed [$.password $.profile.password]", ev.Filter)
	}
	ev = events[b.header.Get("X-Request-Id")]
	if want := (auditDecision{Allowed: true, Stage: "filter", Reason: "sensitive_data", Mode: "report"}); ev.Decision != want || ev.Status != 200 {
		t.Errorf("report block: decision %+v status %d; want %+v, 200", ev.Decision, ev.Status, want)
	}
	if ev.Filter == nil || len(ev.Filter.Detected) != 6 {
		t.Errorf("report block: filter = %+v, want the 6 findings", ev.Filter)
	}
}

// TestFilterResponseBuffer: a filtered route buffers at most
// server.max_response_buffer bytes, on the wire and decoded; an
// unfiltered route streams any size.
func TestFilterResponseBuffer(t *testing.T) {
	docOf := func(size int) string { // a JSON document of exactly size bytes
		return `{"pad":"` + strings.Repeat("x", size-10) + `"}`
	}
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.Atoi(path.Base(r.URL.Path))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		body := []byte(docOf(size))
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("as") {
		case "gzip":
			body = fltEncode(t, "gzip", string(body))
			w.Header().Set("Content-Encoding", "gzip")
		case "chunked": // no Content-Length: the limit is found while reading
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body[:10])
			w.(http.Flusher).Flush()
			_, _ = w.Write(body[10:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	cfg := strings.Replace(baseConfig("http://"+up.addr,
		route("buffer-filtered", "GET", "/f/{size}", `response: { deny: ["$.nope"] }`),
		route("buffer-plain", "GET", "/p/{size}"),
	), "server:\n", "server:\n  max_response_buffer: 1KiB\n", 1)
	g := fltStart(t, cfg, nil)
	c := fltRawClient(t)

	tests := []struct {
		path string
		slug string // "" for a 200 with the whole document
	}{
		{path: "/f/1024"},
		{path: "/f/1024?as=chunked"},
		{path: "/f/1024?as=gzip"},
		{path: "/f/1025", slug: "upstream-response-too-large"},
		{path: "/f/1025?as=chunked", slug: "upstream-response-too-large"},
		{path: "/f/4096?as=gzip", slug: "upstream-response-too-large"}, // small on the wire, too large decoded
		{path: "/f/1048576", slug: "upstream-response-too-large"},
		{path: "/p/1025"},
		{path: "/p/1025?as=chunked"},
		{path: "/p/1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.path[1:], func(t *testing.T) {
			a := send(t, c, "GET", g.URL(tt.path))
			if tt.slug != "" {
				p := a.problem(t, http.StatusBadGateway, tt.slug)
				if strings.Contains(string(a.body), "xxxx") {
					t.Errorf("the refusal carries the upstream body: %+v", p)
				}
				return
			}
			size, _ := strconv.Atoi(path.Base(strings.SplitN(tt.path, "?", 2)[0]))
			if a.status != 200 || string(a.body) != docOf(size) {
				t.Errorf("status %d, %d bytes; want 200 and the %d-byte document", a.status, len(a.body), size)
			}
		})
	}
}

// TestFilterConfigErrors: bulwark validate reports a bad response rule at
// its file:line:col with its config path, and exits 1.
func TestFilterConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, []byte(`server:
  listen: "127.0.0.1:0"
upstreams:
  api: { url: "http://127.0.0.1:9" }
authenticators:
  corp: { type: jwt, issuer: "https://idp.test", audiences: [api], algorithms: [RS256], jwks_url: "https://idp.test/jwks" }
routes:
  - name: bad-path
    method: GET
    path: /a
    upstream: api
    auth: none
    response:
      deny:
        - "$.items["
        - "$..password"
      allow: ["$.id", "id"]
  - name: hash-without-key
    method: GET
    path: /b
    upstream: api
    auth: none
    response:
      mask:
        "$.email": hash
  - name: public-views
    method: GET
    path: /c
    upstream: api
    auth: none
    response:
      views:
        - when: { roles: [admin] }
          allow: ["$.id"]
  - name: bad-view
    method: GET
    path: /d
    upstream: api
    auth: [corp]
    response:
      views:
        - when: { roles: [admin] }
          allow: ["$.id", "$..*"]
      mask: { "$.x": scramble }
      detect: loud
  - name: bad-view-2
    method: GET
    path: /e
    upstream: api
    auth: [corp]
    response:
      preset: paranoid
      views:
        - when: {}
          allow: []
`))
	q := regexp.QuoteMeta(bad)
	out, code := fltValidate(t, bad)
	if code != 1 {
		t.Errorf("exit code = %d, want 1\n%s", code, out)
	}
	for _, p := range []string{
		`^` + q + `:15:11: routes\[0\]\.response\.deny\[0\]: .*\$\.items\[.*unterminated bracket`,
		`^` + q + `:17:23: routes\[0\]\.response\.allow\[1\]: .*must start with "\$"`,
		`^` + q + `:25:20: routes\[1\]\.response\.mask\.\$\.email: .*hash_key`,
		`^` + q + `:33:9: routes\[2\]\.response\.views: .*public`,
		`^` + q + `:43:27: routes\[3\]\.response\.views\[0\]\.allow\[1\]: .*needs a member name`,
		`^` + q + `:44:22: routes\[3\]\.response\.mask\.\$\.x: .*scramble`,
		`^` + q + `:45:15: routes\[3\]\.response\.detect: .*off, report or block`,
		`^` + q + `:52:15: routes\[4\]\.response\.preset: .*sensitive`,
		`^` + q + `:54:17: routes\[4\]\.response\.views\[0\]\.when: .*roles or scopes`,
		`^` + q + `:55:18: routes\[4\]\.response\.views\[0\]\.allow: .*at least one path`,
	} {
		if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
			t.Errorf("output does not match %q:\n%s", p, out)
		}
	}
	if regexp.MustCompile(`(?m)routes\[0\]\.response\.deny\[1\]`).MatchString(out) {
		t.Errorf("a good path is reported:\n%s", out)
	}
	t.Run("messages name the entry they are about", func(t *testing.T) {
		// "routes[0].response.allow[1]: allow[0] ..." would send the
		// reader to the wrong entry.
		for _, line := range strings.Split(out, "\n") {
			if m := regexp.MustCompile(`\.(allow|deny)\[(\d+)\]: (allow|deny)\[(\d+)\]`).FindStringSubmatch(line); m != nil && (m[1] != m[3] || m[2] != m[4]) {
				t.Errorf("the message names %s[%s] for the entry at %s[%s]:\n%s", m[3], m[4], m[1], m[2], line)
			}
		}
	})

	// The hash key comes from the environment and must be long enough;
	// the error does not print it.
	withKey := filepath.Join(dir, "key.yaml")
	writeFile(t, withKey, []byte(baseConfig("http://127.0.0.1:9",
		route("hashed", "GET", "/h", `response: { mask: { "$.email": hash } }`))+
		"response:\n  hash_key: ${BW_FILTER_TEST_KEY}\n"))
	validate := func(key string) (string, int) { return fltValidate(t, withKey, "BW_FILTER_TEST_KEY="+key) }
	short := randomSecret(t)[:31]
	out, code = validate(short)
	if code != 1 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(withKey)+`:\d+:\d+: response\.hash_key: .*32 bytes`).MatchString(out) {
		t.Errorf("a 31-byte hash_key: exit %d, output:\n%s\nwant 1 and a response.hash_key error", code, out)
	}
	if strings.Contains(out, short) {
		t.Errorf("the error prints the key:\n%s", out)
	}
	if out, code := validate(randomSecret(t)); code != 0 {
		t.Errorf("a 32-byte hash_key: exit %d, want 0:\n%s", code, out)
	}
}

// TestFilterRangeRequests: a Range request must not get around the
// filter. An upstream that serves byte ranges (static files, object
// stores, http.ServeContent) answers 206 with a slice of the unfiltered
// document; a slice that is itself a JSON value (the string "hunter2")
// would pass a deny or mask rule written for the whole document. Either
// the gateway does not forward the Range (the client gets the whole,
// filtered document) or it refuses; the denied and masked values never
// reach the client.
func TestFilterRangeRequests(t *testing.T) {
	const doc = `{"id":7,"password":"hunter2","card":"4111111111111111","profile":{"password":"p2","ssn":"123-45-6789"}}`
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(doc))
	}))
	g := fltStart(t, baseConfig("http://"+up.addr,
		route("range-deny", "GET", "/deny", `response: { deny: ["$.password", "$.profile"] }`),
		route("range-mask", "GET", "/mask", `response: { mask: { "$.card": last4 } }`),
		route("range-preset", "GET", "/preset", `response: { preset: sensitive }`),
	), nil)
	c := fltRawClient(t)
	slice := func(v string) string { // the Range of v's JSON text in doc
		i := strings.Index(doc, v)
		if i < 0 {
			t.Fatalf("%s is not in the document", v)
		}
		return fmt.Sprintf("bytes=%d-%d", i, i+len(v)-1)
	}
	tests := []struct {
		path, rng, secret, whole string
	}{
		{path: "/deny", rng: slice(`"hunter2"`), secret: "hunter2",
			whole: `{"id":7,"card":"4111111111111111"}`},
		{path: "/deny", rng: slice(`{"password":"p2","ssn":"123-45-6789"}`), secret: "123-45-6789",
			whole: `{"id":7,"card":"4111111111111111"}`},
		{path: "/mask", rng: slice(`"4111111111111111"`), secret: "4111111111111111",
			whole: `{"id":7,"password":"hunter2","card":"***1111","profile":{"password":"p2","ssn":"123-45-6789"}}`},
		{path: "/preset", rng: slice(`"hunter2"`), secret: "hunter2", whole: `{"id":7,"card":"4111111111111111","profile":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.path[1:]+" "+tt.rng, func(t *testing.T) {
			a := send(t, c, "GET", g.URL(tt.path), "Range", tt.rng)
			if bytes.Contains(a.body, []byte(tt.secret)) {
				t.Errorf("Range %s on %s: status %d, body %s: the filter was bypassed", tt.rng, tt.path, a.status, a.body)
			}
			switch {
			case a.status == http.StatusOK:
				fltCheckJSON(t, a, tt.whole)
			case a.status >= 400:
				if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("refusal with Content-Type %q, want a problem", ct)
				}
			default:
				t.Errorf("status %d (Content-Range %q), want the whole filtered document or a refusal",
					a.status, a.header.Get("Content-Range"))
			}
		})
	}
}
