package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
)

// A credential that the authentication stage verified is checked for a
// lockout by the stage after authentication, in its one store call
// (Lockout.Verified leaves it there), and answered as the authentication
// stage answered it: a locked credential gets the lockout's 429 with no
// principal recorded, and takes no token and no quota; in report mode it
// goes on, limited and counted as any other request. The same with the
// local store and with Redis.
func TestRouteCredentialLockout(t *testing.T) {
	const locked, free = "keys/key/k1", "keys/key/k2"
	stores := []struct {
		name string
		new  func(t *testing.T) Store
	}{
		{"local", func(t *testing.T) Store { return NewLocal(100, nil) }},
		{"redis", func(t *testing.T) Store {
			redisLeakCheck(t)
			return newTestRedis(t, testRedisConfig(startRedisServer(t, "").URL()))
		}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			cfg := strings.Replace(limitsConfig, "rate_limits:\n", "rate_limits:\n  headers: true\n", 1)
			store := s.new(t)
			f := newStageFixture(t, cfg, store, config.ModeEnforce)
			f.clock.t = time.Now() // Redis expires the quota on its own clock
			if err := store.Lock(t.Context(), "lock:cred:"+locked, time.Minute); err != nil {
				t.Fatal(err)
			}
			lo := f.lim.Lockout()
			stage := f.lim.Route(f.route("by-consumer"))(f.next())
			// send runs the request through what the authentication stage
			// does for a verified credential, then the stage.
			send := func(credential string, mode config.Mode) (*httptest.ResponseRecorder, *exchange.Record) {
				ip := netip.MustParseAddr("192.0.2.1")
				rec := &exchange.Record{RequestID: "r", ClientIP: ip, Route: &exchange.Route{Name: "by-consumer", Mode: mode}}
				r := httptest.NewRequest(http.MethodGet, "/c", nil)
				r = r.WithContext(exchange.With(r.Context(), rec))
				if _, isLocked := lo.Verified(r.Context(), ip, credential); isLocked {
					t.Fatalf("Verified(%q) = locked, want the question left to the stage", credential)
				}
				if rec.Lockout.Credential != credential {
					t.Fatalf("Verified left credential %q in the record, want %q", rec.Lockout.Credential, credential)
				}
				rec.Principal = &exchange.Principal{Subject: "acme", Consumer: "acme", Plan: "gold"}
				w := httptest.NewRecorder()
				stage.ServeHTTP(w, r)
				return w, rec
			}

			w, rec := send(locked, config.ModeEnforce)
			if w.Code != http.StatusTooManyRequests || f.hits != 0 {
				t.Fatalf("locked credential: status %d, hits %d, want 429 and 0", w.Code, f.hits)
			}
			if d, _ := rec.Decisions(); d == nil || d.Reason != LayerAuthFailures {
				t.Errorf("locked credential: decision %+v, want auth_failures", d)
			}
			if rec.Principal != nil {
				t.Errorf("locked credential: principal %+v recorded, want none (as the authentication stage answered)", rec.Principal)
			}
			if got := w.Header().Get("Retry-After"); got != "60" {
				t.Errorf("locked credential: Retry-After %q, want 60", got)
			}

			// The refused request took no token and counted no quota.
			w, _ = send(free, config.ModeEnforce)
			if w.Code != http.StatusOK {
				t.Fatalf("free credential: status %d, want 200", w.Code)
			}
			if got := w.Header().Values("RateLimit"); !contains(got, `"by-consumer";r=1;t=30`) || !contains(got, `"gold-quota";r=2;`) {
				t.Errorf("free credential: RateLimit %q, want by-consumer r=1 and gold-quota r=2", got)
			}

			// Report mode: the lockout would deny; the request goes on,
			// takes its tokens and counts.
			w, rec = send(locked, config.ModeReport)
			if w.Code != http.StatusOK || f.hits != 2 {
				t.Fatalf("locked credential in report mode: status %d, hits %d, want 200 and 2", w.Code, f.hits)
			}
			if _, would := rec.Decisions(); len(would) != 1 || would[0].Reason != LayerAuthFailures {
				t.Errorf("report mode: would-deny %+v, want auth_failures", would)
			}
			if rec.Principal == nil {
				t.Error("report mode: principal removed, want it kept")
			}
			if got := w.Header().Values("RateLimit"); !contains(got, `"by-consumer";r=0;t=60`) || !contains(got, `"gold-quota";r=1;`) {
				t.Errorf("report mode: RateLimit %q, want by-consumer r=0 and gold-quota r=1", got)
			}

			// A request the route limit refuses under report mode counts
			// against the quota, as it did before batches (a second call,
			// after the refusal).
			w, rec = send(free, config.ModeReport)
			if _, would := rec.Decisions(); w.Code != http.StatusOK || len(would) != 1 || would[0].Reason != LayerRoute {
				t.Fatalf("route limit in report mode: status %d, would-deny %+v, want 200 and route", w.Code, would)
			}
			if got := w.Header().Values("RateLimit"); !contains(got, `"gold-quota";r=0;`) {
				t.Errorf("route limit in report mode: RateLimit %q, want gold-quota r=0 (counted)", got)
			}
		})
	}
}

func contains(vals []string, prefix string) bool {
	for _, v := range vals {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}
