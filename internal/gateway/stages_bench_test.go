package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkStages measures what the validation and filtering stages add to
// a route, each case against the same route without the stage, over the
// documents of the load harness (test/load/testdata): a ~1 KB JSON order
// POSTed and validated against an OpenAPI operation, and a ~2.5 KB user
// document filtered by five rules. Run with -cpuprofile to see where a
// stage spends.
func BenchmarkStages(b *testing.B) {
	order, spec, up := benchDocuments(b)
	gw := benchGatewayConfig(b, `
specs:
  bench: { file: "`+spec+`" }
upstreams:
  up: { url: "`+up.URL+`" }
routes:
  - { name: post, method: POST, path: /bench, upstream: up, auth: none }
  - { name: validated, method: POST, path: /bench, host: v.test, upstream: up, auth: none, validate: { spec: bench } }
  - { name: user, method: GET, path: /bench-user, upstream: up, auth: none }
  - name: filtered
    method: GET
    path: /bench-user
    host: f.test
    upstream: up
    auth: none
    response:
      allow: ["$.id", "$.name", "$.email", "$.orders[*].id", "$.orders[*].total"]
      mask: { "$.email": redact }
`)
	srv := httptest.NewServer(gw)
	b.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, method, host, path string
		body                     []byte
	}{
		{"post", http.MethodPost, "", "/bench", order},
		{"validated", http.MethodPost, "v.test", "/bench", order},
		{"user", http.MethodGet, "", "/bench-user", nil},
		{"filtered", http.MethodGet, "f.test", "/bench-user", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := srv.Client()
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(tc.body))
				if tc.host != "" {
					req.Host = tc.host
				}
				if tc.body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

// benchDocuments returns the load harness's documents (test/load/testdata)
// for the stage benchmarks: the ~1 KB JSON order, compacted; the absolute
// path of the OpenAPI document that describes it; and an upstream on
// loopback that answers GET with the ~2.5 KB user document and POST with a
// short order.
func benchDocuments(b *testing.B) (order []byte, spec string, up *httptest.Server) {
	testdata := filepath.Join("..", "..", "test", "load", "testdata")
	read := func(name string) []byte {
		raw, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			b.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			b.Fatal(err)
		}
		return compact.Bytes()
	}
	order, user := read("bench-order.json"), read("bench-user.json")
	spec, err := filepath.Abs(filepath.Join(testdata, "bench-openapi.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = w.Write(user)
			return
		}
		_, _ = io.WriteString(w, `{"id":"ord_0002","status":"accepted"}`)
	}))
	b.Cleanup(up.Close)
	return order, spec, up
}
