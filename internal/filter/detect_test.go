package filter

import (
	"slices"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		in   string // the value of member v
		want []Finding
	}{
		{name: "card digits", in: `"4111111111111111"`, want: []Finding{{KindCardNumber, "$.v"}}},
		{name: "card with spaces", in: `"4111 1111 1111 1111"`, want: []Finding{{KindCardNumber, "$.v"}}},
		{name: "card with dashes in text", in: `"paid with 5500-0000-0000-0004 today"`, want: []Finding{{KindCardNumber, "$.v"}}},
		{name: "amex 15 digits", in: `"378282246310005"`, want: []Finding{{KindCardNumber, "$.v"}}},
		{name: "card as a JSON number", in: `4111111111111111`, want: []Finding{{KindCardNumber, "$.v"}}},
		{name: "luhn invalid", in: `"4111111111111112"`},
		{name: "luhn invalid number", in: `4111111111111112`},
		{name: "too short", in: `"411111111111"`},
		{name: "too long", in: `"41111111111111111111"`},
		{name: "double separator", in: `"4111  1111 1111 1111"`},
		{name: "glued to letters", in: `"x4111111111111111"`},
		{name: "float is not a card", in: `4111111111111.111`},
		{name: "jwt", in: `"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"`, want: []Finding{{KindJWT, "$.v"}}},
		{name: "bearer jwt", in: `"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."`, want: []Finding{{KindJWT, "$.v"}}},
		{name: "jwt with one dot", in: `"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0"`},
		{name: "jwt with three dots", in: `"eyJh.eyJz.abc.def"`},
		{name: "pem private key", in: `"-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----"`, want: []Finding{{KindPrivateKey, "$.v"}}},
		{name: "openssh private key", in: `"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn..."`, want: []Finding{{KindPrivateKey, "$.v"}}},
		{name: "public key", in: `"-----BEGIN PUBLIC KEY-----\nMIIBIj..."`},
		{name: "aws access key", in: `"AKIAIOSFODNN7EXAMPLE"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "aws session key id", in: `"key=ASIAY34FZKBOKMUTVV7A;"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "aws too short", in: `"AKIAIOSFODNN7EXAMPL"`},
		{name: "github token", in: `"ghp_16C7e42F292c6912E7710c838347Ae178B4a"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "github pat", in: `"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "slack token", in: `"xoxb-123456789012-abcdefABCDEF"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "stripe key", in: `"sk_live_4eC39HqLyjWDarjtT1zdp7dc"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "stripe test key", in: `"sk_test_4eC39HqLyjWDarjtT1zdp7dc"`},
		{name: "google api key", in: `"AIzaSyA-1234567890abcdefghijklmnopqrstu"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "escaped secret", in: `"\u0041KIAIOSFODNN7EXAMPLE"`, want: []Finding{{KindSecret, "$.v"}}},
		{name: "plain text", in: `"Ada Lovelace, 12 Analytical St, tel 020 7946 0958"`},
		{name: "two kinds in one value", in: `"AKIAIOSFODNN7EXAMPLE 4111111111111111"`, want: []Finding{{KindCardNumber, "$.v"}, {KindSecret, "$.v"}}},
		{name: "in names too: a map keyed by card number leaks it", in: `{"4111111111111111":1}`, want: []Finding{{KindCardNumber, "$.v.*"}}},
		{name: "nested", in: `[{"k":"AKIAIOSFODNN7EXAMPLE"},{"k":"AKIAIOSFODNN7EXAMPLE"}]`, want: []Finding{{KindSecret, "$.v[*].k"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, Rules{Detect: true})
			in := `{"v":` + tt.in + `}`
			got, rep, err := p.Apply(nil, []byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != in {
				t.Errorf("Apply(%s) = %s, want it unchanged", in, got)
			}
			if !slices.Equal(rep.Findings, tt.want) {
				t.Errorf("Findings of %s = %v, want %v", tt.in, rep.Findings, tt.want)
			}
		})
	}
}

func TestDetectSkipsMaskedAndRemoved(t *testing.T) {
	p := mustCompile(t, Rules{
		Detect: true,
		Mask:   map[string]string{"$.card": "last4", "$.key": "hash"},
		Deny:   []string{"$.token"},
	})
	_, rep, err := p.Apply(nil, []byte(`{"card":"4111111111111111","key":"AKIAIOSFODNN7EXAMPLE","token":"eyJa.eyJb.c","left":"4111111111111111"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Finding{{KindCardNumber, "$.left"}}; !slices.Equal(rep.Findings, want) {
		t.Errorf("Findings = %v, want %v", rep.Findings, want)
	}
}

func TestLuhn(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"79927398713", true},
		{"79927398710", false},
		{"0", true},
		{"18", true},
		{"19", false},
	}
	for _, tt := range tests {
		if got := luhn([]byte(tt.in)); got != tt.want {
			t.Errorf("luhn(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
