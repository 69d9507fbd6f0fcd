package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    Duration
		wantErr string
	}{
		{in: "30s", want: Duration(30 * time.Second)},
		{in: "1m30s", want: Duration(90 * time.Second)},
		{in: "500ms", want: Duration(500 * time.Millisecond)},
		{in: "8760h", want: Duration(8760 * time.Hour)},
		{in: "1.5h", want: Duration(90 * time.Minute)},
		{in: "0s", want: 0},
		{in: "0", want: 0}, // the same in every unit
		{in: "30", wantErr: "use a unit, e.g. 30s"},
		{in: "1.5", wantErr: "use a unit, e.g. 30s"},
		{in: "-5", wantErr: "use a unit, e.g. 30s"},
		{in: "-5s", wantErr: "must not be negative"},
		{in: "5 s", wantErr: "not a duration"},
		{in: "5sec", wantErr: "not a duration"},
		{in: "", wantErr: "not a duration"},
		{in: "9999999999h", wantErr: "not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseDuration(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "10KB", want: 10_000},
		{in: "1MB", want: 1_000_000},
		{in: "1GB", want: 1_000_000_000},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "-1", wantErr: "must not be negative"},
		{in: "-1MiB", wantErr: "must not be negative"},
		{in: "8589934592GiB", wantErr: "too large"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "1mib", wantErr: "not a size"},
		{in: "1 MiB", wantErr: "not a size"},
		{in: "1.5MiB", wantErr: "not a size"},
		{in: "1TiB", wantErr: "not a size"},
		{in: "MiB", wantErr: "not a size"},
		{in: "0x10", wantErr: "not a size"},
		{in: "+1", wantErr: "not a size"},
		{in: "", wantErr: "not a size"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSize(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseSize(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}
