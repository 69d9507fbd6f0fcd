package authz

import (
	"reflect"
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/validate"
)

// FuzzKeepItems feeds upstream bodies to keepItems. Properties: keeping
// every element gives back the same JSON value; keeping none leaves an
// empty array in place and valid JSON around it.
func FuzzKeepItems(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,3]}`))                             // the plain case
	f.Add([]byte(` { "b" : 1 , "a" : [ {"x":[1]} , "s" ] } `)) // whitespace everywhere
	f.Add([]byte(`{"b":{"a":[]},"a":[]}`))                     // the name deeper first, and an empty array
	f.Add([]byte(`{"a":{"a":[1]}}`))                           // not an array at the path
	f.Add([]byte(`{"\u0061":[1e2,-0.0]}`))                     // an escaped member name, number text
	f.Fuzz(func(t *testing.T, body []byte) {
		want, err := validate.DecodeJSON(body)
		if err != nil {
			return // the stage refuses invalid JSON before keepItems
		}
		all, dropped, err := keepItems(body, []string{"a"}, func([]byte) bool { return true })
		if err != nil {
			return
		}
		got, err := validate.DecodeJSON(all)
		if err != nil || dropped != 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("keepItems(%q, all) = %q, %d: %v; want the same value", body, all, dropped, err)
		}
		none, _, err := keepItems(body, []string{"a"}, func([]byte) bool { return false })
		if err != nil {
			t.Fatalf("keepItems(%q, none) error = %v", body, err)
		}
		v, err := validate.DecodeJSON(none)
		if err != nil {
			t.Fatalf("keepItems(%q, none) = %q: not JSON: %v", body, none, err)
		}
		if a, ok := v.(map[string]any)["a"].([]any); !ok || len(a) != 0 {
			t.Fatalf("keepItems(%q, none) = %q, want an empty array at a", body, none)
		}
	})
}
