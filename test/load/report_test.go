package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		rps  []float64
		want float64
	}{
		{name: "none", rps: nil, want: 0},
		{name: "one", rps: []float64{5}, want: 5},
		{name: "odd count, unsorted", rps: []float64{9, 1, 5}, want: 5},
		{name: "even count averages the middle two", rps: []float64{4, 1, 10, 6}, want: 5},
		{name: "outlier does not move it", rps: []float64{100, 101, 1}, want: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := make([]wrkResult, len(tt.rps))
			for i, x := range tt.rps {
				rs[i].RequestsPerSec = x
			}
			if got := median(rs, func(r wrkResult) float64 { return r.RequestsPerSec }); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.rps, got, tt.want)
			}
		})
	}
}

func TestVerdicts(t *testing.T) {
	bare := summary{name: bareName, rps: 10000, p99: ms(2)}
	passThrough := &limits{minRPS: 0.90, maxP99: 1.20}
	rpsOnly := &limits{minRPS: 0.80}
	tests := []struct {
		name   string
		judged summary
		want   []string
	}{
		{
			name:   "both within",
			judged: summary{name: "bulwark", limits: passThrough, rps: 9500, p99: ms(2.2)},
			want:   []string{"PASS bulwark req/s: 0.95× bare (target ≥ 0.90×)", "PASS bulwark p99: 1.10× bare (target ≤ 1.20×)"},
		},
		{
			name:   "exactly at the limits",
			judged: summary{name: "bulwark", limits: passThrough, rps: 9000, p99: ms(2.4)},
			want:   []string{"PASS bulwark req/s: 0.90× bare (target ≥ 0.90×)", "PASS bulwark p99: 1.20× bare (target ≤ 1.20×)"},
		},
		{
			name:   "too slow",
			judged: summary{name: "bulwark", limits: passThrough, rps: 8900, p99: ms(2)},
			want:   []string{"FAIL bulwark req/s: 0.89× bare (target ≥ 0.90×)", "PASS bulwark p99: 1.00× bare (target ≤ 1.20×)"},
		},
		{
			name:   "tail too long",
			judged: summary{name: "bulwark", limits: passThrough, rps: 10000, p99: ms(2.5)},
			want:   []string{"PASS bulwark req/s: 1.00× bare (target ≥ 0.90×)", "FAIL bulwark p99: 1.25× bare (target ≤ 1.20×)"},
		},
		{
			name:   "req/s only: at its own limit, tail not judged",
			judged: summary{name: "bulwark-jwt", limits: rpsOnly, rps: 8000, p99: ms(10)},
			want:   []string{"PASS bulwark-jwt req/s: 0.80× bare (target ≥ 0.80×)"},
		},
		{
			name:   "req/s only: too slow",
			judged: summary{name: "bulwark-jwt", limits: rpsOnly, rps: 7900, p99: ms(2)},
			want:   []string{"FAIL bulwark-jwt req/s: 0.79× bare (target ≥ 0.80×)"},
		},
		{
			name:   "p99 only",
			judged: summary{name: "bulwark", limits: &limits{maxP99: 1.5}, rps: 1, p99: ms(2.8)},
			want:   []string{"PASS bulwark p99: 1.40× bare (target ≤ 1.50×)"},
		},
		{
			name:   "no limit set: no verdict",
			judged: summary{name: "bulwark", limits: &limits{}, rps: 1, p99: ms(100)},
			want:   nil,
		},
		{
			name:   "bare named as the baseline is the default",
			judged: summary{name: "bulwark", limits: &limits{minRPS: 0.90, baseline: bareName}, rps: 9500, p99: ms(2)},
			want:   []string{"PASS bulwark req/s: 0.95× bare (target ≥ 0.90×)"},
		},
		{
			// 7,000 req/s is 0.70× bare, but 0.875× the pass-through
			// route's 8,000: judged against the route it extends.
			name:   "against another target: within",
			judged: summary{name: "bulwark-ratelimit-local", limits: &limits{minRPS: 0.85, baseline: "pass"}, rps: 7000, p99: ms(4)},
			want:   []string{"PASS bulwark-ratelimit-local req/s: 0.88× pass (target ≥ 0.85×)"},
		},
		{
			// 6,700 req/s is 0.8375× the pass-through route's 8,000:
			// just under its target.
			name:   "against another target: too slow",
			judged: summary{name: "bulwark-ratelimit-redis", limits: &limits{minRPS: 0.85, baseline: "pass"}, rps: 6700, p99: ms(4)},
			want:   []string{"FAIL bulwark-ratelimit-redis req/s: 0.84× pass (target ≥ 0.85×)"},
		},
		{
			name:   "against another target: p99 too",
			judged: summary{name: "bulwark-x", limits: &limits{minRPS: 0.5, maxP99: 1.5, baseline: "pass"}, rps: 4000, p99: ms(4.5)},
			want:   []string{"PASS bulwark-x req/s: 0.50× pass (target ≥ 0.50×)", "PASS bulwark-x p99: 1.50× pass (target ≤ 1.50×)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			direct := summary{name: "direct", rps: 1, p99: ms(100)} // not judged: no verdict
			// Another target to compare with: 0.80× bare's req/s, 1.50× its p99.
			pass := summary{name: "pass", rps: 8000, p99: ms(3)}
			vs, err := verdicts([]summary{direct, bare, pass, tt.judged})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vs {
				got = append(got, v.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("verdicts = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerdictsPass(t *testing.T) {
	bare := summary{name: bareName, rps: 10000, p99: ms(2)}
	tests := []struct {
		name   string
		judged summary
		want   []bool
	}{
		{name: "req/s a hair under", judged: summary{name: "bulwark", limits: &limits{minRPS: 0.90}, rps: 8999, p99: ms(2)}, want: []bool{false}},
		{name: "p99 a hair over", judged: summary{name: "bulwark", limits: &limits{maxP99: 1.20}, rps: 1, p99: ms(2.401)}, want: []bool{false}},
		{name: "both exactly at", judged: summary{name: "bulwark", limits: &limits{minRPS: 0.80, maxP99: 1.20}, rps: 8000, p99: ms(2.4)}, want: []bool{true, true}},
		{name: "vs the baseline: a hair under", judged: summary{name: "rl", limits: &limits{minRPS: 0.60, baseline: "pass"}, rps: 2999, p99: ms(9)}, want: []bool{false}},
		{name: "vs the baseline: exactly at", judged: summary{name: "rl", limits: &limits{minRPS: 0.60, baseline: "pass"}, rps: 3000, p99: ms(9)}, want: []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pass := summary{name: "pass", rps: 5000, p99: ms(3)}
			vs, err := verdicts([]summary{bare, pass, tt.judged})
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			for _, v := range vs {
				got = append(got, v.pass)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("pass = %v, want %v (%v)", got, tt.want, vs)
			}
		})
	}
}

func TestVerdictsNeedTheirBaselines(t *testing.T) {
	bare := summary{name: bareName, rps: 10000, p99: ms(2)}
	pass := summary{name: "pass", rps: 9000, p99: ms(2)}
	tests := []struct {
		name string
		sums []summary
		want string
	}{
		{
			name: "no bare",
			sums: []summary{{name: "bulwark", limits: &limits{minRPS: 0.9}, rps: 1, p99: 1}},
			want: "bare proxy",
		},
		{
			// The report compares every target with bare, so bare is
			// needed even when no verdict uses it.
			name: "no bare, baseline measured",
			sums: []summary{pass, {name: "rl", limits: &limits{minRPS: 0.85, baseline: "pass"}, rps: 1, p99: 1}},
			want: "bare proxy",
		},
		{
			name: "baseline not in the run",
			sums: []summary{bare, {name: "rl", limits: &limits{minRPS: 0.85, baseline: "pass"}, rps: 1, p99: 1}},
			want: "no measurement of pass to compare rl with",
		},
		{
			name: "baseline without req/s",
			sums: []summary{bare, {name: "pass", p99: ms(2)}, {name: "rl", limits: &limits{minRPS: 0.85, baseline: "pass"}, rps: 1, p99: 1}},
			want: "no measurement of pass to compare rl with",
		},
		{
			name: "baseline without p99",
			sums: []summary{bare, {name: "pass", rps: 1}, {name: "rl", limits: &limits{maxP99: 1.2, baseline: "pass"}, rps: 1, p99: 1}},
			want: "no measurement of pass to compare rl with",
		},
		{
			name: "compared with itself",
			sums: []summary{bare, {name: "rl", limits: &limits{minRPS: 0.85, baseline: "rl"}, rps: 1, p99: 1}},
			want: "compared with itself",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := verdicts(tt.sums)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("verdicts() = %v, %v, want an error containing %q", vs, err, tt.want)
			}
		})
	}
}

func TestReportWrite(t *testing.T) {
	results := map[string][]wrkResult{
		"direct":      {{RequestsPerSec: 40000, P50: ms(0.5), P99: ms(1)}, {RequestsPerSec: 42000, P50: ms(0.4), P99: ms(1.1)}, {RequestsPerSec: 41000, P50: ms(0.45), P99: ms(0.9)}},
		bareName:      {{RequestsPerSec: 20000, P50: ms(1), P99: ms(3)}, {RequestsPerSec: 20000, P50: ms(1), P99: ms(3)}, {RequestsPerSec: 20000, P50: ms(1), P99: ms(3)}},
		"bulwark":     {{RequestsPerSec: 19000, P50: ms(1.1), P99: ms(3.9)}, {RequestsPerSec: 18000, P50: ms(1.2), P99: ms(4)}, {RequestsPerSec: 18500, P50: ms(1.1), P99: ms(3.3)}},
		"bulwark-jwt": {{RequestsPerSec: 17000, P50: ms(1.3), P99: ms(6)}, {RequestsPerSec: 16000, P50: ms(1.4), P99: ms(6.6)}, {RequestsPerSec: 16500, P50: ms(1.3), P99: ms(6.3)}},
		"rl-local":    {{RequestsPerSec: 16000, P50: ms(1.5), P99: ms(7)}},
		"rl-redis":    {{RequestsPerSec: 11200, P50: ms(2.5), P99: ms(9)}},
	}
	tgs := []target{
		{name: "direct", what: "upstream"},
		{name: bareName, what: "bare"},
		{name: "bulwark", what: "gateway", limits: &limits{minRPS: 0.90, maxP99: 1.20}},
		{name: "bulwark-jwt", what: "jwt route", limits: &limits{minRPS: 0.80}},
		{name: "rl-local", what: "local limit", limits: &limits{minRPS: 0.85, baseline: "bulwark"}},
		{name: "rl-redis", what: "redis limit", limits: &limits{minRPS: 0.60, baseline: "bulwark"}},
	}
	sums := summarize(tgs, results)
	vs, err := verdicts(sums)
	if err != nil {
		t.Fatal(err)
	}
	rep := report{sums: sums, verdicts: vs, machine: machine{cpus: 2, model: "Test CPU", kernel: "6.1", goVer: "go1.26", goOSArc: "linux/amd64", wrkVer: "wrk 4.1.0"}, command: "go run ./test/load", wrk: "taskset -c 1 wrk URL", pinning: "wrk on CPU 1"}
	var b strings.Builder
	if err := rep.write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"medians of 3 interleaved rounds",
		"| target | what | req/s | p50 | p99 | req/s vs bare | p99 vs bare | targets |",
		"| direct | upstream | 41,000 | 0.45 ms | 1.00 ms | 2.05× | 0.33× | - |",
		"| bare | bare | 20,000 | 1.00 ms | 3.00 ms | 1.00× | 1.00× | - |",
		"| bulwark | gateway | 18,500 | 1.10 ms | 3.90 ms | 0.93× | 1.30× | req/s ≥ 0.90× bare, p99 ≤ 1.20× bare |",
		"| bulwark-jwt | jwt route | 16,500 | 1.30 ms | 6.30 ms | 0.82× | 2.10× | req/s ≥ 0.80× bare |",
		// The ratio columns stay against bare; the targets column and the
		// verdicts name the baseline the target is judged against: at
		// 0.80× bare, rl-local passes its 0.85× of bulwark (0.86×).
		"| rl-local | local limit | 16,000 | 1.50 ms | 7.00 ms | 0.80× | 2.33× | req/s ≥ 0.85× bulwark |",
		"| rl-redis | redis limit | 11,200 | 2.50 ms | 9.00 ms | 0.56× | 3.00× | req/s ≥ 0.60× bulwark |",
		"- PASS bulwark req/s: 0.93× bare (target ≥ 0.90×)\n- FAIL bulwark p99: 1.30× bare (target ≤ 1.20×)\n- PASS bulwark-jwt req/s: 0.82× bare (target ≥ 0.80×)\n" +
			"- PASS rl-local req/s: 0.86× bulwark (target ≥ 0.85×)\n- PASS rl-redis req/s: 0.61× bulwark (target ≥ 0.60×)\n\n",
		"- bulwark: 19,000 / 3.90 ms, 18,000 / 4.00 ms, 18,500 / 3.30 ms",
		"- bulwark-jwt: 17,000 / 6.00 ms, 16,000 / 6.60 ms, 16,500 / 6.30 ms",
		"Machine: 2 CPUs (nproc), Test CPU",
		"Command: `go run ./test/load`",
		"Load generator: `taskset -c 1 wrk URL`",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report = \n%s\nwant it to contain %q", b.String(), want)
		}
	}
	if rep.passed() {
		t.Errorf("passed() = true, want false with a failed verdict")
	}
	if strings.Contains(b.String(), "TARGET.lua") {
		t.Errorf("report = \n%s\nwant no script note without a POST target", b.String())
	}
	rep.wrkNote = "the POST targets add `-s TARGET.lua`"
	b.Reset()
	if err := rep.write(&b); err != nil {
		t.Fatal(err)
	}
	if want := "Load generator: `taskset -c 1 wrk URL`; the POST targets add `-s TARGET.lua`\n"; !strings.Contains(b.String(), want) {
		t.Errorf("report = \n%s\nwant it to contain %q", b.String(), want)
	}
}

func TestLimitsString(t *testing.T) {
	tests := []struct {
		name string
		in   *limits
		want string
	}{
		{name: "not judged", in: nil, want: "-"},
		{name: "nothing set", in: &limits{}, want: "-"},
		{name: "nothing set, with a baseline", in: &limits{baseline: "bulwark"}, want: "-"},
		{name: "both", in: &limits{minRPS: 0.9, maxP99: 1.2}, want: "req/s ≥ 0.90× bare, p99 ≤ 1.20× bare"},
		{name: "req/s only", in: &limits{minRPS: 0.8}, want: "req/s ≥ 0.80× bare"},
		{name: "p99 only", in: &limits{maxP99: 1.5}, want: "p99 ≤ 1.50× bare"},
		{name: "another baseline", in: &limits{minRPS: 0.85, maxP99: 2, baseline: "bulwark"}, want: "req/s ≥ 0.85× bulwark, p99 ≤ 2.00× bulwark"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatRPS(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{name: "small", in: 999.4, want: "999"},
		{name: "thousands", in: 1234.5, want: "1,235"},
		{name: "millions", in: 1234567, want: "1,234,567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatRPS(tt.in); got != tt.want {
				t.Errorf("formatRPS(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
