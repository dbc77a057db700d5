// Package cluster is the processes of make cluster (infra/cluster.sh) on
// this machine: which members run where, found through the pid and port
// files the script writes, and the faults the chaos harness injects into
// them (a signal to a member, the member started again by the script).
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kinds of fault on the cluster. The cluster has one broker and shares
// its Consul agent with whatever else runs on make infra: neither is a
// fault here.
const (
	KillBooks    = "kill books"    // SIGKILL of a books member, then started again
	KillLastRead = "kill lastread" // SIGKILL of a lastread member, then started again
	KillGateway  = "kill gateway"  // SIGKILL of the gateway, then started again
	FreezeBooks  = "freeze books"  // SIGSTOP of a books member past its session timeout, then SIGCONT: a zombie
	ScaleBooks   = "scale books"   // books-3 started, then stopped with SIGTERM (2 -> 3 -> 2): two rebalances
)

// extraBooks is the member infra/cluster.sh starts only when asked.
const extraBooks = "books-3"

// Member is one process of the cluster.
type Member struct {
	Name string // books-1, gateway-1, ...
	Port int
	// Pid is the process's id, 0 when it does not run (no pid file, or
	// the pid is no longer a process of this member).
	Pid int
}

// Service is what the member runs: its name without the number.
func (m Member) Service() string {
	if i := strings.LastIndexByte(m.Name, '-'); i > 0 {
		return m.Name[:i]
	}
	return m.Name
}

// Target injects faults into the cluster's processes (the chaos harness's
// target for make cluster).
type Target struct {
	// Dir is the cluster's folder (.infra/cluster): run/NAME.pid and
	// run/NAME.port of every member started.
	Dir string
	// Script is infra/cluster.sh, which starts and stops one member.
	Script string
	// Session is the books' group session timeout: a freeze lasts longer.
	Session time.Duration
	// Only, when set, restricts the kinds of fault.
	Only []string
	// HTTP asks each member's /readyz (default: a client with a 2 s timeout).
	HTTP *http.Client
}

// Kinds are the kinds of fault it injects.
func (t *Target) Kinds() []string {
	if len(t.Only) > 0 {
		return t.Only
	}
	return []string{KillBooks, KillLastRead, KillGateway, FreezeBooks, ScaleBooks}
}

// Hold is how long a fault of kind lasts before it is healed.
func (t *Target) Hold(kind string) time.Duration {
	switch kind {
	case FreezeBooks:
		// Past the session: the group gives the member's partitions to
		// another, and the member, thawed, is a zombie to be fenced.
		return t.Session + 3*time.Second
	case ScaleBooks:
		return 8 * time.Second
	}
	return 2 * time.Second
}

// Members are the members started in Dir, by name, each with its pid
// when it runs.
func (t *Target) Members() ([]Member, error) {
	run := filepath.Join(t.Dir, "run")
	files, err := filepath.Glob(filepath.Join(run, "*.port"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no member of a cluster in %s: make cluster first (with the same CLUSTER_PORT_OFFSET)", run)
	}
	var out []Member
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".port")
		port, err := readInt(f)
		if err != nil {
			return nil, fmt.Errorf("the port of %s: %w", name, err)
		}
		m := Member{Name: name, Port: port}
		if pid, err := readInt(filepath.Join(run, name+".pid")); err == nil && runs(pid, name) {
			m.Pid = pid
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s holds %q, not a positive number", path, bytes.TrimSpace(b))
	}
	return n, nil
}

// runs says whether pid is a live process of the member name: its command
// line holds "--id name" (a pid file can outlive its process, and the pid
// be reused). A zombie has no command line, so it does not run.
func runs(pid int, name string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("\x00--id\x00"+name+"\x00"))
}

// pick chooses one running member of service.
func (t *Target) pick(rng *rand.Rand, service string) (Member, error) {
	ms, err := t.Members()
	if err != nil {
		return Member{}, err
	}
	var up []Member
	for _, m := range ms {
		if m.Service() == service && m.Pid != 0 {
			up = append(up, m)
		}
	}
	if len(up) == 0 {
		return Member{}, fmt.Errorf("no running member of %s in %s", service, t.Dir)
	}
	return up[rng.IntN(len(up))], nil
}

