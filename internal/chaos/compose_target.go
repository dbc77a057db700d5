package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/bookshelf/bookshelf/internal/compose"
)

// Fault kinds on the compose stack.
const (
	KillBooks     = "kill books"     // SIGKILL of a books replica; the engine restarts it
	KillLastRead  = "kill lastread"  // SIGKILL of a view replica
	KillGateway   = "kill gateway"   // SIGKILL of the gateway
	FreezeBooks   = "freeze books"   // a books replica paused past its session timeout: a zombie once thawed
	KillBroker    = "kill broker"    // SIGKILL of one Kafka broker of three
	RestartConsul = "restart consul" // the Consul agent stopped and started
	ScaleBooks    = "scale books"    // books 2 -> 3 -> 2 under load: rebalances
	RollBrokers   = "roll brokers"   // each broker restarted in turn, the next once the last is healthy
)

// ComposeTarget injects faults into the compose stack of this repository.
type ComposeTarget struct {
	Project compose.Project
	// Session is the books' group session timeout: a freeze lasts longer.
	Session time.Duration
	// Only, when set, restricts the kinds of fault.
	Only []string
}

// Kinds implements Target.
func (t *ComposeTarget) Kinds() []string {
	if len(t.Only) > 0 {
		return t.Only
	}
	return []string{KillBooks, KillLastRead, KillGateway, FreezeBooks, KillBroker, RestartConsul, ScaleBooks, RollBrokers}
}

// Hold implements Target.
func (t *ComposeTarget) Hold(kind string) time.Duration {
	switch kind {
	case FreezeBooks:
		return t.Session + 3*time.Second
	case ScaleBooks:
		return 8 * time.Second
	case KillBroker:
		return 5 * time.Second
	case RollBrokers:
		return 0 // the roll is the fault
	}
	return 2 * time.Second
}

func (t *ComposeTarget) pick(ctx context.Context, service string, rng *rand.Rand) (compose.Container, error) {
	cs, err := t.Project.Containers(ctx, service)
	if err != nil {
		return compose.Container{}, err
	}
	if len(cs) == 0 {
		return compose.Container{}, fmt.Errorf("no running container of %s", service)
	}
	return cs[rng.IntN(len(cs))], nil
}

// Inject implements Target.
func (t *ComposeTarget) Inject(ctx context.Context, kind string, rng *rand.Rand) (string, func(context.Context) error, error) {
	nothing := func(context.Context) error { return nil }
	crash := func(service string) (string, func(context.Context) error, error) {
		c, err := t.pick(ctx, service, rng)
		if err == nil {
			err = t.Project.Crash(ctx, c)
		}
		return c.Name, nothing, err
	}
	switch kind {
	case KillBooks:
		return crash("books")
	case KillLastRead:
		return crash("lastread")
	case KillGateway:
		return crash("gateway")
	case KillBroker:
		return crash(fmt.Sprintf("kafka-%d", 1+rng.IntN(3)))
	case FreezeBooks:
		c, err := t.pick(ctx, "books", rng)
		if err == nil {
			err = t.Project.Pause(ctx, c)
		}
		return c.Name, func(ctx context.Context) error { return t.Project.Unpause(ctx, c) }, err
	case RestartConsul:
		c, err := t.pick(ctx, "consul", rng)
		if err == nil {
			err = t.Project.Restart(ctx, c)
		}
		return c.Name, nothing, err
	case RollBrokers:
		for i := 1; i <= 3; i++ {
			c, err := t.pick(ctx, fmt.Sprintf("kafka-%d", i), rng)
			if err == nil {
				err = t.Project.Restart(ctx, c)
			}
			if err == nil {
				err = WaitHealthy(ctx, t, 2*time.Minute)
			}
			if err != nil {
				return "kafka", nothing, err
			}
		}
		return "kafka-1, kafka-2, kafka-3", nothing, nil
	case ScaleBooks:
		err := t.Project.Scale(ctx, "books", 3)
		return "books", func(ctx context.Context) error { return t.Project.Scale(ctx, "books", 2) }, err
	}
	return "", nil, fmt.Errorf("unknown fault %q", kind)
}

// Healthy implements Target: every container of the stack runs, and
// passes its health check where it has one.
func (t *ComposeTarget) Healthy(ctx context.Context) error {
	health, err := t.Project.Health(ctx)
	if err != nil {
		return err
	}
	var bad []string
	for name, h := range health {
		if h != "healthy" && h != "running" {
			bad = append(bad, name+" "+h)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not healthy: %s", strings.Join(bad, ", "))
	}
	return nil
}
