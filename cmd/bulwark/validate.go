package main

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/gateway"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

func validate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "Check a config file without starting anything: strict YAML, defaults,\n"+
		"cross-references, and compiling every route's chain. Opens no listener and\n"+
		"sends no traffic. Exit 0 when valid, 1 with every error printed as\n"+
		"file:line:col: yaml.path: message.", stderr)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, h, code := compileConfig("validate", *path, stderr)
	if h == nil {
		return code
	}
	h.Close()
	fmt.Fprintf(stdout, "%s: ok (%d routes, %d upstreams)\n", *path, len(cfg.Routes), len(cfg.Upstreams))
	return 0
}

// compileConfig loads the config at path and compiles it as serve would,
// without listeners or traffic, printing the errors and warnings to
// stderr. Without a Handler, code is the exit code (2: no config given,
// 1: a bad config); the caller closes the Handler.
func compileConfig(cmd, path string, stderr io.Writer) (*config.Config, *gateway.Handler, int) {
	if path == "" {
		fmt.Fprintf(stderr, "bulwark %s: no config: pass --config FILE or set BULWARK_CONFIG\n", cmd)
		return nil, nil, 2
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		printConfigError(stderr, err)
		return nil, nil, 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w.Error())
	}
	m := metrics.New(buildInfo())
	h, err := gateway.Build(cfg, gateway.Deps{
		Log:      zap.NewNop(),
		Metrics:  m,
		Problems: problem.New(zap.NewNop(), m.Denials),
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return nil, nil, 1
	}
	return cfg, h, 0
}
