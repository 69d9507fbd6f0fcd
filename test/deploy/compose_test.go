package deploy

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/bulwark-gateway/bulwark/test/docker"
)

const composeDir = "deploy/compose"

// composeFile is the part of the Compose specification that
// deploy/compose/docker-compose.yml uses. Decoding is strict (KnownFields):
// a key this struct lacks fails the test, so a misspelt key cannot be
// silently ignored here the way Compose would warn and skip it. Add the key
// here when the file starts using it.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

type composeService struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	SecurityOpt []string          `yaml:"security_opt"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	NetworkMode string   `yaml:"network_mode"`
	Networks    []string `yaml:"networks"`
	Restart     string   `yaml:"restart"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
}

// composeVar is Compose's ${VAR}, ${VAR:-default} and ${VAR-default}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// interpolate expands Compose variables as `docker compose` would with
// none of them set: each must have a default.
func interpolate(t *testing.T, s string) string {
	t.Helper()
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if !strings.Contains(m, "-") {
			t.Errorf("docker-compose.yml: %s has no default: `docker compose up` would need it set", m)
		}
		return sub[2]
	})
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data := readFile(t, composeDir+"/docker-compose.yml")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, s := range f.Services {
		for k, v := range s.Environment {
			s.Environment[k] = interpolate(t, v)
		}
		for i, v := range s.Ports {
			s.Ports[i] = interpolate(t, v)
		}
		f.Services[name] = s
	}
	for name, n := range f.Networks {
		for i := range n.IPAM.Config {
			n.IPAM.Config[i].Subnet = interpolate(t, n.IPAM.Config[i].Subnet)
		}
		f.Networks[name] = n
	}
	return f
}

func service(t *testing.T, f composeFile, name string) composeService {
	t.Helper()
	s, ok := f.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml: no service %q", name)
	}
	return s
}

// hostPath resolves a path of docker-compose.yml (relative to its
// directory) to one relative to the module root.
func hostPath(p string) string { return path.Clean(path.Join(composeDir, p)) }

// mountSource returns the host path of a bind mount "src:dst[:mode]", or
// "" for a named volume.
func mountSource(v string) (src, dst string) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || !(strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/")) {
		return "", ""
	}
	return hostPath(parts[0]), parts[1]
}

// TestComposeReferencesExist checks that every build context, Dockerfile
// and bind-mounted file exists, and that every service, network and
// network_mode a service names is declared.
func TestComposeReferencesExist(t *testing.T) {
	f := loadCompose(t)
	root := repoRoot(t)
	want := []string{"bulwark", "demo-upstream", "redis", "prometheus", "grafana"}
	for _, name := range want {
		service(t, f, name)
	}
	for name, s := range f.Services {
		if s.Build != nil {
			ctx := hostPath(s.Build.Context)
			if st, err := os.Stat(filepath.Join(root, ctx)); err != nil || !st.IsDir() {
				t.Errorf("%s: build context %s (%s) is not a directory", name, s.Build.Context, ctx)
			}
			df := path.Join(ctx, s.Build.Dockerfile)
			if _, err := os.Stat(filepath.Join(root, df)); err != nil {
				t.Errorf("%s: dockerfile %s: %v", name, df, err)
			}
		} else if s.Image == "" {
			t.Errorf("%s: neither build nor image", name)
		}
		if s.Image != "" && s.Build == nil && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q: pin a tag", name, s.Image)
		}
		for _, v := range s.Volumes {
			src, _ := mountSource(v)
			if src == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("%s: volume %q: %v", name, v, err)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("%s: depends_on unknown service %q", name, dep)
			}
		}
		if m, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			if _, ok := f.Services[m]; !ok {
				t.Errorf("%s: network_mode names unknown service %q", name, m)
			}
			if len(s.Ports) > 0 || len(s.Networks) > 0 {
				t.Errorf("%s: with network_mode %s, ports and networks belong to %s", name, s.NetworkMode, m)
			}
		}
		for _, n := range s.Networks {
			if _, ok := f.Networks[n]; !ok {
				t.Errorf("%s: unknown network %q", name, n)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q: publish on the host's loopback only", name, p)
			}
		}
	}
}

