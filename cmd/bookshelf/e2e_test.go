package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests start the real binary, `bookshelf up`, on free
// ports in a temporary directory, and drive it as a user would: over HTTP,
// and over Kafka with kcat, a client we did not write.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bookshelf-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bookshelf")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build bookshelf:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range portSpan {
		nextPort = portLow + (nextPort-portLow+1)%portSpan
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", nextPort))
		if err == nil {
			ln.Close()
			return nextPort
		}
	}
	t.Fatalf("no free port in %d-%d", portLow, portLow+portSpan-1)
	return 0
}

// Ports handed to the services under test come from below Linux's
// ephemeral range (32768 up), where no outgoing connection takes one
// between the check and the service's listen, and never twice in a run.
const (
	portLow  = 20000
	portSpan = 12000
)

var (
	portsMu  sync.Mutex
	nextPort = portLow + int(time.Now().UnixNano()%portSpan)
)

// target is where the system's Kafka is: the embedded broker of `up`, or
// a real broker (BOOKSHELF_TEST_KAFKA), then with topics of the test's own.
type target struct {
	name   string
	broker string // empty: embedded
	topic  string
}

// eachTarget runs fn on the embedded broker, and on the real one too when
// BOOKSHELF_TEST_KAFKA names it.
func eachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	targets := []target{{name: "embedded", topic: "bookshelf"}}
	if addr := os.Getenv("BOOKSHELF_TEST_KAFKA"); addr != "" {
		targets = append(targets, target{name: "real", broker: addr, topic: fmt.Sprintf("e2e-%d", time.Now().UnixNano())})
	} else if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
		t.Error("BOOKSHELF_REQUIRE_INFRA is set but BOOKSHELF_TEST_KAFKA is not")
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) { fn(t, tg) })
	}
}

// system is one `bookshelf up` process.
type system struct {
	t       *testing.T
	tg      target
	dir     string
	ports   map[string]int
	cmd     *exec.Cmd
	stdout  *lockedBuffer
	stderr  *lockedBuffer
	exited  chan error
	gateway string
}

func newPorts(t *testing.T) map[string]int {
	ports := map[string]int{}
	for _, name := range []string{"gateway", "books", "catalog", "stats", "lastread", "broker"} {
		ports[name] = freePort(t)
	}
	return ports
}

func startUp(t *testing.T, dir string, ports map[string]int, tg target) *system {
	t.Helper()
	return startUpEnv(t, dir, ports, tg, nil)
}

// startUpEnv is startUp with env added to the process's environment.
func startUpEnv(t *testing.T, dir string, ports map[string]int, tg target, env []string) *system {
	t.Helper()
	args := []string{"up", "--data-dir", filepath.Join(dir, "data"), "--topic", tg.topic}
	if tg.broker != "" {
		args = append(args, "--broker", tg.broker)
	}
	for name, p := range ports {
		args = append(args, fmt.Sprintf("--%s-port=%d", name, p))
	}
	s := &system{t: t, tg: tg, dir: dir, ports: ports, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan error, 1),
		gateway: fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"])}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Dir = dir
	if env != nil {
		s.cmd.Env = append(os.Environ(), env...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.stop()
		}
		if t.Failed() {
			t.Logf("bookshelf up stderr:\n%s", s.stderr.String())
		}
	})
	s.waitReady()
	return s
}

// broker is where the system's Kafka listens.
func (s *system) broker() string {
	if s.tg.broker != "" {
		return s.tg.broker
	}
	return fmt.Sprintf("127.0.0.1:%d", s.ports["broker"])
}

func (s *system) url(service, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.ports[service], path)
}

// waitReady waits until every service answers /readyz.
func (s *system) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, svc := range []string{"books", "lastread", "catalog", "stats", "gateway"} {
		for {
			resp, err := http.Get(s.url(svc, "/readyz"))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			select {
			case err := <-s.exited:
				s.t.Fatalf("bookshelf up exited: %v\n%s", err, s.stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s never became ready\n%s", svc, s.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// stop sends SIGINT, as Ctrl-C does, and waits for a clean exit.
func (s *system) stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-s.exited:
		if err != nil {
			s.t.Errorf("bookshelf up did not exit cleanly: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		s.t.Errorf("bookshelf up did not stop within 30 s of SIGINT")
	}
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes a successful answer into v; any other answer fails the
// test, so a problem is never read as an empty result.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if r.status/100 != 2 {
		t.Fatalf("answer %d %s, want a 2xx to decode", r.status, r.body)
	}
	r.decode(t, v)
}

// decode decodes the body into v, whatever the status.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func do(t *testing.T, method, url, contentType string, body io.Reader, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

// getAt GETs url as a client reading its own write at pos. A view that
// has not read that far within its wait answers 503 with Retry-After, and
// a client told so asks again: only a machine too busy for the view to
// read a fresh record in 2 s gets there, and each time is logged. A stale
// 200 is never accepted.
func getAt(t *testing.T, url, pos string) response {
	t.Helper()
	for try := 1; ; try++ {
		r := do(t, "GET", url, "", nil, "Bookshelf-Position", pos)
		if r.status != 503 || try == 3 || !strings.Contains(string(r.body), "not-caught-up") {
			return r
		}
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || wait < 1 {
			t.Fatalf("GET %s at %s: 503 without a usable Retry-After: %v", url, pos, r.header)
		}
		t.Logf("GET %s at %s: not caught up yet (try %d); asking again in %d s", url, pos, try, wait)
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

func postJSON(t *testing.T, url, body string, headers ...string) response {
	t.Helper()
	return do(t, "POST", url, "application/json", strings.NewReader(body), headers...)
}

type bookJSON struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Authors []string `json:"authors"`
	Year    int      `json:"year"`
	Reads   int      `json:"reads"`
}

type lastReadJSON struct {
	Books []struct {
		ID      string    `json:"id"`
		Title   string    `json:"title"`
		Authors []string  `json:"authors"`
		ReadAt  time.Time `json:"read_at"`
	} `json:"books"`
}

func titles(l lastReadJSON) []string {
	var out []string
	for _, b := range l.Books {
		out = append(out, b.Title)
	}
	return out
}

func needKcat(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
			t.Fatal("kcat is not installed; .ci/run installs it (apt-get install -y kcat)")
		}
		t.Skip("kcat is not installed (apt-get install -y kcat)")
	}
}

// kcatProduce sends each line as one record, as `kcat -P` does.
func kcatProduce(t *testing.T, broker, topic string, lines ...string) {
	t.Helper()
	needKcat(t)
	cmd := exec.Command("kcat", "-b", broker, "-P", "-t", topic)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
}

// kcatConsume reads a whole topic with its headers, one record a line.
func kcatConsume(t *testing.T, broker, topic string) []string {
	t.Helper()
	needKcat(t)
	cmd := exec.Command("kcat", "-b", broker, "-C", "-t", topic, "-e", "-q", "-f", "%h|%k|%s\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// eventually retries fn until it returns true or 15 s pass.
func eventually(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
