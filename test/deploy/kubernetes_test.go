package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ServiceMonitor is the part of the Prometheus Operator's
// monitoring.coreos.com/v1 ServiceMonitor that deploy/kubernetes uses. The
// type is not in k8s.io/api, and importing the operator's Go module for one
// manifest would pull its whole dependency tree; decoding strictly into
// this subset still refuses a misspelt or misplaced key. A key the real
// CRD has but this struct lacks must be added here before a manifest uses
// it.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port              string                    `json:"port"`
			Path              string                    `json:"path,omitempty"`
			Interval          string                    `json:"interval,omitempty"`
			ScrapeTimeout     string                    `json:"scrapeTimeout,omitempty"`
			Scheme            string                    `json:"scheme,omitempty"`
			BearerTokenSecret *corev1.SecretKeySelector `json:"bearerTokenSecret,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests is every object under deploy/kubernetes, decoded.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]*policyv1.PodDisruptionBudget
	monitors    map[string]*ServiceMonitor
}

// loadManifests decodes every document of every .yaml file under
// deploy/kubernetes strictly (unknown or duplicate keys are errors) into
// the Go type of its apiVersion and kind; any other kind fails the test.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		secrets:     map[string]*corev1.Secret{},
		hpas:        map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		monitors:    map[string]*ServiceMonitor{},
	}
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(repoRoot(t), path)
		if ext := filepath.Ext(path); ext != ".yaml" {
			t.Errorf("%s: only .yaml files belong in deploy/kubernetes", rel)
			return nil
		}
		files++
		docs := splitDocuments(t, rel, readFile(t, rel))
		if len(docs) == 0 {
			t.Errorf("%s: no object", rel)
		}
		for i, doc := range docs {
			m.add(t, rel+"#"+strconv.Itoa(i), doc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no manifests under deploy/kubernetes")
	}
	return m
}

// splitDocuments splits multi-document YAML, dropping empty documents
// (only comments).
func splitDocuments(t *testing.T, name string, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(probe) > 0 {
			docs = append(docs, doc)
		}
	}
}

func (m *manifests) add(t *testing.T, name string, doc []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	strict := func(obj any) bool {
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s (%s %s): %v", name, tm.APIVersion, tm.Kind, err)
			return false
		}
		return true
	}
	key := tm.APIVersion + " " + tm.Kind
	switch key {
	case "apps/v1 Deployment":
		addObject(t, name, m.deployments, &appsv1.Deployment{}, strict, func(o *appsv1.Deployment) string { return o.Name })
	case "v1 Service":
		addObject(t, name, m.services, &corev1.Service{}, strict, func(o *corev1.Service) string { return o.Name })
	case "v1 ConfigMap":
		addObject(t, name, m.configMaps, &corev1.ConfigMap{}, strict, func(o *corev1.ConfigMap) string { return o.Name })
	case "v1 Secret":
		addObject(t, name, m.secrets, &corev1.Secret{}, strict, func(o *corev1.Secret) string { return o.Name })
	case "autoscaling/v2 HorizontalPodAutoscaler":
		addObject(t, name, m.hpas, &autoscalingv2.HorizontalPodAutoscaler{}, strict, func(o *autoscalingv2.HorizontalPodAutoscaler) string { return o.Name })
	case "policy/v1 PodDisruptionBudget":
		addObject(t, name, m.pdbs, &policyv1.PodDisruptionBudget{}, strict, func(o *policyv1.PodDisruptionBudget) string { return o.Name })
	case "monitoring.coreos.com/v1 ServiceMonitor":
		addObject(t, name, m.monitors, &ServiceMonitor{}, strict, func(o *ServiceMonitor) string { return o.Name })
	default:
		t.Errorf("%s: %q: no Go type to check it against; add one to this test", name, key)
	}
}

func addObject[T any](t *testing.T, name string, into map[string]*T, obj *T, strict func(any) bool, nameOf func(*T) string) {
	t.Helper()
	if !strict(obj) {
		return
	}
	n := nameOf(obj)
	if n == "" {
		t.Errorf("%s: metadata.name is empty", name)
		return
	}
	if _, dup := into[n]; dup {
		t.Errorf("%s: a second object of this kind is named %q", name, n)
	}
	into[n] = obj
}

func get[T any](t *testing.T, from map[string]*T, kind, name string) *T {
	t.Helper()
	o, ok := from[name]
	if !ok {
		t.Fatalf("deploy/kubernetes: no %s %q", kind, name)
	}
	return o
}

// selects reports whether sel matches the labels of tmpl.
func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

func containerPort(c corev1.Container, name string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func listenPort(t *testing.T, listen string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen %q: %v", listen, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("listen %q: %v", listen, err)
	}
	return int32(n)
}

// TestKubernetesManifestsDecodeStrictly decodes every manifest; the
// other tests build on it.
func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	if len(m.deployments) != 2 || len(m.services) != 3 || len(m.configMaps) != 1 ||
		len(m.secrets) != 2 || len(m.hpas) != 1 || len(m.pdbs) != 1 || len(m.monitors) != 1 {
		t.Errorf("objects: %d Deployments, %d Services, %d ConfigMaps, %d Secrets, %d HPAs, %d PDBs, %d ServiceMonitors; "+
			"want 2, 3, 1, 2, 1, 1, 1 (update this test with the manifests)",
			len(m.deployments), len(m.services), len(m.configMaps), len(m.secrets), len(m.hpas), len(m.pdbs), len(m.monitors))
	}
}

// secretEnv resolves the env of container c from the Secrets' stringData.
func secretEnv(t *testing.T, m *manifests, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := get(t, m.secrets, "Secret", ref.Name)
			v, ok := s.StringData[ref.Key]
			if !ok {
				t.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		}
	}
	return env
}

func TestKubernetesGateway(t *testing.T) {
	m := loadManifests(t)
	d := get(t, m.deployments, "Deployment", "bulwark")
	pod := d.Spec.Template
	if !selects(t, d.Spec.Selector, pod.Labels) {
		t.Errorf("Deployment bulwark: selector %v does not match its pod labels %v", d.Spec.Selector, pod.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("Deployment bulwark: %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// The config in the ConfigMap loads with the env the pod gets.
	cm := get(t, m.configMaps, "ConfigMap", "bulwark")
	data, ok := cm.Data["bulwark.yaml"]
	if !ok {
		t.Fatal("ConfigMap bulwark: no bulwark.yaml")
	}
	env := secretEnv(t, m, c)
	cfg := parseConfig(t, "/etc/bulwark/bulwark.yaml", []byte(data), env)

	// Mounted where the args point, as a directory (no subPath), so
	// ConfigMap updates reach reload.watch.
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/bulwark/bulwark.yaml"}) {
		t.Errorf("args = %q", c.Args)
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == "bulwark" && vm.MountPath == "/etc/bulwark" && vm.SubPath == "" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Error("ConfigMap bulwark is not mounted at /etc/bulwark (without subPath)")
	}
	if !cfg.Reload.Watch {
		t.Error("reload.watch is off: ConfigMap updates would need a restart")
	}

	// Ports agree with the config.
	httpPort, ok := containerPort(c, "http")
	if !ok || httpPort != listenPort(t, cfg.Server.Listen) {
		t.Errorf("container port http = %d, server.listen = %s", httpPort, cfg.Server.Listen)
	}
	adminPort, ok := containerPort(c, "admin")
	if !ok || adminPort != listenPort(t, cfg.Admin.Listen) {
		t.Errorf("container port admin = %d, admin.listen = %s", adminPort, cfg.Admin.Listen)
	}
	if len(cfg.Admin.Allow) == 0 || cfg.Admin.Token == "" {
		t.Error("the admin listener is not on loopback: it needs admin.allow and admin.token")
	}

	// Probes: liveness never depends on anything, readiness is /readyz.
	probe := func(name string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want httpGet %s on the admin port", name, path)
			return
		}
		if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe: %s on port %s, want %s on admin", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
		}
	}
	probe("liveness", c.LivenessProbe, "/livez")
	probe("readiness", c.ReadinessProbe, "/readyz")

	// Graceful shutdown fits in the grace period.
	grace := pod.Spec.TerminationGracePeriodSeconds
	need := cfg.Server.ShutdownDelay.D() + cfg.Server.ShutdownTimeout.D()
	if grace == nil || time.Duration(*grace)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds = %v, must exceed server.shutdown_delay + shutdown_timeout = %v", grace, need)
	}
	if cfg.Server.ShutdownDelay.D() == 0 {
		t.Error("server.shutdown_delay is 0: pods would close their listener before the endpoints are updated")
	}

	// Hardening.
	psc, sc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext: want runAsNonRoot and a non-zero runAsUser")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Error("container securityContext: want readOnlyRootFilesystem, no privilege escalation, capabilities drop [ALL] and none added")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("resources.requests.%s missing", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("resources.limits.%s missing", r)
		}
	}

	// The public Service and the admin Service reach the pods' ports.
	for _, name := range []string{"bulwark", "bulwark-admin"} {
		svc := get(t, m.services, "Service", name)
		if !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels) {
			t.Errorf("Service %s does not select the bulwark pods", name)
		}
		for _, p := range svc.Spec.Ports {
			if _, ok := containerPort(c, p.TargetPort.String()); !ok {
				t.Errorf("Service %s: targetPort %s is not a named container port", name, p.TargetPort.String())
			}
		}
	}
	for _, p := range get(t, m.services, "Service", "bulwark").Spec.Ports {
		if p.TargetPort.String() == "admin" {
			t.Error("Service bulwark exposes the admin port")
		}
	}

	// HPA and PDB point at the gateway.
	hpa := get(t, m.hpas, "HorizontalPodAutoscaler", "bulwark")
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA scaleTargetRef = %+v", ref)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d: want at least 2 and max >= min", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Error("the HPA scales on CPU utilization, which needs a CPU request")
	}
	pdb := get(t, m.pdbs, "PodDisruptionBudget", "bulwark")
	if !selects(t, pdb.Spec.Selector, pod.Labels) {
		t.Error("PodDisruptionBudget bulwark does not select the bulwark pods")
	}

	// Prometheus scrapes the admin Service with the admin token.
	sm := get(t, m.monitors, "ServiceMonitor", "bulwark")
	adminSvc := get(t, m.services, "Service", "bulwark-admin")
	if !selects(t, &sm.Spec.Selector, adminSvc.Labels) {
		t.Error("ServiceMonitor bulwark does not select Service bulwark-admin")
	}
	if sel := sm.Spec.Selector; selects(t, &sel, get(t, m.services, "Service", "bulwark").Labels) {
		t.Error("ServiceMonitor bulwark also selects Service bulwark: every pod would be scraped twice")
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor: %d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Path != "/metrics" || !slices.ContainsFunc(adminSvc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
		t.Errorf("ServiceMonitor endpoint %s %s: want /metrics on a port of bulwark-admin", ep.Port, ep.Path)
	}
	if ep.BearerTokenSecret == nil {
		t.Fatal("ServiceMonitor: no bearerTokenSecret, but /metrics needs admin.token")
	}
	if tok := get(t, m.secrets, "Secret", ep.BearerTokenSecret.Name).StringData[ep.BearerTokenSecret.Key]; tok != string(cfg.Admin.Token) {
		t.Error("ServiceMonitor bearerTokenSecret is not the Secret value admin.token is read from")
	}
}

func TestKubernetesRedis(t *testing.T) {
	m := loadManifests(t)
	gw := get(t, m.deployments, "Deployment", "bulwark").Spec.Template.Spec.Containers[0]
	u, err := url.Parse(secretEnv(t, m, gw)["BULWARK_REDIS_URL"])
	if err != nil {
		t.Fatalf("BULWARK_REDIS_URL: %v", err)
	}
	d := get(t, m.deployments, "Deployment", u.Hostname())
	pod := d.Spec.Template
	if !selects(t, d.Spec.Selector, pod.Labels) {
		t.Errorf("Deployment %s: selector does not match its pod labels", d.Name)
	}
	svc := get(t, m.services, "Service", u.Hostname())
	if !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels) {
		t.Errorf("Service %s does not select the Redis pods", svc.Name)
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == u.Port() }) {
		t.Errorf("Service %s has no port %s (BULWARK_REDIS_URL)", svc.Name, u.Port())
	}
	c := pod.Spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Error("redis: want capabilities drop [ALL]")
	}
	if psc := pod.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("redis: want runAsNonRoot")
	}
	// The password in the gateway's URL is the one Redis requires.
	pw, _ := u.User.Password()
	if got := secretEnv(t, m, c)["REDIS_PASSWORD"]; got == "" || got != pw {
		t.Error("BULWARK_REDIS_URL's password is not Redis's REDIS_PASSWORD")
	}
	if !slices.Contains(c.Args, "$(REDIS_PASSWORD)") {
		t.Errorf("redis args %q: want --requirepass $(REDIS_PASSWORD)", c.Args)
	}
}

// TestKubernetesSecretsArePlaceholders keeps real-looking secrets out of
// the repository: every Secret value says CHANGE-ME.
func TestKubernetesSecretsArePlaceholders(t *testing.T) {
	m := loadManifests(t)
	for name, s := range m.secrets {
		if len(s.Data) > 0 {
			t.Errorf("Secret %s: use stringData with visible placeholders, not data", name)
		}
		for k, v := range s.StringData {
			if !strings.Contains(v, "CHANGE-ME") {
				t.Errorf("Secret %s: %s does not look like a placeholder (want CHANGE-ME in it)", name, k)
			}
		}
	}
}
