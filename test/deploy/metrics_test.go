package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/bulwark-gateway/bulwark/internal/metrics"
)

const (
	alertsFile     = "deploy/prometheus/alerts.yml"
	alertTestsFile = "deploy/prometheus/alerts_test.yml"
	promConfigFile = "deploy/prometheus/prometheus.yml"
	dashboardFile  = "deploy/compose/grafana/dashboards/bulwark.json"
)

// counterFuncs are the metrics internal/gateway registers itself (as
// CounterFuncs over the rate-limit store), so metrics.New does not know
// them; docs/operations.md#metrics lists them.
var counterFuncs = map[string][]string{ // name -> labels
	"bulwark_ratelimit_store_errors_total":       {"store"},
	"bulwark_ratelimit_fallback_decisions_total": nil,
	"bulwark_ratelimit_local_evictions_total":    nil,
}

// family is what the tests know of one exported metric family.
type family struct {
	typ    dto.MetricType
	labels []string
}

// exportedMetrics returns every metric family the gateway exports, with its
// type and labels: all of metrics.New's, every vector given one child so
// that Gather reports it, plus counterFuncs.
func exportedMetrics(t *testing.T) map[string]family {
	t.Helper()
	m := metrics.New(metrics.BuildInfo{})
	m.SetKeySetAges(func(yield func(string, time.Duration)) { yield("test", time.Second) })
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() || f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		get := f.MethodByName("GetMetricWithLabelValues")
		if !get.IsValid() {
			continue
		}
		// A vector's label count is not exported: try until one fits.
		for n := 0; ; n++ {
			if n > 16 {
				t.Fatalf("metrics.Metrics.%s: no label count between 0 and 16 fits", v.Type().Field(i).Name)
			}
			args := make([]reflect.Value, n)
			for j := range args {
				args[j] = reflect.ValueOf("x")
			}
			if out := get.Call(args); out[1].IsNil() {
				break
			}
		}
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]family{}
	for _, f := range families {
		fam := family{typ: f.GetType()}
		for _, l := range f.GetMetric()[0].GetLabel() {
			fam.labels = append(fam.labels, l.GetName())
		}
		known[f.GetName()] = fam
	}
	// The CounterFuncs must still be registered where this test says.
	var src bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "internal", "gateway", "*.go"))
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(data)
		}
	}
	for name, labels := range counterFuncs {
		if !bytes.Contains(src.Bytes(), []byte(`"`+name+`"`)) {
			t.Errorf("%s is no longer registered in internal/gateway: update counterFuncs", name)
		}
		known[name] = family{typ: dto.MetricType_COUNTER, labels: labels}
	}
	for _, name := range []string{"bulwark_requests_total", "bulwark_request_duration_seconds", "bulwark_jwks_age_seconds", "bulwark_build_info"} {
		if _, ok := known[name]; !ok {
			t.Fatalf("exportedMetrics misses %s: the test's view of the registry is broken", name)
		}
	}
	return known
}

// checkMetricName reports why name is not a series the gateway exports,
// or "" when it is. Histograms and summaries expose _bucket, _sum and
// _count series; up is Prometheus's own.
func checkMetricName(known map[string]family, name string) string {
	if _, ok := known[name]; ok || name == "up" {
		return ""
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		stem, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch typ := known[stem].typ; {
		case typ == dto.MetricType_HISTOGRAM, typ == dto.MetricType_SUMMARY && suffix != "_bucket":
			return ""
		case slices.Contains([]dto.MetricType{dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY}, typ):
		default:
			if _, ok := known[stem]; ok {
				return stem + " is a " + typ.String() + ", it has no " + suffix + " series"
			}
		}
	}
	return "no such metric in internal/metrics (or the documented CounterFuncs)"
}

var (
	promString   = regexp.MustCompile(`"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promToken    = regexp.MustCompile(`[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"}
)

// metricNames returns the metric names a PromQL expression selects: its
// identifiers that are not functions, keywords, labels or numbers. It is a
// scanner, not a parser; promtool checks the syntax.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promToken.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || slices.Contains(promKeywords, tok) {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or aggregation
		}
		if !slices.Contains(names, tok) {
			names = append(names, tok)
		}
	}
	return names
}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

// seriesLabels returns the labels the series name carries: its family's,
// le on a histogram's _bucket series, and the target labels.
func seriesLabels(known map[string]family, name string) []string {
	labels := slices.Clone(targetLabels)
	if f, ok := known[name]; ok {
		return append(labels, f.labels...)
	}
	if stem, ok := strings.CutSuffix(name, "_bucket"); ok {
		return append(append(labels, known[stem].labels...), "le")
	}
	for _, suffix := range []string{"_sum", "_count"} {
		if stem, ok := strings.CutSuffix(name, suffix); ok {
			return append(labels, known[stem].labels...)
		}
	}
	return labels
}

