package main

import (
	"strings"
	"testing"
)

func TestCPUModel(t *testing.T) {
	tests := []struct {
		name    string
		cpuinfo string
		want    string
	}{
		{name: "x86", cpuinfo: "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nmodel name\t: other\n", want: "AMD EPYC 7B13"},
		{name: "no model name", cpuinfo: "processor\t: 0\nBogoMIPS\t: 50.00\n", want: "unknown CPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpuModel(strings.NewReader(tt.cpuinfo)); got != tt.want {
				t.Errorf("cpuModel() = %q, want %q", got, tt.want)
			}
		})
	}
}
