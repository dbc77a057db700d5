package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/bookshelf/bookshelf/internal/httpapi"
	"github.com/bookshelf/bookshelf/internal/metrics"
	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/tracing"
)

// component is one service as the binary runs it: an HTTP server, the
// loops behind it (Kafka readers and writers), and its registration.
type component struct {
	kind     string // the subcommand, for logs
	instance registry.Instance
	ln       net.Listener
	handler  http.Handler
	// ready says whether the component can serve, and if not, why. It
	// registers only once ready.
	ready func() (bool, string)
	loops []func(ctx context.Context) error
	log   *slog.Logger
	// metrics, when set, is the registry the service serves on /metrics:
	// it counts the connections turned away too.
	metrics *metrics.Registry
	// caughtUp, for a view, is closed once it has read the log as it was
	// at start, and the catalog has sorted it into its indexes.
	caughtUp <-chan struct{}
	// tracing traces the requests it serves and the records it reads and
	// writes; nil or off, nothing is traced.
	tracing *tracing.Provider
	// unrun releases what building the component took and its loops
	// release when they run (a client, say); discard calls it for a
	// component that is never run.
	unrun []func()
}

// discard releases a component that was built but will not run: its
// listener, what its loops would have closed, and its traces.
func (c *component) discard() {
	c.ln.Close()
	for _, f := range c.unrun {
		f()
	}
	_ = c.tracing.Shutdown(context.Background())
}

// run serves until ctx ends or a loop fails, then stops in reverse order of
// start: it deregisters first (so no one is sent here any more), drains the
// HTTP server, and only then stops the loops behind it.
func (c *component) run(ctx context.Context, reg registry.Registry) error {
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoops()
	failed := make(chan error, len(c.loops)+1)
	var loops sync.WaitGroup
	for _, loop := range c.loops {
		loops.Add(1)
		go func() {
			defer loops.Done()
			if err := loop(loopCtx); err != nil {
				failed <- err
			}
		}()
	}

	srv := httpapi.NewServer(c.ln.Addr().String(), c.tracing.Handler(c.handler), httpapi.WithLogger(c.log))
	// Bounded, so that a flood of clients is turned away at once instead
	// of taking the process past its file descriptors.
	ln := httpapi.LimitListener(c.ln, httpapi.DefaultMaxConns)
	if c.metrics != nil {
		c.metrics.CounterFunc("bookshelf_http_connections_shed_total",
			"Connections answered 503 at once because the server held as many as it takes.",
			func() float64 { return float64(ln.Shed()) })
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	regCtx, stopRegistering := context.WithCancel(ctx)
	registered := make(chan bool, 1)
	go func() {
		ok := c.register(regCtx, reg)
		if ok {
			c.keepRegistered(regCtx, reg)
		}
		registered <- ok
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
		c.log.Error("stopping: a loop failed", "err", err)
	case err = <-served:
		c.log.Error("stopping: the HTTP server failed", "err", err)
	}
	stopRegistering()
	if <-registered {
		c.deregister(ctx, reg)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		c.log.Warn("HTTP drain cut short", "err", serr)
	}
	cancel()
	stopLoops()
	loops.Wait()
	// Last, so the spans of the requests and loops just stopped go too.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracing.ShutdownWait)
	if terr := c.tracing.Shutdown(tctx); terr != nil {
		c.log.Warn("spans not exported", "err", terr)
	}
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// register waits until the component is ready, then registers it. It
// reports whether it registered.
func (c *component) register(ctx context.Context, reg registry.Registry) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastReason := ""
	for {
		ok, reason := c.ready()
		if ok {
			break
		}
		if reason != lastReason {
			c.log.Info("not ready yet", "reason", reason)
			lastReason = reason
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	for attempt := 0; ; attempt++ {
		err := reg.Register(ctx, c.instance)
		if err == nil {
			c.log.Info("ready; registered", "at", c.instance.HostPort())
			return true
		}
		if attempt == 0 {
			c.log.Warn("register failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		}
	}
}

// deregister withdraws the component, even once ctx has ended.
func (c *component) deregister(ctx context.Context, reg registry.Registry) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := reg.Deregister(dctx, c.instance.ID); err != nil {
		c.log.Warn("deregister failed", "err", err)
		return
	}
	c.log.Info("deregistered")
}

// registrationChecker is a registry that can say whether it still holds an
// instance (Consul: an agent that restarted has forgotten it).
type registrationChecker interface {
	Registered(ctx context.Context, id string) (bool, error)
}

// keepRegistered registers the component again whenever the registry has
// forgotten it, until ctx ends.
func (c *component) keepRegistered(ctx context.Context, reg registry.Registry) {
	rc, ok := reg.(registrationChecker)
	if !ok {
		return
	}
	tick := time.NewTicker(registrationCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		known, err := rc.Registered(ctx, c.instance.ID)
		if err != nil || known {
			continue // the registry is away, or all is well
		}
		if ok, _ := c.ready(); !ok {
			continue // registered once ready, as at start
		}
		c.log.Warn("the registry has forgotten this instance; registering again")
		if err := reg.Register(ctx, c.instance); err != nil {
			c.log.Warn("register again failed; will retry", "err", err)
		}
	}
}

// registrationCheckEvery is how often a component checks the registry still
// holds it.
var registrationCheckEvery = 5 * time.Second

// instanceFor builds the registry entry of a component listening on ln.
func instanceFor(service, id, advertise string, ln net.Listener, tags []string, role string) registry.Instance {
	addr := ln.Addr().(*net.TCPAddr)
	host := advertise
	if host == "" {
		host = addr.IP.String()
		if addr.IP.IsUnspecified() {
			// Listening everywhere: others reach it at this host's own
			// address, not at the wildcard (nor at a loopback they would
			// take for their own).
			host = hostIP()
		}
	}
	return instanceAt(service, id, host, addr.Port, tags, role)
}

// instanceAt builds the registry entry of a component others reach at
// host:port; an empty id becomes name-host-port, unique across machines
// and across the instances of one.
func instanceAt(service, id, host string, port int, tags []string, role string) registry.Instance {
	if id == "" {
		name, err := os.Hostname()
		if err != nil || name == "" {
			name = host
		}
		id = fmt.Sprintf("%s-%s-%d", service, name, port)
	}
	return registry.Instance{
		ID: id, Service: service, Address: host, Port: port, Tags: tags,
		Meta: map[string]string{"version": version, "role": role},
	}
}

// hostIP is this host's first non-loopback IPv4 address, or 127.0.0.1 if
// it has none.
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"
