package main

import (
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
	tests := []struct {
		name     string
		gated    summary
		wantPass [2]bool // req/s, p99
	}{
		{name: "both within", gated: summary{name: "bulwark", gate: true, rps: 9500, p99: ms(2.2)}, wantPass: [2]bool{true, true}},
		{name: "exactly at the limits", gated: summary{name: "bulwark", gate: true, rps: 9000, p99: ms(2.4)}, wantPass: [2]bool{true, true}},
		{name: "too slow", gated: summary{name: "bulwark", gate: true, rps: 8999, p99: ms(2)}, wantPass: [2]bool{false, true}},
		{name: "tail too long", gated: summary{name: "bulwark", gate: true, rps: 10000, p99: ms(2.5)}, wantPass: [2]bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			direct := summary{name: "direct", rps: 1, p99: ms(100)} // not gated: no verdict
			vs, err := verdicts([]summary{direct, bare, tt.gated})
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 2 {
				t.Fatalf("verdicts = %v, want two (req/s and p99 of the gated target)", vs)
			}
			if got := [2]bool{vs[0].pass, vs[1].pass}; got != tt.wantPass {
				t.Errorf("pass = %v, want %v (%v)", got, tt.wantPass, vs)
			}
		})
	}
}

func TestVerdictsNeedBare(t *testing.T) {
	if _, err := verdicts([]summary{{name: "bulwark", gate: true, rps: 1, p99: 1}}); err == nil {
		t.Errorf("verdicts without bare = nil error, want an error")
	}
}

func TestReportWrite(t *testing.T) {
	results := map[string][]wrkResult{
		"direct":  {{RequestsPerSec: 40000, P50: ms(0.5), P99: ms(1)}, {RequestsPerSec: 42000, P50: ms(0.4), P99: ms(1.1)}, {RequestsPerSec: 41000, P50: ms(0.45), P99: ms(0.9)}},
		bareName:  {{RequestsPerSec: 20000, P50: ms(1), P99: ms(3)}, {RequestsPerSec: 20000, P50: ms(1), P99: ms(3)}, {RequestsPerSec: 20000, P50: ms(1), P99: ms(3)}},
		"bulwark": {{RequestsPerSec: 19000, P50: ms(1.1), P99: ms(3.9)}, {RequestsPerSec: 18000, P50: ms(1.2), P99: ms(4)}, {RequestsPerSec: 18500, P50: ms(1.1), P99: ms(3.3)}},
	}
	tgs := []target{{name: "direct", what: "upstream"}, {name: bareName, what: "bare"}, {name: "bulwark", what: "gateway", gate: true}}
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
		"| direct | upstream | 41,000 | 0.45 ms | 1.00 ms | 2.05× | 0.33× |",
		"| bare | bare | 20,000 | 1.00 ms | 3.00 ms | 1.00× | 1.00× |",
		"| bulwark | gateway | 18,500 | 1.10 ms | 3.90 ms | 0.93× | 1.30× |",
		"- PASS bulwark req/s: 0.93× bare (target ≥ 0.90×)",
		"- FAIL bulwark p99: 1.30× bare (target ≤ 1.20×)",
		"- bulwark: 19,000 / 3.90 ms, 18,000 / 4.00 ms, 18,500 / 3.30 ms",
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
