package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The compose stack, for real: the images are built (make image images),
// the stack comes up on ports of its own (never the defaults, which a
// developer's stack or `make infra` may hold), a book goes in and comes
// out through the gateway, lastread scales to three replicas that Consul
// lists and the gateway uses, a broker stops and writes go on, then a
// controller stops and writes still go on, and everything comes down. It
// needs a Docker engine and docker-compose; without them it skips,
// unless BOOKSHELF_REQUIRE_INFRA is set (CI).
func TestComposeStack(t *testing.T) {
	if testing.Short() {
		t.Skip("the compose stack takes a minute or two; not with -short")
	}
	needDocker(t)
	start := time.Now()
	run(t, 10*time.Minute, nil, "make", "-C", "..", "image", "images")
	t.Logf("images built in %s", time.Since(start).Round(time.Second))

	s := newStack(t)
	upAt := time.Now()
	s.compose(t, "up", "-d")
	s.waitReady(t, 3*time.Minute)
	t.Logf("stack ready in %s", time.Since(upAt).Round(time.Second))

	// Two books replicas: books on the brokers' listeners, books-cut on
	// theirs behind the proxies, both ready.
	eventually(t, 90*time.Second, "2 books replicas passing in Consul (books and books-cut)", func() bool {
		return len(s.passing(t, "books")) == 2
	})

	// A book in and out through the gateway, read-your-writes.
	id, pos := s.addBook(t, "The Left Hand of Darkness", 30*time.Second)
	// After a first transaction: the broker makes __transaction_state then.
	s.checkReplication(t)
	s.getBook(t, id, pos)
	s.read(t, id)

	// Three lastread replicas: three SRV records, each with its own port,
	// and the gateway sends requests to every one.
	s.compose(t, "up", "-d", "--no-recreate", "--scale", "books=2", "--scale", "lastread=3")
	var ports []string
	eventually(t, 90*time.Second, "3 SRV records for lastreadbooks", func() bool {
		ports = s.srvPorts(t, "lastreadbooks")
		return len(ports) == 3
	})
	before := map[string]int{}
	for _, p := range ports {
		before[p] = s.lastReadRequests(t, p)
	}
	for range 30 {
		s.get(t, "/books/last-read", http.StatusOK)
	}
	for _, p := range ports {
		if n := s.lastReadRequests(t, p) - before[p]; n == 0 {
			t.Errorf("the lastread replica on port %s got none of 30 requests through the gateway (ports %v)", p, ports)
		} else {
			t.Logf("lastread on port %s served %d of 30", p, n)
		}
	}

	// One broker of three stops: with replication 3 and min ISR 2, writes
	// go on.
	stopAt := time.Now()
	s.compose(t, "stop", "kafka-2")
	id2, pos2 := s.addBook(t, "Written with a broker down", 60*time.Second)
	t.Logf("first write with kafka-2 stopped after %s", time.Since(stopAt).Round(100*time.Millisecond))
	s.getBook(t, id2, pos2)

	// One controller of three stops as well: the two left are a quorum
	// (electing another, if it was the active one), and writes go on.
	stopAt = time.Now()
	s.compose(t, "stop", "controller-1")
	id3, pos3 := s.addBook(t, "Written with a controller down", 60*time.Second)
	t.Logf("first write with controller-1 stopped after %s", time.Since(stopAt).Round(100*time.Millisecond))
	s.getBook(t, id3, pos3)

	// Stopped services deregister (not merely fail their checks).
	s.compose(t, "stop", "lastread")
	if n := len(s.catalogInstances(t, "lastreadbooks")); n != 0 {
		t.Errorf("after stopping lastread, Consul still lists %d instances of lastreadbooks", n)
	}
	downAt := time.Now()
	s.down(t)
	t.Logf("stack down in %s; whole test %s", time.Since(downAt).Round(time.Second), time.Since(start).Round(time.Second))
}

