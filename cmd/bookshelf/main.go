// Command bookshelf runs the bookshelf: an event-driven bookshelf made of
// small services that talk through events on Kafka and find each other
// through a registry. One subcommand per service, and `up` for all of them
// in one process with an embedded broker.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "bookshelf:", err)
		os.Exit(1)
	}
	if errors.Is(err, errHelp) {
		os.Exit(2)
	}
}

// errHelp: usage was printed, because asked for or because the arguments
// were wrong.
var errHelp = errors.New("usage")

type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func subcommands() []subcommand {
	runs := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"books": runBooks, "lastread": viewCommand("lastread"), "catalog": viewCommand("catalog"),
		"stats": viewCommand("stats"), "gateway": runGateway,
	}
	subs := []subcommand{
		{"up", "run every service in one process, with an embedded broker", runUp},
		{"broker", "run the embedded Kafka-protocol broker", runBroker},
	}
	for _, sp := range services {
		subs = append(subs, subcommand{sp.kind, sp.summary, runs[sp.kind]})
	}
	return append(subs,
		subcommand{"dlq", "list, show and redrive the dead-letter topic's records", runDLQ},
		subcommand{"probe", "ask a service's URL and exit 0 only on 200 (the image's health check)", runProbe},
		subcommand{"load", "load a bookshelf and measure it beside bare baselines (make load)", runLoad},
		subcommand{"chaos", "inject faults into the compose stack under load, and check the log (make chaos)", runChaos},
	)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errHelp
		}
		return nil
	}
	for _, sc := range subcommands() {
		if sc.name == args[0] {
			err := sc.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, errHelpShown) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bookshelf <subcommand> [flags]")
	fmt.Fprintln(w)
	for _, sc := range subcommands() {
		fmt.Fprintf(w, "  %-9s %s\n", sc.name, sc.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every flag also reads BOOKSHELF_<FLAG> from the environment (e.g. BOOKSHELF_PORT).")
	fmt.Fprintln(w, "'bookshelf <subcommand> --help' explains its flags.")
}
