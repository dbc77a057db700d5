package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// No cluster runs here, so the manifests are held to the API and to the
// binary another way: every document decodes strictly (an unknown or
// misspelt field fails) into the Kubernetes API types, and every
// Deployment is checked against the flags of the subcommand it runs.

// kustomization is the part of kustomize's file these manifests use;
// decoding into it strictly catches a field kustomize would not know.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
}

// Strimzi's kinds, as far as kafka.yaml uses them.
type strimziKafka struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Kafka struct {
			Version   string `json:"version"`
			Listeners []struct {
				Name string `json:"name"`
				Port int    `json:"port"`
				Type string `json:"type"`
				TLS  bool   `json:"tls"`
			} `json:"listeners"`
			Config map[string]any `json:"config"`
		} `json:"kafka"`
	} `json:"spec"`
}

type strimziNodePool struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Replicas int      `json:"replicas"`
		Roles    []string `json:"roles"`
		Storage  struct {
			Type    string `json:"type"`
			Volumes []struct {
				ID            int    `json:"id"`
				Type          string `json:"type"`
				Size          string `json:"size"`
				DeleteClaim   bool   `json:"deleteClaim"`
				KraftMetadata string `json:"kraftMetadata"`
			} `json:"volumes"`
		} `json:"storage"`
		Resources corev1.ResourceRequirements `json:"resources"`
	} `json:"spec"`
}

