// Package validate checks requests and responses against OpenAPI documents (kin-openapi) and JSON bodies against threat limits.
//
// The OpenAPI side is built once and then only run: LoadSpec parses and validates a
// document, Spec.Compile prepares one operation per gateway route (parameters split by
// location, media types, body schemas, a strict copy of the schemas when asked), and
// Operation.ValidateRequest / ValidateResponse only read what Compile prepared.
package validate

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Spec is a loaded, validated OpenAPI document. It is immutable after LoadSpec and safe
// for concurrent use.
type Spec struct {
	path     string
	doc      *openapi3.T
	is31     bool
	ops      []OperationInfo
	opRefs   []*openapi3.Operation // parallel to ops
	byID     map[string]int
	schemes  map[string]SchemeInfo
	prefixes []string // path prefixes of the servers' URLs ("/api/v1"), without a trailing slash
	strict   strictCache
	dirs     directedCache
}

// OperationInfo describes one operation of a Spec.
type OperationInfo struct {
	Method     string // upper-case
	Path       string // the path template as written in the spec ("/orders/{id}")
	ID         string // operationId, "" when absent
	Deprecated bool
	// Security is the effective security of the operation: its own `security` when
	// present, else the document's. An empty, non-nil slice means public (an explicit
	// `security: []`); nil means the document declares none either.
	Security []SecurityRequirement
	// Scopes is the union of the scopes named by Security, sorted, without duplicates.
	Scopes []string
}

// SecurityRequirement maps a security scheme name to the scopes it needs. All schemes
// of one requirement must pass; a list of requirements is satisfied by any one of them.
type SecurityRequirement map[string][]string

// SchemeInfo describes one entry of components.securitySchemes.
type SchemeInfo struct {
	Type         string // "http", "apiKey", "oauth2", "openIdConnect" or "mutualTLS"
	Scheme       string // http: "bearer", "basic", ...
	BearerFormat string // http bearer: "JWT", ...
	In           string // apiKey: "header", "query" or "cookie"
	Name         string // apiKey: the header, query parameter or cookie name
	OpenIDURL    string // openIdConnect: the discovery URL (never fetched here)
}

// Options selects how strictly Compile validates one operation.
type Options struct {
	// Strict treats object schemas that do not set additionalProperties as closed,
	// refuses readOnly properties in requests and writeOnly properties in responses.
	Strict bool
	// StrictQuery refuses query parameters the operation does not declare.
	StrictQuery bool
}

// Request is what the HTTP stage hands to Operation.ValidateRequest.
type Request struct {
	Method      string
	PathParams  []string // values in route-template order, already percent-decoded
	Query       url.Values
	Header      http.Header
	ContentType string // the raw Content-Type header, "" when absent
	Body        []byte // the raw body, nil when there is none
	// BodyValue is the body decoded once by DecodeJSON, nil when the body is not JSON
	// or absent. When it is nil and the body is JSON, ValidateRequest decodes Body itself.
	BodyValue any
}

// Violation describes one broken rule. It is safe to show to a client: it names the
// field and the rule, never the submitted value.
type Violation struct {
	Status int    // 400 or 415 for requests, 502 for responses
	Reason string // bounded snake_case label for metrics, see the Reason* constants
	In     string // "path", "query", "header", "cookie", "body" or "response"
	Field  string // a parameter name, or a JSON pointer into the body ("/items/0/qty")
	Rule   string // the schema keyword broken: "type", "pattern", "required", ...
	Detail string // one sentence for the client
}

// Reasons a Violation carries. The set is closed so that it can label metrics.
const (
	ReasonParameter           = "parameter"
	ReasonMissingParameter    = "missing_parameter"
	ReasonUnknownQuery        = "unknown_query"
	ReasonContentType         = "content_type"
	ReasonMissingBody         = "missing_body"
	ReasonInvalidJSON         = "invalid_json"
	ReasonBodySchema          = "body_schema"
	ReasonReadOnly            = "read_only"
	ReasonWriteOnly           = "write_only"
	ReasonAdditionalProperty  = "additional_property"
	ReasonUndeclaredStatus    = "undeclared_status"
	ReasonResponseContentType = "response_content_type"
	ReasonResponseSchema      = "response_schema"
)

// Error implements error with the Detail, prefixed so that logs can be grepped.
func (v *Violation) Error() string {
	return "validate: " + v.Detail
}

// SpecError is returned by LoadSpec. It names the file and, when it could be found,
// the line and column the problem is at.
type SpecError struct {
	File   string
	Line   int // 0 when unknown
	Column int // 0 when unknown
	Err    error
}

func (e *SpecError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *SpecError) Unwrap() error { return e.Err }

// RemoteRefError is the cause (errors.As) of a LoadSpec error when the document refers
// to a remote location. Nothing is fetched.
type RemoteRefError struct {
	Ref string
}

func (e *RemoteRefError) Error() string {
	return fmt.Sprintf("remote $ref %q refused: only local files are read", e.Ref)
}

// pointer renders a JSON pointer (RFC 6901) from its tokens.
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return ""
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

// maxFieldLen bounds the names a client chose (unknown query keys, extra properties)
// when a violation repeats them.
const maxFieldLen = 64

// clip shortens a client-chosen name for a violation, keeping it valid UTF-8.
func clip(name string) string {
	if len(name) <= maxFieldLen {
		return name
	}
	return strings.ToValidUTF8(name[:maxFieldLen], "") + "..."
}

// describe builds the client sentence of a violation from names only.
func describe(in, field, rule string) string {
	if rule == "repeated" {
		return in + " parameter " + strconv.Quote(field) + " is sent more than once"
	}
	switch in {
	case "body":
		if field == "" {
			return "request body breaks " + strconv.Quote(rule)
		}
		return "body field " + strconv.Quote(field) + " breaks " + strconv.Quote(rule)
	case "response":
		if field == "" {
			return "response body breaks " + strconv.Quote(rule)
		}
		return "response field " + strconv.Quote(field) + " breaks " + strconv.Quote(rule)
	}
	return in + " parameter " + strconv.Quote(field) + " breaks " + strconv.Quote(rule)
}

// IsJSON reports whether a Content-Type names JSON: application/json or a
// +json structured syntax suffix (application/problem+json, ...). It reads
// only the media type before any ';', as leniently as an upstream's parser
// would, so that a malformed parameter cannot make a JSON body look like
// something else to the gateway.
func IsJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}
