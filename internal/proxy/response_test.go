package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// upper is a response stage that upper-cases the body, so a test can see
// that the stage saw the decoded body and that its output was sent.
type upper struct{ seen atomic.Int64 }

func (u *upper) Respond(_ *http.Request, resp *Response) error {
	u.seen.Add(1)
	resp.SetBody(bytes.ToUpper(resp.Body))
	return nil
}

// refuse is a response stage that refuses every response.
type refuse struct{}

func (refuse) Respond(*http.Request, *Response) error {
	return &Refusal{Problem: problem.SensitiveData()}
}

// look is a response stage that only reads.
type look struct{ body []byte }

func (l *look) Respond(_ *http.Request, resp *Response) error {
	l.body = bytes.Clone(resp.Body)
	return nil
}

func encode(t *testing.T, enc string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "raw-deflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "br":
		w = brotli.NewWriter(&buf)
	default:
		return body
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serve starts an upstream that answers with status, headers and body.
func serve(t *testing.T, status int, hdr http.Header, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestResponseDecodesForStages(t *testing.T) {
	body := []byte(`{"name":"ana"}`)
	for _, enc := range []string{"", "identity", "gzip", "deflate", "raw-deflate", "br"} {
		t.Run(enc, func(t *testing.T) {
			wire := enc
			if enc == "raw-deflate" {
				wire = "deflate"
			}
			hdr := http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}}
			if wire != "" {
				hdr.Set("Content-Encoding", wire)
			}
			srv := serve(t, http.StatusOK, hdr, encode(t, enc, body))
			stage := &upper{}
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: srv.URL})
			g := startGateway(t, u.Handler("get-order", ResponseOptions{Stages: []ResponseStage{stage}, MaxBuffer: 1 << 20}), withRecord())
			req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/", nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br") // the client asks: Go does not decode for it
			tr := &http.Transport{DisableCompression: true}
			t.Cleanup(tr.CloseIdleConnections)
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, _ := io.ReadAll(res.Body)
			if string(got) != `{"NAME":"ANA"}` {
				t.Errorf("body = %q, want the stage's output", got)
			}
			if ce := res.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding = %q, want none (identity)", ce)
			}
			if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(got)) {
				t.Errorf("Content-Length = %q, want %d", cl, len(got))
			}
			if etag := res.Header.Get("ETag"); etag != `W/"v1"` {
				t.Errorf("ETag = %q, want the weak W/\"v1\"", etag)
			}
			if stage.seen.Load() != 1 {
				t.Errorf("stage ran %d times, want 1", stage.seen.Load())
			}
		})
	}
}

func TestResponseUnchangedKeepsValidators(t *testing.T) {
	body := []byte(`{"a":1}`)
	srv := serve(t, http.StatusOK, http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}}, body)
	stage := &look{}
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: srv.URL})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{Stages: []ResponseStage{stage}, MaxBuffer: 1 << 20}), withRecord())
	res := g.get(t, "/")
	got, _ := io.ReadAll(res.Body)
	if !bytes.Equal(got, body) || !bytes.Equal(stage.body, body) {
		t.Errorf("body = %q, stage saw %q; want both %q", got, stage.body, body)
	}
	if etag := res.Header.Get("ETag"); etag != `"v1"` {
		t.Errorf("ETag = %q, want the strong \"v1\" kept: the representation did not change", etag)
	}
}

func TestResponseBufferLimit(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 2048)
	tests := []struct {
		name string
		enc  string
		body []byte
		want int
	}{
		{name: "at the limit", body: big[:1024], want: http.StatusOK},
		{name: "over the limit", body: big, want: http.StatusBadGateway},
		{name: "gzip bomb", enc: "gzip", body: bytes.Repeat([]byte("a"), 1<<20), want: http.StatusBadGateway},
		{name: "gzip within", enc: "gzip", body: big[:1000], want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{"Content-Type": {"application/json"}}
			if tt.enc != "" {
				hdr.Set("Content-Encoding", tt.enc)
			}
			srv := serve(t, http.StatusOK, hdr, encode(t, tt.enc, tt.body))
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: srv.URL})
			g := startGateway(t, u.Handler("get-order", ResponseOptions{Stages: []ResponseStage{&look{}}, MaxBuffer: 1024}), withRecord())
			res := g.get(t, "/")
			if res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.want)
			}
			if tt.want == http.StatusBadGateway {
				if p := readProblem(t, res); p.Type != problem.TypePrefix+"upstream-response-too-large" {
					t.Errorf("type = %q, want upstream-response-too-large", p.Type)
				}
			}
		})
	}
}

func TestResponseUndecodable(t *testing.T) {
	for _, tt := range []struct{ name, enc string }{
		{"unknown coding", "compress"},
		{"two codings", "gzip, br"},
		{"corrupt gzip", "gzip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, http.StatusOK, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {tt.enc}}, []byte("not compressed at all"))
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: srv.URL})
			g := startGateway(t, u.Handler("get-order", ResponseOptions{Stages: []ResponseStage{&look{}}, MaxBuffer: 1 << 20}), withRecord())
			res := g.get(t, "/")
			if res.StatusCode != http.StatusBadGateway {
				t.Fatalf("status = %d, want 502", res.StatusCode)
			}
			if p := readProblem(t, res); p.Type != problem.TypePrefix+"unreadable-upstream-response" {
				t.Errorf("type = %q", p.Type)
			}
		})
	}
}

