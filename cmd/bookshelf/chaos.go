package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bookshelf/bookshelf/internal/chaos"
	"github.com/bookshelf/bookshelf/internal/cluster"
	"github.com/bookshelf/bookshelf/internal/compose"
	"github.com/bookshelf/bookshelf/internal/consul"
	"github.com/bookshelf/bookshelf/internal/httpapi"
	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/shelf"
	"github.com/bookshelf/bookshelf/internal/toxiproxy"
)

// runChaos runs the fault-tolerance demonstration against the compose
// stack, or with --cluster against the processes of make cluster: clients,
// fault cycles on a seeded schedule, then the checks, the figures and the
// report. It fails when the checks find anything wrong.
func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("chaos", "Inject faults into the compose stack (make up) while clients use it, then check the\ncommitted log and every view replica against the clients' history.\n\nWith --cluster, into the processes of make cluster instead (CLUSTER_PORT_OFFSET as for\nmake cluster): kill -9 of a books, lastread or the gateway member, then the member\nstarted again; a books member frozen (SIGSTOP) past its session timeout; books 2 -> 3\n-> 2. No broker faults there: the cluster has one broker; and no Consul restart: its\nagent is make infra's, shared.", stderr)
	var (
		gateway, brokers, consulAddr, proxyAddr, topic, out, project, dir, only string
		clusterDir, clusterScript                                               string
		cycles, clients                                                         int
		seed                                                                    int
		pause, session                                                          time.Duration
		onCluster                                                               bool
	)
	f.BoolVar(&onCluster, "cluster", false, "the processes of make cluster, on make infra's broker and Consul, instead of the compose stack: --gateway, --broker and --session-timeout then default to the cluster's")
	f.str(&clusterDir, "cluster-dir", ".infra/cluster", "with --cluster: the cluster's folder (its run/NAME.pid and run/NAME.port)")
	f.str(&clusterScript, "cluster-script", "infra/cluster.sh", "with --cluster: the script that starts a member again (start NAME) and stops one (stop NAME)")
	f.str(&gateway, "gateway", "http://127.0.0.1:8080,http://127.0.0.1:8090", "the stack's gateways (GATEWAY_PORT, GATEWAY2_PORT), comma-separated: a client goes on to the next when one does not answer")
	f.str(&brokers, "broker", "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096", "the stack's brokers, for the checker's read of the log")
	f.str(&consulAddr, "consul", "127.0.0.1:8500", "the stack's Consul agent, where the view replicas are found")
	f.str(&proxyAddr, "toxiproxy", "127.0.0.1:8474", "the stack's Toxiproxy API (TOXIPROXY_PORT), in front of the brokers for books-cut: the cut books fault resets every connection through it")
	f.str(&topic, "topic", kafka.DefaultTopic, "the event log")
	f.int(&cycles, "cycles", 100, "fault cycles")
	f.int(&seed, "seed", 0, "the schedule's seed (default: from the clock; printed, to repeat a run)")
	f.int(&clients, "clients", 8, "clients using the shelf at once")
	f.duration(&pause, "pause", 20*time.Millisecond, "each client's pause between operations")
	f.duration(&session, "session-timeout", 1500*time.Millisecond, "the books' session timeout in the stack (compose.yaml): a frozen replica stays frozen longer")
	f.str(&out, "out", "chaos", "where the report, the figures and the history are written")
	f.str(&project, "project", "bookshelf", "the compose project (COMPOSE_PROJECT_NAME)")
	f.str(&dir, "dir", ".", "the folder of compose.yaml")
	f.str(&only, "faults", "", "only these kinds of fault, comma-separated (default: every kind)")
	if err := f.parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	kinds := (&compose.Target{}).Kinds()
	if onCluster {
		kinds = (&cluster.Target{}).Kinds()
	}
	if err := checkKinds(kinds, splitList(only)); err != nil {
		return err
	}
	proxies := &toxiproxy.Client{Addr: proxyAddr}
	var target chaos.Target = &compose.Target{Project: compose.Project{Name: project, Dir: dir}, Session: session, Only: splitList(only),
		Links: proxies}
	if onCluster {
		ct := &cluster.Target{Dir: clusterDir, Script: clusterScript, Session: session, Only: splitList(only)}
		if !set["session-timeout"] {
			ct.Session = kafka.DefaultSessionTimeout // cluster.sh sets none
		}
		if !set["broker"] {
			brokers = "127.0.0.1:19092" // make infra's one broker
		}
		if !set["gateway"] {
			gws, err := ct.Gateways()
			if err != nil {
				return err
			}
			gateway = strings.Join(gws, ",")
		}
		target = ct
	}
	log, err := serviceLogger(stderr, "info", "text")
	if err != nil {
		return err
	}
	if seed == 0 {
		seed = int(time.Now().UnixNano() % 1_000_000)
	}
	fmt.Fprintf(stdout, "chaos: seed %d (repeat with --seed %d)\n", seed, seed)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	cfg := kafka.Config{Brokers: splitList(brokers), Topics: kafka.TopicsFor(topic), Logger: log}
	if _, err := kafka.Partitions(ctx, cfg); err != nil {
		return fmt.Errorf("the event log of the stack: %w", err)
	}
	if !onCluster {
		// A run stopped hard between a fault and its heal leaves a
		// broker's proxy closed, or books-cut cut off.
		restored, err := proxies.Restore(ctx)
		if err != nil {
			return fmt.Errorf("the stack's proxies: %w", err)
		}
		if len(restored) > 0 {
			log.Warn("chaos: proxies left closed or cut by an earlier run, opened", "proxies", restored)
		}
	}
	// Quiet: while a broker is dead, its client's every refused
	// connection would be a warning in the run's output.
	quiet := cfg
	quiet.Logger = nil
	brokersServing := kafka.NewServing(quiet)
	if err := chaos.WaitHealthy(ctx, target, 2*time.Minute); err != nil {
		return fmt.Errorf("the stack is not healthy before the run (make up, or make cluster with --cluster): %w", err)
	}
	ops, faults, runErr := chaos.Run(ctx, chaos.Config{Gateways: splitList(gateway), Target: target, Cycles: cycles, Seed: uint64(seed),
		Clients: clients, Pause: pause, Logger: log, BookID: httpapi.KeyedBookID,
		Brokers: brokersServing, BrokerFaults: []string{compose.KillBroker}})
	if runErr != nil {
		log.Error("chaos: the run stopped early", "err", runErr)
	}
	log.Info("chaos: checking", "operations", len(ops), "faults", len(faults))
	var v chaos.Verdict
	var events []shelf.Event
	if _, err := kafka.ReadEvents(ctx, cfg, func(e shelf.Event) { events = append(events, e) }); err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	chaos.CheckLog(&v, ops, events, httpapi.KeyedCommandID)
	visual := filepath.Join(out, "linearizability.html")
	chaos.CheckLinearizable(&v, ops, 2*time.Minute, visual)
	reg, err := consul.New(consul.Config{Addr: consulAddr, Logger: log})
	if err != nil {
		return err
	}
	defer reg.Close()
	books := map[string]bool{}
	for _, o := range ops {
		books[o.Book] = true
	}
	var ids []string
	for id := range books {
		ids = append(ids, id)
	}
	chaos.CheckViews(ctx, &v, events, ids, func(ctx context.Context, service string) ([]string, error) {
		ins, err := reg.Healthy(ctx, service)
		return hostPorts(ins), err
	}, time.Minute)
	r := chaos.Figures(uint64(seed), len(faults), ops, faults, v)
	r.WriteText(stdout)
	if err := writeChaos(out, r, ops, visual); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n%s\n", filepath.Join(out, "report.html"), r.Summary())
	switch {
	case runErr != nil:
		return runErr
	case v.Lost > 0 || v.Doubled > 0 || v.Anomalies > 0:
		return fmt.Errorf("the checks failed")
	}
	return nil
}

// checkKinds refuses a fault the target does not know before anything
// runs, so that a typo does not end a run at its first cycle.
func checkKinds(all, only []string) error {
	for _, k := range only {
		if !slices.Contains(all, k) {
			return fmt.Errorf("--faults: no fault %q here (there are: %s)", k, strings.Join(all, ", "))
		}
	}
	return nil
}

func hostPorts(ins []registry.Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.HostPort()
	}
	return out
}

func writeChaos(dir string, r chaos.Report, ops []chaos.Op, visual string) error {
	for name, v := range map[string]any{"report.json": r, "history.json": ops} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	fh, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return err
	}
	r.WriteHTML(fh, filepath.Base(visual))
	return fh.Close()
}
