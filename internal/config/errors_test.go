package config

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{name: "full", err: Error{File: "b.yaml", Line: 3, Col: 5, Path: "routes[2].cors.origins[0]", Msg: "bad"}, want: "b.yaml:3:5: routes[2].cors.origins[0]: bad"},
		{name: "no path", err: Error{File: "b.yaml", Line: 3, Col: 5, Msg: "bad"}, want: "b.yaml:3:5: bad"},
		{name: "line only", err: Error{File: "b.yaml", Line: 3, Msg: "invalid YAML"}, want: "b.yaml:3: invalid YAML"},
		{name: "whole file", err: Error{File: "b.yaml", Msg: "empty"}, want: "b.yaml: empty"},
		{name: "whole file with path", err: Error{File: "b.yaml", Path: "routes", Msg: "x"}, want: "b.yaml: routes: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorsJoinAndUnwrap(t *testing.T) {
	errs := Errors{
		{File: "a.yaml", Line: 1, Col: 1, Path: "x", Msg: "one"},
		{File: "a.yaml", Msg: "cannot read", err: fs.ErrPermission},
	}
	if got, want := errs.Error(), "a.yaml:1:1: x: one\na.yaml: cannot read"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var err error = errs
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(errs, fs.ErrPermission) = false, want true")
	}
	var one Error
	if !errors.As(err, &one) || one.Msg != "one" {
		t.Errorf("errors.As(errs, *Error) = %v, want the first error", one)
	}
}

func TestSortErrors(t *testing.T) {
	errs := []Error{
		{Line: 3, Col: 1, Msg: "c"},
		{Line: 1, Col: 9, Msg: "b"},
		{Msg: "whole file"},
		{Line: 1, Col: 2, Msg: "a"},
	}
	sortErrors(errs)
	var got []string
	for _, e := range errs {
		got = append(got, e.Msg)
	}
	if want := []string{"whole file", "a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}
