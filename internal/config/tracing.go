package config

import (
	"strconv"
	"time"
)

// Tracing is the `tracing:` section: OpenTelemetry span export over
// OTLP/HTTP (docs/operations.md "Tracing"). Absent: no spans are created
// or exported; the trace context is still propagated.
type Tracing struct {
	OTLP        *TracingOTLP `yaml:"otlp" required:"true" doc:"The OTLP/HTTP (protobuf) receiver spans are exported to, such as an OpenTelemetry Collector."`
	SampleRatio AuditAllowed `yaml:"sample_ratio" doc:"Share of the traces the gateway starts (no valid incoming traceparent) that it records: all, none or a ratio such as 0.1. A valid incoming traceparent's sampled flag always decides for its trace."`
	ServiceName string       `yaml:"service_name" doc:"service.name resource attribute of the exported spans."`
}

// TracingOTLP is the OTLP/HTTP exporter.
type TracingOTLP struct {
	Endpoint string            `yaml:"endpoint" required:"true" pattern:"^https?://" doc:"Base URL of the OTLP/HTTP receiver (http or https); spans are POSTed to <endpoint>/v1/traces."`
	Headers  map[string]Secret `yaml:"headers" doc:"Header lines sent with every export, such as an API key; write secrets as ${ENV_VAR}."`
	Timeout  Duration          `yaml:"timeout" doc:"Time allowed for one export request."`
}

func (t *Tracing) setDefaults() {
	t.SampleRatio = "none"
	t.ServiceName = "bulwark"
}

func (o *TracingOTLP) setDefaults() {
	o.Timeout = Duration(10 * time.Second)
}

// Ratio returns sample_ratio as a number between 0 and 1 (valid once the
// config loaded).
func (t *Tracing) Ratio() float64 {
	switch t.SampleRatio {
	case "all":
		return 1
	case "none":
		return 0
	}
	f, _ := strconv.ParseFloat(string(t.SampleRatio), 64)
	return f
}
