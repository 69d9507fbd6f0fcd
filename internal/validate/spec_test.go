package validate

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func loadSpec(t testing.TB, name string) *Spec {
	t.Helper()
	s, err := LoadSpec(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("LoadSpec(%q) error = %v", name, err)
	}
	return s
}

func TestLoadSpecValid(t *testing.T) {
	tests := []struct {
		name, file, title, version string
		ops                        int
	}{
		{name: "yaml", file: "orders.yaml", title: "Orders API", version: "1.4.0", ops: 5},
		{name: "json", file: "orders.json", title: "Orders JSON", version: "2.0.0", ops: 1},
		{name: "local ref to another file", file: "localref.yaml", title: "Payments", version: "1.0.0", ops: 1},
		{name: "openapi 3.1", file: "openapi31.yaml", title: "Three one", version: "1.0.0", ops: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadSpec(t, tt.file)
			if s.Title() != tt.title || s.Version() != tt.version {
				t.Errorf("Title(), Version() = %q, %q, want %q, %q", s.Title(), s.Version(), tt.title, tt.version)
			}
			if got := len(s.Operations()); got != tt.ops {
				t.Errorf("len(Operations()) = %d, want %d", got, tt.ops)
			}
		})
	}
}

func TestLoadSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // prefix of the message: file and position
	}{
		{name: "yaml syntax", file: "broken_syntax.yaml", want: "testdata/broken_syntax.yaml:7: "},
		{name: "unknown type", file: "broken_type.yaml", want: "testdata/broken_type.yaml:17:21: "},
		{name: "remote ref", file: "remoteref.yaml", want: `testdata/remoteref.yaml:12:21: remote $ref "https://example.com/x.yaml"`},
		{name: "missing required field", file: "broken_required.yaml", want: "testdata/broken_required.yaml:2:1: "},
		{name: "dangling local ref", file: "broken_ref.yaml", want: `testdata/broken_ref.yaml:14:23: unresolved $ref "#/components/schemas/Missing"`},
		{name: "missing file", file: "nope.yaml", want: "testdata/nope.yaml: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSpec(filepath.Join("testdata", tt.file))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("LoadSpec(%q) error = %v, want prefix %q", tt.file, err, tt.want)
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Errorf("LoadSpec(%q) error is %T, want *SpecError", tt.file, err)
			}
		})
	}
}

