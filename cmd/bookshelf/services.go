package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/bookshelf/bookshelf/internal/httpapi"
	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/metrics"
	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/shelf"
	"github.com/bookshelf/bookshelf/internal/tracing"
	"github.com/bookshelf/bookshelf/internal/web"
)

// serviceFlags are the flags every service takes: the original ones
// (--topic --broker --addr --port --name --id --tags) and a few more.
type serviceFlags struct {
	topic      string
	brokers    string
	consul     string
	addr       string
	advertise  string
	port       int
	name       string
	id         string
	tags       string
	partitions int
	logLevel   string
	logFormat  string
	addrFile   string
	routes     string        // gateway only
	tracesURL  string        // gateway only
	session    time.Duration // books only
	txnTimeout time.Duration // books only
	schedLimit time.Duration // books and gateway: shed commands past it (0: never)
	// several: one of several services of one process (up), each traced
	// under its own name whatever OTEL_SERVICE_NAME says.
	several bool
}

func (o *serviceFlags) register(f *flags, service string, port int, withPartitions bool) {
	f.str(&o.topic, "topic", kafka.DefaultTopic, "the event log's topic; commands, replies and dead letters are named after it")
	f.str(&o.brokers, "broker", "", "Kafka brokers, host:port, comma-separated (default: the healthy kafka in Consul with --consul, else 127.0.0.1:9092)")
	f.str(&o.consul, "consul", os.Getenv("CONSUL_HTTP_ADDR"), "Consul agent's HTTP address, to register and discover services; its token comes from $CONSUL_HTTP_TOKEN (default $CONSUL_HTTP_ADDR)")
	f.str(&o.addr, "addr", "127.0.0.1", "address to listen on")
	f.str(&o.advertise, "advertise-addr", "", "address others reach this service at, when it differs from --addr")
	f.int(&o.port, "port", port, "HTTP port to listen on")
	f.str(&o.name, "name", service, "service name to register under")
	f.str(&o.id, "id", "", "instance id, unique per process: it names the registration and the aggregate's transactional id (default name-host-port)")
	f.words(&o.tags, "tags", "", "tags to register with: several words (--tags books last), or one comma- or space-separated value")
	if withPartitions {
		f.int(&o.partitions, "partitions", defaultPartitions, "partitions of each topic when this service creates them")
	}
	f.str(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	o.logFormatFlag(f)
	f.str(&o.addrFile, "addr-file", "", "file to write the address the HTTP server listens on, once it listens, for bookshelf probe /readyz (for a service on --port 0)")
}

// shedFlag adds --shed-sched-latency, for the processes that take
// commands, with limit as its default.
func (o *serviceFlags) shedFlag(f *flags, limit time.Duration) {
	f.duration(&o.schedLimit, "shed-sched-latency", limit,
		"let fewer commands in flight (the rest answered 503 at once) while the Go scheduler's p99 latency over the last 20 ms passes this, so that queries keep the processors (0: no such bound)")
}

// schedGate is the gate of a component taking commands, with its loop,
// or none when --shed-sched-latency is 0.
func (o *serviceFlags) schedGate(reg *metrics.Registry) (*httpapi.SchedGate, []func(context.Context) error) {
	if o.schedLimit <= 0 {
		return nil, nil
	}
	g := httpapi.NewSchedGate(o.schedLimit, reg)
	return g, []func(context.Context) error{g.Run}
}

// tracesFlag adds --traces-url, for the processes that run the gateway.
func (o *serviceFlags) tracesFlag(f *flags) {
	f.str(&o.tracesURL, "traces-url", "",
		"a trace viewer's address with {trace} where the trace id goes (http://127.0.0.1:9411/zipkin/traces/{trace}): the web app and /ops link to traces")
}

// checkTraces says what is wrong with --traces-url.
func (o *serviceFlags) checkTraces() error {
	if o.tracesURL == "" {
		return nil
	}
	if err := web.CheckTracesURL(o.tracesURL); err != nil {
		return fmt.Errorf("--traces-url: %w", err)
	}
	return nil
}

// sessionFlag adds --session-timeout, for the processes that run the
// aggregate.
func (o *serviceFlags) sessionFlag(f *flags) {
	f.duration(&o.session, "session-timeout", kafka.DefaultSessionTimeout,
		"how long the group waits for a silent instance before giving its partitions to another; the broker's group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms bound it (group.min.session.timeout.ms and group.max.session.timeout.ms before Kafka 4.0)")
	f.duration(&o.txnTimeout, "txn-timeout", kafka.DefaultTxnTimeout,
		"how long the broker lets a transaction of this instance stay open: a dead instance's open transaction holds its partitions' readers that long (plus the broker's transaction.abort.timed.out.transaction.cleanup.interval.ms)")
}

func (o *serviceFlags) kafkaConfig(log *slog.Logger) kafka.Config {
	return kafka.Config{
		Brokers:        splitList(o.brokers),
		Topics:         kafka.TopicsFor(o.topic),
		Partitions:     int32(max(o.partitions, 1)),
		SessionTimeout: o.session,
		Logger:         log,
	}
}

// tagList accepts the original "--tags books last" spelled as one value
// with spaces, or commas.
func tagList(s string) []string {
	var out []string
	for _, part := range splitList(s) {
		out = append(out, splitFields(part)...)
	}
	return out
}

func splitFields(s string) []string {
	var out []string
	start := -1
	for i, r := range s + " " {
		if r == ' ' || r == '\t' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// kafkaService is what a service on the event log starts from: its
// instance in the registry, its logger naming it, its traces and its
// metrics, with cfg set to log, trace and meter through them. Whoever
// fails after it shuts tp down.
func kafkaService(cfg kafka.Config, ln net.Listener, o serviceFlags, log *slog.Logger, role string) (
	registry.Instance, kafka.Config, *slog.Logger, *tracing.Provider, *metrics.Registry, error) {
	in := instanceFor(o.name, o.id, o.advertise, ln, tagList(o.tags), role)
	log = log.With("service", in.Service, "id", in.ID)
	cfg.Logger = log
	tp, err := startTracing(in, o)
	if err != nil {
		return in, cfg, log, nil, nil, err
	}
	cfg.TracerProvider = tp.TracerProvider()
	reg := serviceMetrics()
	cfg.ClientMetrics = kafka.NewClientMetrics(reg.Prometheus())
	return in, cfg, log, tp, reg, nil
}

// newBooks builds the aggregate: the command API, the submitter that
// appends commands and waits for outcomes, and the processor that decides
// them in transactions.
func newBooks(cfg kafka.Config, ln net.Listener, o serviceFlags, log *slog.Logger) (*component, error) {
	in, cfg, log, tp, reg, err := kafkaService(cfg, ln, o, log, roleAggregate)
	if err != nil {
		return nil, err
	}
	sub, err := kafka.NewSubmitter(cfg)
	if err != nil {
		_ = tp.Shutdown(context.Background())
		return nil, err
	}
	popts := []kafka.ProcessorOpt{kafka.DecisionLatency(reg.HistogramVec("bookshelf_command_decision_seconds",
		"From the poll that brought a command to the commit of its outcome, in the aggregate's processor.", httpapi.CommandBuckets).With())}
	if o.txnTimeout > 0 {
		popts = append(popts, kafka.TxnTimeout(o.txnTimeout))
	}
	proc := kafka.NewProcessor(cfg, in.ID, popts...)
	probe := kafka.NewProbe(cfg)
	sub.Probe = probe
	groupLag := kafka.NewGroupLag(cfg)
	partitionMetrics(reg, proc, groupLag, log)
	reg.CounterFunc("bookshelf_commands_decided_total", "Commands decided into events.", func() float64 { return float64(proc.Decided.Load()) })
	reg.CounterFunc("bookshelf_commands_rejected_total", "Commands refused by the domain.", func() float64 { return float64(proc.Rejected.Load()) })
	reg.CounterFunc("bookshelf_commands_dead_lettered_total", "Unreadable commands sent to the dead-letter topic.", func() float64 { return float64(proc.DeadLettered.Load()) })
	reg.CounterFunc("bookshelf_transactions_aborted_total", "Transactions aborted (rebalance or broker trouble).", func() float64 { return float64(proc.Aborted.Load()) })
	reg.GaugeFunc("bookshelf_partitions_owned", "Command partitions this instance owns.", func() float64 { return float64(proc.Assigned()) })
	reg.GaugeFunc("bookshelf_partitions_rebuilding", "Owned partitions whose state is being rebuilt from the event log (their commands wait).",
		func() float64 { return float64(proc.Rebuilding()) })
	reg.GaugeFunc("bookshelf_partitions_waiting_on_dead_letters", "Command partitions held because the dead-letter topic cannot be written.",
		func() float64 { return float64(proc.WaitingOnDeadLetters()) })
	ready := func() (bool, string) {
		if err := probe.Err(); err != nil {
			return false, "the broker does not answer: " + err.Error()
		}
		switch {
		case !sub.Ready():
			return false, "not reading command outcomes yet"
		case !proc.Healthy():
			return false, "cannot process commands"
		}
		if err := proc.DeadLetterTrouble(); err != nil {
			// Ready all the same: the other partitions' commands are
			// decided, and taking the instance out would stop them
			// reaching it.
			return true, err.Error()
		}
		return true, ""
	}
	gate, gateLoops := o.schedGate(reg)
	h := httpapi.Books(sub, httpapi.WithLogger(log), httpapi.WithMetrics(reg), httpapi.WithReady(ready), httpapi.WithSchedGate(gate))
	return &component{
		kind: "books", instance: in, ln: ln, handler: h, ready: ready, log: log, metrics: reg, tracing: tp,
		unrun: []func(){sub.Close, groupLag.Close},
		loops: append([]func(context.Context) error{
			func(ctx context.Context) error { defer sub.Close(); return sub.Run(ctx) },
			func(ctx context.Context) error { defer groupLag.Close(); return proc.Run(ctx) },
			probe.Run,
		}, gateLoops...),
	}, nil
}

// newView builds a view service: a follower folding the whole log into a
// replica, and the handler answering from it.
// dlq, when not nil, is shared by the views of one process.
func newView(kind string, cfg kafka.Config, ln net.Listener, o serviceFlags, log *slog.Logger, dlq *kafka.DeadLetters) (*component, error) {
	in, cfg, log, tp, reg, err := kafkaService(cfg, ln, o, log, roleView)
	if err != nil {
		return nil, err
	}
	var follower *kafka.Follower
	probe := kafka.NewProbe(cfg)
	// A view answers queries once it has caught up, and goes on answering
	// from what it has while the broker is away; it is ready (registered
	// as passing) only while it can also follow the log.
	caughtUp := func() (bool, string) {
		p := follower.Progress()
		switch {
		case p.Ready:
			return true, ""
		case p.Total == 0 && p.Err == nil:
			return false, "connecting to the event log"
		}
		return false, fmt.Sprintf("catching up: %d of %d records", p.Done, p.Total)
	}
	// sorted, the catalog's, is closed once it has sorted what it read
	// while catching up into its indexes: until then a query would wait.
	var sorted chan struct{}
	ready := func() (bool, string) {
		if ok, reason := caughtUp(); !ok {
			return false, reason
		}
		if sorted != nil {
			select {
			case <-sorted:
			default:
				return false, "caught up: sorting the books into the indexes"
			}
		}
		if err := probe.Err(); err != nil {
			return false, "the broker does not answer (serving what was read): " + err.Error()
		}
		return true, ""
	}
	opts := []httpapi.Option{httpapi.WithLogger(log), httpapi.WithMetrics(reg), httpapi.WithReady(ready)}
	var h http.Handler
	var extra []func(context.Context) error
	switch kind {
	case "lastread":
		r := shelf.NewReplica(shelf.NewLastRead())
		follower = kafka.NewFollower(cfg, kind+"/"+in.ID, r)
		h = httpapi.LastRead(r, caughtUp, opts...)
	case "catalog":
		r := shelf.NewReplica(shelf.NewCatalog())
		follower = kafka.NewFollower(cfg, kind+"/"+in.ID, r)
		h = httpapi.Catalog(r, caughtUp, opts...)
		// Caught up, it sorts what it read into its indexes at once,
		// rather than at the first query, and is ready after.
		sorted = make(chan struct{})
		extra = append(extra, func(ctx context.Context) error {
			select {
			case <-follower.CaughtUp():
				r.Read(func(v *shelf.Catalog) { v.Settle() })
				close(sorted)
			case <-ctx.Done():
			}
			return nil
		})
	case "stats":
		r := shelf.NewReplica(shelf.NewStats())
		follower = kafka.NewFollower(cfg, kind+"/"+in.ID, r)
		h = httpapi.Stats(r, caughtUp, opts...)
	default:
		_ = tp.Shutdown(context.Background())
		return nil, fmt.Errorf("unknown view %q", kind)
	}
	settled := follower.CaughtUp()
	if sorted != nil {
		settled = sorted
	}
	follower.DeadLetters = dlq
	follower.ApplyLag = reg.HistogramVec("bookshelf_view_apply_lag_seconds",
		"From an event's record timestamp to its being applied to the view, once the view has caught up.", viewLagBuckets).With()
	reg.GaugeFunc("bookshelf_view_position_records", "How far the view has read the event log: the sum of the next offsets of its partitions.",
		func() float64 { return float64(follower.Position()) })
	counts := &follower.Counts
	reg.CounterFunc("bookshelf_events_applied_total", "Events folded into the view.", func() float64 { return float64(counts.Applied.Load()) })
	reg.CounterFunc("bookshelf_events_skipped_total", "Well-formed events of unknown types, skipped.", func() float64 { return float64(counts.Skipped.Load()) })
	reg.CounterFunc("bookshelf_records_dead_lettered_total", "Poison records met since start (the dead-letter topic holds each once).", func() float64 { return float64(counts.DeadLettered.Load()) })
	reg.CounterFunc("bookshelf_dead_letters_failed_total", "Dead letters the dead-letter topic did not take (the records stay in the log).",
		func() float64 { return float64(follower.DeadLettersFailed()) })
	reg.CounterFunc("bookshelf_fetch_errors_total", "Fetches of the event log that failed (the broker away or refusing).", func() float64 { return float64(counts.FetchErrors.Load()) })
	reg.GaugeFunc("bookshelf_view_lag_records", "Records of the event log the view has yet to read.", func() float64 {
		n, _ := follower.Lag()
		return float64(n)
	})
	reg.GaugeFunc("bookshelf_view_lag_seconds", "While the view is behind the log, how old the last record it applied is; 0 when it is not behind.", func() float64 {
		_, d := follower.Lag()
		return d.Seconds()
	})
	reg.GaugeFunc("bookshelf_view_catching_up_records", "Records left to read before the view is caught up.", func() float64 {
		p := follower.Progress()
		return float64(p.Total - p.Done)
	})
	return &component{
		kind: kind, instance: in, ln: ln, handler: h, ready: ready, log: log, metrics: reg, tracing: tp,
		loops:    append([]func(context.Context) error{follower.Run, probe.Run}, extra...),
		caughtUp: settled,
	}, nil
}

// newGateway builds the public API, routing to the instances it resolves.
// ready may be nil: then it is ready once it serves.
//
// dlq, when not nil, is the dead-letter topic for the operations
// console; a gateway with no broker to ask passes nil.
func newGateway(res *resolver, ln net.Listener, o serviceFlags, log *slog.Logger, ready func() (bool, string),
	dlq web.DeadLetterTopic) (*component, error) {
	in := instanceFor(o.name, o.id, o.advertise, ln, tagList(o.tags), roleGateway)
	log = log.With("service", in.Service, "id", in.ID)
	tp, err := startTracing(in, o)
	if err != nil {
		return nil, err
	}
	if ready == nil {
		ready = func() (bool, string) { return true, "" }
	}
	reg := serviceMetrics()
	// The web app answers a browser's GET / and its own files, and /ops;
	// the API everything else, GET / from curl included.
	ops := &web.Ops{Registry: res, DeadLetters: dlq, TracesURL: o.tracesURL}
	for _, sp := range services {
		ops.Services = append(ops.Services, sp.service)
	}
	gate, gateLoops := o.schedGate(reg)
	h := web.Handler(httpapi.Gateway(res, httpapi.WithLogger(log), httpapi.WithReady(ready), httpapi.WithMetrics(reg),
		httpapi.WithProxyTransport(tp.Transport), httpapi.WithSchedGate(gate)), ops, web.TracesURL(o.tracesURL))
	return &component{kind: "gateway", instance: in, ln: ln, handler: h, log: log, ready: ready, metrics: reg, tracing: tp,
		// The console looks at the instances on its own too, so that it
		// has the recent past to show when someone opens it.
		loops: append([]func(context.Context) error{func(ctx context.Context) error { return ops.Run(ctx, 5*time.Second) }}, gateLoops...)}, nil
}

// resolver adapts a registry to the gateway's Resolver.
// resolver finds a service's healthy instances in the registry. While the
// registry cannot be asked (its agent restarting, say), it answers what
// the registry said last, for a while: the instances are most likely where
// they were, and the gateway tries another when one is gone, so requests
// go on being served rather than refused for want of a registry.
type resolver struct {
	reg  registry.Registry
	mu   sync.Mutex
	last map[string]resolved
}

type resolved struct {
	urls []string
	at   time.Time
}

// staleFor is how long the last answer stands in for a registry that does
// not answer.
const staleFor = time.Minute

func newResolver(reg registry.Registry) *resolver {
	return &resolver{reg: reg, last: map[string]resolved{}}
}

func (r *resolver) Resolve(ctx context.Context, service string) ([]string, error) {
	ins, err := r.reg.Healthy(ctx, service)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if last, ok := r.last[service]; ok && time.Since(last.at) < staleFor && len(last.urls) > 0 {
			return last.urls, nil
		}
		return nil, err
	}
	urls := make([]string, len(ins))
	for i, in := range ins {
		urls[i] = in.URL()
	}
	r.last[service] = resolved{urls: urls, at: time.Now()}
	return urls, nil
}

func serviceLogger(stderr io.Writer, level, format string) (*slog.Logger, error) {
	if stderr == nil {
		stderr = os.Stderr
	}
	return newLogger(stderr, level, format)
}
