package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run measured.
type wrkResult struct {
	RequestsPerSec float64
	P50, P99       time.Duration
	// Non2xx counts responses that were not 2xx or 3xx; SocketErrors adds
	// up connect, read, write and timeout errors. Either makes a
	// measurement worthless: the target is misconfigured or overloaded.
	Non2xx       int
	SocketErrors int
}

// check returns an error when the run saw failed requests.
func (r wrkResult) check() error {
	if r.Non2xx > 0 || r.SocketErrors > 0 {
		return fmt.Errorf("%d non-2xx responses and %d socket errors", r.Non2xx, r.SocketErrors)
	}
	return nil
}

// wrkRun describes one invocation of wrk.
type wrkRun struct {
	CPU         string // taskset CPU list wrk is pinned to
	Threads     int
	Connections int
	Duration    time.Duration
	Headers     []string // "Name: value"
	URL         string
}

// argv returns the command line: taskset -c CPU wrk -tT -cC -dD --latency
// [-H header]... URL.
func (w wrkRun) argv() []string {
	argv := []string{
		"taskset", "-c", w.CPU, "wrk",
		"-t" + strconv.Itoa(w.Threads),
		"-c" + strconv.Itoa(w.Connections),
		"-d" + wrkDuration(w.Duration),
		"--latency",
	}
	for _, h := range w.Headers {
		argv = append(argv, "-H", h)
	}
	return append(argv, w.URL)
}

// wrkDuration spells d the way wrk reads it: whole seconds ("10s"), at
// least one.
func wrkDuration(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

// run executes wrk and parses its report.
func (w wrkRun) run(ctx context.Context) (wrkResult, error) {
	argv := w.argv()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = childProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("run %s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, fmt.Errorf("parse wrk output: %w\n%s", err, out)
	}
	return res, nil
}

// parseWrk reads the report that `wrk --latency` prints: the Requests/sec
// line, the 50% and 99% lines of the latency distribution, and the optional
// "Non-2xx or 3xx responses" and "Socket errors" lines.
func parseWrk(out string) (wrkResult, error) {
	var res wrkResult
	var haveRPS, haveP50, haveP99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var err error
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(fields) == 2:
			res.RequestsPerSec, err = strconv.ParseFloat(fields[1], 64)
			haveRPS = true
		case fields[0] == "50%" && len(fields) == 2:
			res.P50, err = parseWrkDuration(fields[1])
			haveP50 = true
		case fields[0] == "99%" && len(fields) == 2:
			res.P99, err = parseWrkDuration(fields[1])
			haveP99 = true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(fields) == 5:
			res.Non2xx, err = strconv.Atoi(fields[4])
		case strings.HasPrefix(line, "Socket errors:"):
			res.SocketErrors, err = parseSocketErrors(strings.TrimPrefix(line, "Socket errors:"))
		}
		if err != nil {
			return wrkResult{}, fmt.Errorf("line %q: %w", line, err)
		}
	}
	switch {
	case !haveRPS:
		return wrkResult{}, errors.New("no Requests/sec line")
	case !haveP50 || !haveP99:
		return wrkResult{}, errors.New("no latency distribution (run wrk with --latency)")
	}
	return res, nil
}

// parseWrkDuration reads wrk's time format: a decimal number and one of the
// units us, ms, s, m, h.
func parseWrkDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("duration %q: no number", s)
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	var unit time.Duration
	switch s[i:] {
	case "us":
		unit = time.Microsecond
	case "ms":
		unit = time.Millisecond
	case "s":
		unit = time.Second
	case "m":
		unit = time.Minute
	case "h":
		unit = time.Hour
	default:
		return 0, fmt.Errorf("duration %q: unknown unit %q", s, s[i:])
	}
	return time.Duration(n * float64(unit)), nil
}

// parseSocketErrors adds up "connect 0, read 3, write 0, timeout 12".
func parseSocketErrors(s string) (int, error) {
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		fields := strings.Fields(part)
		if len(fields) != 2 {
			return 0, fmt.Errorf("socket errors %q: want \"kind count\" pairs", s)
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil {
			return 0, fmt.Errorf("socket errors %q: %w", s, err)
		}
		total += n
	}
	return total, nil
}
