package docker

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	vars := map[string]string{"V": "1.2", "OS": "linux", "EMPTY": ""}
	tests := []struct {
		name     string
		in       string
		wantEnv  []string
		wantArgv []string
	}{
		{name: "plain", in: "go build ./cmd/x", wantArgv: []string{"go", "build", "./cmd/x"}},
		{name: "assignments", in: "CGO_ENABLED=0 GOOS=${OS} go build", wantEnv: []string{"CGO_ENABLED=0", "GOOS=linux"}, wantArgv: []string{"go", "build"}},
		{name: "assignment after the command is a word", in: "env A=1", wantArgv: []string{"env", "A=1"}},
		{name: "double quotes expand", in: `go build -ldflags "-s -X v=${V} -X w=$V"`, wantArgv: []string{"go", "build", "-ldflags", "-s -X v=1.2 -X w=1.2"}},
		{name: "single quotes do not", in: `echo '${V} $V'`, wantArgv: []string{"echo", "${V} $V"}},
		{name: "escapes", in: `echo a\ b "c\"d"`, wantArgv: []string{"echo", "a b", `c"d`}},
		{name: "empty variable", in: `echo "${EMPTY}" x`, wantArgv: []string{"echo", "", "x"}},
		{name: "joined quotes", in: `echo a"b"'c'`, wantArgv: []string{"echo", "abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitCommand(tt.in, vars)
			if err != nil {
				t.Fatalf("SplitCommand(%q) error = %v", tt.in, err)
			}
			if !slices.Equal(got.Env, tt.wantEnv) || !slices.Equal(got.Argv, tt.wantArgv) {
				t.Errorf("SplitCommand(%q) = %q %q, want %q %q", tt.in, got.Env, got.Argv, tt.wantEnv, tt.wantArgv)
			}
		})
	}
}

func TestSplitCommandRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "and list", in: "go mod download && go build", want: "not one simple command"},
		{name: "sequence", in: "true; go build", want: "not one simple command"},
		{name: "pipe", in: "go build | tee log", want: "not one simple command"},
		{name: "redirection", in: "go build > log", want: "not one simple command"},
		{name: "command substitution", in: "go build -ldflags \"-X v=$(git describe)\"", want: "command substitution"},
		{name: "backquotes", in: "go build `x`", want: "not one simple command"},
		{name: "undefined variable", in: "go build -o ${NOPE}", want: "NOPE is not defined"},
		{name: "unterminated quote", in: `go build "x`, want: "unterminated double quote"},
		{name: "only assignments", in: "A=1", want: "no command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SplitCommand(tt.in, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SplitCommand(%q) error = %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}
