package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestIgnoreExcluded(t *testing.T) {
	const patterns = `# comment
.git
bin
**/testdata
*.md
docs/**/*.png
/deploy
!deploy/keep.yaml
`
	ig, err := ParseIgnore(strings.NewReader(patterns))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want bool
	}{
		{name: "directory itself", path: ".git", want: true},
		{name: "file under an excluded directory", path: ".git/config", want: true},
		{name: "testdata at any depth", path: "internal/edge/testdata/fuzz/FuzzX/1", want: true},
		{name: "root markdown", path: "README.md", want: true},
		{name: "star does not cross directories", path: "docs/errors.md", want: false},
		{name: "double star in the middle", path: "docs/a/b/c.png", want: true},
		{name: "leading slash is the root", path: "deploy/demo.sh", want: true},
		{name: "negation re-includes", path: "deploy/keep.yaml", want: false},
		{name: "source kept", path: "cmd/bulwark/main.go", want: false},
		{name: "name prefix is not a match", path: "binary/x.go", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ig.Excluded(tt.path); got != tt.want {
				t.Errorf("Excluded(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

// TestDockerignoreKeepsBuildInputs checks the real .dockerignore against
// what `go build ./cmd/bulwark` reads: every Go and embedded file of the
// module's packages it depends on, and go.mod and go.sum. It also checks
// that the repository's history and local build output stay out of the
// build context.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ig, err := ParseIgnore(f)
	if err != nil {
		t.Fatal(err)
	}

	list := exec.CommandContext(t.Context(), "go", "list", "-deps",
		"-f", `{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/bulwark")
	list.Dir = root
	list.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	inputs := []string{"go.mod", "go.sum"}
	for _, file := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, file)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, filepath.ToSlash(rel))
	}
	if len(inputs) < 3 {
		t.Fatalf("build inputs = %q, want the Go files of cmd/bulwark too", inputs)
	}
	for _, in := range inputs {
		if ig.Excluded(in) {
			t.Errorf(".dockerignore excludes %s, which go build ./cmd/bulwark needs", in)
		}
	}
	for _, out := range []string{".git/config", "bin/bulwark"} {
		if !ig.Excluded(out) {
			t.Errorf(".dockerignore keeps %s, want it out of the build context", out)
		}
	}
}
