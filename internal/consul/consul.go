// Package consul is the registry.Registry on HashiCorp Consul: services
// register with an HTTP check on /readyz, deregister when they stop, and
// are found through the health API, which the gateway follows with
// blocking queries. It honours CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN.
package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bookshelf/bookshelf/internal/registry"
)

// Check settings of every registration. An instance has two HTTP checks:
// /readyz says whether to send it traffic, and may fail for a long while
// (the broker away) without the instance leaving; /healthz says whether it
// lives at all, and Consul reaps an instance whose /healthz stays critical
// for DeregisterAfter (its minimum is one minute), which covers one killed
// without deregistering. One check doing both would have a service whose
// broker is away for a minute deregistered for good.
const (
	CheckInterval   = 2 * time.Second
	CheckTimeout    = time.Second
	DeregisterAfter = time.Minute
)

// Registry registers and finds instances in Consul.
type Registry struct {
	client *api.Client
	log    *slog.Logger

	mu      sync.Mutex
	watches map[string]*watch
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// Config says how to reach the agent. Empty fields fall back to
// CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN, then to 127.0.0.1:8500.
type Config struct {
	Addr   string
	Token  string
	Logger *slog.Logger
}

// New returns a registry on the Consul agent cfg names. It does not
// contact the agent: a registry made while Consul is away works once
// Consul is back.
func New(cfg Config) (*Registry, error) {
	ac := api.DefaultConfig()
	if cfg.Addr != "" {
		ac.Address = cfg.Addr
	}
	if cfg.Token != "" {
		ac.Token = cfg.Token
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", ac.Address, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Registry{client: c, log: log, watches: map[string]*watch{}, ctx: ctx, stop: stop}, nil
}

// Close stops the watches.
func (r *Registry) Close() {
	r.stop()
	r.wg.Wait()
}

// Register implements registry.Registry: the instance with its tags and
// meta, and HTTP checks on its /readyz and /healthz.
func (r *Registry) Register(ctx context.Context, in registry.Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	reg := &api.AgentServiceRegistration{
		ID:      in.ID,
		Name:    in.Service,
		Tags:    in.Tags,
		Address: in.Address,
		Port:    in.Port,
		Meta:    in.Meta,
		// It registers once ready: the checks start passing, so it is
		// found at once rather than after the first interval.
		Checks: api.AgentServiceChecks{
			{
				CheckID:  "service:" + in.ID + ":readyz",
				Name:     "ready (" + in.URL() + "/readyz)",
				HTTP:     in.URL() + "/readyz",
				Interval: CheckInterval.String(),
				Timeout:  CheckTimeout.String(),
				Status:   api.HealthPassing,
			},
			{
				CheckID:                        "service:" + in.ID + ":healthz",
				Name:                           "alive (" + in.URL() + "/healthz)",
				HTTP:                           in.URL() + "/healthz",
				Interval:                       CheckInterval.String(),
				Timeout:                        CheckTimeout.String(),
				DeregisterCriticalServiceAfter: DeregisterAfter.String(),
				Status:                         api.HealthPassing,
			},
		},
	}
	if in.Check == registry.CheckTCP {
		reg.Checks = api.AgentServiceChecks{{
			CheckID:                        "service:" + in.ID + ":tcp",
			Name:                           "accepts connections (" + in.HostPort() + ")",
			TCP:                            in.HostPort(),
			Interval:                       CheckInterval.String(),
			Timeout:                        CheckTimeout.String(),
			DeregisterCriticalServiceAfter: DeregisterAfter.String(),
			Status:                         api.HealthPassing,
		}}
	}
	if err := r.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return fmt.Errorf("consul register %s: %w", in.ID, err)
	}
	return nil
}

// Deregister implements registry.Registry.
func (r *Registry) Deregister(ctx context.Context, id string) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := r.client.Agent().ServiceDeregisterOpts(id, q); err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == 404 {
			return nil
		}
		return fmt.Errorf("consul deregister %s: %w", id, err)
	}
	return nil
}

// Registered tells whether the agent knows the instance id now. An agent
// that restarted (a dev agent keeps nothing) or an operator may have
// dropped it; the service then registers again.
func (r *Registry) Registered(ctx context.Context, id string) (bool, error) {
	svc, _, err := r.client.Agent().Service(id, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == 404 {
			return false, nil
		}
		return false, fmt.Errorf("consul service %s: %w", id, err)
	}
	return svc != nil, nil
}

// Healthy implements registry.Registry: the instances whose checks pass.
// The first call for a service asks Consul directly and starts following
// it with blocking queries; later calls answer from what that learnt, so a
// change shows within one blocking round trip and a request costs no
// query.
func (r *Registry) Healthy(ctx context.Context, service string) ([]registry.Instance, error) {
	r.mu.Lock()
	w, ok := r.watches[service]
	if !ok {
		w = &watch{service: service, ready: make(chan struct{})}
		r.watches[service] = w
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.follow(w)
		}()
	}
	r.mu.Unlock()
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return w.get()
}

// watch is what is known of one service's healthy instances.
type watch struct {
	service string
	ready   chan struct{} // closed after the first answer (or error)
	once    sync.Once

	mu        sync.Mutex
	instances []registry.Instance
	err       error
}

func (w *watch) set(ins []registry.Instance, err error) {
	w.mu.Lock()
	if err == nil {
		w.instances = ins
	}
	w.err = err
	w.mu.Unlock()
	w.once.Do(func() { close(w.ready) })
}

func (w *watch) get() ([]registry.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil && w.instances == nil {
		return nil, w.err
	}
	return slices.Clone(w.instances), nil
}

// follow keeps w current with blocking queries until the registry closes.
// While Consul is away it keeps the last answer and retries with backoff,
// logging once per change of state.
func (r *Registry) follow(w *watch) {
	var index uint64
	failing := false
	for attempt := 0; r.ctx.Err() == nil; {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 30 * time.Second}).WithContext(r.ctx)
		entries, meta, err := r.client.Health().Service(w.service, "", true, q)
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			w.set(nil, fmt.Errorf("consul health of %s: %w", w.service, err))
			if !failing {
				r.log.Warn("cannot reach consul; using the last known instances", "service", w.service, "err", err)
				failing = true
			}
			attempt++
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt)*250*time.Millisecond, 5*time.Second)):
			}
			continue
		}
		if failing {
			r.log.Info("reaching consul again", "service", w.service)
			failing = false
		}
		attempt = 0
		// A lower index means Consul's state was reset: start over.
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		ins := make([]registry.Instance, 0, len(entries))
		for _, e := range entries {
			s := e.Service
			addr := s.Address
			if addr == "" {
				addr = e.Node.Address
			}
			ins = append(ins, registry.Instance{
				ID: s.ID, Service: s.Service, Address: addr, Port: s.Port,
				Tags: slices.Clone(s.Tags), Meta: maps.Clone(s.Meta),
			})
		}
		slices.SortFunc(ins, func(a, b registry.Instance) int {
			switch {
			case a.ID < b.ID:
				return -1
			case a.ID > b.ID:
				return 1
			}
			return 0
		})
		w.set(ins, nil)
	}
}
