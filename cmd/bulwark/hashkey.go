package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/bulwark-gateway/bulwark/internal/authn"
)

// maxKeyInput caps what hash-key reads from stdin.
const maxKeyInput = 4 << 10

// hashKey prints the SHA-256 of an API key read from stdin, the form in
// which consumers' keys go in the config; with --generate, it makes a new
// random key and prints it with its hash.
func hashKey(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("hash-key", "Print the hex SHA-256 of an API key read from stdin (one trailing newline is ignored),\n"+
		"for consumers[].api_keys[].sha256. The key itself never goes in the config.\n\n"+
		"  printf %s \"$KEY\" | bulwark hash-key\n"+
		"  bulwark hash-key --generate     # a new random key and its hash", stderr)
	generate := fs.Bool("generate", false, "generate a new random key (32 bytes from the OS CSPRNG) and print it with its hash")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *generate {
		key, err := authn.GenerateKey()
		if err != nil {
			fmt.Fprintf(stderr, "hash-key: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "key:    %s\nsha256: %s\n", key, authn.HashKey(key))
		return 0
	}
	data, err := io.ReadAll(io.LimitReader(stdin, maxKeyInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "hash-key: reading stdin: %v\n", err)
		return 1
	}
	if len(data) > maxKeyInput {
		fmt.Fprintf(stderr, "hash-key: the key is longer than %d bytes\n", maxKeyInput)
		return 1
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	switch {
	case len(data) == 0:
		fmt.Fprintf(stderr, "hash-key: no key on stdin (printf %%s \"$KEY\" | bulwark hash-key)\n")
		return 1
	case bytes.ContainsAny(data, "\r\n"):
		fmt.Fprintln(stderr, "hash-key: the key spans several lines; give one key")
		return 1
	}
	fmt.Fprintln(stdout, authn.HashKey(string(data)))
	return 0
}
