package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/bookshelf/bookshelf/internal/consul"
	"github.com/bookshelf/bookshelf/internal/httpapi"
	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/web"
)

// ensureTopics creates the topics, waiting for the broker with backoff:
// services may start before it.
func ensureTopics(ctx context.Context, cfg kafka.Config, log *slog.Logger) error {
	for attempt := 0; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := kafka.EnsureTopics(tctx, cfg)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, kafka.ErrPermanent) {
			return err
		}
		if attempt%20 == 0 {
			log.Warn("waiting for the broker", "brokers", cfg.Brokers, "attempt", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

// stoppedOr returns nil when ctx ended (a stop asked for while waiting),
// else err.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// standalone runs one service as its own process: it registers in Consul
// when --consul names an agent (else nowhere: an in-process registry no one
// else reads), and finds the broker there when --broker is not given.
func standalone(ctx context.Context, sp spec, args []string, stderr io.Writer,
	build func(cfg kafka.Config, o serviceFlags, log *slog.Logger) (*component, error)) error {
	var o serviceFlags
	f := newFlags(sp.kind, sp.help, stderr)
	o.register(f, sp.service, sp.port, true)
	if sp.role == roleAggregate {
		o.sessionFlag(f)
		o.shedFlag(f, httpapi.DefaultSchedLimit)
	}
	if err := f.parse(args); err != nil {
		return err
	}
	log, err := serviceLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	reg, closeReg, err := o.registry(log)
	if err != nil {
		return err
	}
	defer closeReg()
	if o.brokers == "" {
		if o.consul == "" {
			o.brokers = "127.0.0.1:9092"
		} else if o.brokers, err = discoverKafka(ctx, reg, log); err != nil {
			return nil // stopped while waiting
		}
	}
	cfg := o.kafkaConfig(log)
	if err := ensureTopics(ctx, cfg, log); err != nil {
		return stoppedOr(ctx, err)
	}
	c, err := build(cfg, o, log)
	if err != nil {
		return err
	}
	removeAddr, err := writeAddrFile(o.addrFile, c.ln)
	if err != nil {
		c.discard()
		return err
	}
	defer removeAddr()
	switch {
	case c.caughtUp != nil:
		go leanAfterCatchUp(ctx, c.caughtUp)
	case sp.role == roleAggregate:
		// Its state is pointer-free too (see shelf.Shelf), rebuilt a
		// partition at a time: collecting at a quarter of the heap's
		// growth costs little, and keeps the process near its state.
		leanGC()
	}
	return c.run(ctx, reg)
}

// leanAfterCatchUp: once a view has caught up, its process gives back to
// the system what catching up took (the records read, and their garbage),
// and from then on collects when its heap has grown by a quarter of what
// it holds rather than by all of it. A view's state is kept free of
// pointers (see internal/shelf), so a collection costs little, and the
// resident memory stays near the state's size. GOGC in the environment,
// when set, decides instead. (`up` leaves the runtime as it is: the
// embedded broker in its process keeps the log in memory, with pointers.)
func leanAfterCatchUp(ctx context.Context, caughtUp <-chan struct{}) {
	select {
	case <-caughtUp:
	case <-ctx.Done():
		return
	}
	leanGC()
	debug.FreeOSMemory()
}

// leanGC has the collector run when the heap has grown by a quarter, not
// doubled, unless GOGC in the environment says otherwise.
func leanGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
}

// registry is Consul when --consul names an agent, else an in-process one.
func (o *serviceFlags) registry(log *slog.Logger) (registry.Registry, func(), error) {
	if o.consul == "" {
		return registry.NewMemory(), func() {}, nil
	}
	r, err := consul.New(consul.Config{Addr: o.consul, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return r, r.Close, nil
}

// discoverKafka waits until the registry knows a healthy kafka and returns
// its instances' addresses.
func discoverKafka(ctx context.Context, reg registry.Registry, log *slog.Logger) (string, error) {
	for attempt := 0; ; attempt++ {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ins, err := reg.Healthy(qctx, registry.Kafka)
		cancel()
		if err == nil && len(ins) > 0 {
			addrs := make([]string, len(ins))
			for i, in := range ins {
				addrs[i] = in.HostPort()
			}
			log.Info("found the broker in the registry", "brokers", addrs)
			return strings.Join(addrs, ","), nil
		}
		if attempt == 0 {
			if err == nil {
				err = errors.New("no healthy instance of kafka")
			}
			log.Info("waiting for a healthy kafka in the registry (or give --broker)", "err", err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*250*time.Millisecond, 5*time.Second)):
		}
	}
}

func runBooks(ctx context.Context, args []string, _, stderr io.Writer) error {
	return standalone(ctx, specOf("books"), args, stderr, func(cfg kafka.Config, o serviceFlags, log *slog.Logger) (*component, error) {
		ln, err := listen(o.addr, o.port, "port")
		if err != nil {
			return nil, err
		}
		c, err := newBooks(cfg, ln, o, log)
		if err != nil {
			ln.Close()
		}
		return c, err
	})
}

// viewCommand is the subcommand of the view of that kind.
func viewCommand(kind string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, _, stderr io.Writer) error {
		return standalone(ctx, specOf(kind), args, stderr,
			func(cfg kafka.Config, o serviceFlags, log *slog.Logger) (*component, error) {
				ln, err := listen(o.addr, o.port, "port")
				if err != nil {
					return nil, err
				}
				c, err := newView(kind, cfg, ln, o, log, nil)
				if err != nil {
					ln.Close()
				}
				return c, err
			})
	}
}

func runGateway(ctx context.Context, args []string, _, stderr io.Writer) error {
	var o serviceFlags
	sp := specOf("gateway")
	f := newFlags(sp.kind, sp.help, stderr)
	o.register(f, sp.service, sp.port, false)
	f.str(&o.routes, "routes", defaultRoutes(), "without --consul: where the services are, as service=url pairs, comma-separated")
	o.tracesFlag(f)
	o.shedFlag(f, httpapi.DefaultSchedLimit)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := o.checkTraces(); err != nil {
		return err
	}
	log, err := serviceLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	var reg registry.Registry
	if o.consul != "" {
		r, closeReg, err := o.registry(log)
		if err != nil {
			return err
		}
		defer closeReg()
		reg = r
	} else if reg, err = staticRoutes(o.routes); err != nil {
		return err
	}
	ln, err := listen(o.addr, o.port, "port")
	if err != nil {
		return err
	}
	removeAddr, err := writeAddrFile(o.addrFile, ln)
	if err != nil {
		ln.Close()
		return err
	}
	defer removeAddr()
	// The operations console reads and redrives the dead letters through
	// the brokers of --broker, or those the registry knows with --consul;
	// without either, it says it has none to ask.
	var dlq web.DeadLetterTopic
	switch {
	case o.brokers != "":
		dlq = deadLetterTopic{cfg: o.kafkaConfig(log)}
	case o.consul != "":
		dlq = deadLetterTopic{cfg: o.kafkaConfig(log), reg: reg}
	}
	gw, err := newGateway(newResolver(reg), ln, o, log, nil, dlq)
	if err != nil {
		ln.Close()
		return err
	}
	return gw.run(ctx, reg)
}

// staticRoutes fills an in-process registry from "service=url" pairs.
func staticRoutes(spec string) (*registry.Memory, error) {
	reg := registry.NewMemory()
	for i, pair := range splitList(spec) {
		service, raw, ok := strings.Cut(pair, "=")
		u, err := url.Parse(raw)
		if !ok || err != nil || u.Hostname() == "" || u.Port() == "" {
			return nil, fmt.Errorf("--routes: %q is not service=http://host:port", pair)
		}
		var port int
		fmt.Sscan(u.Port(), &port)
		in := registry.Instance{ID: fmt.Sprintf("%s-%d", service, i), Service: service, Address: u.Hostname(), Port: port}
		if err := reg.Register(context.Background(), in); err != nil {
			return nil, fmt.Errorf("--routes %q: %w", pair, err)
		}
	}
	return reg, nil
}

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("broker", "The embedded Kafka-protocol broker (franz-go kfake), persisted on disk;\nwith --consul it registers as the service kafka, with a TCP check.", stderr)
	var o serviceFlags
	var dataDir string
	f.str(&o.addr, "addr", "127.0.0.1", "address to listen on")
	f.str(&o.advertise, "advertise-addr", "", "address clients reach the broker at, when it differs from --addr")
	f.int(&o.port, "port", 9092, "Kafka port to listen on")
	f.str(&dataDir, "data-dir", ".bookshelf", "where the log is kept across restarts")
	f.str(&o.topic, "topic", kafka.DefaultTopic, "the event log's topic, created with the others at start")
	f.int(&o.partitions, "partitions", defaultPartitions, "partitions of each topic created")
	f.str(&o.consul, "consul", os.Getenv("CONSUL_HTTP_ADDR"), "Consul agent's HTTP address, to register in (default $CONSUL_HTTP_ADDR)")
	f.str(&o.name, "name", registry.Kafka, "service name to register under")
	f.str(&o.id, "id", "", "instance id (default name-host-port)")
	f.str(&o.tags, "tags", "", "tags to register with")
	f.str(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := f.parse(args); err != nil {
		return err
	}
	log, err := serviceLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.advertise == "" && net.ParseIP(o.addr) != nil && net.ParseIP(o.addr).IsUnspecified() {
		// Listening everywhere: tell clients this host's address.
		o.advertise = hostIP()
	}
	b, err := startBroker(o.addr, o.port, "port", dataDir, o.advertise, log)
	if err != nil {
		return err
	}
	defer b.Close()
	o.brokers = b.Addr()
	cfg := o.kafkaConfig(log)
	if err := ensureTopics(ctx, cfg, log); err != nil {
		return stoppedOr(ctx, err)
	}
	fmt.Fprintf(stdout, "broker listening on %s, data in %s (kcat -b %s -P -t %s)\n", b.Addr(), dataDir, b.Addr(), o.topic)
	if o.consul == "" {
		<-ctx.Done()
		return nil
	}
	reg, closeReg, err := o.registry(log)
	if err != nil {
		return err
	}
	defer closeReg()
	host, portStr, _ := net.SplitHostPort(b.Addr())
	port, _ := strconv.Atoi(portStr)
	in := instanceAt(o.name, o.id, host, port, tagList(o.tags), "broker")
	in.Check = registry.CheckTCP
	c := &component{kind: "broker", instance: in, log: log.With("service", in.Service, "id", in.ID),
		ready: func() (bool, string) { return true, "" }}
	if c.register(ctx, reg) {
		c.keepRegistered(ctx, reg)
		<-ctx.Done()
		c.deregister(ctx, reg)
	}
	return nil
}