// needDocker skips (or, with BOOKSHELF_REQUIRE_INFRA, fails) without a
// Docker engine and docker-compose.
func needDocker(t *testing.T) {
	t.Helper()
	var missing []string
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("a Docker engine (docker version: %v: %s)", err, strings.TrimSpace(lastLine(out))))
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		missing = append(missing, "docker-compose")
	}
	if _, err := exec.LookPath("dig"); err != nil {
		missing = append(missing, "dig (bind9-dnsutils)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ") + "; see the README's Containers section (dockerd --bridge=none --iptables=false --ip-masq=false)"
	if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// stack is one compose project on ports of its own.
// The ports of a test stack: below the ephemeral range, and apart from
// the 20000-32000 the end-to-end tests of cmd/bookshelf hand out.
const (
	portLow  = 10000
	portSpan = 9000
)

type stack struct {
	project string
	env     []string
	ports   map[string]int
}

func newStack(t *testing.T) *stack {
	names := []string{
		"KAFKA1_PORT", "KAFKA1_CONTROLLER_PORT", "KAFKA2_PORT", "KAFKA2_CONTROLLER_PORT",
		"KAFKA3_PORT", "KAFKA3_CONTROLLER_PORT", "CONSUL_HTTP_PORT", "CONSUL_DNS_PORT",
		"CONSUL_SERVER_PORT", "CONSUL_SERF_LAN_PORT", "CONSUL_SERF_WAN_PORT", "GATEWAY_PORT", "GATEWAY2_PORT",
		"ZIPKIN_PORT", "PROMETHEUS_PORT",
		"KAFKA1_CUT_PORT", "KAFKA2_CUT_PORT", "KAFKA3_CUT_PORT",
		"KAFKA1_PROXY_PORT", "KAFKA2_PROXY_PORT", "KAFKA3_PROXY_PORT", "TOXIPROXY_PORT",
	}
	s := &stack{project: fmt.Sprintf("bookshelf-test-%d", os.Getpid()), ports: map[string]int{}}
	// Free ports, held together so that none is handed out twice, then
	// let go for the containers. Consul's DNS takes UDP too. They come from
	// below Linux's ephemeral range (32768 up): a port there can be taken
	// by an outgoing connection between this check and the container's
	// listen, and a broker that cannot bind a listener stops.
	var held []io.Closer
	next := portLow + int(time.Now().UnixNano()%portSpan)
	for _, name := range names {
		for tries := 0; ; tries++ {
			if tries == portSpan {
				t.Fatalf("no free port in %d-%d", portLow, portLow+portSpan-1)
			}
			next = portLow + (next-portLow+1)%portSpan
			port := next
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				continue
			}
			pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				ln.Close()
				continue
			}
			held = append(held, ln, pc)
			s.ports[name] = port
			s.env = append(s.env, name+"="+strconv.Itoa(port))
			break
		}
	}
	for _, c := range held {
		c.Close()
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.cmd(context.Background(), "logs", "--no-color", "--tail", "40").CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		s.down(t)
	})
	return s
}

func (s *stack) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", s.project}, args...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), s.env...)
	return cmd
}

func (s *stack) compose(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if out, err := s.cmd(ctx, args...).CombinedOutput(); err != nil {
		t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *stack) down(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := s.cmd(ctx, "down", "--volumes", "--remove-orphans").CombinedOutput(); err != nil {
		t.Errorf("docker-compose down: %v\n%s", err, out)
	}
}

func (s *stack) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.ports["GATEWAY_PORT"], path)
}

func (s *stack) consul(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.ports["CONSUL_HTTP_PORT"], path)
}

var client = &http.Client{Timeout: 10 * time.Second}

func (s *stack) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	eventually(t, d, "the gateway ready and every service passing in Consul", func() bool {
		for _, service := range []string{"kafka", "books", "lastreadbooks", "booklist", "readingstats", "gateway"} {
			if len(s.passing(t, service)) == 0 {
				return false
			}
		}
		resp, err := client.Get(s.url("/readyz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// checkReplication holds the brokers to what compose.yaml promises: every
// topic the bookshelf writes, and the internal ones, has three replicas and
// needs two in sync for a write.
func (s *stack) checkReplication(t *testing.T) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.ports["KAFKA1_PORT"])))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	topics := []string{"bookshelf", "bookshelf.commands", "__consumer_offsets", "__transaction_state"}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		t.Fatalf("describe topic configs: %v", err)
	}
	for _, topic := range topics {
		d, ok := details[topic]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			t.Errorf("topic %s: missing (%v)", topic, d.Err)
			continue
		}
		for _, p := range d.Partitions {
			if len(p.Replicas) != 3 {
				t.Errorf("topic %s partition %d has %d replicas, want 3", topic, p.Partition, len(p.Replicas))
			}
		}
		rc, err := configs.On(topic, nil)
		if err != nil {
			t.Errorf("topic %s configs: %v", topic, err)
			continue
		}
		minISR := ""
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" {
				minISR = c.MaybeValue()
			}
		}
		if minISR != "2" {
			t.Errorf("topic %s: min.insync.replicas %q, want 2", topic, minISR)
		}
	}
}

