package config

import "time"

// Audit is the `audit:` section: where the one event per request goes and
// which requests get one (DESIGN.md "Audit event").
type Audit struct {
	Sink      string       `yaml:"sink" enum:"stdout,file,syslog,http" doc:"Where events go: stdout, file, syslog or http."`
	File      *AuditFile   `yaml:"file" doc:"The file sink (sink: file)."`
	Syslog    *AuditSyslog `yaml:"syslog" doc:"The syslog sink (sink: syslog): RFC 5424 over TCP, TLS optional."`
	HTTP      *AuditHTTP   `yaml:"http" doc:"The HTTP sink (sink: http): batched NDJSON POSTed to a collector."`
	Allowed   AuditAllowed `yaml:"allowed" doc:"Events for allowed requests: all, none, or a sampling ratio such as 0.1 (denials and would-denials are always audited)."`
	QueueSize int          `yaml:"queue_size" doc:"Events held between the request path and the sink."`
	OnFull    string       `yaml:"on_full" enum:"block,drop" doc:"When the queue is full: block (the request waits for room, up to block_timeout, then the event is dropped and counted) or drop (counted)."`
	BlockFor  Duration     `yaml:"block_timeout" doc:"With on_full: block, the longest a request waits for room in the queue."`
	Headers   []string     `yaml:"headers" doc:"Request headers to include in events (credential headers are refused)."`
	Claims    []string     `yaml:"claims" doc:"Token claims to include in events under principal.claims."`
}

// AuditFile is the file sink: JSON lines, rotated by size.
type AuditFile struct {
	Path       Path     `yaml:"path" required:"true" doc:"The audit file (JSON lines)."`
	MaxSize    Size     `yaml:"max_size" doc:"Rotate when the file reaches this size."`
	MaxBackups int      `yaml:"max_backups" min:"0" doc:"Rotated files kept; 0 keeps them all."`
	MaxAge     Duration `yaml:"max_age" doc:"Delete rotated files older than this; 0 keeps them."`
}

// AuditSyslog is the syslog sink.
type AuditSyslog struct {
	Address  string     `yaml:"address" required:"true" doc:"host:port of the syslog receiver (TCP)."`
	TLS      *ClientTLS `yaml:"tls" doc:"TLS towards the receiver (ca_file, cert_file, key_file, server_name)."`
	AppName  string     `yaml:"app_name" doc:"APP-NAME of the RFC 5424 messages."`
	Facility int        `yaml:"facility" min:"0" doc:"Syslog facility number (default 13, log audit)."`
}

// AuditHTTP is the HTTP sink.
type AuditHTTP struct {
	URL           string   `yaml:"url" required:"true" pattern:"^https?://" doc:"Collector URL; batches are POSTed as application/x-ndjson."`
	Token         Secret   `yaml:"token" doc:"Bearer token sent to the collector; write it as ${ENV_VAR}."`
	BatchSize     int      `yaml:"batch_size" doc:"Most events per POST."`
	FlushInterval Duration `yaml:"flush_interval" doc:"Longest time an event waits for its batch to fill."`
	Timeout       Duration `yaml:"timeout" doc:"Time allowed for one POST."`
	CAFile        Path     `yaml:"ca_file" doc:"PEM CA bundle for an https collector."`
}

func (a *Audit) setDefaults() {
	a.Sink = "stdout"
	a.Allowed = "all"
	a.QueueSize = 10000
	a.OnFull = "drop"
	a.BlockFor = Duration(100 * time.Millisecond)
}

func (f *AuditFile) setDefaults() {
	f.MaxSize = 100 << 20
	f.MaxBackups = 10
}

func (s *AuditSyslog) setDefaults() {
	s.AppName = "bulwark"
	s.Facility = 13
}

func (h *AuditHTTP) setDefaults() {
	h.BatchSize = 500
	h.FlushInterval = Duration(time.Second)
	h.Timeout = Duration(5 * time.Second)
}

// AuditAllowed is audit.allowed: all, none, or a sampling ratio such as
// 0.1 (written as a number or a string).
type AuditAllowed string
