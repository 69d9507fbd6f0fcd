// Command load is Bulwark's load harness (make bench). It measures, in one
// run and with the same load generator and settings, a fixed upstream
// directly, a tuned bare httputil.ReverseProxy in front of it, and bulwark
// in front of it (a pass-through route, a JWT route, an API-key route
// with a per-consumer rate limit counted locally or in Redis, the
// pass-through route with the audit log writing denials only or every
// request to a file, a POST route with and without OpenAPI validation of
// a ~1 KB JSON body, and a route with and without response filtering of a
// ~2.5 KB JSON document), and checks each bulwark route with that route's
// limits: against the bare proxy; for the rate-limited routes, against the
// pass-through route; for the route that audits every request, against the
// one that audits denials only; for the validated route, against the bare
// proxy given the same POST; for the filtered route, against the same
// document unfiltered.
//
//	go run ./test/load [-rounds 3] [-duration 10s] [-connections 32] [-targets a,b,...] [-out FILE] [-bulwark PATH]
//
// wrk runs pinned to one CPU (-wrk-cpu), the upstream and the proxy under
// test to another (-proxy-cpu); only one proxy runs at a time. Rounds are
// interleaved (direct, bare, bulwark; direct, bare, bulwark; ...), each
// target is warmed up before it is measured, and the report gives medians.
// The upstream and the bare proxy are this program re-run in a role
// (-role upstream, -role bare), each its own process. Every child process
// is killed when the harness exits, however it exits. The JWT route's
// token is minted by the harness, with a key made for the run, and the
// key set is served by the harness itself on loopback for the whole run;
// the API key is made for the run too. One redis-server runs for the whole
// run, on loopback and pinned with the proxies (see redis.go).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	role, listen, target string // role mode

	rounds      int
	duration    time.Duration
	warmup      time.Duration
	connections int
	threads     int
	out         string
	bulwark     string
	proxyCPU    string
	wrkCPU      string
	strict      bool
	targets     string // comma-separated names; "" is every target
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// parseFlags reads the harness's command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: go run ./test/load [flags]\n\nMeasures direct, bare reverse proxy and bulwark with wrk; prints a markdown report.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds; the report gives medians")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each target in each round (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each measurement (whole seconds, 0 for none)")
	fs.IntVar(&o.connections, "connections", 32, "keep-alive connections wrk holds open")
	fs.IntVar(&o.threads, "threads", 1, "wrk threads")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&o.bulwark, "bulwark", "", "bulwark binary to measure (default: build bin/bulwark)")
	fs.StringVar(&o.proxyCPU, "proxy-cpu", "0", "taskset CPU list for the upstream and the proxy under test")
	fs.StringVar(&o.wrkCPU, "wrk-cpu", "1", "taskset CPU list for wrk")
	fs.BoolVar(&o.strict, "strict", false, "exit with status 1 when a verdict fails")
	fs.StringVar(&o.targets, "targets", "", "comma-separated targets to measure (default: all); must include bare and the baseline of each judged target")
	fs.StringVar(&o.role, "role", "", "internal: run as the upstream or the bare proxy")
	fs.StringVar(&o.listen, "listen", "", "internal: address of a role")
	fs.StringVar(&o.target, "target", "", "internal: upstream URL of the bare role")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	switch {
	case fs.NArg() > 0:
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.rounds < 1:
		return options{}, errors.New("-rounds: want at least 1")
	case o.duration < time.Second:
		return options{}, errors.New("-duration: want at least 1s")
	case o.warmup < 0:
		return options{}, errors.New("-warmup: must not be negative")
	case o.connections < 1 || o.threads < 1 || o.threads > o.connections:
		return options{}, errors.New("-connections and -threads: want 1 <= threads <= connections")
	case o.role != "" && o.role != "upstream" && o.role != "bare" && o.role != bareTimeoutsName:
		return options{}, fmt.Errorf("-role %q: want upstream, bare or %s", o.role, bareTimeoutsName)
	case o.role != "" && o.listen == "":
		return options{}, fmt.Errorf("-role %s needs -listen", o.role)
	case (o.role == "bare" || o.role == bareTimeoutsName) && o.target == "":
		return options{}, fmt.Errorf("-role %s needs -target", o.role)
	}
	if _, err := selectTargets(targets("", ""), o.targets); err != nil {
		return options{}, err
	}
	return o, nil
}

