package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// bareBufferSize is the size of the copy buffers the bare proxy pools.
const bareBufferSize = 32 << 10

// newBareProxy returns the reference the gateway is measured against: a
// plain httputil.ReverseProxy tuned as any production Go proxy is (Rewrite
// with SetURL and SetXForwarded, pooled 32 KiB copy buffers, 256 idle
// connections per upstream host), with no security chain at all.
func newBareProxy(target *url.URL) *httputil.ReverseProxy {
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:  transport,
		BufferPool: newBufferPool(bareBufferSize),
	}
}

// bufferPool is an httputil.BufferPool of fixed-size buffers.
type bufferPool struct {
	size int
	pool sync.Pool
}

func newBufferPool(size int) *bufferPool {
	return &bufferPool{size: size}
}

// Get returns a pooled buffer, or a new one when the pool is empty.
func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().([]byte); ok {
		return b
	}
	return make([]byte, p.size)
}

// Put returns b to the pool.
func (p *bufferPool) Put(b []byte) {
	if cap(b) >= p.size {
		// Storing a slice (not a pointer) costs one small allocation per
		// Put, as in most production proxies.
		p.pool.Put(b[:p.size])
	}
}

// serveBare is the bare-proxy role: it proxies listen to target until ctx
// is cancelled.
func serveBare(ctx context.Context, listen, target string, timeouts bool) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("-target %q: want an absolute URL", target)
	}
	if !timeouts {
		return serveRole(ctx, listen, newBareProxy(u))
	}
	return serveRoleWith(ctx, &http.Server{
		Addr:              listen,
		Handler:           newBareProxy(u),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	})
}
