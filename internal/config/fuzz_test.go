package config

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader. Properties: it never
// panics; a failure is an Errors in which every problem has a line, unless
// it is about the whole file (no line, no column, no path); a success is
// deterministic (parsing the same bytes again gives an equal config).
// The seeds run as a plain test in go test; make fuzz runs it time-boxed.
func FuzzLoad(f *testing.F) {
	// A valid minimal config.
	f.Add([]byte(minimal))
	// A valid config that sets most sections, with env expansion.
	f.Add([]byte(lines(
		"mode: report",
		"server: { listen: \"${HOST:-0.0.0.0}:8080\", max_body_size: 2MiB, write_timeout: 0s, trusted_proxies: [10.0.0.0/8, 192.0.2.1] }",
		"admin: { listen: \"127.0.0.1:9901\", allow: [127.0.0.1] }",
		"log: { level: debug, format: console }",
		"reload: { watch: true, debounce: 1s }",
		minimal,
	)))
	// An unknown key.
	f.Add([]byte(lines("sever: {}", minimal)))
	// A duration without unit, and a negative size.
	f.Add([]byte(lines("server: { read_timeout: 30, max_body_size: -1 }", minimal)))
	// An alias reused, and a merge key (refused).
	f.Add([]byte(lines("upstreams:", "  a: &u { url: \"http://127.0.0.1:9000\" }", "  b: *u", "  c: { <<: *u }", "routes: []")))
	// An alias cycle.
	f.Add([]byte("routes: &x [*x]\n"))
	// An unset variable, an empty variable with a default, an escaped ${.
	f.Add([]byte(lines("server: { listen: \"${NOPE}\" }", "admin: { token: \"${EMPTY:-$${x}0123456789abcdef}\" }", minimal)))
	// An unterminated ${.
	f.Add([]byte(lines("server: { listen: \"${HOST\" }", minimal)))
	// An unbuilt top-level key and an unbuilt route key.
	f.Add([]byte(lines("audit: { sink: stdout }", oneRoute("name: r, method: GET, path: /, upstream: app, auth: none, validate: {}"))))
	// Object-level rules: one that compiles, one that does not parse.
	f.Add([]byte(oneRoute(`name: r, method: GET, path: "/u/{id}", upstream: app, auth: none, authorize: { deny_status: 404, rules: [ { name: a, expr: 'request.path.id == "x"' }, { name: b, expr: 'request.query.' } ] }`)))
	// Route problems: duplicate pair, bad path, OPTIONS beside cors.
	f.Add([]byte(twoRoutes(
		"name: a, method: GET, path: \"/a/{x}\", upstream: app, auth: none, cors: { origins: [\"*\"] }",
		"name: b, method: OPTIONS, path: \"/a/{y}/../\", upstream: app, auth: [corp]",
	)))
	// A YAML syntax error.
	f.Add([]byte("server:\n  listen: :80\n bad: [\n"))
	// Two documents.
	f.Add([]byte(minimal + "---\n" + minimal))
	// An empty file.
	f.Add([]byte(""))
	// Wrong kinds everywhere.
	f.Add([]byte("server: [1]\nupstreams: x\nroutes: {a: b}\nmode: [report]\n"))
	// A TLS section whose files do not exist.
	f.Add([]byte(lines("server: { tls: { cert_file: no.crt, key_file: no.key, client_auth: request } }", minimal)))

	env := envOf(map[string]string{"HOST": "127.0.0.1", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, env)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse() error = %v (%T), want a non-empty Errors", err, err)
			}
			for _, e := range errs {
				wholeFile := e.Line == 0 && e.Col == 0 && e.Path == ""
				if e.Line < 1 && !wholeFile {
					t.Errorf("error without a line: %#v", e)
				}
				if e.File != "fuzz.yaml" || e.Msg == "" {
					t.Errorf("error without file or message: %#v", e)
				}
			}
			return
		}
		again, err := Parse("fuzz.yaml", data, env)
		if err != nil {
			t.Fatalf("second Parse() error = %v, first succeeded", err)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Errorf("Parse() is not deterministic:\n%+v\n%+v", cfg, again)
		}
	})
}