func TestResponseRefusal(t *testing.T) {
	srv := serve(t, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(`{"card":"4111111111111111"}`))
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: srv.URL})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{Stages: []ResponseStage{refuse{}}, MaxBuffer: 1 << 20}), withRecord())
	res := g.get(t, "/")
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadGateway || bytes.Contains(raw, []byte("4111")) {
		t.Errorf("status %d body %s: want 502 without the upstream's body", res.StatusCode, raw)
	}
}

func TestResponseMasksUpstreamErrors(t *testing.T) {
	leak := "panic: runtime error at /srv/app/db.go:42 SELECT * FROM users WHERE password='hunter2'"
	tests := []struct {
		name       string
		status     int
		mask       bool
		retryAfter string
		wantLeak   bool
	}{
		{name: "500 masked", status: 500, mask: true},
		{name: "503 masked keeps Retry-After", status: 503, mask: true, retryAfter: "30"},
		{name: "599 masked", status: 599, mask: true},
		{name: "500 passed", status: 500, mask: false, wantLeak: true},
		{name: "404 never masked", status: 404, mask: true, wantLeak: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{"Content-Type": {"text/plain"}}
			if tt.retryAfter != "" {
				hdr.Set("Retry-After", tt.retryAfter)
			}
			srv := serve(t, tt.status, hdr, []byte(leak))
			f := newFixture(t)
			u := f.upstream(t, config.Upstream{URL: srv.URL})
			g := startGateway(t, u.Handler("get-order", ResponseOptions{MaskErrors: tt.mask}), withRecord())
			res := g.get(t, "/")
			raw, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Errorf("status = %d, want the upstream's %d", res.StatusCode, tt.status)
			}
			if got := bytes.Contains(raw, []byte("hunter2")); got != tt.wantLeak {
				t.Errorf("body %q carries the upstream's text: %v, want %v", raw, got, tt.wantLeak)
			}
			if !tt.wantLeak {
				if ct := res.Header.Get("Content-Type"); ct != problem.ContentType {
					t.Errorf("Content-Type = %q, want a problem", ct)
				}
				if !strings.Contains(string(raw), problem.TypePrefix+"upstream-error") {
					t.Errorf("body %s: want the upstream-error problem", raw)
				}
			}
			if got := res.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

func TestResponseStripsHeaders(t *testing.T) {
	hdr := http.Header{"Server": {"Apache/2.2.3"}, "X-Powered-By": {"PHP/5.1"}, "X-Kept": {"yes"}}
	srv := serve(t, http.StatusOK, hdr, []byte("ok"))
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: srv.URL})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{StripHeaders: []string{"Server", "X-Powered-By"}}), withRecord())
	res := g.get(t, "/")
	if res.Header.Get("X-Powered-By") != "" || strings.Contains(res.Header.Get("Server"), "Apache") {
		t.Errorf("fingerprint headers relayed: %v", res.Header)
	}
	if res.Header.Get("X-Kept") != "yes" {
		t.Errorf("X-Kept = %q, want it relayed", res.Header.Get("X-Kept"))
	}
}

func TestResponseWithoutBodySkipsStages(t *testing.T) {
	for _, tt := range []struct {
		method string
		status int
	}{{http.MethodHead, 200}, {http.MethodGet, 204}, {http.MethodGet, 304}} {
		srv := serve(t, tt.status, http.Header{"Content-Type": {"application/json"}}, nil)
		stage := &upper{}
		f := newFixture(t)
		u := f.upstream(t, config.Upstream{URL: srv.URL})
		g := startGateway(t, u.Handler("get-order", ResponseOptions{Stages: []ResponseStage{stage}, MaxBuffer: 1024}), withRecord())
		req, _ := http.NewRequest(tt.method, g.srv.URL+"/", nil)
		res := g.do(t, req)
		if res.StatusCode != tt.status || stage.seen.Load() != 0 {
			t.Errorf("%s → %d: status %d, stage ran %d times; want the status relayed and no stage", tt.method, tt.status, res.StatusCode, stage.seen.Load())
		}
	}
}

func TestResponseStagesGetWholeRepresentation(t *testing.T) {
	var gotRange atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotRange.Store(r.Header.Get("Range") + "|" + r.Header.Get("If-Range"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	f := newFixture(t)
	u := f.upstream(t, config.Upstream{URL: srv.URL})
	g := startGateway(t, u.Handler("get-order", ResponseOptions{Stages: []ResponseStage{&look{}}, MaxBuffer: 1024}), withRecord())
	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/", nil)
	req.Header.Set("Range", "bytes=0-1")
	req.Header.Set("If-Range", `"x"`)
	g.do(t, req)
	if got := gotRange.Load(); got != "|" {
		t.Errorf("upstream got Range|If-Range %q, want neither", got)
	}
}

func TestLimitedReader(t *testing.T) {
	l := &limitedReader{r: strings.NewReader("abcdef"), left: 6}
	if b, err := io.ReadAll(l); err != nil || string(b) != "abcdef" || l.over {
		t.Errorf("at the limit: %q %v over=%v", b, err, l.over)
	}
	l = &limitedReader{r: strings.NewReader("abcdefg"), left: 6}
	if _, err := io.ReadAll(l); !errors.Is(err, errBodyTooLarge) || !l.over {
		t.Errorf("over the limit: err %v over=%v", err, l.over)
	}
}
