// Command demo-upstream serves a small sample orders API for the Bulwark
// demo (make demo) and for tests that need a realistic upstream, and a demo
// identity provider under /demo-idp/ that signs JWTs for the demo's
// authentication (loopback only: it gives a token to anyone who asks). It
// logs one line per request to stderr, with the caller the gateway named,
// so the demo shows exactly which requests reached the upstream and as
// whom: a request the gateway denied must never appear in this log.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout bounds how long in-flight requests may take after a
// signal; event streams end at once because their context is cancelled.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo-upstream:", err)
		os.Exit(1)
	}
}

// run parses args, listens and serves until ctx is cancelled.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo-upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: demo-upstream [-listen ADDR] [-event-interval DURATION]")
		fmt.Fprintln(fs.Output(), "\nServes a sample orders API: GET /orders, GET /orders/{id}, POST /orders,")
		fmt.Fprintln(fs.Output(), "GET /orders/{id}/events (server-sent events) and GET /healthz, and a demo")
		fmt.Fprintln(fs.Output(), "identity provider: GET /demo-idp/jwks.json, GET /demo-idp/token?sub=alice&scope=orders:read.")
		fmt.Fprintln(fs.Output(), "It listens on loopback only: the identity provider signs a token for anyone who asks.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	interval := fs.Duration("event-interval", 500*time.Millisecond, "pause between two server-sent events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *interval < 0 {
		return fmt.Errorf("-event-interval %v: must not be negative", *interval)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Checked on the bound address, so localhost and [::1] pass and
	// 0.0.0.0 or a host name that resolves elsewhere do not.
	if addr, ok := ln.Addr().(*net.TCPAddr); !ok || !addr.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("-listen %s: must be a loopback address: the demo identity provider signs a token for anyone who asks", *listen)
	}
	provider, err := newIDP(issuerFor(ln.Addr()), time.Now)
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo identity provider: %w", err)
	}
	logger := log.New(stderr, "upstream: ", log.LstdFlags|log.Lmsgprefix)
	logger.Printf("listening on http://%s; demo identity provider %s (kid %s)", ln.Addr(), provider.issuer, provider.kid)
	return serve(ctx, ln, accessLog(logger, newAPI(newOrderStore(), *interval, provider)))
}

// serve serves h on ln until ctx is cancelled, then shuts down gracefully.
// Request contexts derive from ctx, so long event streams end on shutdown.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc // http.ErrServerClosed, expected after Shutdown
	return nil
}
