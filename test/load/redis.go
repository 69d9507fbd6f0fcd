package main

import (
	"context"

	"github.com/bulwark-gateway/bulwark/internal/redisserver"
)

// redisServer is the run's redis-server, the store of the
// bulwark-ratelimit-redis target: one for the whole run, on a loopback
// port, started before the first round and stopped (killed by its PID)
// when the run ends.
type redisServer struct {
	url string // redis://127.0.0.1:PORT/0, what the target's config names
	srv *redisserver.Server
}

// redisOptions configures the run's redis-server: on loopback only, with
// nothing written to disk (no RDB snapshots, no append-only file, so no
// fork or fsync lands in a measurement), its working directory dir.
//
// It is pinned to cpu, the proxies' CPU, like the upstream. On wrk's CPU
// it would compete with the load generator, which then no longer drives
// every target alike; on the proxies' CPU its work is charged to the
// route that uses it, as the upstream's is to every target. That is
// pessimistic (in production Redis has a machine of its own, and only
// the round trip is the gateway's cost), so a PASS of the Redis target
// is a safe one, and a FAIL must be read with this in mind.
func redisOptions(cpu, dir string) redisserver.Options {
	return redisserver.Options{Dir: dir, Prefix: []string{"taskset", "-c", cpu}}
}

// startRedis starts the run's redis-server, pinned to cpu (see
// redisOptions), with dir as its working directory, and waits until it
// answers PING. The kernel kills it if the harness dies.
func startRedis(ctx context.Context, cpu, dir string) (*redisServer, error) {
	srv, err := redisserver.Start(ctx, redisOptions(cpu, dir))
	if err != nil {
		return nil, err
	}
	return &redisServer{url: srv.URL(0), srv: srv}, nil
}

// stop kills the server by its PID and waits for it to exit.
func (s *redisServer) stop() { _ = s.srv.Stop() } // dir is the run's: nothing to remove
