package compose

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kinds of fault on the stack.
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

// Target injects faults into a compose stack of this repository (the
// chaos harness's target): each kind of fault, how long it lasts, and
// whether the stack is healthy again.
type Target struct {
	Project Project
	// Session is the books' group session timeout: a freeze lasts longer.
	Session time.Duration
	// Only, when set, restricts the kinds of fault.
	Only []string
}

// Kinds are the kinds of fault it injects.
func (t *Target) Kinds() []string {
	if len(t.Only) > 0 {
		return t.Only
	}
	return []string{KillBooks, KillLastRead, KillGateway, FreezeBooks, KillBroker, RestartConsul, ScaleBooks, RollBrokers}
}

// Hold is how long a fault of kind lasts before it is healed.
func (t *Target) Hold(kind string) time.Duration {
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

func (t *Target) pick(ctx context.Context, service string, rng *rand.Rand) (Container, error) {
	cs, err := t.Project.Containers(ctx, service)
	if err != nil {
		return Container{}, err
	}
	if len(cs) == 0 {
		return Container{}, fmt.Errorf("no running container of %s", service)
	}
	return cs[rng.IntN(len(cs))], nil
}

// Inject injects a fault of kind, and returns what it hit and how to heal it.
func (t *Target) Inject(ctx context.Context, kind string, rng *rand.Rand) (string, func(context.Context) error, error) {
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
				err = t.waitHealthy(ctx, 2*time.Minute)
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

// Healthy returns nil when every container of the stack runs, and passes
// its health check where it has one.
func (t *Target) Healthy(ctx context.Context) error {
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

func (t *Target) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := t.Healthy(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
