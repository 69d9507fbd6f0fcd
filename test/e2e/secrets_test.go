package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// randomSecret returns 32 random hex characters: a value that can only
// appear in a log or a scrape if the gateway copied it there.
func randomSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// scrape returns the whole /metrics body of g.
func scrape(t testing.TB, g *gateway) string {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape = %d, %v; want 200", resp.StatusCode, err)
	}
	return string(body)
}

// TestSecretsStayOutOfLogsAndMetrics drives every log path a request or a
// reload can reach, at debug level, with credentials in every place a
// client puts them (DESIGN "Secrets"), and asserts that none of them
// reaches the log or /metrics.
func TestSecretsStayOutOfLogsAndMetrics(t *testing.T) {
	up := startUpstream(t, nil)
	slow, _, release := slowUpstream(t)
	defer close(release)
	ln := listenLoopback(t)
	closed := ln.Addr().String()
	ln.Close() // nothing listens here any more

	secrets := []struct{ name, value string }{
		{name: "bearer token", value: randomSecret(t)},
		{name: "session cookie", value: randomSecret(t)},
		{name: "api key", value: randomSecret(t)},
		{name: "access_token query value", value: randomSecret(t)},
		{name: "q query value", value: randomSecret(t)},
		{name: "admin token in the config", value: randomSecret(t)},
		{name: "password in a refused reload's upstream url", value: randomSecret(t)},
	}
	creds := fmt.Sprintf("Authorization: Bearer %s\r\nCookie: session=%s\r\nX-Api-Key: %s\r\n",
		secrets[0].value, secrets[1].value, secrets[2].value)
	query := fmt.Sprintf("?access_token=%s&q=%s", secrets[3].value, secrets[4].value)

	// The admin token is not used on loopback: the gateway warns about it
	// at start-up, which is one more log line that must not repeat it.
	cfg := fmt.Sprintf(`server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0", token: %q }
log: { level: debug }
upstreams:
  api: { url: "http://%s" }
  down: { url: "http://%s" }
  slow: { url: "http://%s", response_header_timeout: 300ms }
routes:
  - { name: ok, method: GET, path: /ok, upstream: api, auth: none }
  - { name: upload, method: POST, path: /upload, upstream: api, auth: none, max_body_size: 1KiB }
  - { name: observe, method: POST, path: /observe, upstream: api, auth: none, max_body_size: 1KiB, mode: report }
  - { name: down, method: GET, path: /down, upstream: down, auth: none }
  - { name: slow, method: GET, path: /slow, upstream: slow, auth: none }
`, secrets[5].value, up.addr, closed, slow.addr)
	g := startGateway(t, cfg, nil)

	requests := []struct {
		name, method, path string
		body               int
		want               int
	}{
		{name: "allowed", method: "GET", path: "/ok", want: http.StatusOK},
		{name: "no route", method: "GET", path: "/missing", want: http.StatusNotFound},
		{name: "wrong method", method: "DELETE", path: "/ok", want: http.StatusMethodNotAllowed},
		{name: "non-canonical path", method: "GET", path: "/ok/../ok", want: http.StatusBadRequest},
		{name: "body over the limit", method: "POST", path: "/upload", body: 2048, want: http.StatusRequestEntityTooLarge},
		{name: "report-mode would-deny", method: "POST", path: "/observe", body: 4096, want: http.StatusOK},
		{name: "upstream down", method: "GET", path: "/down", want: http.StatusBadGateway},
		{name: "upstream too slow", method: "GET", path: "/slow", want: http.StatusGatewayTimeout},
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, g.public)
			resp := c.roundTrip(t, fmt.Sprintf("%s %s%s HTTP/1.1\r\nHost: localhost\r\n%sContent-Length: %d\r\n\r\n%s",
				tt.method, tt.path, query, creds, tt.body, strings.Repeat("b", tt.body)))
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		})
	}

	// The secrets were on the wire: the upstream saw the query.
	if last, _ := up.lastRequest(); last == nil || !strings.Contains(last.URL.RawQuery, secrets[3].value) {
		t.Fatalf("the upstream never received the request's query; the secrets were not sent")
	}

	// A reload refused because an upstream URL carries credentials: the
	// error must name the key, not repeat the URL.
	g.reload(t, strings.Replace(cfg, "upstreams:\n",
		fmt.Sprintf("upstreams:\n  leaky: { url: \"http://svc:%s@127.0.0.1:1\" }\n", secrets[6].value), 1))

	logs, metrics := g.Logs(), scrape(t, g)
	for _, s := range secrets {
		t.Run(s.name, func(t *testing.T) {
			if strings.Contains(logs, s.value) {
				t.Errorf("the %s appears in the gateway log", s.name)
			}
			if strings.Contains(metrics, s.value) {
				t.Errorf("the %s appears in /metrics", s.name)
			}
		})
	}

	// The log did record these requests and the reload, so the checks
	// above cannot pass on an empty log.
	for _, want := range []string{
		`"msg":"would deny","request_id":`,
		`"route":"observe"`,
		`"msg":"upstream request failed"`,
		`"error_class":"refused"`,
		`"error_class":"timeout"`,
		`"msg":"config reload refused`,
		`upstreams.leaky.url`,
		`admin.token`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not contain %s", want)
		}
	}
	for _, series := range []string{
		`bulwark_requests_total{code="200",method="GET",route="ok"}`,
		`bulwark_requests_total{code="404",method="GET",route="_unmatched"}`,
		`bulwark_requests_total{code="502",method="GET",route="down"}`,
		`bulwark_requests_total{code="504",method="GET",route="slow"}`,
		`bulwark_denials_total{mode="report",reason="body_too_large",route="observe",stage="edge"}`,
		`bulwark_config_reloads_total{result="failure"}`,
	} {
		if got := g.metric(t, series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
}
