package filter

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchDoc returns a realistic user document of about 10 KB: profile
// fields and 40 orders, each with a nested card and address.
func benchDoc(tb testing.TB) []byte {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`{"id":"usr_8f3a2c91d4e6","name":"Ada Lovelace","email":"ada@example.com","phone":"+44 20 7946 0958",`)
	b.WriteString(`"created_at":"2024-03-14T09:26:53Z","verified":true,"plan":"business","balance":1234567.89,`)
	b.WriteString(`"profile":{"locale":"en-GB","timezone":"Europe/London","bio":"Analyst \"and\" writer, caf\u00e9 regular","tags":["math","engines","poetry"]},`)
	b.WriteString(`"orders":[`)
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"ord_%06d","status":"shipped","total":%d.%02d,"currency":"EUR","items":%d,`, i, 10+i*7, i%100, 1+i%5)
		fmt.Fprintf(&b, `"card":{"brand":"visa","number":"4111111111111111","exp":"12/29","holder":"ADA LOVELACE"},`)
		fmt.Fprintf(&b, `"address":{"line1":"%d Analytical Street","city":"London","postcode":"W1 %dAB","country":"GB"},`, 10+i, i%10)
		fmt.Fprintf(&b, `"notes":null,"gift":false}`)
	}
	b.WriteString(`]}`)
	doc := []byte(b.String())
	if !json.Valid(doc) {
		tb.Fatal("benchDoc is not valid JSON")
	}
	return doc
}

func benchApply(b *testing.B, r Rules) {
	doc := benchDoc(b)
	p, err := Compile(r, []byte(strings.Repeat("k", 32)))
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, len(doc))
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if out, _, err = p.Apply(out[:0], doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilter10KB keeps five paths with an allow-list.
func BenchmarkFilter10KB(b *testing.B) {
	benchApply(b, Rules{Allow: []string{"$.id", "$.name", "$.email", "$.orders[*].id", "$.orders[*].total"}})
}

// BenchmarkFilterDenyMask10KB removes and masks five paths.
func BenchmarkFilterDenyMask10KB(b *testing.B) {
	benchApply(b, Rules{
		Deny: []string{"$.phone", "$.orders[*].card.exp", "$.orders[*].address"},
		Mask: map[string]string{"$.orders[*].card.number": "last4", "$.email": "hash"},
	})
}

// BenchmarkFilterSensitive10KB runs the sensitive preset and detection:
// every container is walked.
func BenchmarkFilterSensitive10KB(b *testing.B) {
	benchApply(b, Rules{Preset: "sensitive", Detect: true})
}

// BenchmarkEncodingJSON10KB is the baseline: the round trip through
// encoding/json that a naive filter would do.
func BenchmarkEncodingJSON10KB(b *testing.B) {
	doc := benchDoc(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := json.Unmarshal(doc, &v); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilterPreset10KB runs the sensitive preset alone.
func BenchmarkFilterPreset10KB(b *testing.B) {
	benchApply(b, Rules{Preset: "sensitive"})
}
