package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		file string
		want wrkResult
	}{
		{
			name: "microseconds and milliseconds",
			file: "wrk-ok.txt",
			want: wrkResult{RequestsPerSec: 51522.40, P50: 124 * time.Microsecond, P99: 4160 * time.Microsecond},
		},
		{
			name: "non-2xx responses are counted",
			file: "wrk-non2xx.txt",
			want: wrkResult{RequestsPerSec: 61498.82, P50: 105 * time.Microsecond, P99: 4040 * time.Microsecond, Non2xx: 67646},
		},
		{
			name: "seconds and socket errors",
			file: "wrk-socket-errors.txt",
			want: wrkResult{RequestsPerSec: 30.07, P50: 1010 * time.Millisecond, P99: 1980 * time.Millisecond, SocketErrors: 15},
		},
		{
			name: "minutes",
			file: "wrk-minutes.txt",
			want: wrkResult{RequestsPerSec: 0.53, P50: 20500 * time.Millisecond, P99: 90 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("parseWrk(%s) error = %v, want nil", tt.file, err)
			}
			if got != tt.want {
				t.Errorf("parseWrk(%s) = %+v, want %+v", tt.file, got, tt.want)
			}
		})
	}
}

func TestParseWrkRefuses(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want string
	}{
		{name: "no latency distribution", out: readTestdata(t, "wrk-no-distribution.txt"), want: "no latency distribution"},
		{name: "no requests per second", out: "unable to connect to 127.0.0.1:1 Connection refused\n", want: "no Requests/sec"},
		{name: "unknown unit", out: "     50%  12.00ns\n     99%  1.00ms\nRequests/sec: 1.0\n", want: `unknown unit "ns"`},
		{name: "bad number", out: "Requests/sec: fast\n", want: "fast"},
		{name: "bad socket errors", out: "  Socket errors: connect x\n", want: "socket errors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseWrk(tt.out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseWrk() error = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestWrkResultCheck(t *testing.T) {
	tests := []struct {
		name    string
		res     wrkResult
		wantErr bool
	}{
		{name: "clean", res: wrkResult{RequestsPerSec: 1}, wantErr: false},
		{name: "non-2xx", res: wrkResult{Non2xx: 1}, wantErr: true},
		{name: "socket errors", res: wrkResult{SocketErrors: 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.res.check(); (err != nil) != tt.wantErr {
				t.Errorf("check() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestWrkRunArgv(t *testing.T) {
	run := wrkRun{
		CPU: "1", Threads: 1, Connections: 32, Duration: 10 * time.Second,
		Headers: []string{"Authorization: Bearer x"}, URL: "http://127.0.0.1:8080/bench",
	}
	want := []string{"taskset", "-c", "1", "wrk", "-t1", "-c32", "-d10s", "--latency", "-H", "Authorization: Bearer x", "http://127.0.0.1:8080/bench"}
	if got := run.argv(); !slices.Equal(got, want) {
		t.Errorf("argv() = %q, want %q", got, want)
	}
}

func TestWrkDuration(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{name: "whole seconds", in: 10 * time.Second, want: "10s"},
		{name: "rounded", in: 2500 * time.Millisecond, want: "3s"},
		{name: "at least one second", in: 100 * time.Millisecond, want: "1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wrkDuration(tt.in); got != tt.want {
				t.Errorf("wrkDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
