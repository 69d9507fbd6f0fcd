package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestBareProxyForwards(t *testing.T) {
	var gotPath, gotXFF string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotXFF = r.URL.Path, r.Header.Get("X-Forwarded-For")
		newUpstream().ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newBareProxy(target)
	t.Cleanup(proxy.Transport.(*http.Transport).CloseIdleConnections)
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)

	resp, err := front.Client().Get(front.URL + benchPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != benchBody {
		t.Errorf("GET %s = %d %q, want 200 %q", benchPath, resp.StatusCode, body, benchBody)
	}
	if gotPath != benchPath {
		t.Errorf("upstream path = %q, want %q", gotPath, benchPath)
	}
	if gotXFF != "127.0.0.1" {
		t.Errorf("upstream X-Forwarded-For = %q, want %q", gotXFF, "127.0.0.1")
	}
}

func TestBareProxyTuning(t *testing.T) {
	proxy := newBareProxy(&url.URL{Scheme: "http", Host: "127.0.0.1:1"})
	if got, want := proxy.Transport.(*http.Transport).MaxIdleConnsPerHost, 256; got != want {
		t.Errorf("MaxIdleConnsPerHost = %d, want %d", got, want)
	}
	if proxy.BufferPool == nil {
		t.Fatalf("BufferPool = nil, want a pool")
	}
	if got, want := len(proxy.BufferPool.Get()), bareBufferSize; got != want {
		t.Errorf("len(BufferPool.Get()) = %d, want %d", got, want)
	}
}

func TestBufferPoolReturnsFullSizeBuffers(t *testing.T) {
	tests := []struct {
		name string
		put  []byte
	}{
		{name: "full buffer", put: make([]byte, 64)},
		{name: "resliced buffer", put: make([]byte, 64)[:3]},
		{name: "short buffer is dropped", put: make([]byte, 8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newBufferPool(64)
			p.Put(tt.put)
			if got := len(p.Get()); got != 64 {
				t.Errorf("len(Get()) after Put(len %d) = %d, want 64", len(tt.put), got)
			}
		})
	}
}

func TestServeBareRefusesRelativeTarget(t *testing.T) {
	err := serveBare(t.Context(), "127.0.0.1:0", "/just/a/path", false)
	if err == nil || !strings.Contains(err.Error(), "absolute URL") {
		t.Errorf("serveBare(relative target) = %v, want an error about an absolute URL", err)
	}
}
