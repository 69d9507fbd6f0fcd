package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite docs/bulwark.schema.json from Schema()")

const (
	schemaFile = "../../docs/bulwark.schema.json"
	docFile    = "../../docs/configuration.md"
	configsDir = "../../configs"
)

// TestSchemaGolden keeps docs/bulwark.schema.json equal to Schema(); run
// go test ./internal/config -run TestSchemaGolden -update to rewrite it.
func TestSchemaGolden(t *testing.T) {
	got, err := Schema()
	if err != nil {
		t.Fatalf("Schema() error: %v", err)
	}
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Schema() differs from %s; run go test ./internal/config -run TestSchemaGolden -update", schemaFile)
	}
}

// compileSchema compiles Schema() with the JSON Schema validator.
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("bulwark.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("bulwark.schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// yamlToJSON decodes YAML into the values a JSON document would hold.
func yamlToJSON(t testing.TB, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// configsEnv returns the environment the files in configs/ are checked
// with: their TLS files point at a certificate made by the test.
func configsEnv(t testing.TB) map[string]string {
	t.Helper()
	p := newPKI(t)
	return map[string]string{
		"BULWARK_TLS_CERT":      p.certFile,
		"BULWARK_TLS_KEY":       p.keyFile,
		"BULWARK_TLS_CLIENT_CA": p.caFile,
		"BULWARK_UPSTREAM_CA":   p.caFile,
		"BULWARK_UPSTREAM_CERT": p.certFile,
		"BULWARK_UPSTREAM_KEY":  p.keyFile,
	}
}

// TestConfigs checks every configs/*.yaml: it matches the schema an editor
// uses, and it loads.
func TestConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(configsDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, filepath.Join(configsDir, "bulwark.example.yaml")) {
		t.Fatalf("configs/*.yaml = %v, want at least bulwark.example.yaml", files)
	}
	sch := compileSchema(t)
	env := configsEnv(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(yamlToJSON(t, src)); err != nil {
				t.Errorf("schema: %v", err)
			}
			if _, err := Load(file, envOf(env)); err != nil {
				t.Errorf("Load():\n%v", err)
			}
		})
	}
}

// TestSchemaValidates checks the schema against a few documents, so that
// what it accepts and refuses is tested, not only its text.
func TestSchemaValidates(t *testing.T) {
	sch := compileSchema(t)
	tests := []struct {
		name string
		src  string
		ok   bool
	}{
		{name: "minimal", src: minimal, ok: true},
		{name: "env in an integer, duration, boolean and size", src: lines(
			"server: { max_header_count: \"${N}\", read_timeout: \"${T:-5s}\", max_body_size: \"${S}\" }",
			"reload: { watch: \"${W:-false}\" }",
			minimal), ok: true},
		{name: "size as an integer", src: lines("server: { max_body_size: 1024 }", minimal), ok: true},
		{name: "unquoted TLS version", src: lines("server: { tls: { cert_file: a, key_file: b, min_version: 1.3 } }", minimal), ok: true},
		{name: "auth list", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: [a, b]"), ok: true},
		{name: "unknown key", src: lines("sever: {}", minimal)},
		{name: "unknown nested key", src: lines("server: { tls: { certfile: x } }", minimal)},
		{name: "duration without unit", src: lines("server: { read_timeout: \"30\" }", minimal)},
		{name: "bad size unit", src: lines("server: { max_body_size: 1mb }", minimal)},
		{name: "log level", src: lines("log: { level: verbose }", minimal)},
		{name: "empty auth list", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: []")},
		{name: "none in an auth list", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: [a, none]")},
		{name: "route without auth", src: oneRoute("name: r, method: GET, path: /, upstream: app")},
		{name: "authorize with writable fields only", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, authorize: { writable_fields: { id: {}, address.country: {} } }"), ok: true},
		{name: "authorize with a bad field path", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, authorize: { writable_fields: { a..b: {} } }")},
		{name: "authorize", src: oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, authorize: { deny_status: 404, rules: [ { name: a, expr: \"true\" } ] }"), ok: true},
		{name: "bad upstream name", src: lines("upstreams: { \"a b\": { url: \"http://x\" } }")},
		{name: "lower-case method", src: oneRoute("name: r, method: get, path: /, upstream: app, auth: none")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sch.Validate(yamlToJSON(t, []byte(tt.src)))
			if got := err == nil; got != tt.ok {
				t.Errorf("valid = %v, want %v (%v)", got, tt.ok, err)
			}
		})
	}
}

// schemaPaths lists the property paths of a schema: "server.tls.cert_file",
// "upstreams.<name>.url", "routes[].cors.origins".
func schemaPaths(s map[string]any, prefix string, out *[]string) {
	if props, ok := s["properties"].(map[string]any); ok {
		for name, sub := range props {
			p := joinPath(prefix, name)
			*out = append(*out, p)
			schemaPaths(sub.(map[string]any), p, out)
		}
	}
	if sub, ok := s["additionalProperties"].(map[string]any); ok {
		schemaPaths(sub, prefix+".<name>", out)
	}
	if sub, ok := s["items"].(map[string]any); ok {
		schemaPaths(sub, prefix+"[]", out)
	}
}

// TestDocsCoverSchema checks that docs/configuration.md names every key
// of the schema, written as `path`, so the reference cannot drift.
func TestDocsCoverSchema(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var paths []string
	schemaPaths(root, "", &paths)
	slices.Sort(paths)
	doc, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 50 {
		t.Fatalf("found %d schema paths, want the whole config (at least 50)", len(paths))
	}
	for _, p := range paths {
		if !strings.Contains(string(doc), "`"+p+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", p)
		}
	}
}
func TestFormatDefaults(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "hours", got: formatDuration(Duration(8760 * time.Hour)), want: "8760h"},
		{name: "minutes", got: formatDuration(Duration(90 * time.Second)), want: "1m30s"},
		{name: "whole minutes", got: formatDuration(Duration(2 * time.Minute)), want: "2m"},
		{name: "milliseconds", got: formatDuration(Duration(500 * time.Millisecond)), want: "500ms"},
		{name: "zero", got: formatDuration(0), want: "0s"},
		{name: "MiB", got: formatSize(10 << 20), want: "10MiB"},
		{name: "KiB", got: formatSize(32 << 10), want: "32KiB"},
		{name: "bytes", got: formatSize(1000), want: "1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
