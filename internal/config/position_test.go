package config

import "testing"

func TestPos(t *testing.T) {
	cfg := mustParse(t, lines(
		"server:",
		"  listen: \":8081\"",
		"upstreams:",
		"  app.v1: { url: \"http://127.0.0.1:9000\" }",
		"routes:",
		"  - name: r",
		"    method: GET",
		"    path: /",
		"    upstream: app.v1",
		"    auth: none",
		"    cors:",
		"      origins: [\"https://a.example\", \"https://b.example\"]",
	), nil)
	tests := []struct {
		path string
		want Pos
	}{
		{path: "", want: Pos{1, 1}},
		{path: "server", want: Pos{2, 3}},
		{path: "server.listen", want: Pos{2, 11}},
		{path: "server.read_timeout", want: Pos{2, 3}}, // a default: the enclosing section
		{path: "admin.listen", want: Pos{1, 1}},        // a default section: the document
		{path: "upstreams.app.v1", want: Pos{4, 11}},
		{path: "upstreams.app.v1.url", want: Pos{4, 18}},
		{path: "upstreams.app.v1.timeout", want: Pos{4, 11}},
		{path: "routes[0]", want: Pos{6, 5}},
		{path: "routes[0].cors.origins[1]", want: Pos{12, 38}},
		{path: "routes[0].cors.max_age", want: Pos{12, 7}},
		{path: "routes[3].name", want: Pos{6, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := cfg.Pos(tt.path); got != tt.want {
				t.Errorf("Pos(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestParentPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "routes[2].cors.origins[0]", want: "routes[2].cors.origins"},
		{in: "routes[2].cors.origins", want: "routes[2].cors"},
		{in: "routes[2]", want: "routes"},
		{in: "routes", want: ""},
		{in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parentPath(tt.in); got != tt.want {
				t.Errorf("parentPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