// run is the whole program: a role, or a measurement run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	switch o.role {
	case "upstream":
		return serveUpstream(ctx, o.listen)
	case "bare":
		return serveBare(ctx, o.listen, o.target, false)
	case bareTimeoutsName:
		return serveBare(ctx, o.listen, o.target, true)
	}
	rep, err := measure(ctx, o, args, stderr)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := rep.write(&b); err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return err
	}
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		if err := os.WriteFile(o.out, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if o.strict && !rep.passed() {
		return errors.New("a verdict failed")
	}
	return nil
}

// measure starts the upstream, measures every target in interleaved rounds
// and returns the report. Every process it starts is stopped before it
// returns.
func measure(ctx context.Context, o options, args []string, progress io.Writer) (report, error) {
	if err := checkMachine(o); err != nil {
		return report{}, err
	}
	// Described before anything starts, so the load average shows what
	// else the machine is doing.
	mach := describeMachine()
	bulwark, err := bulwarkBinary(ctx, o.bulwark, progress)
	if err != nil {
		return report{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return report{}, fmt.Errorf("find own executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "bulwark-load-")
	if err != nil {
		return report{}, err
	}
	// Absolute: configs name files in it (an audit log), and bulwark
	// resolves a relative path against the config file's directory.
	if dir, err = filepath.Abs(dir); err != nil {
		return report{}, err
	}
	defer os.RemoveAll(dir)
	// The validated route's OpenAPI document, which its config names by
	// this absolute path.
	if err := os.WriteFile(filepath.Join(dir, benchSpecFile), benchSpec, 0o600); err != nil {
		return report{}, err
	}

	procs := &children{}
	defer procs.stopAll()
	upstream, err := freeAddr()
	if err != nil {
		return report{}, err
	}
	up, err := procs.start("upstream", []string{"taskset", "-c", o.proxyCPU, self, "-role", "upstream", "-listen", upstream})
	if err != nil {
		return report{}, err
	}
	if err := waitReady(ctx, up, "http://"+upstream+benchPath); err != nil {
		return report{}, err
	}

	// One redis-server for the whole run, stopped by its PID when the run
	// ends.
	rds, err := startRedis(ctx, o.proxyCPU, filepath.Join(dir, "redis"))
	if err != nil {
		return report{}, err
	}
	defer rds.stop()

	// The harness issues the JWT route's token and serves the key set
	// that verifies it, once for the whole run (see issuer.go). The token
	// is minted before the targets that carry it, so targets("", "") only
	// counts them, for the token's lifetime.
	counted, err := selectTargets(targets("", ""), o.targets)
	if err != nil {
		return report{}, err
	}
	iss, err := newIssuer(time.Now(), tokenLifetime(o, len(counted)))
	if err != nil {
		return report{}, err
	}
	jwks, err := startJWKS(iss.jwks)
	if err != nil {
		return report{}, err
	}
	defer jwks.stop()

	apiKey, apiKeySHA256, err := newAPIKey()
	if err != nil {
		return report{}, err
	}

	r := &rig{
		self: self, bulwark: bulwark, upstream: upstream, dir: dir, cpu: o.proxyCPU,
		jwksURL: jwks.url, redisURL: rds.url, apiKeySHA256: apiKeySHA256, procs: procs,
	}
	tgs, err := selectTargets(targets(iss.token, apiKey), o.targets)
	if err != nil {
		return report{}, err
	}
	results := map[string][]wrkResult{}
	for round := 1; round <= o.rounds; round++ {
		for _, tg := range tgs {
			fmt.Fprintf(progress, "round %d/%d: %s\n", round, o.rounds, tg.name)
			res, err := measureOnce(ctx, r, tg, o)
			if err != nil {
				return report{}, fmt.Errorf("round %d, target %s: %w", round, tg.name, err)
			}
			results[tg.name] = append(results[tg.name], res)
		}
	}

	sums := summarize(tgs, results)
	vs, err := verdicts(sums)
	if err != nil {
		return report{}, err
	}
	var wrkNote string
	if slices.ContainsFunc(tgs, target.scripted) {
		wrkNote = "the POST targets add `-s TARGET.lua`, a generated script that sets the method, the body and its Content-Type"
	}
	return report{
		sums:     sums,
		verdicts: vs,
		machine:  mach,
		command:  commandLine(args),
		wrk:      strings.Join(wrkRun{CPU: o.wrkCPU, Threads: o.threads, Connections: o.connections, Duration: o.duration, URL: "URL"}.argv(), " "),
		wrkNote:  wrkNote,
		pinning:  fmt.Sprintf("wrk on CPU %s; the upstream, redis-server and the proxy under test on CPU %s, one proxy at a time", o.wrkCPU, o.proxyCPU),
	}, nil
}

// measureOnce starts tg, checks its answer to the request wrk will repeat,
// warms it up, measures it and stops it.
func measureOnce(ctx context.Context, r *rig, tg target, o options) (wrkResult, error) {
	var script string
	if tg.scripted() {
		script = filepath.Join(r.dir, tg.name+".lua")
		if err := os.WriteFile(script, wrkScript(tg.requestMethod(), tg.body, tg.contentType), 0o600); err != nil {
			return wrkResult{}, err
		}
	}
	inst, err := tg.start(ctx, r)
	if err != nil {
		return wrkResult{}, err
	}
	defer inst.stop()
	url := tg.url(inst)
	if err := probe(ctx, tg, url); err != nil {
		return wrkResult{}, err
	}
	load := wrkRun{CPU: o.wrkCPU, Threads: o.threads, Connections: o.connections, Headers: tg.headers, Script: script, URL: url}
	if o.warmup > 0 {
		warm := load
		warm.Duration = o.warmup
		res, err := warm.run(ctx)
		if err != nil {
			return wrkResult{}, fmt.Errorf("warm-up: %w", err)
		}
		if err := res.check(); err != nil {
			return wrkResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	load.Duration = o.duration
	res, err := load.run(ctx)
	if err != nil {
		return wrkResult{}, err
	}
	return res, res.check()
}

// probe sends tg's request to url once, as wrk will, and checks the answer
// with tg's check (by default: the upstream's answer, unchanged): a target
// that answers anything else, a validation 400 or an unfiltered document,
// would be measured doing the wrong thing.
func probe(ctx context.Context, tg target, url string) error {
	var body io.Reader
	if tg.body != nil {
		body = bytes.NewReader(tg.body)
	}
	req, err := http.NewRequestWithContext(ctx, tg.requestMethod(), url, body)
	if err != nil {
		return err
	}
	if tg.contentType != "" {
		req.Header.Set("Content-Type", tg.contentType)
	}
	for _, h := range tg.headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if err := tg.checkAnswer(resp.StatusCode, answer); err != nil {
		return fmt.Errorf("probe %s %s: %w", req.Method, url, err)
	}
	return nil
}

// checkMachine fails early, with the fix, when the run cannot work here.
func checkMachine(o options) error {
	if o.proxyCPU == o.wrkCPU {
		return errors.New("-proxy-cpu and -wrk-cpu must differ: the load generator needs its own CPU")
	}
	for _, tool := range []struct{ cmd, pkg string }{
		{"wrk", "wrk"},
		{"taskset", "util-linux"},
		{"redis-server", "redis-server"}, // the Redis rate-limit target's store
	} {
		if _, err := exec.LookPath(tool.cmd); err != nil {
			return fmt.Errorf("%s not found: run make bench, or install it: apt-get install -y %s", tool.cmd, tool.pkg)
		}
	}
	if n := runtime.NumCPU(); n < 2 {
		return fmt.Errorf("%d CPU available, want 2: wrk and the proxies need one each", n)
	}
	return nil
}

// bulwarkBinary returns path, or builds bin/bulwark at the module root when
// path is empty.
func bulwarkBinary(ctx context.Context, path string, progress io.Writer) (string, error) {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("-bulwark: %w", err)
		}
		return abs, nil
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	out := filepath.Join(root, "bin", "bulwark")
	fmt.Fprintf(progress, "building %s\n", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/bulwark")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bulwark: %w\n%s", err, b)
	}
	return out, nil
}

// commandLine spells the run as a user would type it again.
func commandLine(args []string) string {
	parts := []string{"go", "run", "./test/load"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