type manifests struct {
	kust        kustomization
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
	kafka       []strimziKafka
	nodePools   []strimziNodePool
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
	}
	strict(t, "k8s/kustomization.yaml", readFile(t, "k8s/kustomization.yaml"), &m.kust)
	files, _ := filepath.Glob("k8s/*.yaml")
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && base != "consul-values.yaml" && !slices.Contains(m.kust.Resources, base) {
			t.Errorf("%s is not among the kustomization's resources", f)
		}
	}
	for _, res := range m.kust.Resources {
		path := filepath.Join("k8s", res)
		for i, doc := range bytes.Split(readFile(t, path), []byte("\n---\n")) {
			where := fmt.Sprintf("%s (document %d)", path, i+1)
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				d := new(appsv1.Deployment)
				strict(t, where, doc, d)
				m.deployments[d.Name] = d
			case "v1 Service":
				s := new(corev1.Service)
				strict(t, where, doc, s)
				m.services[s.Name] = s
			case "v1 ConfigMap":
				c := new(corev1.ConfigMap)
				strict(t, where, doc, c)
				m.configMaps[c.Name] = c
			case "policy/v1 PodDisruptionBudget":
				p := new(policyv1.PodDisruptionBudget)
				strict(t, where, doc, p)
				m.pdbs[p.Name] = p
			case "v1 Namespace":
				strict(t, where, doc, new(corev1.Namespace))
			case "kafka.strimzi.io/v1beta2 Kafka":
				var k strimziKafka
				strict(t, where, doc, &k)
				m.kafka = append(m.kafka, k)
			case "kafka.strimzi.io/v1beta2 KafkaNodePool":
				var p strimziNodePool
				strict(t, where, doc, &p)
				m.nodePools = append(m.nodePools, p)
			default:
				t.Errorf("%s: %s %s: no test knows this kind", where, head.APIVersion, head.Kind)
			}
		}
	}
	var values map[string]any
	if err := yaml.Unmarshal(readFile(t, "k8s/consul-values.yaml"), &values); err != nil {
		t.Errorf("k8s/consul-values.yaml: %v", err)
	}
	return m
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func strict(t *testing.T, where string, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// The services the manifests must run, by subcommand, with how many
// replicas at least. Their ports are the defaults of the subcommands'
// --port, read from the binary.
var k8sServices = map[string]int{"books": 2, "lastread": 2, "catalog": 1, "stats": 1, "gateway": 2}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if m.kust.Namespace == "" {
		t.Error("the kustomization sets no namespace")
	}
	if len(m.kust.Images) != 1 || m.kust.Images[0].Name != "bookshelf" || m.kust.Images[0].NewTag != "dev" || m.kust.Images[0].NewName != "" {
		t.Errorf("the kustomization's images are %+v, want bookshelf with the tag dev, as make image builds it", m.kust.Images)
	}
	cm := m.configMaps["bookshelf"]
	if cm == nil {
		t.Fatal("no ConfigMap bookshelf")
	}
	for name, minReplicas := range k8sServices {
		d := m.deployments[name]
		if d == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		checkDeployment(t, d, cm, defaultPort(t, name), minReplicas)
		checkService(t, m.services[name], d)
	}
	for name := range m.deployments {
		if _, ok := k8sServices[name]; !ok {
			t.Errorf("Deployment %s runs no service this test knows", name)
		}
	}
	pdb := m.pdbs["books"]
	switch {
	case pdb == nil:
		t.Error("no PodDisruptionBudget for books")
	case pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil:
		t.Error("the books PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
	case !selects(pdb.Spec.Selector.MatchLabels, m.deployments["books"].Spec.Template.Labels):
		t.Error("the books PodDisruptionBudget selects no books pod")
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() >= int(*m.deployments["books"].Spec.Replicas):
		t.Error("the books PodDisruptionBudget allows no disruption at all")
	}
	checkKafka(t, m, cm)
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, cm *corev1.ConfigMap, port, minReplicas int) {
	t.Helper()
	name := d.Name
	if d.Spec.Replicas == nil || int(*d.Spec.Replicas) < minReplicas {
		t.Errorf("%s: replicas %v, want at least %d", name, d.Spec.Replicas, minReplicas)
	}
	if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("%s: the selector does not select the pod template", name)
	}
	pod := d.Spec.Template.Spec
	// Deregister (5 s at most), drain HTTP (10 s at most), a preStop, and
	// the Kafka loops' close.
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want at least 30 to deregister and drain", name, g)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "bookshelf" && c.Image != "bookshelf:dev" {
		t.Errorf("%s: image %q, want bookshelf (the kustomization tags it dev, as make image does)", name, c.Image)
	}
	if len(c.Args) == 0 || c.Args[0] != name {
		t.Errorf("%s: args %q, want the subcommand %s first", name, c.Args, name)
	}
	if len(c.Command) != 0 {
		t.Errorf("%s: command %q overrides the image's entrypoint", name, c.Command)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	env := map[string]string{}
	for k, v := range cm.Data {
		env[k] = v
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "(from " + e.ValueFrom.String() + ")"
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil || ef.ConfigMapRef.Name != cm.Name {
			t.Errorf("%s: envFrom %v, want the ConfigMap %s", name, ef, cm.Name)
		}
	}
	if env["BOOKSHELF_PORT"] != strconv.Itoa(port) {
		t.Errorf("%s: BOOKSHELF_PORT %q, want %d", name, env["BOOKSHELF_PORT"], port)
	}
	if ports["http"] != int32(port) {
		t.Errorf("%s: container port http %d, want %d (BOOKSHELF_PORT)", name, ports["http"], port)
	}
	if env["CONSUL_HTTP_ADDR"] == "" {
		t.Errorf("%s: no CONSUL_HTTP_ADDR: it would neither register nor find the others", name)
	}
	if !strings.HasPrefix(env["BOOKSHELF_ADVERTISE_ADDR"], "(from") {
		t.Errorf("%s: BOOKSHELF_ADVERTISE_ADDR is not the pod's IP: the gateway could not reach it", name)
	}
	// Every BOOKSHELF_* variable must be a flag of the subcommand: one the
	// binary does not read is a setting silently lost.
	known, _ := help(t, name)
	for k := range env {
		if strings.HasPrefix(k, "BOOKSHELF_") && !known[k] {
			t.Errorf("%s: sets %s, which bookshelf %s does not read", name, k, name)
		}
	}
	for what, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		wantPath := map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"}[what]
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s", name, what)
			continue
		}
		if p.HTTPGet.Path != wantPath {
			t.Errorf("%s: %s on %s, want %s", name, what, p.HTTPGet.Path, wantPath)
		}
		got := p.HTTPGet.Port.IntValue()
		if p.HTTPGet.Port.StrVal != "" {
			got = int(ports[p.HTTPGet.Port.StrVal])
		}
		if got != port {
			t.Errorf("%s: %s on port %s (%d), want the service's port %d", name, what, p.HTTPGet.Port.String(), got, port)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() {
			t.Errorf("%s: %s request %s, limit %s: want both", name, r, req.String(), lim.String())
		} else if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s over its limit %s", name, r, req.String(), lim.String())
		}
	}
	sc := c.SecurityContext
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: the pod may run as root", name)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: want a read-only root filesystem and no privilege escalation", name)
	}
}

