package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// member starts a real process whose command line names it as the member
// name ("--id name", as the cluster's members have), and writes its pid
// and port files into dir.
func member(t *testing.T, dir, name string, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", "sleep 60", "--id", name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	files(t, dir, name, cmd.Process.Pid, port)
	return cmd
}

func files(t *testing.T, dir, name string, pid, port int) {
	t.Helper()
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	for ext, n := range map[string]int{".pid": pid, ".port": port} {
		if err := os.WriteFile(filepath.Join(run, name+ext), fmt.Appendf(nil, "%d\n", n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The target offers the faults that make sense for processes on one
// broker, holds a freeze past the session timeout, and refuses a kind it
// does not know.
func TestKinds(t *testing.T) {
	all := (&Target{}).Kinds()
	if !slices.Equal(all, []string{KillBooks, KillLastRead, KillGateway, FreezeBooks, ScaleBooks}) {
		t.Errorf("kinds: %v", all)
	}
	for _, k := range all {
		if strings.Contains(k, "broker") || strings.Contains(k, "consul") {
			t.Errorf("a fault of the shared infrastructure: %s", k)
		}
	}
	tg := &Target{Dir: t.TempDir(), Session: 6 * time.Second, Only: []string{KillGateway}}
	if k := tg.Kinds(); !slices.Equal(k, []string{KillGateway}) {
		t.Errorf("only kill gateway: %v", k)
	}
	if h := tg.Hold(FreezeBooks); h <= tg.Session {
		t.Errorf("a freeze of %s does not outlast a session of %s", h, tg.Session)
	}
	if _, _, err := tg.Inject(t.Context(), "kill broker", rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("a broker fault was injected into a cluster of one broker")
	}
}

// Members come from the pid and port files; a pid that is no longer the
// member's process (it exited, or the pid is another program's) counts as
// not running, and a folder without a cluster is a clear error.
func TestMembers(t *testing.T) {
	dir := t.TempDir()
	tg := &Target{Dir: dir}
	if _, err := tg.Members(); err == nil || !strings.Contains(err.Error(), "make cluster") {
		t.Errorf("no cluster: %v", err)
	}
	b2 := member(t, dir, "books-2", 8082)
	b1 := member(t, dir, "books-1", 8081)
	// The test's own pid: a live process, but no member of the cluster.
	files(t, dir, "lastread-1", os.Getpid(), 8087)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	files(t, dir, "gateway-1", gone.Process.Pid, 8080)
	ms, err := tg.Members()
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{
		{Name: "books-1", Port: 8081, Pid: b1.Process.Pid},
		{Name: "books-2", Port: 8082, Pid: b2.Process.Pid},
		{Name: "gateway-1", Port: 8080},
		{Name: "lastread-1", Port: 8087},
	}
	if !slices.Equal(ms, want) {
		t.Errorf("members %+v, want %+v", ms, want)
	}
	if g, err := tg.Gateways(); err != nil || !slices.Equal(g, []string{"http://127.0.0.1:8080"}) {
		t.Errorf("gateways %v, %v", g, err)
	}

	// A port file that holds no port is an error that names the member.
	if err := os.WriteFile(filepath.Join(dir, "run", "stats-1.port"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Members(); err == nil || !strings.Contains(err.Error(), "stats-1") {
		t.Errorf("a bad port file: %v", err)
	}
}

// A fault picks among the running members of its service only, the same
// one for the same seed; with none running it is an error and no signal
// is sent.
func TestPick(t *testing.T) {
	dir := t.TempDir()
	tg := &Target{Dir: dir}
	member(t, dir, "books-1", 8081)
	member(t, dir, "books-2", 8082)
	member(t, dir, "lastread-1", 8087)
	files(t, dir, "books-9", os.Getpid(), 8089) // not running: never picked
	seen := map[string]int{}
	for i := range 40 {
		a, err := tg.pick(rand.New(rand.NewPCG(uint64(i), 7)), "books")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := tg.pick(rand.New(rand.NewPCG(uint64(i), 7)), "books")
		if a != b {
			t.Errorf("seed %d picked %s, then %s", i, a.Name, b.Name)
		}
		seen[a.Name]++
	}
	if len(seen) != 2 || seen["books-1"] == 0 || seen["books-2"] == 0 {
		t.Errorf("picks %v, want books-1 and books-2", seen)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []string{KillGateway, FreezeBooks} {
		tg := &Target{Dir: t.TempDir()}
		member(t, tg.Dir, "lastread-1", 8087)
		if _, _, err := tg.Inject(t.Context(), kind, rng); err == nil {
			t.Errorf("%s with no such member was injected", kind)
		}
	}
}

// A freeze stops the member's process and the heal lets it go on; a kill
// leaves it gone (the heal, which starts it again, is infra/cluster.sh's).
func TestSignals(t *testing.T) {
	dir := t.TempDir()
	tg := &Target{Dir: dir}
	b := member(t, dir, "books-1", 8081)
	rng := rand.New(rand.NewPCG(1, 2))
	name, heal, err := tg.Inject(t.Context(), FreezeBooks, rng)
	if err != nil || name != "books-1" {
		t.Fatalf("freeze: %s, %v", name, err)
	}
	if s, ok := inState(t, b.Process.Pid, "T"); !ok {
		t.Errorf("frozen, the process is in state %s", s)
	}
	if err := heal(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s, ok := inState(t, b.Process.Pid, "S", "R"); !ok {
		t.Errorf("thawed, the process is in state %s", s)
	}

	exited := make(chan error, 1)
	go func() { exited <- b.Wait() }()
	if name, _, err := tg.Inject(t.Context(), KillBooks, rng); err != nil || name != "books-1" {
		t.Fatalf("kill: %s, %v", name, err)
	}
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("the member ended with %v, want killed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the member survived the kill")
	}
	if _, _, err := tg.Inject(t.Context(), KillBooks, rng); err == nil {
		t.Error("a second kill found a member to kill")
	}
}

// inState waits up to 2 s for the process to be in one of the states
// (R, S, T, ... of /proc/PID/stat), and returns the last state seen.
func inState(t *testing.T, pid int, want ...string) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...
		s := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))[0]
		if slices.Contains(want, s) {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Healthy wants every member started to run and answer /readyz with 200;
// it names the ones that do not.
func TestHealthy(t *testing.T) {
	dir := t.TempDir()
	tg := &Target{Dir: dir}
	ok := serve(t, http.StatusOK)
	busy := serve(t, http.StatusServiceUnavailable)
	member(t, dir, "books-1", ok)
	if err := tg.Healthy(t.Context()); err != nil {
		t.Errorf("one member, ready: %v", err)
	}
	member(t, dir, "books-2", busy)
	files(t, dir, "gateway-1", os.Getpid(), ok)
	err := tg.Healthy(t.Context())
	if err == nil || !strings.Contains(err.Error(), "books-2 not ready") || !strings.Contains(err.Error(), "gateway-1 not running") {
		t.Errorf("one not ready, one not running: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := tg.Healthy(ctx); err == nil {
		t.Error("healthy with the context cancelled")
	}
}

// serve answers /readyz with code on a port of its own, and returns it.
func serve(t *testing.T, code int) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}
