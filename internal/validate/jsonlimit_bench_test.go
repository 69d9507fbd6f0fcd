//go:build !race

// Under the race detector sync.Pool drops items, so the allocation budget
// and the numbers only hold without it.

package validate

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// limitBenchBody is a realistic request body of about 1 KB: an order with a
// customer, an address, lines and metadata.
const limitBenchBody = `{
  "order_id": "ord_8f14e45fceea167a5a36dedd4bea2543",
  "customer": {"id": 48213, "email": "ada.lovelace@example.com", "name": "Ada Lovelace", "vip": true},
  "shipping": {"street": "12 Analytical Engine Way", "city": "London", "postcode": "NW1 6XE", "country": "GB"},
  "lines": [
    {"sku": "BK-0042", "title": "Notes on the Analytical Engine", "qty": 2, "unit_price": 19.99, "tags": ["book", "history"]},
    {"sku": "PN-0007", "title": "Fountain pen, brass", "qty": 1, "unit_price": 54.5, "tags": ["pen"]},
    {"sku": "NB-0310", "title": "Squared notebook A5", "qty": 5, "unit_price": 3.25, "tags": []}
  ],
  "currency": "GBP",
  "coupon": null,
  "gift": false,
  "notes": "Leave with the concierge if nobody answers; do not bend. \u00e9\u00e8 \ud83d\udce6",
  "metadata": {"source": "web", "campaign": "autumn-2026", "ab_bucket": 3, "session": "c5f3a1e9-2b7d-4e8a-9f10-6d2c8b4a7e01"},
  "created_at": "2026-11-23T15:04:05.123Z"
}`

// limitBenchDoc builds a document of about size bytes: an array of records
// like the lines of limitBenchBody, with objects, arrays, strings and numbers.
func limitBenchDoc(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":`)
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`,"sku":"SKU-`)
		b.WriteString(strconv.Itoa(i * 7919))
		b.WriteString(`","title":"A product title of ordinary length, with \"quotes\"","price":`)
		b.WriteString(strconv.Itoa(i%1000) + "." + strconv.Itoa(i%100))
		b.WriteString(`,"tags":["alpha","beta"],"stock":{"warehouse":"north","count":42,"reserved":false}}`)
	}
	b.WriteString(`],"next":null}`)
	return []byte(b.String())
}

func BenchmarkCheckJSON(b *testing.B) {
	docs := []struct {
		name string
		doc  []byte
	}{
		{name: "1KB", doc: []byte(limitBenchBody)},
		{name: "1MB", doc: limitBenchDoc(1 << 20)},
	}
	for _, d := range docs {
		if err := CheckJSON(d.doc, Limits{MaxElements: 1 << 20}); err != nil {
			b.Fatalf("CheckJSON(%s) = %v", d.name, err)
		}
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(d.doc)))
			b.ReportAllocs()
			for b.Loop() {
				if err := CheckJSON(d.doc, Limits{MaxElements: 1 << 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkScanJSON1KB(b *testing.B) {
	doc := []byte(limitBenchBody)
	buf := make([]byte, 0, 4<<10)
	r := bytes.NewReader(doc)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(doc)
		var err error
		if buf, err = ScanJSON(r, Limits{}, buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJSONLimitsAllocs holds CheckJSON and ScanJSON to a budget that does not
// grow with the document: no allocation per token.
func TestJSONLimitsAllocs(t *testing.T) {
	small, big := []byte(limitBenchBody), limitBenchDoc(1<<20)
	l := Limits{MaxElements: 1 << 20}
	buf := make([]byte, 0, 4<<10)
	r := bytes.NewReader(small)
	tests := []struct {
		name string
		runs int
		f    func()
	}{
		{name: "CheckJSON 1KB", runs: 1000, f: func() { _ = CheckJSON(small, l) }},
		{name: "CheckJSON 1MB", runs: 20, f: func() { _ = CheckJSON(big, l) }},
		{name: "ScanJSON 1KB", runs: 1000, f: func() { r.Reset(small); buf, _ = ScanJSON(r, l, buf[:0]) }},
	}
	for _, tt := range tests {
		tt.f() // warm the pool
		// Budget 1, not 0: a GC may empty the pool, and a new decoder
		// costs a few allocations, averaged over the runs.
		got := testing.AllocsPerRun(tt.runs, tt.f)
		if got > 1 {
			t.Errorf("%s: %v allocs per run, want at most 1", tt.name, got)
		}
		t.Logf("%s: %v allocs per run", tt.name, got)
	}
}