func checkService(t *testing.T, s *corev1.Service, d *appsv1.Deployment) {
	t.Helper()
	if s == nil {
		t.Errorf("no Service for %s", d.Name)
		return
	}
	if !selects(s.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Service %s selects no pod of Deployment %s", s.Name, d.Name)
	}
	for _, p := range s.Spec.Ports {
		if p.TargetPort.StrVal != "" && !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal }) {
			t.Errorf("Service %s targets the port %q, which the pod does not name", s.Name, p.TargetPort.StrVal)
		}
	}
}

func checkKafka(t *testing.T, m manifests, cm *corev1.ConfigMap) {
	t.Helper()
	if len(m.kafka) != 1 || len(m.nodePools) == 0 {
		t.Fatalf("%d Kafka and %d KafkaNodePool resources, want one and some", len(m.kafka), len(m.nodePools))
	}
	k := m.kafka[0]
	nodes := 0
	for _, p := range m.nodePools {
		if p.Metadata.Labels["strimzi.io/cluster"] != k.Metadata.Name {
			t.Errorf("KafkaNodePool %s is not of the cluster %s", p.Metadata.Name, k.Metadata.Name)
		}
		if slices.Contains(p.Spec.Roles, "broker") {
			nodes += p.Spec.Replicas
		}
	}
	if nodes < 3 {
		t.Errorf("%d brokers, want 3 for replication 3", nodes)
	}
	for key, want := range map[string]string{
		"default.replication.factor": "3", "min.insync.replicas": "2",
		"offsets.topic.replication.factor": "3", "transaction.state.log.replication.factor": "3",
		"transaction.state.log.min.isr": "2",
	} {
		if got := fmt.Sprint(k.Spec.Kafka.Config[key]); got != want {
			t.Errorf("Kafka %s: %s %s, want %s", k.Metadata.Name, key, got, want)
		}
	}
	var plain int
	for _, l := range k.Spec.Kafka.Listeners {
		if l.Type == "internal" && !l.TLS {
			plain = l.Port
		}
	}
	want := fmt.Sprintf("%s-kafka-bootstrap:%d", k.Metadata.Name, plain)
	if got := cm.Data["BOOKSHELF_BROKER"]; got != want {
		t.Errorf("BOOKSHELF_BROKER %q, want the Strimzi bootstrap service %q", got, want)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// defaultPort is the default of `bookshelf <sub> --port`.
func defaultPort(t *testing.T, sub string) int {
	t.Helper()
	_, defaults := help(t, sub)
	port, err := strconv.Atoi(defaults["port"])
	if err != nil {
		t.Fatalf("bookshelf %s --help: --port has no default port (%q)", sub, defaults["port"])
	}
	return port
}

// help reads `bookshelf <sub> --help`: the environment variables its
// flags fall back to, and each flag's default.
func help(t *testing.T, sub string) (env map[string]bool, defaults map[string]string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bookshelf-deploy-test")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "bookshelf")
		if out, err := exec.Command("go", "build", "-o", binary, "../cmd/bookshelf").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	out, _ := exec.Command(binary, sub, "--help").CombinedOutput()
	env, defaults = map[string]bool{}, map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	envRE := regexp.MustCompile(`\$(BOOKSHELF_[A-Z_]+)`)
	flagRE := regexp.MustCompile(`^  -([a-z-]+)`)
	defRE := regexp.MustCompile(`\(default "?([^")]*)"?\)$`)
	flag := ""
	for sc.Scan() {
		line := sc.Text()
		if m := flagRE.FindStringSubmatch(line); m != nil {
			flag = m[1]
		}
		for _, m := range envRE.FindAllStringSubmatch(line, -1) {
			env[m[1]] = true
		}
		if m := defRE.FindStringSubmatch(line); m != nil && flag != "" {
			defaults[flag] = m[1]
		}
	}
	if len(env) == 0 {
		t.Fatalf("bookshelf %s --help names no BOOKSHELF_ variables:\n%s", sub, out)
	}
	return env, defaults
}
