// Package compose drives a running compose stack through the docker and
// docker-compose command lines: the containers of a service, crashing one
// (its process killed, so that the restart policy brings it back),
// freezing one, restarting one, scaling a service. It is how the chaos
// harness injects faults into the stack.
package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Project is a compose stack: its name (the project, as the containers'
// labels carry it) and the folder of its compose file.
type Project struct {
	Name, Dir string
	// Compose is the compose command line (default docker-compose).
	Compose []string
}

// Container is one container of a service.
type Container struct{ ID, Name string }

func run(ctx context.Context, dir string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Containers lists the running containers of a service, by name.
func (p Project) Containers(ctx context.Context, service string) ([]Container, error) {
	out, err := run(ctx, p.Dir, "docker", "ps", "--filter", "label=com.docker.compose.project="+p.Name,
		"--filter", "label=com.docker.compose.service="+service, "--format", "{{.ID}} {{.Names}}")
	if err != nil {
		return nil, err
	}
	var cs []Container
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 2 {
			cs = append(cs, Container{ID: f[0], Name: f[1]})
		}
	}
	return cs, nil
}

// Crash kills a container's process with SIGKILL, as a crash would: the
// engine sees it exit, not stopped by hand, and its restart policy starts
// it again.
func (p Project) Crash(ctx context.Context, c Container) error {
	out, err := run(ctx, p.Dir, "docker", "inspect", "-f", "{{.State.Pid}}", c.ID)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 0 {
		return fmt.Errorf("container %s has no process (%q)", c.Name, out)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

// Pause freezes a container's processes; Unpause thaws them.
func (p Project) Pause(ctx context.Context, c Container) error { return p.docker(ctx, "pause", c) }

// Unpause thaws a paused container.
func (p Project) Unpause(ctx context.Context, c Container) error { return p.docker(ctx, "unpause", c) }

// Stop stops a container (SIGTERM, then its grace); Start starts it again.
func (p Project) Stop(ctx context.Context, c Container) error { return p.docker(ctx, "stop", c) }

// Start starts a stopped container.
func (p Project) Start(ctx context.Context, c Container) error { return p.docker(ctx, "start", c) }

// Restart stops a container (SIGTERM, then its grace) and starts it.
func (p Project) Restart(ctx context.Context, c Container) error { return p.docker(ctx, "restart", c) }

// docker runs one of the engine's commands on a container.
func (p Project) docker(ctx context.Context, verb string, c Container) error {
	_, err := run(ctx, p.Dir, "docker", verb, c.ID)
	return err
}

// Scale runs n replicas of service, leaving the others as they are.
func (p Project) Scale(ctx context.Context, service string, n int) error {
	cmd := p.Compose
	if len(cmd) == 0 {
		cmd = []string{"docker-compose"}
	}
	args := append(append([]string(nil), cmd[1:]...), "up", "-d", "--no-deps", "--no-recreate", "--scale", fmt.Sprintf("%s=%d", service, n), service)
	_, err := run(ctx, p.Dir, cmd[0], args...)
	return err
}

// service is the compose service of a container named as docker-compose
// names them (<project>_<service>_<n>), or the name itself.
func (p Project) service(container string) string {
	s, ok := strings.CutPrefix(container, p.Name+"_")
	if !ok {
		return container
	}
	if i := strings.LastIndexByte(s, '_'); i > 0 {
		s = s[:i]
	}
	return s
}

// Health is the health of every container of the project, by name:
// "healthy", "starting", "unhealthy", or the state of one that has no
// check or does not run.
//
// A container still "starting" (just restarted) has its health check run
// at once, and is healthy if it passes: the engine would only run it at
// its next interval, up to 5 s later, and a fault cycle would wait for
// that rather than for the container.
func (p Project) Health(ctx context.Context) (map[string]string, error) {
	out, err := run(ctx, p.Dir, "docker", "ps", "-a", "--filter", "label=com.docker.compose.project="+p.Name, "--format", "{{.ID}}")
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil, fmt.Errorf("no container of the project %s", p.Name)
	}
	out, err = run(ctx, p.Dir, "docker", append([]string{"inspect", "-f",
		"{{.ID}} {{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"}, ids...)...)
	if err != nil {
		return nil, err
	}
	health := map[string]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		id, name, state := f[0], strings.TrimPrefix(f[1], "/"), f[2]
		if len(f) > 3 && state == "running" {
			state = f[3]
		}
		if state == "starting" && p.checkNow(ctx, id) {
			state = "healthy"
		}
		health[name] = state
	}
	return health, nil
}

// checkNow runs a container's own health check, as the engine runs it,
// and tells whether it passed.
func (p Project) checkNow(ctx context.Context, id string) bool {
	out, err := run(ctx, p.Dir, "docker", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", id)
	if err != nil {
		return false
	}
	var test []string
	if json.Unmarshal([]byte(out), &test) != nil || len(test) < 2 {
		return false
	}
	var cmd []string
	switch test[0] {
	case "CMD":
		cmd = test[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", test[1]}
	default:
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	_, err = run(cctx, p.Dir, "docker", append([]string{"exec", id}, cmd...)...)
	return err == nil
}
