package docker

import (
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// repoRoot returns the module root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// repoDockerfile parses the repository's Dockerfile.
func repoDockerfile(t testing.TB) Dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	d, err := Parse(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	return d
}

func TestParse(t *testing.T) {
	const src = `# syntax=docker/dockerfile:1
ARG GLOBAL=1
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
RUN --mount=type=cache,target=/go/pkg/mod \
    # a comment between continuation lines is dropped
    CGO_ENABLED=0 go build \

    -o /out/app ./cmd/app

from scratch
COPY --from=build /out/app /app
HEALTHCHECK --interval=5s CMD ["/app", "healthcheck"]
`
	d, err := Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Stages) != 2 {
		t.Fatalf("stages = %d, want 2", len(d.Stages))
	}
	build, final := d.Stages[0], d.Final()
	tests := []struct {
		name      string
		got, want string
	}{
		{name: "stage name", got: build.Name, want: "build"},
		{name: "stage base", got: build.Base, want: "golang:1.26"},
		{name: "stage platform", got: build.Platform, want: "$BUILDPLATFORM"},
		{name: "joined RUN", got: build.Find("RUN")[0].Args, want: "CGO_ENABLED=0 go build -o /out/app ./cmd/app"},
		{name: "RUN flag", got: build.Find("RUN")[0].Flags["mount"], want: "type=cache,target=/go/pkg/mod"},
		{name: "lower-case keyword", got: final.Base, want: "scratch"},
		{name: "COPY from", got: final.Find("COPY")[0].Flags["from"], want: "build"},
		{name: "COPY args", got: final.Find("COPY")[0].Args, want: "/out/app /app"},
		{name: "HEALTHCHECK flag", got: final.Find("HEALTHCHECK")[0].Flags["interval"], want: "5s"},
		{name: "HEALTHCHECK args", got: final.Find("HEALTHCHECK")[0].Args, want: `CMD ["/app", "healthcheck"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	if got, want := build.Find("RUN")[0].Line, 4; got != want {
		t.Errorf("RUN line = %d, want %d", got, want)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{name: "no FROM", src: "# nothing\n", want: "no FROM"},
		{name: "instruction before FROM", src: "RUN true\nFROM scratch\n", want: "before the first FROM"},
		{name: "bad FROM", src: "FROM a b\n", want: "want IMAGE [AS NAME]"},
		{name: "other escape character", src: "# escape=`\nFROM scratch\n", want: "escape directive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestExecForm(t *testing.T) {
	tests := []struct {
		name   string
		args   string
		want   []string
		wantOK bool
	}{
		{name: "exec form", args: `["/bulwark", "serve"]`, want: []string{"/bulwark", "serve"}, wantOK: true},
		{name: "shell form", args: `/bulwark serve`, want: nil, wantOK: false},
		{name: "broken JSON is shell form", args: `["/bulwark", serve]`, want: nil, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Instruction{Args: tt.args}.ExecForm()
			if !slices.Equal(got, tt.want) || ok != tt.wantOK {
				t.Errorf("ExecForm(%s) = %q, %v, want %q, %v", tt.args, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDockerfileFinalStageIsMinimal(t *testing.T) {
	base := repoDockerfile(t).Final().Base
	name, _, _ := strings.Cut(base, ":")
	if name != "scratch" && !strings.HasPrefix(name, "gcr.io/distroless/static") {
		t.Errorf("final stage base = %q, want distroless static or scratch", base)
	}
}

func TestDockerfileRunsAsNonRoot(t *testing.T) {
	users := repoDockerfile(t).Final().Find("USER")
	if len(users) == 0 {
		t.Fatalf("final stage has no USER, want a non-root user")
	}
	last := users[len(users)-1].Args
	user, group, _ := strings.Cut(last, ":")
	if user == "" || user == "root" || user == "0" {
		t.Errorf("USER = %q, want a non-root user", last)
	}
	if group == "root" || group == "0" {
		t.Errorf("USER = %q, want a non-root group", last)
	}
}

func TestDockerfileHealthcheckIsExecForm(t *testing.T) {
	checks := repoDockerfile(t).Final().Find("HEALTHCHECK")
	if len(checks) != 1 {
		t.Fatalf("HEALTHCHECK instructions = %d, want 1", len(checks))
	}
	cmd, ok := strings.CutPrefix(checks[0].Args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s: want CMD [...]", checks[0].Args)
	}
	argv, ok := Instruction{Args: strings.TrimSpace(cmd)}.ExecForm()
	if !ok {
		t.Fatalf("HEALTHCHECK CMD %s: want exec form (the image has no shell)", cmd)
	}
	if len(argv) < 2 || path.Base(argv[0]) != "bulwark" || argv[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK CMD = %q, want [.../bulwark healthcheck ...]", argv)
	}
}

func TestDockerfileEntrypointAndConfig(t *testing.T) {
	final := repoDockerfile(t).Final()
	tests := []struct {
		name    string
		keyword string
		want    string
	}{
		{name: "entrypoint", keyword: "ENTRYPOINT", want: `["/bulwark"]`},
		{name: "command", keyword: "CMD", want: `["serve"]`},
		{name: "config path", keyword: "ENV", want: "BULWARK_CONFIG=/etc/bulwark/bulwark.yaml"},
		{name: "ports", keyword: "EXPOSE", want: "8080 8443 9901"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, in := range final.Find(tt.keyword) {
				got = append(got, in.Args)
			}
			if !slices.Contains(got, tt.want) {
				t.Errorf("%s = %q, want %q among them", tt.keyword, got, tt.want)
			}
		})
	}
}

// builderCommand finds the go build that produces the binary the final
// stage runs: ENTRYPOINT's program, copied from a builder stage's -o output.
func builderCommand(t testing.TB, d Dockerfile) SimpleCommand {
	t.Helper()
	final := d.Final()
	ep := final.Find("ENTRYPOINT")
	if len(ep) == 0 {
		t.Fatalf("final stage has no ENTRYPOINT")
	}
	argv, ok := ep[len(ep)-1].ExecForm()
	if !ok || len(argv) == 0 {
		t.Fatalf("ENTRYPOINT %s: want exec form", ep[len(ep)-1].Args)
	}
	var from, src string
	for _, in := range final.Find("COPY") {
		fields := strings.Fields(in.Args)
		if in.Flags["from"] != "" && len(fields) == 2 && fields[1] == argv[0] {
			from, src = in.Flags["from"], fields[0]
		}
	}
	if from == "" {
		t.Fatalf("no COPY --from=STAGE SRC %s in the final stage", argv[0])
	}
	builder, ok := d.Stage(from)
	if !ok {
		t.Fatalf("COPY --from=%s: no such stage", from)
	}
	vars := map[string]string{}
	for _, in := range builder.Instructions {
		switch in.Keyword {
		case "ARG":
			name, value, hasDefault := strings.Cut(in.Args, "=")
			if auto, ok := platformArgs()[name]; ok && !hasDefault {
				value = auto
			}
			vars[name] = value
		case "RUN":
			if !strings.Contains(in.Args, "go build") {
				continue
			}
			cmd, err := SplitCommand(in.Args, vars)
			if err != nil {
				t.Fatalf("line %d: %v", in.Line, err)
			}
			if i := slices.Index(cmd.Argv, "-o"); i > 0 && i+1 < len(cmd.Argv) && cmd.Argv[i+1] == src {
				return cmd
			}
		}
	}
	t.Fatalf("stage %s has no RUN go build -o %s", from, src)
	return SimpleCommand{}
}

// platformArgs are the ARGs BuildKit sets itself, for a build for this
// machine's platform.
func platformArgs() map[string]string {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	return map[string]string{
		"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "TARGETPLATFORM": platform,
		"BUILDOS": runtime.GOOS, "BUILDARCH": runtime.GOARCH, "BUILDPLATFORM": platform,
	}
}

// TestDockerfileBinaryIsStatic runs the image's own go build (same
// environment and flags, output in a temporary directory) and checks that
// the binary is static, so that it runs on distroless static or scratch.
func TestDockerfileBinaryIsStatic(t *testing.T) {
	cmd := builderCommand(t, repoDockerfile(t))
	if !slices.Contains(cmd.Env, "CGO_ENABLED=0") {
		t.Errorf("go build environment = %q, want CGO_ENABLED=0", cmd.Env)
	}
	if !slices.Equal(cmd.Argv[:2], []string{"go", "build"}) {
		t.Fatalf("command = %q, want go build", cmd.Argv)
	}
	out := filepath.Join(t.TempDir(), "bulwark")
	argv := slices.Clone(cmd.Argv)
	argv[slices.Index(argv, "-o")+1] = out

	build := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), cmd.Env...)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(append(slices.Clone(cmd.Env), argv...), " "), err, b)
	}

	if problems := dynamicLinking(t, out); len(problems) > 0 {
		t.Errorf("binary built as the Dockerfile says is not static: %q", problems)
	}
}

// dynamicLinking lists what makes the ELF file at path depend on a dynamic
// loader: a PT_INTERP program header and DT_NEEDED libraries.
func dynamicLinking(t testing.TB, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var problems []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			problems = append(problems, "PT_INTERP program header")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range libs {
		problems = append(problems, "DT_NEEDED "+lib)
	}
	return problems
}

// TestDynamicLinkingSeesADynamicBinary keeps the static check honest: the
// shell of any Debian machine is dynamically linked, and must be reported.
func TestDynamicLinkingSeesADynamicBinary(t *testing.T) {
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if problems := dynamicLinking(t, sh); len(problems) < 2 {
		t.Errorf("dynamicLinking(%s) = %q, want PT_INTERP and at least one DT_NEEDED", sh, problems)
	}
}
