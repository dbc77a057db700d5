package deploy

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// compose.yaml without a Docker engine: every container on the host's
// network (this machine allows no bridge), every one restarted unless
// stopped, every service of the binary there with its health check, and
// the scalable ones on a port of their own.
func TestComposeFile(t *testing.T) {
	var file struct {
		Services map[string]struct {
			Image       string            `json:"image"`
			NetworkMode string            `json:"network_mode"`
			Restart     string            `json:"restart"`
			Command     any               `json:"command"`
			Environment map[string]string `json:"environment"`
			Healthcheck *struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
			Volumes []string `json:"volumes"`
		} `json:"services"`
		Volumes map[string]any `json:"volumes"`
	}
	// Not strict: compose's extension fields (x-...) and anchors are
	// compose's own; the fields read here are checked.
	if err := yaml.Unmarshal(readFile(t, "../compose.yaml"), &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	brokers := 0
	for name, s := range file.Services {
		if s.NetworkMode != "host" {
			t.Errorf("%s: network_mode %q, want host (no bridge networks here)", name, s.NetworkMode)
		}
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", name, s.Restart)
		}
		for _, v := range s.Volumes {
			if !strings.Contains(v, ":") || strings.HasPrefix(v, "/") || strings.HasPrefix(v, ".") {
				t.Errorf("%s: volume %q is not a named volume", name, v)
			}
		}
		if strings.HasPrefix(name, "kafka-") {
			brokers++
			env := s.Environment
			if env["KAFKA_DEFAULT_REPLICATION_FACTOR"] != "3" || env["KAFKA_MIN_INSYNC_REPLICAS"] != "2" ||
				env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] != "2" || env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] != "3" {
				t.Errorf("%s: not replication 3 with min ISR 2 for every topic", name)
			}
			if !strings.HasPrefix(s.Image, "${KAFKA_IMAGE") {
				t.Errorf("%s: image %q is not $KAFKA_IMAGE", name, s.Image)
			}
		}
	}
	if brokers != 3 {
		t.Errorf("%d brokers, want 3", brokers)
	}
	for kind := range k8sServices {
		s, ok := file.Services[kind]
		if !ok {
			t.Errorf("compose.yaml runs no %s", kind)
			continue
		}
		if cmd, _ := s.Command.([]any); len(cmd) != 1 || cmd[0] != kind {
			t.Errorf("%s: command %v, want [%s]", kind, s.Command, kind)
		}
		if s.Healthcheck == nil || !slices.Equal(s.Healthcheck.Test, []string{"CMD", "/bookshelf", "probe", "/readyz"}) {
			t.Errorf("%s: health check %v, want the probe of /readyz", kind, s.Healthcheck)
		}
		port := s.Environment["BOOKSHELF_PORT"]
		if kind == "gateway" {
			if !strings.Contains(port, "GATEWAY_PORT") {
				t.Errorf("gateway: BOOKSHELF_PORT %q, want $GATEWAY_PORT", port)
			}
		} else if port != "0" {
			t.Errorf("%s: BOOKSHELF_PORT %q: replicas on the host's network need a port each (0)", kind, port)
		}
		if s.Environment["BOOKSHELF_ADDR_FILE"] == "" {
			t.Errorf("%s: no BOOKSHELF_ADDR_FILE: the probe cannot find a port chosen at start", kind)
		}
		if !strings.HasPrefix(s.Environment["CONSUL_HTTP_ADDR"], "127.0.0.1:") {
			t.Errorf("%s: CONSUL_HTTP_ADDR %q, want the agent on 127.0.0.1", kind, s.Environment["CONSUL_HTTP_ADDR"])
		}
		// Traces go to the zipkin service, on the port it listens on.
		if s.Environment["OTEL_TRACES_EXPORTER"] == "" || !strings.Contains(s.Environment["OTEL_EXPORTER_ZIPKIN_ENDPOINT"], "${ZIPKIN_PORT:-9411}/api/v2/spans") {
			t.Errorf("%s: traces to %q by %q, want the zipkin service's $ZIPKIN_PORT", kind,
				s.Environment["OTEL_EXPORTER_ZIPKIN_ENDPOINT"], s.Environment["OTEL_TRACES_EXPORTER"])
		}
	}
	zipkin, ok := file.Services["zipkin"]
	if cmd, _ := zipkin.Command.([]any); !ok || zipkin.Healthcheck == nil || !slices.Contains(cmd, any("--armeria.ports[0].port=${ZIPKIN_PORT:-9411}")) || !slices.Contains(cmd, any("--armeria.ports[0].ip=127.0.0.1")) {
		t.Errorf("zipkin: %+v, want the trace viewer on $ZIPKIN_PORT with a health check", zipkin)
	}
}

