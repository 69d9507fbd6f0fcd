// Command demo-upstream serves a small sample orders API for the Bulwark
// demo (make demo) and for tests that need a realistic upstream. It uses
// only the standard library and logs one line per request to stderr, so the
// demo shows exactly which requests reached the upstream: a request the
// gateway denied must never appear in this log.
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
		fmt.Fprintln(fs.Output(), "GET /orders/{id}/events (server-sent events) and GET /healthz.")
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
	logger := log.New(stderr, "upstream: ", log.LstdFlags|log.Lmsgprefix)
	logger.Printf("listening on http://%s", ln.Addr())
	return serve(ctx, ln, accessLog(logger, newAPI(newOrderStore(), *interval)))
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
