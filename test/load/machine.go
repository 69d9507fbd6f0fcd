package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// machine describes where the figures were measured.
type machine struct {
	cpus    int    // CPUs this process may run on, as nproc counts them
	model   string // CPU model from /proc/cpuinfo
	kernel  string
	goVer   string
	wrkVer  string
	goOSArc string
	// loadavg is /proc/loadavg's 1, 5 and 15 minute load averages when
	// the run started: other work on the machine skews every figure.
	loadavg string
}

func (m machine) String() string {
	return fmt.Sprintf("%d CPUs (nproc), %s; Linux %s; %s %s; %s; load average before the run %s",
		m.cpus, m.model, m.kernel, m.goVer, m.goOSArc, m.wrkVer, m.loadavg)
}

// describeMachine gathers the machine description; what cannot be read is
// reported as "unknown" rather than failing a run.
func describeMachine() machine {
	m := machine{
		cpus:    runtime.NumCPU(),
		model:   "unknown CPU",
		kernel:  "unknown",
		goVer:   runtime.Version(),
		goOSArc: runtime.GOOS + "/" + runtime.GOARCH,
		wrkVer:  "wrk (unknown version)",
		loadavg: "unknown",
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		m.model = cpuModel(f)
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	// wrk -v prints its version and exits with status 1.
	out, _ := exec.Command("wrk", "-v").CombinedOutput()
	if line, _, _ := strings.Cut(string(out), "\n"); strings.HasPrefix(line, "wrk ") {
		m.wrkVer, _, _ = strings.Cut(line, " Copyright")
	}
	return m
}

// cpuModel returns the first "model name" of a /proc/cpuinfo.
func cpuModel(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}
