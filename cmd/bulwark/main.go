// Command bulwark is the Bulwark API security gateway.
//
//	bulwark serve --config FILE        run the gateway (FILE also from BULWARK_CONFIG)
//	bulwark validate --config FILE     check a config file; exit 0 when valid, 1 when not
//	bulwark version                    print version, commit and Go version
//	bulwark healthcheck [--url URL]    probe a running gateway's /readyz; exit 0 when ready
//	bulwark hash-key [--generate]      print the SHA-256 of an API key read from stdin
//	bulwark inventory --config FILE    list the specs' operations with the gateway's request counts
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `Bulwark is an API security gateway: one binary in front of existing HTTP APIs
that runs every request through a fixed security chain driven by one YAML file.

Usage:
  bulwark <command> [flags]

Commands:
  serve         run the gateway
  validate      check a config file and print every error as file:line:col: path: message
  version       print version, commit and Go version
  healthcheck   probe a running gateway's readiness endpoint (for container health checks)
  hash-key      print the SHA-256 of an API key read from stdin (or --generate a new key)
  inventory     list the specs' operations and the running gateway's request counts

Run "bulwark <command> --help" for the flags of a command.
Documentation: docs/ in the source tree, starting with docs/configuration.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 success,
// 1 failure, 2 usage error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(rest, stderr)
	case "validate":
		return validate(rest, stdout, stderr)
	case "version", "--version", "-version":
		return printVersion(rest, stdout, stderr)
	case "healthcheck":
		return healthcheck(rest, stdout, stderr)
	case "hash-key":
		return hashKey(rest, stdin, stdout, stderr)
	case "inventory":
		return inventoryCmd(rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "bulwark: unknown command %q\n\n%s", cmd, usage)
	return 2
}
