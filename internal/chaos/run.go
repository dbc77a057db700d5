package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Fault is one fault injected, and when it was healed.
type Fault struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	At     time.Time `json:"at"`
	Healed time.Time `json:"healed"`
	Ready  time.Time `json:"ready"` // every part healthy again
	// Served is when the brokers first served the system again after
	// the fault (see Brokers); zero when not asked, or not by Ready.
	Served time.Time `json:"served,omitzero"`
}

// Brokers are the event log's brokers, asked after a fault whether they
// serve the system: the part of a fault's window that is the brokers' own
// recovery (a dead broker fenced, its leadership and coordinators moved,
// and loaded), told apart from the services' part.
type Brokers interface {
	// Check returns nil when every broker, every partition's leader and
	// every coordinator the system uses answer, and no partition waits
	// for a dead broker; it may wait for them until ctx ends.
	Check(ctx context.Context) error
}

// Target is a system faults can be injected into.
type Target interface {
	// Kinds are the faults it can inject.
	Kinds() []string
	// Inject injects one fault of kind, and returns what it hit and how
	// to heal it (a no-op for what the orchestrator heals itself).
	Inject(ctx context.Context, kind string, rng *rand.Rand) (target string, heal func(context.Context) error, err error)
	// Hold is how long a fault of kind lasts before it is healed.
	Hold(kind string) time.Duration
	// Healthy returns nil once every part is healthy again.
	Healthy(ctx context.Context) error
}

// Config is one run of the demonstration.
type Config struct {
	// Gateways are the stack's gateways, http://host:port: each client
	// starts at one of them and goes on to the next when one is away.
	Gateways []string
	Target   Target
	Cycles   int
	Seed     uint64
	Clients  int
	// Pause is each client's pause between operations.
	Pause  time.Duration
	Logger *slog.Logger
	// BookID is the id of the book an add with a key adds.
	BookID func(key string) string
	// Brokers, when set, are asked after each fault of BrokerFaults when
	// they serve the system again (Fault.Served). Only there is the
	// answer the brokers' own recovery: after another fault it times the
	// check, and during a roll it waits for the whole roll.
	Brokers      Brokers
	BrokerFaults []string
}

// Run runs the clients and the fault cycles, and returns the history and
// the faults injected. The checks come after (see Check).
func Run(ctx context.Context, cfg Config) ([]Op, []Fault, error) {
	log := cfg.Logger
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	kinds := cfg.Target.Kinds()
	hist := &History{}
	prefix := fmt.Sprintf("chaos-%d-%d", cfg.Seed, time.Now().UnixNano())
	clientCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var wg sync.WaitGroup
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients}}
	for i := range cfg.Clients {
		c := &Client{ID: i, Gateways: cfg.Gateways, Prefix: prefix, History: hist, HTTP: httpc, BookID: cfg.BookID}
		wg.Go(func() { c.Run(clientCtx, cfg.Seed, cfg.Pause) })
	}
	log.Info("chaos: clients started", "clients", cfg.Clients, "seed", cfg.Seed, "cycles", cfg.Cycles, "faults", kinds)
	var faults []Fault
	err := warmUp(ctx, hist, 2*cfg.Clients, time.Minute)
	if err == nil {
		log.Info("chaos: warm", "acknowledged", countAcked(hist))
	}
	for cycle := 1; err == nil && cycle <= cfg.Cycles && ctx.Err() == nil; cycle++ {
		kind := kinds[rng.IntN(len(kinds))]
		f := Fault{Kind: kind, At: time.Now()}
		var heal func(context.Context) error
		f.Target, heal, err = cfg.Target.Inject(ctx, kind, rng)
		if err != nil {
			err = fmt.Errorf("cycle %d, %s: %w", cycle, kind, err)
			break
		}
		var brokers Brokers
		if slices.Contains(cfg.BrokerFaults, kind) {
			brokers = cfg.Brokers
		}
		served := watchServing(ctx, brokers)
		log.Info("chaos: fault", "cycle", cycle, "of", cfg.Cycles, "kind", kind, "target", f.Target, "acknowledged", countAcked(hist))
		sleepCtx(ctx, cfg.Target.Hold(kind))
		// Healed even when the run is stopped during the hold: a stack left
		// cut off, frozen or scaled up would greet the next run.
		healCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		err = heal(healCtx)
		cancel()
		if err != nil {
			err = fmt.Errorf("cycle %d, healing %s on %s: %w", cycle, kind, f.Target, err)
			break
		}
		f.Healed = time.Now()
		err = WaitHealthy(ctx, cfg.Target, 120*time.Second)
		var notServed error
		f.Served, notServed = served()
		if f.Served.IsZero() && notServed != nil {
			log.Warn("chaos: the brokers did not serve before the stack was healthy", "cycle", cycle, "kind", kind, "last", notServed)
		}
		if err != nil {
			err = fmt.Errorf("cycle %d, after %s on %s: %w", cycle, kind, f.Target, err)
			break
		}
		f.Ready = time.Now()
		faults = append(faults, f)
		sleepCtx(ctx, time.Duration(1000+rng.IntN(1500))*time.Millisecond)
	}
	stopClients()
	wg.Wait()
	return hist.Ops(), faults, err
}

// watchServing asks b, from now on, until the brokers serve the system; the
// func it returns stops asking and says when they first did (zero: not
// yet, or b is nil) and, when they had not, what the last answer was.
// When is the end of the first check that passed: a check waits inside
// for what does not answer yet (see kafka.Serving), so its start can be
// long before the brokers served.
func watchServing(ctx context.Context, b Brokers) func() (time.Time, error) {
	if b == nil {
		return func() (time.Time, error) { return time.Time{}, nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		at   time.Time
		last error
	}
	done := make(chan result, 1)
	go func() {
		var last error
		for ctx.Err() == nil {
			try, stop := context.WithTimeout(ctx, 2*time.Second)
			err := b.Check(try)
			stop()
			if err == nil {
				done <- result{at: time.Now()}
				return
			}
			if ctx.Err() == nil {
				last = err
			}
			sleepCtx(ctx, 50*time.Millisecond)
		}
		done <- result{last: last}
	}()
	return func() (time.Time, error) { cancel(); r := <-done; return r.at, r.last }
}

// warmUp waits, 2 s at least, until the clients have had n commands
// acknowledged, so that the first fault hits a system that has served.
// On a stack just started, no command was acknowledged 2 s after the
// clients began, and the first fault of two 100-cycle runs (a kill of
// books) was among their slowest, 6.9 and 7.2 s.
func warmUp(ctx context.Context, h *History, n int, limit time.Duration) error {
	sleepCtx(ctx, 2*time.Second)
	deadline := time.Now().Add(limit)
	for countAcked(h) < n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("before the first fault: %d commands acknowledged in %v, want %d", countAcked(h), limit, n)
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return nil
}

func countAcked(h *History) int {
	n := 0
	for _, o := range h.Ops() {
		if o.Command() && o.Result == Ok {
			n++
		}
	}
	return n
}

// WaitHealthy waits until every part of t is healthy, limit at most.
func WaitHealthy(ctx context.Context, t Target, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := t.Healthy(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s: %w", limit, err)
		}
		sleepCtx(ctx, 500*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
