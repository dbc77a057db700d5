package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/bookshelf/bookshelf/internal/httpapi"
	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/registry"
)

// startBroker starts the embedded broker, naming the flag to change when
// the port is taken.
func startBroker(addr string, port int, flagName, dataDir, advertise string, log *slog.Logger) (*kafka.Broker, error) {
	b, err := kafka.StartBroker(kafka.BrokerConfig{
		Addr:      net.JoinHostPort(addr, fmt.Sprint(port)),
		Advertise: advertise,
		DataDir:   filepath.Join(dataDir, "broker"),
		Logger:    log,
	})
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("port %d on %s is taken; choose another with --%s", port, addr, flagName)
	}
	return b, err
}

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("up", "Every service in one process: the embedded broker, the aggregate, the three views\nand the gateway, finding each other through an in-process registry.", stderr)
	var o serviceFlags
	var dataDir string
	ports := map[string]*int{}
	portFlag := func(name string, def int, what string) {
		ports[name] = new(int)
		f.int(ports[name], name+"-port", def, "port of "+what)
	}
	f.str(&o.addr, "addr", "127.0.0.1", "address every service listens on")
	f.str(&dataDir, "data-dir", ".bookshelf", "where the broker keeps the log across restarts")
	f.int(&o.partitions, "partitions", defaultPartitions, "partitions of each topic when created")
	f.str(&o.topic, "topic", kafka.DefaultTopic, "the event log's topic")
	f.str(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	o.logFormatFlag(f)
	f.str(&o.brokers, "broker", "", "Kafka brokers to use instead of the embedded one, host:port, comma-separated")
	o.sessionFlag(f)
	o.tracesFlag(f)
	o.shedFlag(f, httpapi.DefaultUpSchedLimit)
	for _, sp := range services {
		portFlag(sp.kind, sp.port, sp.about)
	}
	portFlag("broker", 9092, "the embedded Kafka-protocol broker")
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

	// Take every port first, so a taken one fails before anything starts.
	lns := map[string]net.Listener{}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, sp := range services {
		ln, err := listen(o.addr, *ports[sp.kind], sp.kind+"-port")
		if err != nil {
			return err
		}
		lns[sp.kind] = ln
	}
	closeBroker := func() {}
	embedded := o.brokers == ""
	if embedded {
		broker, err := startBroker(o.addr, *ports["broker"], "broker-port", dataDir, "", log.With("service", "broker"))
		if err != nil {
			return err
		}
		closeBroker = sync.OnceFunc(broker.Close)
		defer closeBroker()
		o.brokers = broker.Addr()
		fmt.Fprintf(stdout, "embedded broker, data in %s\n", dataDir)
	} else {
		fmt.Fprintf(stdout, "brokers %s\n", o.brokers)
	}
	cfg := o.kafkaConfig(log)
	if embedded {
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		was, err := kafka.KeepEvents(kctx, cfg)
		cancel()
		if err != nil {
			return stoppedOr(ctx, err)
		}
		if len(was) > 0 {
			log.Info("the event log, made by an earlier version, now keeps every event", "topic", cfg.Topics.Events, "was", was)
		}
	}
	if err := ensureTopics(ctx, cfg, log); err != nil {
		return stoppedOr(ctx, err)
	}

	reg := registry.NewMemory()
	named := func(service string) serviceFlags {
		so := o
		so.name = service
		so.several = true
		return so
	}
	// Until they run, the components built are this function's to release
	// when a later one cannot be built.
	var comps []*component
	defer func() {
		for _, c := range comps {
			c.discard()
		}
	}()
	books, err := newBooks(cfg, lns["books"], named(specOf("books").service), log)
	if err != nil {
		return err
	}
	delete(lns, "books")
	comps = append(comps, books)
	// The views of this process share one dead-letter writer, so a poison
	// record is dead-lettered once, not once per view.
	dlq, err := kafka.NewDeadLetters(ctx, cfg, "views")
	if err != nil {
		return err
	}
	closeDLQ := sync.OnceFunc(dlq.Close)
	defer closeDLQ()
	// In one process the gateway is ready once every service behind it is.
	var behind []string
	for _, sp := range services {
		if sp.role != roleGateway {
			behind = append(behind, sp.service)
		}
		if sp.role != roleView {
			continue
		}
		c, err := newView(sp.kind, cfg, lns[sp.kind], named(sp.service), log, dlq)
		if err != nil {
			return err
		}
		delete(lns, sp.kind)
		comps = append(comps, c)
	}
	gw, err := newGateway(newResolver(reg), lns["gateway"], named(specOf("gateway").service), log, func() (bool, string) {
		for _, service := range behind {
			if ins, _ := reg.Healthy(ctx, service); len(ins) == 0 {
				return false, "waiting for " + service
			}
		}
		return true, ""
	}, deadLetterTopic{cfg: cfg})
	if err != nil {
		return err
	}
	delete(lns, "gateway")
	comps = append(comps, gw)

	fmt.Fprintln(stdout, "bookshelf is up:")
	fmt.Fprintf(stdout, "  %-9s %s  (push lines: kcat -b %s -P -t %s)\n", "broker", o.brokers, o.brokers, cfg.Topics.Events)
	for _, c := range comps {
		fmt.Fprintf(stdout, "  %-9s http://%s/\n", c.kind, c.ln.Addr())
		if c.kind == "gateway" {
			fmt.Fprintf(stdout, "  %-9s http://%s/ in a browser, operations on http://%s/ops\n", "web app", c.ln.Addr(), c.ln.Addr())
		}
	}
	fmt.Fprintln(stdout, "Ctrl-C stops everything.")

	// Each component gets its own context, so they stop in reverse order of
	// start: the gateway first, the aggregate last, then the broker.
	type running struct {
		cancel context.CancelFunc
		done   chan error
	}
	var runs []running
	var wg sync.WaitGroup
	failed := make(chan struct{}, len(comps))
	started := comps
	comps = nil // each one's run releases it now
	for _, c := range started {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := running{cancel: cancel, done: make(chan error, 1)}
		runs = append(runs, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(cctx, reg)
			r.done <- err
			if err != nil {
				failed <- struct{}{}
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-failed:
	}
	fmt.Fprintln(stdout, "stopping...")
	var errs []error
	for i := len(runs) - 1; i >= 0; i-- {
		runs[i].cancel()
		if err := <-runs[i].done; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", started[i].kind, err))
		}
	}
	wg.Wait()
	closeDLQ() // flushes what the views dead-lettered, while the broker is still up
	closeBroker()
	fmt.Fprintln(stdout, "stopped.")
	return errors.Join(errs...)
}
