package e2e

import (
	"testing"
	"time"
)

// waitFor polls cond until it holds, for at most within; what describes
// the awaited state for the failure message.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadOnFileChange: with reload.watch, rewriting the config file is
// enough (no SIGHUP): a good file is applied, a bad one is refused and
// counted while the running routes keep serving, and a fixed one is
// applied again.
func TestReloadOnFileChange(t *testing.T) {
	up := startUpstream(t, nil)
	url := "http://" + up.addr
	const watch = "reload: { watch: true, debounce: 100ms }\n"
	g := startGateway(t, baseConfig(url, route("a", "GET", "/a"))+watch, nil)
	if code, _ := get(t, g.URL("/b")); code != 404 {
		t.Fatalf("GET /b before the change = %d, want 404", code)
	}

	t.Run("added route is served", func(t *testing.T) {
		writeFile(t, g.configPath, []byte(baseConfig(url, route("a", "GET", "/a"), route("b", "GET", "/b"))+watch))
		waitFor(t, 10*time.Second, "GET /b answers 200 after the file changed", func() bool {
			code, _ := get(t, g.URL("/b"))
			return code == 200
		})
		if code, _ := get(t, g.URL("/a")); code != 200 {
			t.Errorf("GET /a after the change = %d, want 200", code)
		}
	})

	t.Run("broken file is refused and the running routes keep serving", func(t *testing.T) {
		writeFile(t, g.configPath, []byte(baseConfig(url, route("a", "GET", "/a"), route("b", "GET", "/b"), route("c", "GET", "/c"))+
			"  - { name: broken, method: GET, path: /d, upstream: missing, auth: none }\n"+watch))
		// Logged after the failure was counted.
		g.waitLog(t, `"msg":"config reload refused`)
		// At least one: a slow rename may reach the watcher as two bursts
		// of events, each a reload of the same broken file.
		if v := g.metric(t, `bulwark_config_reloads_total{result="failure"}`); v < 1 {
			t.Errorf("reloads_total{failure} = %v, want at least 1", v)
		}
		if v := g.metric(t, `bulwark_config_last_reload_successful`); v != 0 {
			t.Errorf("last_reload_successful = %v, want 0", v)
		}
		for _, tt := range []struct {
			path string
			want int
		}{
			{path: "/a", want: 200},
			{path: "/b", want: 200},
			{path: "/c", want: 404}, // the refused file must not be half-applied
		} {
			if code, _ := get(t, g.URL(tt.path)); code != tt.want {
				t.Errorf("GET %s after a refused reload = %d, want %d", tt.path, code, tt.want)
			}
		}
	})

	t.Run("fixed file is applied", func(t *testing.T) {
		writeFile(t, g.configPath, []byte(baseConfig(url, route("a", "GET", "/a"), route("c", "GET", "/c"))+watch))
		// Only a successful reload sets the gauge back to 1.
		waitFor(t, 10*time.Second, "last_reload_successful is 1 after the file was fixed", func() bool {
			return g.metric(t, `bulwark_config_last_reload_successful`) == 1
		})
		for _, tt := range []struct {
			path string
			want int
		}{
			{path: "/a", want: 200},
			{path: "/b", want: 404}, // removed by the fixed file
			{path: "/c", want: 200},
		} {
			if code, _ := get(t, g.URL(tt.path)); code != tt.want {
				t.Errorf("GET %s after the fixed file = %d, want %d", tt.path, code, tt.want)
			}
		}
	})
}
