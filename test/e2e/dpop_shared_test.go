package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestDPoPReplayAcrossInstances runs two gateways behind one host name
// (the Host header is the same; each listens on its own port) and checks
// that a DPoP proof used on one is refused on the other when the Redis
// rate-limit store shares the replay memory, and accepted by the second
// when it does not (the per-instance memory the docs warn about).
func TestDPoPReplayAcrossInstances(t *testing.T) {
	key := rsaKey(t, 0)
	keys := startKeyServer(t, rsaJWK("a", &key.PublicKey))
	up := startUpstream(t, nil)
	holder := newKey(t)
	token := signRS256(t, key, "a", claims("alice", "orders:read", func(c jwt.MapClaims) {
		c["cnf"] = map[string]any{"jkt": jwkThumbprint(t, &holder.PublicKey)}
	}))

	for _, tt := range []struct {
		name       string
		store      string
		secondCode int
	}{
		{name: "shared in redis", store: "redis", secondCode: http.StatusUnauthorized},
		{name: "per instance", store: "local", secondCode: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			top := "rate_limits: { store: local }"
			if tt.store == "redis" {
				top = "rate_limits: { store: redis, redis: { url: \"" + startRedis(t).url() + "\" } }"
			}
			cfg := authnSetup{
				upstream:       up.addr,
				authenticators: []string{jwtAuthenticator("corp", keys.url(), "dpop: required")},
				top:            top,
				routes:         []string{authRoute("dpop", "/dpop", "[corp]")},
			}.yaml()
			a, b := startGateway(t, cfg, nil), startGateway(t, cfg, nil)
			// Both instances serve the same public name: the proof names
			// gateway a's URL, and is sent to b with a's Host.
			htu := a.URL("/dpop")
			proof := dpopProof(t, holder, "GET", htu, token, time.Now())
			do := func(g *gateway) int {
				req, err := http.NewRequest(http.MethodGet, g.URL("/dpop"), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = a.public
				req.Header.Set("Authorization", "DPoP "+token)
				req.Header.Set("DPoP", proof)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			before := up.hits.Load()
			if code := do(a); code != http.StatusOK {
				t.Fatalf("first use on a: status %d, want 200", code)
			}
			if code := do(b); code != tt.secondCode {
				t.Fatalf("the same proof on b: status %d, want %d", code, tt.secondCode)
			}
			want := int64(1)
			if tt.secondCode == http.StatusOK {
				want = 2
			}
			if hits := up.hits.Load() - before; hits != want {
				t.Errorf("upstream hits = %d, want %d", hits, want)
			}
		})
	}
}
