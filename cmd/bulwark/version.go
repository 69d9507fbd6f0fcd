package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/common/version"

	"github.com/bulwark-gateway/bulwark/internal/metrics"
)

// buildInfo reports the version set by the Makefile's -ldflags
// (github.com/prometheus/common/version), falling back to what the Go
// toolchain recorded in the binary.
func buildInfo() metrics.BuildInfo {
	info := metrics.BuildInfo{
		Version:   version.Version,
		Revision:  version.GetRevision(),
		Branch:    version.Branch,
		GoVersion: runtime.Version(),
		GoOS:      runtime.GOOS,
		GoArch:    runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && info.Revision == "" {
				info.Revision = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	if info.Revision == "" {
		info.Revision = "unknown"
	}
	return info
}

func printVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "Print the version, commit and Go version of this binary.", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	bi := buildInfo()
	fmt.Fprintf(stdout, "bulwark %s\n  commit:  %s\n  branch:  %s\n  built:   %s\n  go:      %s %s/%s\n",
		bi.Version, bi.Revision, orUnknown(bi.Branch), orUnknown(version.BuildDate), bi.GoVersion, bi.GoOS, bi.GoArch)
	return 0
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