// TestLoadSpecRemoteRefNotFetched proves a ref to a reachable server is refused
// without a single request: no SSRF at load time.
func TestLoadSpecRemoteRefNotFetched(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("Foo:\n  type: string\n"))
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, ref string
	}{
		{name: "http to a live server", ref: srv.URL + "/x.yaml#/Foo"},
		{name: "loopback port 1", ref: "http://127.0.0.1:1/x.yaml#/Foo"},
		{name: "scheme-relative", ref: "//" + strings.TrimPrefix(srv.URL, "http://") + "/x.yaml#/Foo"},
		{name: "file with host", ref: "file://example.com/etc/x.yaml#/Foo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spec.yaml")
			doc := strings.ReplaceAll(remoteTemplate, "REF", tt.ref)
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadSpec(path)
			var re *RemoteRefError
			if !errors.As(err, &re) {
				t.Fatalf("LoadSpec error = %v, want a *RemoteRefError", err)
			}
			if !strings.Contains(err.Error(), path+":") {
				t.Errorf("LoadSpec error = %q, want it to name %q", err, path)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

const remoteTemplate = `openapi: 3.0.3
info: {title: r, version: "1"}
paths:
  /x:
    post:
      requestBody:
        content:
          application/json:
            schema:
              $ref: "REF"
      responses:
        "200": {description: ok}
`

func TestOperationsSecurity(t *testing.T) {
	s := loadSpec(t, "orders.yaml")
	tests := []struct {
		id         string
		wantNil    bool
		wantLen    int
		deprecated bool
		scopes     string
	}{
		{id: "createOrder", wantLen: 2, scopes: "orders:write"},
		{id: "listOrders", wantLen: 0, deprecated: true},
		{id: "getOrder", wantLen: 1, scopes: "orders:read"}, // inherits the document's
		{id: "createPet", wantLen: 0},
		{id: "updateProfile", wantLen: 1, scopes: "orders:read"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			op, ok := s.FindByID(tt.id)
			if !ok {
				t.Fatalf("FindByID(%q) not found", tt.id)
			}
			if op.Security == nil || len(op.Security) != tt.wantLen {
				t.Errorf("Security = %#v, want %d requirements (non-nil)", op.Security, tt.wantLen)
			}
			if op.Deprecated != tt.deprecated {
				t.Errorf("Deprecated = %v, want %v", op.Deprecated, tt.deprecated)
			}
			if got := strings.Join(op.Scopes, ","); got != tt.scopes {
				t.Errorf("Scopes = %q, want %q", got, tt.scopes)
			}
		})
	}
	op, _ := s.FindByID("createOrder")
	if _, ok := op.Security[1]["keys"]; !ok {
		t.Errorf("Security[1] = %v, want the keys scheme", op.Security[1])
	}
	noSec := loadSpec(t, "orders.json")
	if op, _ := noSec.FindByID("getOrder"); op.Security != nil {
		t.Errorf("Security without any security = %#v, want nil", op.Security)
	}
}

func TestSecuritySchemes(t *testing.T) {
	got := loadSpec(t, "orders.yaml").SecuritySchemes()
	want := map[string]SchemeInfo{
		"corp": {Type: "http", Scheme: "bearer", BearerFormat: "JWT"},
		"keys": {Type: "apiKey", In: "header", Name: "X-API-Key"},
	}
	if len(got) != len(want) {
		t.Fatalf("SecuritySchemes() = %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("SecuritySchemes()[%q] = %+v, want %+v", k, got[k], w)
		}
	}
}

func TestFind(t *testing.T) {
	s := loadSpec(t, "orders.yaml")
	tests := []struct {
		name, method, route string
		wantID              string // "" = no match
	}{
		{name: "exact", method: "POST", route: "/orders", wantID: "createOrder"},
		{name: "lower-case method", method: "get", route: "/orders", wantID: "listOrders"},
		{name: "param name ignored", method: "GET", route: "/orders/{orderId}", wantID: "getOrder"},
		{name: "chi pattern param", method: "GET", route: "/orders/{orderId:[0-9a-f-]+}", wantID: "getOrder"},
		{name: "server prefix", method: "GET", route: "/api/v1/orders/{x}", wantID: "getOrder"},
		{name: "trailing slash", method: "POST", route: "/orders/", wantID: "createOrder"},
		{name: "wrong method", method: "DELETE", route: "/orders/{id}"},
		{name: "literal instead of param", method: "GET", route: "/orders/latest"},
		{name: "extra segment", method: "GET", route: "/orders/{id}/lines"},
		{name: "other prefix", method: "GET", route: "/api/v2/orders/{id}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, ok := s.Find(tt.method, tt.route)
			if ok != (tt.wantID != "") || op.ID != tt.wantID {
				t.Errorf("Find(%q, %q) = %q, %v, want %q", tt.method, tt.route, op.ID, ok, tt.wantID)
			}
		})
	}
	if _, ok := s.FindByID("nope"); ok {
		t.Errorf("FindByID(%q) found, want none", "nope")
	}
}

func TestCompileRouteMismatch(t *testing.T) {
	s := loadSpec(t, "orders.yaml")
	op, _ := s.FindByID("getOrder")
	if _, err := s.Compile(op, "/orders", Options{}); err == nil {
		t.Errorf("Compile(getOrder, %q) error = nil, want a structure mismatch", "/orders")
	}
	if _, err := s.Compile(OperationInfo{Method: "GET", Path: "/nope"}, "/nope", Options{}); err == nil {
		t.Errorf("Compile(unknown operation) error = nil, want one")
	}
}