// Inject injects a fault of kind, and returns what it hit and how to heal it.
func (t *Target) Inject(ctx context.Context, kind string, rng *rand.Rand) (string, func(context.Context) error, error) {
	switch kind {
	case KillBooks:
		return t.kill(ctx, rng, "books")
	case KillLastRead:
		return t.kill(ctx, rng, "lastread")
	case KillGateway:
		return t.kill(ctx, rng, "gateway")
	case FreezeBooks:
		m, err := t.pick(rng, "books")
		if err != nil {
			return "books", nil, err
		}
		if err := syscall.Kill(m.Pid, syscall.SIGSTOP); err != nil {
			return m.Name, nil, fmt.Errorf("SIGSTOP %s (pid %d): %w", m.Name, m.Pid, err)
		}
		return m.Name, func(context.Context) error {
			if err := syscall.Kill(m.Pid, syscall.SIGCONT); err != nil {
				return fmt.Errorf("SIGCONT %s (pid %d): %w", m.Name, m.Pid, err)
			}
			return nil
		}, nil
	case ScaleBooks:
		return t.scale(ctx)
	}
	return "", nil, fmt.Errorf("unknown fault %q on the cluster (it has %s)", kind, strings.Join(t.Kinds(), ", "))
}

// kill sends SIGKILL to a running member of service and waits until it is
// gone; the heal starts it again the way make cluster does.
func (t *Target) kill(ctx context.Context, rng *rand.Rand, service string) (string, func(context.Context) error, error) {
	m, err := t.pick(rng, service)
	if err != nil {
		return service, nil, err
	}
	if err := syscall.Kill(m.Pid, syscall.SIGKILL); err != nil {
		return m.Name, nil, fmt.Errorf("SIGKILL %s (pid %d): %w", m.Name, m.Pid, err)
	}
	if err := waitGone(ctx, m, 10*time.Second); err != nil {
		return m.Name, nil, err
	}
	return m.Name, func(ctx context.Context) error { return t.script(ctx, "start", m.Name) }, nil
}

// scale starts books-3 beside the running books; the heal stops it with
// SIGTERM, so that it leaves the group and deregisters as a member does.
func (t *Target) scale(ctx context.Context) (string, func(context.Context) error, error) {
	ms, err := t.Members()
	if err != nil {
		return "books", nil, err
	}
	n := 0
	for _, m := range ms {
		if m.Service() == "books" && m.Pid != 0 {
			if m.Name == extraBooks {
				return m.Name, nil, fmt.Errorf("%s runs already: the cluster is not at its two books", extraBooks)
			}
			n++
		}
	}
	what := fmt.Sprintf("books %d -> %d", n, n+1)
	if err := t.script(ctx, "start", extraBooks); err != nil {
		// Half started is no fault of a known kind: stop what may run.
		return what, nil, errors.Join(err, t.script(ctx, "stop", extraBooks))
	}
	return what, func(ctx context.Context) error { return t.script(ctx, "stop", extraBooks) }, nil
}

// script runs infra/cluster.sh with a subcommand and a member's name.
func (t *Target) script(ctx context.Context, sub, name string) error {
	cmd := exec.CommandContext(ctx, "bash", t.Script, sub, name)
	cmd.WaitDelay = 5 * time.Second
	// A group of its own: the member it starts outlives the harness, and
	// a Ctrl-C to the harness does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s %s: %w: %s", t.Script, sub, name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func waitGone(ctx context.Context, m Member, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for runs(m.Pid, m.Name) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) still runs %s after SIGKILL", m.Name, m.Pid, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Healthy returns nil when every member started runs and answers ready.
func (t *Target) Healthy(ctx context.Context) error {
	ms, err := t.Members()
	if err != nil {
		return err
	}
	httpc := t.HTTP
	if httpc == nil {
		httpc = &http.Client{Timeout: 2 * time.Second}
	}
	var bad []string
	for _, m := range ms {
		if m.Pid == 0 {
			bad = append(bad, m.Name+" not running")
			continue
		}
		if err := ready(ctx, httpc, m.Port); err != nil {
			bad = append(bad, fmt.Sprintf("%s %v", m.Name, err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not healthy: %s", strings.Join(bad, ", "))
	}
	return nil
}

func ready(ctx context.Context, httpc *http.Client, port int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/readyz", port), nil)
	if err != nil {
		return err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return errors.New("not answering")
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready (%s)", resp.Status)
	}
	return nil
}

// Gateways are the addresses of the cluster's gateways, http://host:port.
func (t *Target) Gateways() ([]string, error) {
	ms, err := t.Members()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.Service() == "gateway" {
			out = append(out, fmt.Sprintf("http://127.0.0.1:%d", m.Port))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no gateway in the cluster in %s", t.Dir)
	}
	return out, nil
}