type book struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// addBook posts a book, retrying a 503 (the brokers moving leaders) until
// d has passed; it returns the book's id and the position of its event.
func (s *stack) addBook(t *testing.T, title string, d time.Duration) (id, pos string) {
	t.Helper()
	body := fmt.Sprintf(`{"title":%q,"authors":["Ursula K. Le Guin"],"year":1969}`, title)
	key := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	var last string
	eventually(t, d, "POST /books answered 201", func() bool {
		req, _ := http.NewRequest(http.MethodPost, s.url("/books"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key) // a retry is the same book
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			last = fmt.Sprintf("%s: %s", resp.Status, b)
			return false
		}
		var bk book
		if err := json.Unmarshal(b, &bk); err != nil || bk.ID == "" {
			t.Fatalf("POST /books: %s: %v", b, err)
		}
		id, pos = bk.ID, resp.Header.Get("Bookshelf-Position")
		return true
	}, func() string { return last })
	return id, pos
}

func (s *stack) getBook(t *testing.T, id, pos string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url("/books/"+id), nil)
	req.Header.Set("Bookshelf-Position", pos)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /books/%s: %v", id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /books/%s at %s: %s: %s", id, pos, resp.Status, b)
	}
}

func (s *stack) read(t *testing.T, id string) {
	t.Helper()
	resp, err := client.Post(s.url("/books/"+id+"/read"), "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatalf("POST /books/%s/read: %v", id, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /books/%s/read: %s", id, resp.Status)
	}
}

func (s *stack) get(t *testing.T, path string, want int) {
	t.Helper()
	resp, err := client.Get(s.url(path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
}

// srvPorts asks Consul's DNS, with dig as a user would, for a service's
// SRV records, and returns their ports.
func (s *stack) srvPorts(t *testing.T, service string) []string {
	t.Helper()
	out, err := exec.Command("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", strconv.Itoa(s.ports["CONSUL_DNS_PORT"]),
		service+".service.consul", "SRV").Output()
	if err != nil {
		return nil
	}
	var ports []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 {
			ports = append(ports, f[2])
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// lastReadRequests is how many last-read requests the replica on port has
// served, from its /metrics.
func (s *stack) lastReadRequests(t *testing.T, port string) int {
	t.Helper()
	resp, err := client.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		t.Fatalf("metrics of lastread on %s: %v", port, err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "bookshelf_http_requests_total{") && strings.Contains(line, "last-read") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}

// passing lists the ids of a service's instances passing their checks.
func (s *stack) passing(t *testing.T, service string) []string {
	return s.instances(t, "/v1/health/service/"+service+"?passing=1", func(raw json.RawMessage) string {
		var e struct{ Service struct{ ID string } }
		json.Unmarshal(raw, &e)
		return e.Service.ID
	})
}

// catalogInstances lists every registered instance, passing or not.
func (s *stack) catalogInstances(t *testing.T, service string) []string {
	return s.instances(t, "/v1/catalog/service/"+service, func(raw json.RawMessage) string {
		var e struct{ ServiceID string }
		json.Unmarshal(raw, &e)
		return e.ServiceID
	})
}

func (s *stack) instances(t *testing.T, path string, id func(json.RawMessage) string) []string {
	resp, err := client.Get(s.consul(path))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var raw []json.RawMessage
	if json.NewDecoder(resp.Body).Decode(&raw) != nil {
		return nil
	}
	var ids []string
	for _, r := range raw {
		ids = append(ids, id(r))
	}
	return ids
}

// run runs a command in the repository, failing the test with its output.
func run(t *testing.T, d time.Duration, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// eventually polls fn every 250 ms until it holds or d has passed; why,
// when given, says what was last seen.
func eventually(t *testing.T, d time.Duration, what string, fn func() bool, why ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			msg := ""
			if len(why) > 0 {
				msg = ": " + why[0]()
			}
			t.Fatalf("%s: not within %s%s", what, d, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