// TestComposeGatewayConfig loads deploy/compose/bulwark.yaml with the
// environment docker-compose.yml gives it and checks that it fits the
// Compose setup around it.
func TestComposeGatewayConfig(t *testing.T) {
	f := loadCompose(t)
	gw := service(t, f, "bulwark")
	var cfgFile string
	for _, v := range gw.Volumes {
		if src, dst := mountSource(v); dst == "/etc/bulwark/bulwark.yaml" {
			cfgFile = src
		}
	}
	if cfgFile == "" {
		t.Fatal("bulwark: nothing mounted at /etc/bulwark/bulwark.yaml (the image's BULWARK_CONFIG)")
	}
	if !gw.ReadOnly || !slices.Equal(gw.CapDrop, []string{"ALL"}) {
		t.Error("bulwark: want read_only and cap_drop [ALL]")
	}
	cfg := parseConfig(t, cfgFile, readFile(t, cfgFile), gw.Environment)

	// admin.allow is exactly the Compose network, so Prometheus may scrape.
	if len(gw.Networks) != 1 {
		t.Fatalf("bulwark: networks %q, want one", gw.Networks)
	}
	subnets := f.Networks[gw.Networks[0]].IPAM.Config
	if len(subnets) != 1 {
		t.Fatalf("network %s: want one ipam subnet", gw.Networks[0])
	}
	subnet, err := netip.ParsePrefix(subnets[0].Subnet)
	if err != nil {
		t.Fatalf("network subnet: %v", err)
	}
	if len(cfg.Admin.Allow) != 1 || cfg.Admin.Allow[0].String() != subnet.String() {
		t.Errorf("admin.allow = %v, want the Compose subnet %v", cfg.Admin.Allow, subnet)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); host != "0.0.0.0" {
		t.Errorf("admin.listen = %s: Prometheus in another container cannot reach it", cfg.Admin.Listen)
	}
	if host, _, _ := net.SplitHostPort(cfg.Server.Listen); host != "0.0.0.0" {
		t.Errorf("server.listen = %s: the published port cannot reach it", cfg.Server.Listen)
	}
	published := func(listen string) {
		t.Helper()
		_, port, _ := net.SplitHostPort(listen)
		if !slices.ContainsFunc(gw.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
			t.Errorf("bulwark: port %s (%s) is not published", port, listen)
		}
	}
	published(cfg.Server.Listen)
	published(cfg.Admin.Listen)

	// Rate limits are counted in the redis service.
	if cfg.RateLimits.Store != "redis" || cfg.RateLimits.Redis == nil {
		t.Fatal("rate_limits: want store redis")
	}
	u, err := url.Parse(string(cfg.RateLimits.Redis.URL))
	if err != nil {
		t.Fatalf("rate_limits.redis.url: %v", err)
	}
	if _, ok := f.Services[u.Hostname()]; !ok {
		t.Errorf("rate_limits.redis.url host %q is not a Compose service", u.Hostname())
	}
	if _, ok := gw.DependsOn[u.Hostname()]; !ok {
		t.Errorf("bulwark does not depend on %s", u.Hostname())
	}

	// Audit events go to stdout (docker compose logs bulwark).
	if cfg.Audit == nil || cfg.Audit.Sink != "stdout" {
		t.Error("audit: want sink stdout")
	}

	// The upstream and the identity provider are on loopback: demo-upstream
	// must share the gateway's network namespace.
	up := service(t, f, "demo-upstream")
	if up.NetworkMode != "service:bulwark" {
		t.Errorf("demo-upstream: network_mode %q, want service:bulwark (it listens on loopback only)", up.NetworkMode)
	}
	for name, u := range cfg.Upstreams {
		pu, err := url.Parse(u.URL)
		if err != nil || pu.Hostname() != "127.0.0.1" {
			t.Errorf("upstreams.%s.url = %s: want the demo upstream on 127.0.0.1", name, u.URL)
		}
	}
}

// TestComposeDemoUpstreamDockerfile parses the demo upstream's Dockerfile:
// what it copies is in the build context (not excluded by .dockerignore),
// it runs as non-root and listens on loopback.
func TestComposeDemoUpstreamDockerfile(t *testing.T) {
	f := loadCompose(t)
	s := service(t, f, "demo-upstream")
	if s.Build == nil {
		t.Fatal("demo-upstream: no build")
	}
	ctx := hostPath(s.Build.Context)
	d, err := docker.Parse(bytes.NewReader(readFile(t, path.Join(ctx, s.Build.Dockerfile))))
	if err != nil {
		t.Fatal(err)
	}
	ig, err := docker.ParseIgnore(bytes.NewReader(readFile(t, path.Join(ctx, ".dockerignore"))))
	if err != nil {
		t.Fatal(err)
	}
	copies := 0
	for _, st := range d.Stages {
		for _, in := range st.Find("COPY") {
			if _, ok := in.Flags["from"]; ok {
				continue
			}
			args := strings.Fields(in.Args)
			for _, src := range args[:len(args)-1] {
				copies++
				rel := path.Clean(src)
				if _, err := os.Stat(filepath.Join(repoRoot(t), ctx, rel)); err != nil {
					t.Errorf("line %d: COPY %s: %v", in.Line, src, err)
				}
				if ig.Excluded(rel) {
					t.Errorf("line %d: COPY %s: excluded by .dockerignore", in.Line, src)
				}
			}
		}
	}
	if copies == 0 {
		t.Error("no COPY from the build context")
	}
	final := d.Final()
	users := final.Find("USER")
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1].Args, "root") || strings.HasPrefix(users[len(users)-1].Args, "0") {
		t.Error("the final stage must run as a non-root USER")
	}
	cmds := final.Find("CMD")
	if len(cmds) == 0 {
		t.Fatal("no CMD")
	}
	argv, ok := cmds[len(cmds)-1].ExecForm()
	if !ok || !slices.Contains(argv, "127.0.0.1:9000") {
		t.Errorf("CMD %q: want -listen 127.0.0.1:9000 (the address bulwark.yaml proxies to)", argv)
	}
}