var (
	promSelector  = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}`)
	promMatcher   = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promGroupArgs = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
)

// checkLabels reports the label names expr uses that its series do not
// have: in a selector's matchers (that metric's labels), and in by,
// without, on, ignoring and group_ clauses (any of the expression's
// metrics' labels).
func checkLabels(known map[string]family, expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	var problems []string
	var all []string
	for _, n := range metricNames(expr) {
		all = append(all, seriesLabels(known, n)...)
	}
	for _, m := range promSelector.FindAllStringSubmatch(s, -1) {
		have := seriesLabels(known, m[1])
		for _, lm := range promMatcher.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(have, lm[1]) {
				problems = append(problems, m[1]+" has no label "+lm[1])
			}
		}
	}
	for _, m := range promGroupArgs.FindAllStringSubmatch(s, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(all, l) {
				problems = append(problems, "no series of the expression has label "+l)
			}
		}
	}
	return problems
}

func TestMetricNamesScanner(t *testing.T) {
	for expr, want := range map[string][]string{
		`histogram_quantile(0.99, sum by (route, le) (rate(bulwark_request_duration_seconds_bucket{route!="x"}[$__rate_interval])))`:   {"bulwark_request_duration_seconds_bucket"},
		`sum by (job) (rate(a_total{code=~"5.."}[5m])) / sum without (x) (rate(b_total[5m] offset 1h)) > 0.1 and on (job) c == bool 0`: {"a_total", "b_total", "c"},
		`(bulwark_tls_certificate_not_after_timestamp_seconds > 0) - time() < 14 * 86400`:                                              {"bulwark_tls_certificate_not_after_timestamp_seconds"},
		`up{job="bulwark"} == 0 unless sum(x{y="a{b}"})`:                                                                               {"up", "x"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// promtool returns the path of promtool; the tests need it (Makefile
// TEST_TOOLS installs the Debian package prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install it with `apt-get install prometheus` (make test does)")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), promtool(t), args...)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRulesPassPromtool(t *testing.T) {
	runPromtool(t, "check", "rules", alertsFile)
	runPromtool(t, "check", "config", promConfigFile)
	runPromtool(t, "test", "rules", alertTestsFile)
}

// TestAlertRulesUseExportedMetrics checks every metric an alert selects,
// and that the alerts cover what an operator must hear about.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	known := exportedMetrics(t)
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, alertsFile), &rf); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts++
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("alert %s: selects no metric", r.Alert)
			}
			for _, n := range names {
				used[n] = true
				if why := checkMetricName(known, n); why != "" {
					t.Errorf("alert %s: %s: %s", r.Alert, n, why)
				}
			}
			for _, p := range checkLabels(known, r.Expr) {
				t.Errorf("alert %s: %s", r.Alert, p)
			}
		}
	}
	for _, n := range []string{
		"bulwark_denials_total", "bulwark_auth_attempts_total", "bulwark_requests_total",
		"bulwark_jwks_refresh_total", "bulwark_jwks_age_seconds", "bulwark_ratelimit_store_errors_total",
		"bulwark_audit_events_dropped_total", "bulwark_config_last_reload_successful",
	} {
		if !used[n] {
			t.Errorf("no alert uses %s", n)
		}
	}
	if alerts == 0 {
		t.Fatal("no alert rules")
	}
}

// grafanaVars replaces Grafana's built-in interval variables with values
// Prometheus accepts, so promtool can parse the dashboard's queries.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// TestDashboardQueries checks that every query of the Grafana dashboard
// parses as PromQL (promtool, as recording rules in a temporary file) and
// selects only metrics the gateway exports.
func TestDashboardQueries(t *testing.T) {
	known := exportedMetrics(t)
	dash := loadDashboard(t, dashboardFile)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	used := map[string]bool{}
	for i, expr := range dash.exprs {
		e := grafanaVars.Replace(expr)
		if strings.Contains(e, "$") {
			t.Errorf("dashboard query %q: a variable this test does not know", expr)
		}
		quoted, _ := yaml.Marshal(e)
		rules.WriteString("      - record: dashboard:query_" + strconv.Itoa(i) + "\n        expr: " + strings.TrimSpace(string(quoted)) + "\n")
		for _, n := range metricNames(e) {
			used[n] = true
			if why := checkMetricName(known, n); why != "" {
				t.Errorf("dashboard query %q: %s: %s", expr, n, why)
			}
		}
		for _, p := range checkLabels(known, e) {
			t.Errorf("dashboard query %q: %s", expr, p)
		}
	}
	for _, n := range []string{
		"bulwark_requests_total", "bulwark_request_duration_seconds_bucket", "bulwark_denials_total",
		"bulwark_ratelimit_decisions_total", "bulwark_jwks_refresh_total", "bulwark_config_reloads_total",
		"bulwark_audit_events_dropped_total",
	} {
		if !used[n] {
			t.Errorf("no dashboard panel uses %s", n)
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", f)
}
