package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestChildrenStopAllKillsRunningProcesses(t *testing.T) {
	var c children
	t.Cleanup(c.stopAll)
	p, err := c.start("sleeper", []string{"sleep", "600"})
	if err != nil {
		t.Fatal(err)
	}
	c.stopAll()
	select {
	case <-p.done:
	default:
		t.Fatalf("process still running after stopAll, want it stopped")
	}
	if p.cmd.ProcessState.Success() {
		t.Errorf("sleeper exit = success, want killed")
	}
}

func TestWaitReadyReportsEarlyExit(t *testing.T) {
	var c children
	t.Cleanup(c.stopAll)
	p, err := c.start("crasher", []string{"sh", "-c", "echo listen failed >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on a just-freed port, so only the exit can end the wait.
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	err = waitReady(t.Context(), p, "http://"+addr+"/")
	if err == nil || !strings.Contains(err.Error(), "crasher exited") || !strings.Contains(err.Error(), "listen failed") {
		t.Errorf("waitReady() = %v, want the exit and the process output", err)
	}
}

func TestWaitReadyReturnsOnceServing(t *testing.T) {
	var c children
	t.Cleanup(c.stopAll)
	p, err := c.start("sleeper", []string{"sleep", "600"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	if err := waitReady(t.Context(), p, srv.URL); err != nil {
		t.Errorf("waitReady() = %v, want nil", err)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "under the limit", writes: []string{"ab", "cd"}, want: "abcd"},
		{name: "over the limit", writes: []string{"abc", "defgh"}, want: "cdefgh"},
		{name: "one big write", writes: []string{"0123456789"}, want: "456789"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &tailBuffer{max: 6}
			for _, w := range tt.writes {
				if _, err := b.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			if got := b.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
