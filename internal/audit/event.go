package audit

import "time"

// Event is one audit event: what happened to one request. Its JSON field
// names are a fixed interface (docs/audit.md, docs/audit.schema.json):
// SIEM rules and tests outside this repository read them.
type Event struct {
	Time           string            `json:"time"`
	RequestID      string            `json:"request_id"`
	TraceID        string            `json:"trace_id"`
	Route          string            `json:"route"`
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	ClientIP       string            `json:"client_ip"`
	Principal      *Principal        `json:"principal"`
	Decision       Decision          `json:"decision"`
	OWASP          string            `json:"owasp,omitempty"`
	NIST           []string          `json:"nist,omitempty"`
	Status         int               `json:"status"`
	UpstreamStatus int               `json:"upstream_status"`
	DurationMS     float64           `json:"duration_ms"`
	BytesIn        int64             `json:"bytes_in"`
	BytesOut       int64             `json:"bytes_out"`
	WouldDeny      []Decision        `json:"would_deny,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	Filter         *Filter           `json:"filter,omitempty"`
}

// Filter is what response filtering did: the paths it removed and masked
// and the sensitive-looking values it found (kind and path, never the
// value). Array indices are written [*].
type Filter struct {
	Removed  []string  `json:"removed,omitempty"`
	Masked   []string  `json:"masked,omitempty"`
	Detected []Finding `json:"detected,omitempty"`
}

// Finding is one sensitive-looking value found in a response.
type Finding struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
}

// Principal is who made the request, as authentication verified it. It
// never holds the credential itself.
type Principal struct {
	Subject    string         `json:"subject"`
	Consumer   string         `json:"consumer"`
	AuthMethod string         `json:"auth_method"`
	KeyID      string         `json:"key_id"`
	Claims     map[string]any `json:"claims,omitempty"`
}

// Decision is the outcome of the chain for the request: allowed, or the
// stage, reason and rule that denied it (mode report: would have denied).
type Decision struct {
	Allowed bool   `json:"allowed"`
	Stage   string `json:"stage,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Mode    string `json:"mode,omitempty"`
}

// timeLayout is RFC 3339 with milliseconds, in UTC.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// formatTime formats t for Event.Time.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }
