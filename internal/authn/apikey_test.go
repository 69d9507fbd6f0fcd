package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
)

func TestAPIKey(t *testing.T) {
	consumers := []config.Consumer{{
		ID: "acme", Plan: "gold", Scopes: []string{"orders:read"},
		APIKeys: []config.APIKey{
			{ID: "live", SHA256: HashKey("live-key")},
			{ID: "old", SHA256: HashKey("old-key"), Expires: config.Time{Time: time.Now().Add(-time.Hour)}},
			{ID: "off", SHA256: HashKey("off-key"), Disabled: true},
			{ID: "later", SHA256: HashKey("later-key"), Expires: config.Time{Time: time.Now().Add(time.Hour)}},
		},
	}}
	a, err := newAPIKey("keys", config.Authenticator{Type: "api_key", Header: "x-api-key", QueryParam: "api_key"},
		Deps{Log: zap.NewNop(), Consumers: consumers})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers []string
		query   string
		status  int    // 0: success
		reason  string // failure reason
		absent  bool
	}{
		{name: "no key", absent: true},
		{name: "valid key", headers: []string{"live-key"}},
		{name: "valid key in the query", query: "api_key=live-key"},
		{name: "key not yet expired", headers: []string{"later-key"}},
		{name: "unknown key", headers: []string{"guess"}, status: 401, reason: "unknown_key"},
		{name: "expired key", headers: []string{"old-key"}, status: 401, reason: "expired"},
		{name: "disabled key", headers: []string{"off-key"}, status: 401, reason: "disabled"},
		{name: "empty key", headers: []string{""}, status: 401, reason: "malformed"},
		{name: "two keys", headers: []string{"live-key", "live-key"}, status: 400, reason: "multiple_credentials"},
		{name: "header and query", headers: []string{"live-key"}, query: "api_key=live-key", status: 400, reason: "multiple_credentials"},
		{name: "oversized key", headers: []string{string(make([]byte, 600))}, status: 401, reason: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x?"+tt.query, nil)
			for _, h := range tt.headers {
				r.Header.Add("X-Api-Key", h)
			}
			p, err := a.Authenticate(r.Context(), &Input{Request: r})
			switch {
			case tt.absent:
				if !errors.Is(err, ErrNoCredentials) {
					t.Fatalf("err = %v, want ErrNoCredentials", err)
				}
			case tt.status == 0:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if p.Subject != "acme" || p.Consumer != "acme" || p.Plan != "gold" || p.Method != "api_key" || p.KeyID == "" || !p.HasScope("orders:read") {
					t.Fatalf("principal = %+v", p)
				}
			default:
				var f *Failure
				if !errors.As(err, &f) || f.Status != tt.status || f.Reason != tt.reason {
					t.Fatalf("err = %v, want a %d %s failure", err, tt.status, tt.reason)
				}
			}
		})
	}
	if got := a.Challenge(); got != `ApiKey realm="bulwark", header="X-Api-Key"` {
		t.Errorf("challenge = %s", got)
	}
}

func TestHashAndGenerateKey(t *testing.T) {
	if got := HashKey("secret-key"); got != "85dbe15d75ef9308c7ae0f33c7a324cc6f4bf519a2ed2f3027bd33c140a4f9aa" {
		t.Errorf("HashKey = %s", got)
	}
	k1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := GenerateKey()
	if k1 == k2 || len(k1) != len("bwk_")+43 {
		t.Errorf("generated keys %q %q: want distinct bwk_ + 43 base64url characters", k1, k2)
	}
	if _, err := decodeHash("zz"); err == nil {
		t.Error("decodeHash accepted a bad hash")
	}
}
