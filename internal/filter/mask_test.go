package filter

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// hmacHex is the reference for the hash strategy: the hex of the first 16
// bytes of HMAC-SHA256(key, s).
func hmacHex(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func TestMaskStrategies(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		in       string
		want     string
	}{
		{name: "redact string", strategy: "redact", in: `"secret"`, want: `"***"`},
		{name: "redact number", strategy: "redact", in: `42`, want: `"***"`},
		{name: "redact null", strategy: "redact", in: `null`, want: `"***"`},
		{name: "redact array", strategy: "redact", in: `[1,{"a":2}]`, want: `"***"`},
		{name: "last4 long string", strategy: "last4", in: `"4111 1111 1111 1234"`, want: `"***1234"`},
		{name: "last4 five runes", strategy: "last4", in: `"12345"`, want: `"***2345"`},
		{name: "last4 four runes", strategy: "last4", in: `"1234"`, want: `"***"`},
		{name: "last4 empty string", strategy: "last4", in: `""`, want: `"***"`},
		{name: "last4 runes not bytes", strategy: "last4", in: `"日本語のテキスト"`, want: `"***テキスト"`},
		{name: "last4 four multibyte runes", strategy: "last4", in: `"日本語の"`, want: `"***"`},
		{name: "last4 escapes in the tail", strategy: "last4", in: `"abcdef\n\"\\"`, want: `"***f\n\"\\"`},
		{name: "last4 number", strategy: "last4", in: `-12345.678`, want: `"***.678"`},
		{name: "last4 short number", strategy: "last4", in: `1234`, want: `"***"`},
		{name: "last4 exponent", strategy: "last4", in: `6.02e+23`, want: `"***e+23"`},
		{name: "last4 bool", strategy: "last4", in: `true`, want: `"***"`},
		{name: "last4 object", strategy: "last4", in: `{"a":"123456"}`, want: `"***"`},
		{name: "hash string", strategy: "hash", in: `"a\u0062c"`, want: `"hmac-sha256:` + hmacHex(testKey, "abc") + `"`},
		{name: "hash number", strategy: "hash", in: `1.50`, want: `"hmac-sha256:` + hmacHex(testKey, "1.50") + `"`},
		{name: "hash null", strategy: "hash", in: `null`, want: `"hmac-sha256:` + hmacHex(testKey, "null") + `"`},
		{name: "hash object compacted", strategy: "hash", in: `{ "a" : [ 1 ] }`, want: `"hmac-sha256:` + hmacHex(testKey, `{"a":[1]}`) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, Rules{Mask: map[string]string{"$.v": tt.strategy}})
			got, rep, err := p.Apply(nil, []byte(`{"v":`+tt.in+`}`))
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"v":` + tt.want + `}`; string(got) != want {
				t.Errorf("mask %s of %s = %s, want %s", tt.strategy, tt.in, got, want)
			}
			if len(rep.Masked) != 1 || rep.Masked[0] != "$.v" {
				t.Errorf("Masked = %q, want [$.v]", rep.Masked)
			}
		})
	}
}