// TestComposeMonitoring checks that Prometheus scrapes the gateway's admin
// listener and loads the alert rules, and that Grafana's dashboard uses the
// provisioned datasource from the mounted directory.
func TestComposeMonitoring(t *testing.T) {
	f := loadCompose(t)
	root := repoRoot(t)

	prom := service(t, f, "prometheus")
	var promDir string
	for _, v := range prom.Volumes {
		if src, dst := mountSource(v); dst == "/etc/prometheus" {
			promDir = src
		}
	}
	if promDir == "" {
		t.Fatal("prometheus: nothing mounted at /etc/prometheus")
	}
	if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus command %q: want --config.file=/etc/prometheus/prometheus.yml", prom.Command)
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Authorization *struct {
				Type        string `yaml:"type"`
				Credentials string `yaml:"credentials"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, path.Join(promDir, "prometheus.yml")), &pc); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pc.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml rule_files %q: want alerts.yml", pc.RuleFiles)
	}
	for _, rf := range pc.RuleFiles {
		if _, err := os.Stat(filepath.Join(root, promDir, rf)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
	gw := service(t, f, "bulwark")
	var cfgFile string
	for _, v := range gw.Volumes {
		if src, dst := mountSource(v); dst == "/etc/bulwark/bulwark.yaml" {
			cfgFile = src
		}
	}
	cfg := parseConfig(t, cfgFile, readFile(t, cfgFile), gw.Environment)
	_, adminPort, _ := net.SplitHostPort(cfg.Admin.Listen)
	scraped := false
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "bulwark" {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job bulwark: metrics_path %s", sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			scraped = scraped || slices.Contains(st.Targets, "bulwark:"+adminPort)
		}
		if a := sc.Authorization; cfg.Admin.Token != "" && (a == nil || a.Credentials != string(cfg.Admin.Token)) {
			t.Error("job bulwark: authorization.credentials is not the gateway's admin.token: /metrics would answer 401")
		}
	}
	if !scraped {
		t.Errorf("prometheus.yml: no job bulwark scraping bulwark:%s", adminPort)
	}

	// Grafana: datasource uid, dashboard provider path, dashboard JSON.
	gr := service(t, f, "grafana")
	mounts := map[string]string{}
	for _, v := range gr.Volumes {
		if src, dst := mountSource(v); src != "" {
			mounts[dst] = src
		}
	}
	prov, ok := mounts["/etc/grafana/provisioning"]
	if !ok {
		t.Fatal("grafana: nothing mounted at /etc/grafana/provisioning")
	}
	var dsFile struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, path.Join(prov, "datasources", "prometheus.yml")), &dsFile); err != nil {
		t.Fatal(err)
	}
	if len(dsFile.Datasources) != 1 || dsFile.Datasources[0].Type != "prometheus" || dsFile.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("grafana datasources: %+v, want the prometheus service", dsFile.Datasources)
	}
	uid := dsFile.Datasources[0].UID
	var provFile struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, path.Join(prov, "dashboards", "bulwark.yml")), &provFile); err != nil {
		t.Fatal(err)
	}
	if len(provFile.Providers) != 1 {
		t.Fatal("grafana dashboard providers: want one")
	}
	dashDir, ok := mounts[provFile.Providers[0].Options.Path]
	if !ok {
		t.Fatalf("grafana: dashboard provider path %s is not mounted", provFile.Providers[0].Options.Path)
	}
	dash := loadDashboard(t, path.Join(dashDir, "bulwark.json"))
	if len(dash.exprs) == 0 {
		t.Fatal("dashboard: no queries")
	}
	for _, u := range dash.datasourceUIDs {
		if u != uid {
			t.Errorf("dashboard: datasource uid %q, want the provisioned %q", u, uid)
		}
	}
	if home := gr.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" && home != path.Join(provFile.Providers[0].Options.Path, "bulwark.json") {
		t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH = %s: not the dashboard", home)
	}
}

// dashboard is what the tests need from a Grafana dashboard JSON.
type dashboard struct {
	exprs          []string // every PromQL query, with Grafana's variables left in
	datasourceUIDs []string
}

func loadDashboard(t *testing.T, rel string) dashboard {
	t.Helper()
	type target struct {
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	type panel struct {
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []target          `json:"targets"`
		Panels  []json.RawMessage `json:"panels"`
	}
	var d struct {
		UID    string            `json:"uid"`
		Title  string            `json:"title"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, rel), &d); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("%s: want a uid and a title", rel)
	}
	var out dashboard
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: panel: %v", rel, err)
			}
			if p.Datasource != nil {
				out.datasourceUIDs = append(out.datasourceUIDs, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("%s: panel %q: a target without expr", rel, p.Title)
				}
				out.exprs = append(out.exprs, tg.Expr)
				if tg.Datasource != nil {
					out.datasourceUIDs = append(out.datasourceUIDs, tg.Datasource.UID)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}