// The cut-off wiring of compose.yaml: each broker's CUT listener is the
// upstream of a proxy of the service toxiproxy and is advertised at that
// proxy's port, so books-cut, which starts from the proxies, reaches the
// brokers only through them; and books-cut is the same replica as books
// but for its brokers.
func TestComposeCutOff(t *testing.T) {
	var file struct {
		Services map[string]struct {
			Command     []string          `json:"command"`
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(readFile(t, "../compose.yaml"), &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	listener := func(list, name string) string {
		for _, l := range strings.Split(list, ",") {
			if addr, ok := strings.CutPrefix(l, name+"://"); ok {
				return addr
			}
		}
		return ""
	}
	proxies := map[string][2]string{} // name: listen, upstream
	for _, entry := range strings.Split(file.Services["toxiproxy"].Environment["TOXIPROXY_PROXIES"], ";") {
		f := strings.Fields(entry)
		if len(f) != 3 {
			t.Fatalf("toxiproxy: entry %q is not \"name listen upstream\"", entry)
		}
		proxies[f[0]] = [2]string{f[1], f[2]}
	}
	var want []string
	for _, name := range []string{"kafka-1", "kafka-2", "kafka-3"} {
		env := file.Services[name].Environment
		if !strings.Contains(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], "CUT:PLAINTEXT") {
			t.Errorf("%s: no protocol for the CUT listener", name)
		}
		cut, advertised := listener(env["KAFKA_LISTENERS"], "CUT"), listener(env["KAFKA_ADVERTISED_LISTENERS"], "CUT")
		p, ok := proxies[name]
		if cut == "" || advertised == "" || !ok || p[1] != cut || p[0] != advertised {
			t.Errorf("%s: CUT listens on %q, advertised %q; its proxy %v: want the proxy from the advertised address to the listener", name, cut, advertised, p)
		}
		want = append(want, advertised)
	}
	books, cut := file.Services["books"], file.Services["books-cut"]
	if got := strings.Split(cut.Environment["BOOKSHELF_BROKER"], ","); !slices.Equal(got, want) {
		t.Errorf("books-cut: brokers %v, want the proxies %v", got, want)
	}
	if b := books.Environment["BOOKSHELF_BROKER"]; b != "" {
		t.Errorf("books: brokers %q, want those in Consul (the brokers' own listeners)", b)
	}
	if !slices.Equal(cut.Command, []string{"books"}) {
		t.Errorf("books-cut: command %v, want [books]", cut.Command)
	}
	for k, v := range books.Environment {
		if cut.Environment[k] != v {
			t.Errorf("books-cut: %s=%q, books has %q", k, cut.Environment[k], v)
		}
	}
}

// The metadata quorum of compose.yaml: three controllers of their own,
// each a voter at the address it listens on, and three brokers that are
// no controller (a broker kill never takes the active controller with
// it), started after the controllers and so stopped before them.
func TestComposeQuorumApartFromTheBrokers(t *testing.T) {
	var file struct {
		Services map[string]struct {
			DependsOn   []string          `json:"depends_on"`
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(readFile(t, "../compose.yaml"), &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	controllers := []string{"controller-1", "controller-2", "controller-3"}
	voters := map[string]string{} // node id: address
	for _, name := range controllers {
		env := file.Services[name].Environment
		if env["KAFKA_PROCESS_ROLES"] != "controller" {
			t.Errorf("%s: process roles %q, want controller", name, env["KAFKA_PROCESS_ROLES"])
		}
		addr, ok := strings.CutPrefix(env["KAFKA_LISTENERS"], "CONTROLLER://")
		if !ok || strings.Contains(addr, ",") {
			t.Errorf("%s: listeners %q, want one CONTROLLER listener", name, env["KAFKA_LISTENERS"])
		}
		voters[env["KAFKA_NODE_ID"]] = addr
	}
	for _, name := range append(slices.Clone(controllers), "kafka-1", "kafka-2", "kafka-3") {
		got := map[string]string{}
		for _, v := range strings.Split(file.Services[name].Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"], ",") {
			id, addr, _ := strings.Cut(v, "@")
			got[id] = addr
		}
		if len(got) != 3 || !maps.Equal(got, voters) {
			t.Errorf("%s: voters %v, want the controllers %v", name, got, voters)
		}
	}
	for _, name := range []string{"kafka-1", "kafka-2", "kafka-3"} {
		s := file.Services[name]
		if roles := s.Environment["KAFKA_PROCESS_ROLES"]; roles != "broker" {
			t.Errorf("%s: process roles %q, want broker", name, roles)
		}
		if _, ok := voters[s.Environment["KAFKA_NODE_ID"]]; ok || strings.Contains(s.Environment["KAFKA_LISTENERS"], "CONTROLLER://") {
			t.Errorf("%s: node %s, listeners %q: a broker, not a voter", name, s.Environment["KAFKA_NODE_ID"], s.Environment["KAFKA_LISTENERS"])
		}
		for _, c := range controllers {
			if !slices.Contains(s.DependsOn, c) {
				t.Errorf("%s: depends on %v, not on %s: it could stop after the quorum, with no controller for its controlled shutdown", name, s.DependsOn, c)
			}
		}
	}
}
