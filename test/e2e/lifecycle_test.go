package e2e

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestReload(t *testing.T) {
	up := startUpstream(t, nil)
	url := "http://" + up.addr
	g := startGateway(t, baseConfig(url, route("a", "GET", "/a")), nil)
	if code, _ := get(t, g.URL("/b")); code != 404 {
		t.Fatalf("GET /b before reload = %d, want 404", code)
	}

	t.Run("good config is applied", func(t *testing.T) {
		g.reload(t, baseConfig(url, route("a", "GET", "/a"), route("b", "GET", "/b")))
		if code, _ := get(t, g.URL("/b")); code != 200 {
			t.Errorf("GET /b after reload = %d, want 200", code)
		}
		if v := g.metric(t, `bulwark_config_reloads_total{result="success"}`); v != 1 {
			t.Errorf("reloads_total{success} = %v, want 1", v)
		}
	})

	t.Run("bad config is refused and the old one keeps serving", func(t *testing.T) {
		g.reload(t, baseConfig(url, route("a", "GET", "/a"), route("b", "GET", "/b"), route("c", "GET", "/c"))+
			"  - name: broken\n    method: GET\n    path: /d\n    upstream: missing\n    auth: none\n")
		if code, _ := get(t, g.URL("/b")); code != 200 {
			t.Errorf("GET /b after a refused reload = %d, want 200 (old config)", code)
		}
		if code, _ := get(t, g.URL("/c")); code != 404 {
			t.Errorf("GET /c after a refused reload = %d, want 404 (the new config must not be half-applied)", code)
		}
		if v := g.metric(t, `bulwark_config_reloads_total{result="failure"}`); v != 1 {
			t.Errorf("reloads_total{failure} = %v, want 1", v)
		}
		if v := g.metric(t, `bulwark_config_last_reload_successful`); v != 0 {
			t.Errorf("last_reload_successful = %v, want 0", v)
		}
		if !strings.Contains(g.Logs(), "bulwark.yaml:") || !strings.Contains(g.Logs(), "routes[3].upstream") {
			t.Errorf("the refused reload is not logged with file:line:col and path:\n%s", g.Logs())
		}
	})

	t.Run("broken YAML is refused", func(t *testing.T) {
		g.reload(t, "routes: [\n")
		if code, _ := get(t, g.URL("/a")); code != 200 {
			t.Errorf("GET /a after a refused reload = %d, want 200", code)
		}
	})
}

// slowUpstream answers only when release is closed, and reports each
// request's arrival on arrived.
func slowUpstream(t testing.TB) (*upstream, chan struct{}, chan struct{}) {
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "finished")
	}))
	return up, arrived, release
}

type result struct {
	code int
	body string
	err  error
}

func getAsync(url string) chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		ch <- result{code: resp.StatusCode, body: string(body), err: err}
	}()
	return ch
}

func TestInFlightSurvivesReload(t *testing.T) {
	up, arrived, release := slowUpstream(t)
	url := "http://" + up.addr
	g := startGateway(t, baseConfig(url, route("slow", "GET", "/slow")), nil)

	res := getAsync(g.URL("/slow"))
	<-arrived
	// The new config no longer has the route the request is on.
	g.reload(t, baseConfig(url, route("other", "GET", "/other")))
	if code, _ := get(t, g.URL("/slow")); code != 404 {
		t.Errorf("a new request to the removed route = %d, want 404", code)
	}
	close(release)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Errorf("in-flight request across reload = %d %q %v, want 200 \"finished\"", r.code, r.body, r.err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	up, arrived, release := slowUpstream(t)
	g := startGateway(t, baseConfig("http://"+up.addr, route("slow", "GET", "/slow")), nil)

	res := getAsync(g.URL("/slow"))
	<-arrived
	g.signal(t, syscall.SIGTERM)
	g.waitLog(t, "shutting down")
	// Draining: readiness is withdrawn while the request is still running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + g.admin + "/readyz")
		if err != nil {
			break // the admin listener may already be closing: also not ready
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d while draining", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-g.exited:
		t.Fatal("bulwark exited before the in-flight request finished")
	default:
	}
	close(release)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Errorf("in-flight request across shutdown = %d %q %v, want 200 \"finished\"", r.code, r.body, r.err)
	}
	if code := g.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}
