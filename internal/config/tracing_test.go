package config

import (
	"strings"
	"testing"
	"time"
)

func tracingWith(keys ...string) string {
	src := []string{"tracing:"}
	for _, k := range keys {
		src = append(src, "  "+k)
	}
	return lines(append(src, routeTail("none")...)...)
}

func TestTracingDefaults(t *testing.T) {
	cfg, err := Parse("/etc/bulwark/bulwark.yaml", []byte(lines(routeTail("none")...)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracing != nil {
		t.Errorf("no tracing section: Tracing = %+v, want nil (off)", cfg.Tracing)
	}
	cfg, err = Parse("/etc/bulwark/bulwark.yaml", []byte(tracingWith(`otlp: { endpoint: "http://127.0.0.1:4318", headers: { X-Api-Key: "${K}" } }`)),
		func(k string) (string, bool) { return "s3cret", k == "K" })
	if err != nil {
		t.Fatal(err)
	}
	tr := cfg.Tracing
	if tr.ServiceName != "bulwark" || tr.SampleRatio != "none" || tr.Ratio() != 0 || tr.OTLP.Timeout.D() != 10*time.Second ||
		tr.OTLP.Headers["X-Api-Key"] != "s3cret" {
		t.Errorf("defaults: %+v", tr)
	}
	for ratio, want := range map[string]float64{"all": 1, "none": 0, "0.25": 0.25, "1": 1} {
		cfg, err := Parse("b.yaml", []byte(tracingWith(`otlp: { endpoint: "http://c:4318" }`, "sample_ratio: "+ratio)), noEnv)
		if err != nil {
			t.Fatalf("sample_ratio %s: %v", ratio, err)
		}
		if got := cfg.Tracing.Ratio(); got != want {
			t.Errorf("sample_ratio %s: Ratio() = %v, want %v", ratio, got, want)
		}
	}
}

func TestTracingErrors(t *testing.T) {
	const ep = `otlp: { endpoint: "http://127.0.0.1:4318" }`
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"no otlp", tracingWith("service_name: gw"), "tracing: needs an otlp section"},
		{"no endpoint", tracingWith("otlp: { timeout: 1s }"), "tracing.otlp.endpoint: "},
		{"grpc endpoint", tracingWith(`otlp: { endpoint: "grpc://c:4317" }`), "tracing.otlp.endpoint: "},
		{"endpoint with query", tracingWith(`otlp: { endpoint: "http://c:4318/?a=b" }`),
			"tracing.otlp.endpoint: must not have user info, a query or a fragment"},
		{"endpoint without host", tracingWith(`otlp: { endpoint: "http://" }`),
			"tracing.otlp.endpoint: must be an http or https URL"},
		{"zero timeout", tracingWith(`otlp: { endpoint: "http://c:4318", timeout: 0s }`),
			"tracing.otlp.timeout: must be greater than 0"},
		{"bad header name", tracingWith(`otlp: { endpoint: "http://c:4318", headers: { "a b": x } }`),
			"not a valid header name"},
		{"ratio above 1", tracingWith(ep, "sample_ratio: 1.5"), "tracing.sample_ratio: must be all, none or a ratio"},
		{"ratio word", tracingWith(ep, "sample_ratio: some"), "tracing.sample_ratio: must be all, none or a ratio"},
		{"empty service name", tracingWith(ep, `service_name: ""`), "tracing.service_name: must not be empty"},
		{"unknown key", tracingWith(ep, "insecure: true"), `unknown key "insecure"`},
	}
	for _, tt := range tests {
		_, err := Parse("b.yaml", []byte(tt.src), noEnv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func noEnv(string) (string, bool) { return "", false }
