package authz

import (
	"testing"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/exchange"
	"github.com/bulwark-gateway/bulwark/internal/validate"
)

func TestNotWritable(t *testing.T) {
	fields := compileWritable(map[string]config.WritableField{
		"status":          {Roles: []string{"admin"}},
		"role":            {Roles: []string{"admin"}},
		"address.country": {Scopes: []string{"users:admin"}},
		"items.price":     {Roles: []string{"admin"}},
		"id":              {},
	})
	user := &exchange.Principal{Subject: "alice", Roles: []string{"user"}, Scopes: []string{"users:write"}}
	tests := []struct {
		name string
		body string
		want string // the field named; "" when the body may be written
	}{
		{name: "other fields", body: `{"name":"a","address":{"city":"x"},"items":[{"qty":1}]}`},
		{name: "top-level field", body: `{"status":"vip"}`, want: "status"},
		{name: "null is a value", body: `{"status":null}`, want: "status"},
		{name: "first in path order", body: `{"status":1,"role":"admin","id":7}`, want: "id"},
		{name: "nested field", body: `{"address":{"country":"FR"}}`, want: "address.country"},
		{name: "parent not an object", body: `{"address":"FR"}`},
		{name: "parent null", body: `{"address":null}`},
		{name: "every array element", body: `{"items":[{"qty":1},{"price":0}]}`, want: "items.price"},
		{name: "nested arrays", body: `{"items":[[{"price":0}]]}`, want: "items.price"},
		{name: "top-level array", body: `[{"name":"a"},{"role":"admin"}]`, want: "role"},
		{name: "a member named like a path", body: `{"address.country":"FR"}`},
		{name: "scalar body", body: `"status"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := validate.DecodeJSON([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := notWritable(fields, body, user); got != tt.want {
				t.Errorf("notWritable(%s) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestWritableGrants(t *testing.T) {
	f := writable{roles: []string{"admin", "ops"}, scopes: []string{"users:admin"}}
	tests := []struct {
		name string
		p    *exchange.Principal
		want bool
	}{
		{name: "one of the roles", p: &exchange.Principal{Roles: []string{"user", "ops"}}, want: true},
		{name: "one of the scopes", p: &exchange.Principal{Scopes: []string{"users:admin"}}, want: true},
		{name: "neither", p: &exchange.Principal{Roles: []string{"Admin"}, Scopes: []string{"users:admin:x"}}},
		{name: "no principal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.grants(tt.p); got != tt.want {
				t.Errorf("grants(%+v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}
