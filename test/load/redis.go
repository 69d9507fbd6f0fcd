package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// redisServer is the run's redis-server, the store of the
// bulwark-ratelimit-redis target: one for the whole run, on a loopback
// port, started before the first round and stopped (killed by its PID)
// when the run ends.
type redisServer struct {
	url  string // redis://127.0.0.1:PORT/0, what the target's config names
	proc *proc
}

// redisArgv is the command line of the run's redis-server: on addr only,
// with nothing written to disk (no RDB snapshots, no append-only file, so
// no fork or fsync lands in a measurement), its working directory dir.
//
// It is pinned to cpu, the proxies' CPU, like the upstream. On wrk's CPU
// it would compete with the load generator, which then no longer drives
// every target alike; on the proxies' CPU its work is charged to the
// route that uses it, as the upstream's is to every target. That is
// pessimistic (in production Redis has a machine of its own, and only
// the round trip is the gateway's cost), so a PASS of the Redis target
// is a safe one, and a FAIL must be read with this in mind.
func redisArgv(cpu, addr, dir string) ([]string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("redis address %q: %w", addr, err)
	}
	return []string{
		"taskset", "-c", cpu, "redis-server",
		"--bind", host, "--port", port,
		"--save", "", "--appendonly", "no",
		"--dir", dir,
	}, nil
}

// startRedis starts the run's redis-server through procs, pinned to cpu
// (see redisArgv), with dir as its working directory, and waits until it
// answers PING.
func startRedis(ctx context.Context, procs *children, cpu, dir string) (*redisServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	argv, err := redisArgv(cpu, addr, dir)
	if err != nil {
		return nil, err
	}
	p, err := procs.start("redis-server", argv)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, p, addr, func() error { return redisPing(addr) }); err != nil {
		p.stop()
		return nil, err
	}
	return &redisServer{url: "redis://" + addr + "/0", proc: p}, nil
}

// stop kills the server by its PID and waits for it to exit.
func (s *redisServer) stop() { s.proc.stop() }

// redisPing sends one PING in the Redis protocol and wants +PONG back.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimRight(line, "\r\n"); line != "+PONG" {
		return fmt.Errorf("PING answered %q, want +PONG", line)
	}
	return nil
}
