package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, []byte(baseConfig("http://127.0.0.1:9", route("r", "GET", "/x"))))
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, []byte(`server:
  listen: "127.0.0.1:0"
  colour: blue
upstreams:
  api: { url: "http://127.0.0.1:9" }
routes:
  - name: r
    method: GET
    path: /x
    upstream: nowhere
    auth: none
`))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// every pattern must match some line of the output (stdout+stderr)
		want []string
	}{
		{name: "valid", args: []string{"validate", "--config", good}, wantCode: 0,
			want: []string{`ok \(1 routes, 1 upstreams\)`}},
		{name: "every error with file:line:col and path", args: []string{"validate", "--config", bad}, wantCode: 1,
			want: []string{
				`^` + regexp.QuoteMeta(bad) + `:3:3: server\.colour: .*unknown`,
				`^` + regexp.QuoteMeta(bad) + `:10:15: routes\[0\]\.upstream: .*nowhere`,
			}},
		{name: "missing file", args: []string{"validate", "--config", filepath.Join(dir, "nope.yaml")}, wantCode: 1,
			want: []string{`nope\.yaml`}},
		{name: "no config", args: []string{"validate"}, wantCode: 2, want: []string{`--config`}},
		{name: "help", args: []string{"validate", "--help"}, wantCode: 0, want: []string{`Usage: bulwark validate`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			out := stdout + stderr
			for _, p := range tt.want {
				if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
					t.Errorf("output does not match %q:\n%s", p, out)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := runCLI(t, "version")
	if code != 0 {
		t.Fatalf("exit code = %d, want 0", code)
	}
	for _, want := range []string{"bulwark ", "commit:", "go:      go1."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{name: "no command", args: nil, wantCode: 2},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2},
		{name: "help", args: []string{"--help"}, wantCode: 0},
		{name: "serve help", args: []string{"serve", "--help"}, wantCode: 0},
		{name: "healthcheck help", args: []string{"healthcheck", "--help"}, wantCode: 0},
		{name: "serve without config", args: []string{"serve"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Env = append(os.Environ(), "BULWARK_CONFIG=")
			_ = cmd.Run() // the exit code is what is checked
			if got := cmd.ProcessState.ExitCode(); got != tt.wantCode {
				t.Errorf("bulwark %v: exit code = %d, want %d", tt.args, got, tt.wantCode)
			}
		})
	}
}

func TestHealthcheck(t *testing.T) {
	up := startUpstream(t, nil)
	g := startGateway(t, baseConfig("http://"+up.addr, route("r", "GET", "/x")), nil)
	if _, stderr, code := runCLI(t, "healthcheck", "--url", "http://"+g.admin+"/readyz"); code != 0 {
		t.Errorf("healthcheck of a ready gateway: exit code = %d, want 0 (%s)", code, stderr)
	}
	if _, _, code := runCLI(t, "healthcheck", "--url", "http://"+g.admin+"/nope"); code != 1 {
		t.Errorf("healthcheck of a 404 URL: exit code = %d, want 1", code)
	}
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	ln.Close()
	if _, _, code := runCLI(t, "healthcheck", "--url", "http://"+addr+"/readyz"); code != 1 {
		t.Errorf("healthcheck of a closed port: exit code = %d, want 1", code)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bulwark.yaml")
	writeFile(t, path, []byte("server:\n  listen: \"127.0.0.1:0\"\nroutes:\n  - name: r\n    method: GET\n    path: /x\n    upstream: api\n"))
	_, stderr, code := runCLI(t, "serve", "--config", path)
	if code != 1 {
		t.Fatalf("exit code = %d, want 1; stderr:\n%s", code, stderr)
	}
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + `:\d+:\d+: routes\[0\]`).MatchString(stderr) {
		t.Errorf("stderr lacks a file:line:col: routes[0] error:\n%s", stderr)
	}
}
