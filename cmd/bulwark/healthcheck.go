package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("healthcheck", "Probe a running gateway: exit 0 when the URL answers 200, else 1.\n"+
		"Used as the Docker HEALTHCHECK (the runtime image has no shell or curl).", stderr)
	url := fs.String("url", "http://127.0.0.1:9901/readyz", "readiness URL of the admin listener")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 2
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024)) // only echoed for the operator
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s answered %d: %s", *url, resp.StatusCode, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}
