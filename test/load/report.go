package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// summary is one target's medians over the rounds.
type summary struct {
	name, what string
	limits     *limits // nil: not judged
	rps        float64
	p50, p99   time.Duration
	rounds     []wrkResult
}

// summarize returns the medians of each target's rounds, in target order.
func summarize(tgs []target, results map[string][]wrkResult) []summary {
	out := make([]summary, 0, len(tgs))
	for _, tg := range tgs {
		rs := results[tg.name]
		s := summary{name: tg.name, what: tg.what, limits: tg.limits, rounds: rs}
		s.rps = median(rs, func(r wrkResult) float64 { return r.RequestsPerSec })
		s.p50 = time.Duration(median(rs, func(r wrkResult) float64 { return float64(r.P50) }))
		s.p99 = time.Duration(median(rs, func(r wrkResult) float64 { return float64(r.P99) }))
		out = append(out, s)
	}
	return out
}

// median returns the median of f over rs (the mean of the middle two for an
// even count), 0 for none.
func median(rs []wrkResult, f func(wrkResult) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	mid := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[mid]
	}
	return (xs[mid-1] + xs[mid]) / 2
}

// verdict is one pass/fail line of the report.
type verdict struct {
	target   string
	baseline string // the target it is compared with
	metric   string // "req/s" or "p99"
	ratio    float64
	limit    float64
	pass     bool
}

func (v verdict) String() string {
	word, cmp := "PASS", "≥"
	if !v.pass {
		word = "FAIL"
	}
	if v.metric == "p99" {
		cmp = "≤"
	}
	return fmt.Sprintf("%s %s %s: %.2f× %s (target %s %.2f×)", word, v.target, v.metric, v.ratio, v.baseline, cmp, v.limit)
}

// verdicts compares every judged target with its baseline (bare unless
// its limits name another) in the same run, one verdict per limit it
// sets, in target order, req/s before p99. The bare proxy must have been
// measured, whatever the baselines: the report compares every target with
// it.
func verdicts(sums []summary) ([]verdict, error) {
	byName := make(map[string]summary, len(sums))
	for _, s := range sums {
		byName[s.name] = s
	}
	if bare, ok := byName[bareName]; !ok || bare.rps <= 0 || bare.p99 <= 0 {
		return nil, errors.New("no measurement of the bare proxy to compare with")
	}
	var out []verdict
	for _, s := range sums {
		if s.limits == nil {
			continue
		}
		name := s.limits.against()
		if name == s.name {
			return nil, fmt.Errorf("target %s is compared with itself", s.name)
		}
		base, ok := byName[name]
		if !ok || (s.limits.minRPS > 0 && base.rps <= 0) || (s.limits.maxP99 > 0 && base.p99 <= 0) {
			return nil, fmt.Errorf("no measurement of %s to compare %s with", name, s.name)
		}
		if lim := s.limits.minRPS; lim > 0 {
			rps := s.rps / base.rps
			out = append(out, verdict{target: s.name, baseline: name, metric: "req/s", ratio: rps, limit: lim, pass: rps >= lim})
		}
		if lim := s.limits.maxP99; lim > 0 {
			p99 := float64(s.p99) / float64(base.p99)
			out = append(out, verdict{target: s.name, baseline: name, metric: "p99", ratio: p99, limit: lim, pass: p99 <= lim})
		}
	}
	return out, nil
}

// String spells l as the report's targets column, each metric it judges
// with its baseline: "req/s ≥ 0.90× bare, p99 ≤ 1.20× bare"; "-" for a
// target not judged.
func (l *limits) String() string {
	if l == nil {
		return "-"
	}
	var parts []string
	if l.minRPS > 0 {
		parts = append(parts, fmt.Sprintf("req/s ≥ %.2f× %s", l.minRPS, l.against()))
	}
	if l.maxP99 > 0 {
		parts = append(parts, fmt.Sprintf("p99 ≤ %.2f× %s", l.maxP99, l.against()))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// report is everything the harness prints.
type report struct {
	sums     []summary
	verdicts []verdict
	machine  machine
	command  string // how the harness was run
	wrk      string // the wrk command line, with URL for the target's URL
	wrkNote  string // what some targets add to it, "" for nothing
	pinning  string
}

// write renders r as markdown.
func (r report) write(w io.Writer) error {
	var b strings.Builder
	var bare summary
	for _, s := range r.sums {
		if s.name == bareName {
			bare = s
		}
	}
	rounds := 0
	if len(r.sums) > 0 {
		rounds = len(r.sums[0].rounds)
	}
	plural := "s"
	if rounds == 1 {
		plural = ""
	}
	fmt.Fprintf(&b, "## Load test: medians of %d interleaved round%s\n\n", rounds, plural)
	b.WriteString("| target | what | req/s | p50 | p99 | req/s vs bare | p99 vs bare | targets |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, s := range r.sums {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.name, s.what, formatRPS(s.rps), formatLatency(s.p50), formatLatency(s.p99),
			ratio(s.rps, bare.rps), ratio(float64(s.p99), float64(bare.p99)), s.limits.String())
	}
	b.WriteString("\nVerdicts:\n\n")
	for _, v := range r.verdicts {
		fmt.Fprintf(&b, "- %s\n", v)
	}
	b.WriteString("\nEach round, req/s and p99:\n\n")
	for _, s := range r.sums {
		parts := make([]string, len(s.rounds))
		for i, rr := range s.rounds {
			parts[i] = formatRPS(rr.RequestsPerSec) + " / " + formatLatency(rr.P99)
		}
		fmt.Fprintf(&b, "- %s: %s\n", s.name, strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "\nMachine: %s\n", r.machine)
	fmt.Fprintf(&b, "Pinning: %s\n", r.pinning)
	fmt.Fprintf(&b, "Command: `%s`\n", r.command)
	if r.wrkNote != "" {
		fmt.Fprintf(&b, "Load generator: `%s`; %s\n", r.wrk, r.wrkNote)
	} else {
		fmt.Fprintf(&b, "Load generator: `%s`\n", r.wrk)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// passed reports whether every verdict passed.
func (r report) passed() bool {
	for _, v := range r.verdicts {
		if !v.pass {
			return false
		}
	}
	return true
}

// formatRPS prints requests/s as a whole number with thousands separators.
func formatRPS(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatLatency prints d in milliseconds with two decimals.
func formatLatency(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// ratio prints x/base as "0.95×", or "-" without a base.
func ratio(x, base float64) string {
	if base <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", x/base)
}
