package compose

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kinds of fault on the stack.
const (
	KillBooks     = "kill books"     // SIGKILL of a books replica; the engine restarts it
	KillLastRead  = "kill lastread"  // SIGKILL of a view replica
	KillGateway   = "kill gateway"   // SIGKILL of one of the two gateways
	FreezeBooks   = "freeze books"   // a books replica paused past its session timeout: a zombie once thawed
	KillBroker    = "kill broker"    // SIGKILL of one Kafka broker of three
	RestartConsul = "restart consul" // the Consul agent stopped and started
	ScaleBooks    = "scale books"    // one books replica more, then back (2 -> 3 -> 2 with books-cut) under load: rebalances
	RollBrokers   = "roll brokers"   // each broker restarted in turn, the next once the last is healthy
	CutBooks      = "cut books"      // a running books replica cut off from the brokers past its session timeout, then reconnected
)

// The services of the stack the faults hit by name: books runs the
// aggregate on the brokers' own listeners, books-cut on their listeners
// behind the proxy (Links), which can cut it off.
const (
	serviceBooks    = "books"
	serviceBooksCut = "books-cut"
)

// Links are the connections of one books replica (books-cut) to the
// brokers: a proxy in front of every broker, for that replica alone.
type Links interface {
	// Cut resets every connection through the proxies, established or
	// new, until Reconnect; both say which proxies.
	Cut(ctx context.Context) ([]string, error)
	Reconnect(ctx context.Context) ([]string, error)
	// Disable closes the proxy in front of one broker (named as its
	// service): connections to it are refused, as they are at the
	// broker's own port while it is down. Enable opens it again.
	Disable(ctx context.Context, broker string) error
	Enable(ctx context.Context, broker string) error
}

// Target injects faults into a compose stack of this repository (the
// chaos harness's target): each kind of fault, how long it lasts, and
// whether the stack is healthy again.
type Target struct {
	Project Project
	// Session is the books' group session timeout: a freeze lasts longer.
	Session time.Duration
	// Only, when set, restricts the kinds of fault.
	Only []string
	// Links cut books-cut off from the brokers (CutBooks).
	Links Links
}

// Kinds are the kinds of fault it injects.
func (t *Target) Kinds() []string {
	if len(t.Only) > 0 {
		return t.Only
	}
	return []string{KillBooks, KillLastRead, KillGateway, FreezeBooks, KillBroker, RestartConsul, ScaleBooks, RollBrokers, CutBooks}
}

