package main

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"go.uber.org/zap"

	"github.com/bulwark-gateway/bulwark/internal/config"
	"github.com/bulwark-gateway/bulwark/internal/gateway"
	"github.com/bulwark-gateway/bulwark/internal/metrics"
	"github.com/bulwark-gateway/bulwark/internal/problem"
)

// benchConfigs are the config templates of the bulwark targets that need
// nothing but the upstream, by target name.
var benchConfigs = map[string]string{
	passThroughName:     passThroughConfig,
	"bulwark-post":      postConfig,
	"bulwark-validated": validatedConfig,
	userName:            userConfig,
	"bulwark-filtered":  filteredConfig,
	"bulwark-authorize": authorizeConfig,
}

// serveBench serves, in front of newUpstream, what target name measures:
// the upstream itself, the bare proxy, or bulwark compiled in this process
// from the target's config (what bulwark serve runs, without its
// listeners). It returns the instance's base URL.
func serveBench(t *testing.T, name string) string {
	t.Helper()
	up := httptest.NewServer(newUpstream())
	t.Cleanup(up.Close)
	switch name {
	case "direct":
		return up.URL
	case bareName, barePostName:
		u, err := url.Parse(up.URL)
		if err != nil {
			t.Fatal(err)
		}
		proxy := newBareProxy(u)
		front := httptest.NewServer(proxy)
		t.Cleanup(front.Close)
		t.Cleanup(proxy.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections)
		return front.URL
	}
	tmpl, ok := benchConfigs[name]
	if !ok {
		t.Fatalf("no config for target %q", name)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, benchSpecFile), benchSpec, 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err := template.Must(template.New(name).Option("missingkey=error").Parse(tmpl)).Execute(&b, bulwarkConfig{
		Listen: "127.0.0.1:1", Admin: "127.0.0.1:2", Upstream: up.URL, Dir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, name+".yaml"), []byte(b.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config of %s: %v\n%s", name, err, b.String())
	}
	m := metrics.New(metrics.BuildInfo{})
	h, err := gateway.Build(cfg, gateway.Deps{Log: zap.NewNop(), Metrics: m, Problems: problem.New(zap.NewNop(), m.Denials)})
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	t.Cleanup(h.Close)
	return front.URL
}

// benchTarget returns the target of targets() named name.
func benchTarget(t *testing.T, name string) target {
	t.Helper()
	for _, tg := range targets("tok.en.sig", "bwk_key") {
		if tg.name == name {
			return tg
		}
	}
	t.Fatalf("no target %q", name)
	return target{}
}

func TestBenchTargetsPassTheProbe(t *testing.T) {
	// The probe each round runs before wrk, through the real chain: the
	// POST passes validation (200, the upstream's answer, not a 400), the
	// filtered route filters, the others relay the upstream's answer.
	for _, name := range []string{"direct", bareName, barePostName, passThroughName, "bulwark-post", "bulwark-validated", userName, "bulwark-filtered", "bulwark-authorize"} {
		t.Run(name, func(t *testing.T) {
			tg := benchTarget(t, name)
			base := serveBench(t, name)
			if err := probe(t.Context(), tg, tg.url(instance{base: base})); err != nil {
				t.Errorf("probe of %s: %v", name, err)
			}
		})
	}
}

// TestAuthorizeTargetEvaluatesItsRule checks that the CEL target's rule
// runs: without the header wrk sends, the route refuses the probe.
func TestAuthorizeTargetEvaluatesItsRule(t *testing.T) {
	tg := benchTarget(t, "bulwark-authorize")
	base := serveBench(t, "bulwark-authorize")
	tg.headers = nil
	if err := probe(t.Context(), tg, tg.url(instance{base: base})); err == nil {
		t.Error("probe without X-Tenant passed, want the rule to refuse it")
	}
}

// patchOrder returns benchOrder with change applied to its decoded form.
func patchOrder(t *testing.T, change func(order map[string]any)) []byte {
	t.Helper()
	var order map[string]any
	if err := json.Unmarshal(benchOrder, &order); err != nil {
		t.Fatal(err)
	}
	change(order)
	b, err := json.Marshal(order)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidatedTargetRefusesWhatTheSpecForbids(t *testing.T) {
	// What the validated route checks on every request: each rule of the
	// spec that benchOrder exercises refuses a body that breaks it. A
	// probe that gets the 400 fails the target, loudly.
	item := func(o map[string]any) map[string]any { return o["items"].([]any)[3].(map[string]any) }
	customer := func(o map[string]any) map[string]any { return o["customer"].(map[string]any) }
	tests := []struct {
		name   string
		change func(map[string]any)
	}{
		{name: "quantity below the minimum", change: func(o map[string]any) { item(o)["quantity"] = 0 }},
		{name: "quantity above the maximum", change: func(o map[string]any) { item(o)["quantity"] = 1001 }},
		{name: "quantity not an integer", change: func(o map[string]any) { item(o)["quantity"] = 1.5 }},
		{name: "sku against its pattern", change: func(o map[string]any) { item(o)["sku"] = "abc-1234" }},
		{name: "price not a number", change: func(o map[string]any) { item(o)["price"] = "15.00" }},
		{name: "email not an address", change: func(o map[string]any) { customer(o)["email"] = "ann at example.com" }},
		{name: "currency not in the enum", change: func(o map[string]any) { o["currency"] = "EURO" }},
		{name: "notes too long", change: func(o map[string]any) { o["notes"] = strings.Repeat("n", 501) }},
		{name: "no address", change: func(o map[string]any) { delete(customer(o), "address") }},
		{name: "an undeclared property (strict)", change: func(o map[string]any) { customer(o)["isAdmin"] = true }},
	}
	base := serveBench(t, "bulwark-validated")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := benchTarget(t, "bulwark-validated")
			tg.body = patchOrder(t, tt.change)
			err := probe(t.Context(), tg, tg.url(instance{base: base}))
			if err == nil || !strings.Contains(err.Error(), "answer 400") {
				t.Errorf("probe with %s = %v, want the 400 reported", tt.name, err)
			}
		})
	}
	t.Run("no content type", func(t *testing.T) {
		tg := benchTarget(t, "bulwark-validated")
		tg.contentType = ""
		if err := probe(t.Context(), tg, tg.url(instance{base: base})); err == nil {
			t.Errorf("probe without a Content-Type = nil, want the refusal reported")
		}
	})
}

func TestFilteredProbeRefusesAnUnfilteredRoute(t *testing.T) {
	// The filtered target's check against a route that does not filter:
	// a load test of that would measure nothing of filtering.
	tg := benchTarget(t, "bulwark-filtered")
	base := serveBench(t, userName)
	err := probe(t.Context(), tg, tg.url(instance{base: base}))
	if err == nil || !strings.Contains(err.Error(), "did not filter") {
		t.Errorf("probe of an unfiltered route = %v, want an error saying it did not filter", err)
	}
}
