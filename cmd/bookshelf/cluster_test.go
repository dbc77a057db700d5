package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run the services as separate processes on a real Apache
// Kafka broker and a real Consul agent (make infra), as the original
// README did. They need BOOKSHELF_TEST_KAFKA, BOOKSHELF_TEST_CONSUL and
// BOOKSHELF_TEST_CONSUL_DNS; without them they skip, unless
// BOOKSHELF_REQUIRE_INFRA is set (CI), where they fail.

type infra struct {
	kafka, consul, dns string
}

func needInfra(t *testing.T) infra {
	t.Helper()
	in := infra{os.Getenv("BOOKSHELF_TEST_KAFKA"), os.Getenv("BOOKSHELF_TEST_CONSUL"), os.Getenv("BOOKSHELF_TEST_CONSUL_DNS")}
	if in.kafka == "" || in.consul == "" || in.dns == "" {
		msg := "needs a real Kafka and Consul: run 'make infra' and set BOOKSHELF_TEST_KAFKA=127.0.0.1:19092 BOOKSHELF_TEST_CONSUL=127.0.0.1:8500 BOOKSHELF_TEST_CONSUL_DNS=127.0.0.1:8600"
		if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return in
}

// proc is one service process.
type proc struct {
	t      *testing.T
	name   string
	port   int
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan error
	done   bool
}

func startProc(t *testing.T, port int, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: args[0], port: port, out: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR=") // only what the flags say
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.done {
			p.kill()
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

func (p *proc) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", p.port, path) }

// waitReady waits for the process's /readyz to pass.
func (p *proc) waitReady() {
	p.t.Helper()
	eventuallyWithin(p.t, 60*time.Second, p.name+" ready", func() bool {
		select {
		case err := <-p.exited:
			p.exited <- err
			p.t.Fatalf("%s exited: %v\n%s", p.name, err, p.out.String())
		default:
		}
		resp, err := http.Get(p.url("/readyz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// term sends SIGTERM and waits for a clean exit.
func (p *proc) term() {
	p.t.Helper()
	p.done = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Errorf("%s did not exit cleanly on SIGTERM: %v", p.name, err)
		}
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
		p.kill()
	}
}

// kill is kill -9: no deregistration, no goodbye.
func (p *proc) kill() {
	p.done = true
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

func eventuallyWithin(t *testing.T, d time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// srvPorts asks Consul's DNS, with dig, for the SRV records of a service:
// the ports of its passing instances.
func srvPorts(t *testing.T, dns, service string) []string {
	t.Helper()
	host, port, _ := strings.Cut(dns, ":")
	out, err := exec.Command("dig", "@"+host, "-p", port, service+".service.consul", "SRV", "+short").Output()
	if err != nil {
		t.Fatalf("dig: %v", err)
	}
	var ports []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			ports = append(ports, f[2])
		}
	}
	return ports
}

// passing lists the ids of a service's passing instances, from Consul's
// health API.
func passing(t *testing.T, consul, service string) []string {
	t.Helper()
	resp, err := http.Get("http://" + consul + "/v1/health/service/" + service + "?passing")
	if err != nil {
		t.Fatalf("consul: %v", err)
	}
	defer resp.Body.Close()
	var entries []struct{ Service struct{ ID string } }
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatalf("consul health: %v", err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Service.ID)
	}
	return ids
}

func needDig(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
			t.Fatal("dig is not installed (apt-get install -y bind9-dnsutils)")
		}
		t.Skip("dig is not installed (apt-get install -y bind9-dnsutils)")
	}
}

// The original README's steps, on the real broker and agent.
func TestOriginalReadmeOnRealKafkaAndConsul(t *testing.T) {
	in := needInfra(t)
	needKcat(t)
	needDig(t)
	topic := "readme-" + fmt.Sprint(time.Now().UnixNano())
	// The original README's command line, word for word but for the
	// broker's port, the topic (one of this test's own) and --consul.
	port := freePort(t)
	args := []string{"lastread", "--topic", topic, "--broker", in.kafka, "--addr", "127.0.0.1",
		"--port", fmt.Sprint(port), "--name", "lastreadbooks", "--id", "lastread1", "--tags", "books", "last",
		"--consul", in.consul}
	lr := startProc(t, port, args...)
	lr.waitReady()

	// One kcat run stamps both lines with the same millisecond, so their
	// order is not defined: ask for the set.
	kcatProduce(t, in.kafka, topic, "The Dispossessed", "The Lathe of Heaven")
	eventually(t, "the lines listed on GET /", func() bool {
		var l lastReadJSON
		do(t, "GET", lr.url("/"), "", nil).json(t, &l.Books) // a JSON list, as the original's
		got := titles(l)
		slices.Sort(got)
		return slices.Equal(got, []string{"The Dispossessed", "The Lathe of Heaven"})
	})
	// Other instances of lastreadbooks may be registered (make cluster):
	// the test looks for its own port.
	mine := func() bool { return slices.Contains(srvPorts(t, in.dns, "lastreadbooks"), fmt.Sprint(port)) }
	eventually(t, "dig answers with the port", mine)
	lr.term()
	if mine() {
		t.Fatalf("after SIGTERM dig still answers port %d", port)
	}

	// kill -9: no deregistration; the failing check takes it off the
	// passing list.
	lr = startProc(t, port, args...)
	lr.waitReady()
	eventually(t, "registered again", mine)
	lr.kill()
	eventuallyWithin(t, 70*time.Second, "the killed instance leaves the passing list", func() bool { return !mine() })
}

// Two, then one, then no lastread instance behind the gateway, then a new one.
func TestGatewayFailoverOnRealKafkaAndConsul(t *testing.T) {
	in := needInfra(t)
	needKcat(t)
	topic := "failover-" + fmt.Sprint(time.Now().UnixNano())

	lastread := func(id string) *proc {
		port := freePort(t)
		p := startProc(t, port, "lastread", "--topic", topic, "--broker", in.kafka, "--port", fmt.Sprint(port),
			"--id", id, "--consul", in.consul)
		p.waitReady()
		return p
	}
	gwPort := freePort(t)
	gw := startProc(t, gwPort, "gateway", "--port", fmt.Sprint(gwPort), "--id", "gateway-failover", "--consul", in.consul)
	gw.waitReady()
	// get may run on another goroutine: it reports, never fails the test.
	get := func() (int, string) {
		resp, err := http.Get(gw.url("/books/last-read"))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status := func() int { code, _ := get(); return code }
	a := lastread("failover-a") // creates the topics
	kcatProduce(t, in.kafka, topic, "Solaris")
	b := lastread("failover-b")
	eventually(t, "the gateway answers 200", func() bool { return status() == 200 })

	// Every request answers 200 while at least one instance is left.
	hammer := func(what string, during func()) {
		t.Helper()
		stop := make(chan struct{})
		codes := make(chan int, 1)
		go func() {
			bad := 0
			for {
				select {
				case <-stop:
					codes <- bad
					return
				default:
				}
				if code, body := get(); code != 200 {
					bad++
					t.Logf("%s: %d %s", what, code, body)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		during()
		time.Sleep(3 * time.Second) // past the registry's reaction
		close(stop)
		if bad := <-codes; bad != 0 {
			t.Fatalf("%s: %d requests failed while an instance was left", what, bad)
		}
	}
	c := lastread("failover-c")
	// "Registered" is not yet "seen": wait until Consul's catalog lists all
	// three as passing before taking one away.
	eventually(t, "three passing instances in Consul", func() bool {
		ids := passing(t, in.consul, "lastreadbooks")
		return slices.Contains(ids, "failover-a") && slices.Contains(ids, "failover-b") && slices.Contains(ids, "failover-c")
	})
	hammer("SIGTERM a", a.term)
	hammer("kill -9 b", b.kill)
	c.term()
	eventually(t, "503 with no instance left", func() bool { return status() == 503 })
	resp, err := http.Get(gw.url("/books/last-read"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("no-instance answer: %v", resp.Header)
	}
	lastread("failover-d")
	eventually(t, "the gateway recovers with a new instance", func() bool { return status() == 200 })
}

// Without --broker, a service waits for a healthy kafka in Consul and uses
// it; the embedded broker registers itself the same way (under another
// name here, not to stand beside the real one).
func TestDiscoveryAtStartOnRealConsul(t *testing.T) {
	in := needInfra(t)
	needDig(t)
	port := freePort(t)
	lr := startProc(t, port, "lastread", "--topic", fmt.Sprintf("discover-%d", time.Now().UnixNano()),
		"--port", fmt.Sprint(port), "--id", "discover-1", "--consul", in.consul)
	lr.waitReady()
	if !strings.Contains(lr.out.String(), "found the broker in the registry") {
		t.Fatalf("the service did not say where it found the broker:\n%s", lr.out.String())
	}
	lr.term()

	kport, name := freePort(t), fmt.Sprintf("kafka-test-%d", time.Now().UnixNano())
	b := startProc(t, kport, "broker", "--port", fmt.Sprint(kport), "--data-dir", t.TempDir(),
		"--consul", in.consul, "--name", name)
	eventually(t, "the broker in Consul's DNS", func() bool {
		return slices.Contains(srvPorts(t, in.dns, name), fmt.Sprint(kport))
	})
	b.term()
	if ports := srvPorts(t, in.dns, name); len(ports) != 0 {
		t.Fatalf("after SIGTERM dig still answers %v", ports)
	}
}

// A session timeout the broker refuses stops books with the settings
// named, rather than leaving the aggregate unready for ever.
func TestBooksRefusedSessionTimeoutStopsWithTheReason(t *testing.T) {
	in := needInfra(t)
	port := freePort(t)
	books := startProc(t, port, "books", "--broker", in.kafka, "--topic", fmt.Sprintf("refused-%d", time.Now().UnixNano()),
		"--port", fmt.Sprint(port), "--session-timeout", "1s")
	select {
	case err := <-books.exited:
		books.done = true
		if err == nil {
			t.Fatalf("books exited 0 with a refused session timeout:\n%s", books.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("books still running 30 s after start with a refused session timeout:\n%s", books.out.String())
	}
	if s := books.out.String(); !strings.Contains(s, "bookshelf: the broker refuses the session timeout 1s") ||
		!strings.Contains(s, "group.consumer.min.session.timeout.ms") {
		t.Fatalf("books' output does not end with the reason:\n%s", s)
	}
}

// An agent that forgets a service (restarted, or told so) gets it back.
func TestRegistrationSurvivesTheAgentForgetting(t *testing.T) {
	in := needInfra(t)
	port := freePort(t)
	lr := startProc(t, port, "lastread", "--topic", fmt.Sprintf("forget-%d", time.Now().UnixNano()),
		"--broker", in.kafka, "--port", fmt.Sprint(port), "--id", "forget-1", "--consul", in.consul)
	lr.waitReady()
	eventually(t, "registered", func() bool { return slices.Contains(passing(t, in.consul, "lastreadbooks"), "forget-1") })
	req, err := http.NewRequest("PUT", "http://"+in.consul+"/v1/agent/service/deregister/forget-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventuallyWithin(t, 20*time.Second, "registered again", func() bool {
		return strings.Contains(lr.out.String(), "registering again") &&
			slices.Contains(passing(t, in.consul, "lastreadbooks"), "forget-1")
	})
	lr.term()
}
