// Package docker checks the repository's Dockerfile and .dockerignore
// without a Docker engine: a small Dockerfile parser, shell word splitting
// for RUN commands, and .dockerignore matching. The tests use them to
// assert what the image is (static binary, non-root, exec-form
// healthcheck) and to run the image's go build on this machine.
package docker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Line    int               // line where the instruction starts
	Keyword string            // upper case: FROM, RUN, COPY, ...
	Flags   map[string]string // leading --name=value flags; repeated flags keep the last
	Args    string            // the rest, flags removed
}

// ExecForm returns the instruction's arguments when they are a JSON array
// (exec form), and false for shell form.
func (in Instruction) ExecForm() ([]string, bool) {
	if !strings.HasPrefix(in.Args, "[") {
		return nil, false
	}
	var argv []string
	if err := json.Unmarshal([]byte(in.Args), &argv); err != nil {
		return nil, false
	}
	return argv, true
}

// Stage is one build stage: a FROM and the instructions up to the next.
type Stage struct {
	Name         string // AS name, or "" without one
	Base         string // the image of FROM
	Platform     string // --platform of FROM
	Instructions []Instruction
}

// Find returns the stage's instructions with keyword, in order.
func (s Stage) Find(keyword string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Keyword == keyword {
			out = append(out, in)
		}
	}
	return out
}

// Dockerfile is a parsed Dockerfile.
type Dockerfile struct {
	Stages []Stage
}

// Stage returns the stage named name (or with that index, as docker does
// for COPY --from=0).
func (d Dockerfile) Stage(name string) (Stage, bool) {
	for i, s := range d.Stages {
		if s.Name == name || fmt.Sprint(i) == name {
			return s, true
		}
	}
	return Stage{}, false
}

// Final returns the last stage, the one the image is made of.
func (d Dockerfile) Final() Stage {
	return d.Stages[len(d.Stages)-1]
}

// Parse reads a Dockerfile: comment lines are dropped (also between
// continuation lines, as docker does), lines ending in a backslash are
// joined with the next, and instructions are grouped into stages. Parser
// directives (# syntax=, # escape=) are treated as comments; a Dockerfile
// that changes the escape character is not supported.
func Parse(r io.Reader) (Dockerfile, error) {
	var d Dockerfile
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if directive := strings.ToLower(strings.ReplaceAll(trimmed, " ", "")); strings.HasPrefix(directive, "#escape=") && directive != `#escape=\` {
			return Dockerfile{}, fmt.Errorf("line %d: escape directive not supported", n)
		}
		// Comment lines and empty lines are dropped, also between the
		// lines of one instruction.
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		// Join continuation lines with one space; the indentation of
		// continued lines is layout, not content.
		if cur.Len() > 0 {
			line = strings.TrimLeft(line, " \t")
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(strings.TrimRight(body, " \t"))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		if err := d.add(start, cur.String()); err != nil {
			return Dockerfile{}, err
		}
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return Dockerfile{}, fmt.Errorf("read dockerfile: %w", err)
	}
	if cur.Len() > 0 {
		if err := d.add(start, cur.String()); err != nil {
			return Dockerfile{}, err
		}
	}
	if len(d.Stages) == 0 {
		return Dockerfile{}, fmt.Errorf("no FROM instruction")
	}
	return d, nil
}

// add appends the instruction in text, which starts on line.
func (d *Dockerfile) add(line int, text string) error {
	keyword, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	in := Instruction{Line: line, Keyword: strings.ToUpper(keyword), Flags: map[string]string{}}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		in.Flags[name] = value
		rest = strings.TrimSpace(after)
	}
	in.Args = rest
	if in.Keyword == "FROM" {
		fields := strings.Fields(in.Args)
		s := Stage{Platform: in.Flags["platform"]}
		switch {
		case len(fields) == 1:
			s.Base = fields[0]
		case len(fields) == 3 && strings.EqualFold(fields[1], "AS"):
			s.Base, s.Name = fields[0], fields[2]
		default:
			return fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", line, in.Args)
		}
		d.Stages = append(d.Stages, s)
	}
	if len(d.Stages) == 0 {
		if in.Keyword == "ARG" {
			return nil // global ARG before the first FROM
		}
		return fmt.Errorf("line %d: %s before the first FROM", line, in.Keyword)
	}
	last := &d.Stages[len(d.Stages)-1]
	last.Instructions = append(last.Instructions, in)
	return nil
}
