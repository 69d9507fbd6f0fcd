// Package e2e tests the real bulwark binary: it is built once per test run,
// started as a process with a config written by the test, and driven over
// loopback against real upstream servers, real TLS and raw sockets.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// binary is the path of the bulwark binary under test, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bulwark-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bulwark")
	args := []string{"build", "-o", binary}
	if raceEnabled { // the binary runs under the race detector when the tests do
		args = append(args, "-race")
	}
	args = append(args, "../../cmd/bulwark")
	build := exec.Command(runtime.GOROOT()+"/bin/go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build bulwark:", err)
		os.Exit(1)
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		goleak.VerifyTestMain(m, goleak.Cleanup(func(c int) { code = c }))
	}()
	os.Exit(code)
}
