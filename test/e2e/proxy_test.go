package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestUpstreamFailures(t *testing.T) {
	ln := listenLoopback(t)
	closed := ln.Addr().String()
	ln.Close() // nothing listens here any more

	slow, arrived, release := slowUpstream(t)
	defer close(release)
	cfg := fmt.Sprintf(`server: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
upstreams:
  down: { url: "http://%s" }
  slow: { url: "http://%s", response_header_timeout: 300ms }
routes:
  - { name: down, method: GET, path: /down, upstream: down, auth: none }
  - { name: slow, method: GET, path: /slow, upstream: slow, auth: none }
`, closed, slow.addr)
	g := startGateway(t, cfg, nil)

	resp, err := http.Get(g.URL("/down"))
	if err != nil {
		t.Fatal(err)
	}
	p := checkProblem(t, resp, http.StatusBadGateway, "bad-gateway")
	if strings.Contains(p.Detail, closed) || strings.Contains(p.Detail, "refused") {
		t.Errorf("502 detail %q leaks internal detail", p.Detail)
	}

	resp, err = http.Get(g.URL("/slow"))
	if err != nil {
		t.Fatal(err)
	}
	<-arrived
	checkProblem(t, resp, http.StatusGatewayTimeout, "gateway-timeout")
}

func TestServerSentEvents(t *testing.T) {
	next := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-next // the stream stays open until the client has seen the first event
		fmt.Fprint(w, "data: second\n\n")
	}))
	g := startGateway(t, baseConfig("http://"+up.addr, route("events", "GET", "/events")), nil)
	resp, err := http.Get(g.URL("/events"))
	if err != nil {
		close(next)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	close(next)
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event = %q, %v; want it delivered while the stream is open", line, err)
	}
}