// Hold is how long a fault of kind lasts before it is healed.
func (t *Target) Hold(kind string) time.Duration {
	switch kind {
	case FreezeBooks, CutBooks:
		// Past the session: the group gives the replica's partitions to
		// another, and the replica, thawed or reconnected, is a zombie.
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

// pick chooses one running container of the services.
func (t *Target) pick(ctx context.Context, rng *rand.Rand, services ...string) (Container, error) {
	var all []Container
	for _, service := range services {
		cs, err := t.Project.Containers(ctx, service)
		if err != nil {
			return Container{}, err
		}
		all = append(all, cs...)
	}
	if len(all) == 0 {
		return Container{}, fmt.Errorf("no running container of %s", strings.Join(services, ", "))
	}
	return all[rng.IntN(len(all))], nil
}

// Inject injects a fault of kind, and returns what it hit and how to heal it.
func (t *Target) Inject(ctx context.Context, kind string, rng *rand.Rand) (string, func(context.Context) error, error) {
	nothing := func(context.Context) error { return nil }
	crash := func(services ...string) (string, func(context.Context) error, error) {
		c, err := t.pick(ctx, rng, services...)
		if err == nil {
			err = t.Project.Crash(ctx, c)
		}
		return c.Name, nothing, err
	}
	switch kind {
	case KillBooks:
		return crash(serviceBooks, serviceBooksCut)
	case KillLastRead:
		return crash("lastread")
	case KillGateway:
		return crash("gateway", "gateway-2")
	case KillBroker:
		name, _, err := crash(fmt.Sprintf("kafka-%d", 1+rng.IntN(3)))
		if err != nil {
			return name, nothing, err
		}
		broker := t.Project.service(name)
		if err := t.follow(ctx, broker, false); err != nil {
			return name, nothing, err
		}
		return name, func(ctx context.Context) error {
			// The engine restarts the broker; its proxy opens once it
			// listens, as its own port does.
			// Opened even when the wait ran out: a proxy left closed
			// would be a fault of no kind.
			return errors.Join(t.waitContainer(ctx, name), t.follow(context.WithoutCancel(ctx), broker, true))
		}, nil
	case FreezeBooks:
		c, err := t.pick(ctx, rng, serviceBooks, serviceBooksCut)
		if err == nil {
			err = t.Project.Pause(ctx, c)
		}
		return c.Name, func(ctx context.Context) error { return t.Project.Unpause(ctx, c) }, err
	case RestartConsul:
		c, err := t.pick(ctx, rng, "consul")
		if err == nil {
			err = t.Project.Restart(ctx, c)
		}
		return c.Name, nothing, err
	case RollBrokers:
		for i := 1; i <= 3; i++ {
			broker := fmt.Sprintf("kafka-%d", i)
			// The proxy closes once the broker stopped, not before:
			// while it shuts down, it hands its partitions and
			// coordinators over and still answers, and books-cut,
			// refused meanwhile, lost its group session.
			c, err := t.pick(ctx, rng, broker)
			if err == nil {
				err = t.Project.Stop(ctx, c)
			}
			if err == nil {
				err = t.follow(ctx, broker, false)
			}
			if err == nil {
				err = t.Project.Start(ctx, c)
			}
			if err == nil {
				err = t.waitHealthy(ctx, 2*time.Minute)
			}
			// Open whatever happened: a proxy left closed would be a
			// fault of no kind.
			if err = errors.Join(err, t.follow(context.WithoutCancel(ctx), broker, true)); err != nil {
				return "kafka", nothing, err
			}
		}
		return "kafka-1, kafka-2, kafka-3", nothing, nil
	case ScaleBooks:
		// One replica more of books, then as many as before (books-cut
		// stays one): a join and a leave, each a rebalance under load.
		cs, err := t.Project.Containers(ctx, serviceBooks)
		if err != nil {
			return serviceBooks, nothing, err
		}
		n := len(cs)
		err = t.Project.Scale(ctx, serviceBooks, n+1)
		return fmt.Sprintf("%s %d -> %d", serviceBooks, n, n+1), func(ctx context.Context) error {
			return t.Project.Scale(ctx, serviceBooks, max(n, 1))
		}, err
	case CutBooks:
		return t.cut(ctx, rng)
	}
	return "", nil, fmt.Errorf("unknown fault %q", kind)
}

// follow closes (up false) or opens the proxy in front of broker, when
// the stack has proxies: books-cut reaches the brokers through them, and
// must see a broker down as every other client does, refusing connections.
// A proxy left open in front of a dead broker accepts and closes them,
// and a Kafka client retries that broker, its coordinator for a group or
// a transaction, until its requests time out, instead of asking who took
// over: the replica behind it lost its transaction and its partitions at
// each broker kill, for want of a refusal.
func (t *Target) follow(ctx context.Context, broker string, up bool) error {
	if t.Links == nil {
		return nil
	}
	if up {
		return t.Links.Enable(ctx, broker)
	}
	return t.Links.Disable(ctx, broker)
}

// waitContainer waits until the container called name is healthy (or
// runs, where it has no check), or ctx ends.
func (t *Target) waitContainer(ctx context.Context, name string) error {
	return poll(ctx, func() error {
		health, err := t.Project.Health(ctx)
		if err == nil && health[name] != "healthy" && health[name] != "running" {
			err = fmt.Errorf("%s is %q", name, health[name])
		}
		return err
	})
}

// cut cuts books-cut off from the brokers; the heal reconnects it.
func (t *Target) cut(ctx context.Context, rng *rand.Rand) (string, func(context.Context) error, error) {
	if t.Links == nil {
		return serviceBooksCut, nil, fmt.Errorf("%s: no proxy in front of the brokers to cut with", CutBooks)
	}
	c, err := t.pick(ctx, rng, serviceBooksCut)
	if err != nil {
		return serviceBooksCut, nil, err
	}
	names, err := t.disconnect(ctx)
	if err != nil {
		return c.Name, nil, err
	}
	return fmt.Sprintf("%s (%s)", c.Name, strings.Join(names, ", ")), func(ctx context.Context) error {
		_, err := t.Links.Reconnect(ctx)
		return err
	}, nil
}

// disconnect cuts every proxy. Half cut is no fault of a known kind: when
// it fails, what was cut is reconnected.
func (t *Target) disconnect(ctx context.Context) ([]string, error) {
	names, err := t.Links.Cut(ctx)
	if err != nil {
		_, undo := t.Links.Reconnect(ctx)
		return nil, errors.Join(err, undo)
	}
	return names, nil
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
		if observer[t.Project.service(name)] {
			continue
		}
		if h != "healthy" && h != "running" {
			bad = append(bad, name+" "+h)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not healthy: %s", strings.Join(bad, ", "))
	}
	return nil
}

// observer holds the services that watch the system rather than make it:
// the trace viewer and Prometheus. Their health is not the system's, and a
// viewer that ran out of memory for spans does not stop a run.
var observer = map[string]bool{"zipkin": true, "prometheus": true}

// waitHealthy waits until the whole stack is healthy, limit at most.
func (t *Target) waitHealthy(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return poll(ctx, func() error { return t.Healthy(ctx) })
}

// poll calls check every half second until it returns nil, or ctx ends:
// then it returns check's last error with ctx's.
func poll(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
