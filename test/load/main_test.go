package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := options{rounds: 3, duration: 10 * time.Second, warmup: 2 * time.Second, connections: 32, threads: 1, proxyCPU: "0", wrkCPU: "1"}
	if o != want {
		t.Errorf("parseFlags(nil) = %+v, want %+v", o, want)
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no rounds", args: []string{"-rounds", "0"}, want: "-rounds"},
		{name: "short duration", args: []string{"-duration", "500ms"}, want: "-duration"},
		{name: "negative warm-up", args: []string{"-warmup", "-1s"}, want: "-warmup"},
		{name: "more threads than connections", args: []string{"-threads", "4", "-connections", "2"}, want: "-threads"},
		{name: "unknown role", args: []string{"-role", "client", "-listen", "127.0.0.1:1"}, want: "-role"},
		{name: "role without listen", args: []string{"-role", "upstream"}, want: "needs -listen"},
		{name: "bare without target", args: []string{"-role", "bare", "-listen", "127.0.0.1:1"}, want: "needs -target"},
		{name: "stray argument", args: []string{"now"}, want: "unexpected arguments"},
		{name: "unknown target", args: []string{"-targets", "bare,bulwark-nope"}, want: `unknown target "bulwark-nope"`},
		{name: "targets without bare", args: []string{"-targets", "bulwark"}, want: "bare is needed"},
		{name: "target without its baseline", args: []string{"-targets", "bare,bulwark-validated"}, want: "bulwark-validated is judged against bare-post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestCheckMachineRefusesSharedCPU(t *testing.T) {
	err := checkMachine(options{proxyCPU: "0", wrkCPU: "0"})
	if err == nil || !strings.Contains(err.Error(), "must differ") {
		t.Errorf("checkMachine(same CPU) = %v, want an error saying the CPUs must differ", err)
	}
}

func TestCheckMachineNamesTheMissingPackage(t *testing.T) {
	// A PATH with everything but redis-server.
	dir := t.TempDir()
	for _, tool := range []string{"wrk", "taskset"} {
		if err := os.WriteFile(filepath.Join(dir, tool), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	err := checkMachine(options{proxyCPU: "0", wrkCPU: "1"})
	if err == nil || !strings.Contains(err.Error(), "redis-server not found") || !strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Errorf("checkMachine(no redis-server) = %v, want the install command", err)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "defaults", args: nil, want: "go run ./test/load"},
		{name: "flags", args: []string{"-rounds", "1", "-duration", "2s"}, want: "go run ./test/load -rounds 1 -duration 2s"},
		{name: "quoted", args: []string{"-out", "my report.md"}, want: `go run ./test/load -out "my report.md"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commandLine(tt.args); got != tt.want {
				t.Errorf("commandLine(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestBareTargetsRunAKnownRole(t *testing.T) {
	for _, tg := range targets("tok.en.sig", "bwk_key") {
		if !strings.HasPrefix(tg.name, bareName) {
			continue
		}
		args := []string{"-role", bareRole(tg.name), "-listen", "127.0.0.1:1", "-target", "http://127.0.0.1:2"}
		if _, err := parseFlags(args, io.Discard); err != nil {
			t.Errorf("target %s: its role's flags %q: %v", tg.name, args, err)
		}
	}
	if got := bareRole(barePostName); got != "bare" {
		t.Errorf("bareRole(%s) = %q, want the bare proxy", barePostName, got)
	}
}
