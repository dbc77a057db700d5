package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// The table of services drives the subcommands, their help and up: each
// row is a subcommand with its port as the default of --port, up has a
// port flag of the same default for it, and no two rows share a kind, a
// name or a port.
func TestTheTableDrivesTheSubcommands(t *testing.T) {
	seen := map[string]bool{}
	gateways := 0
	var upHelp bytes.Buffer
	if err := run(t.Context(), []string{"up", "--help"}, &bytes.Buffer{}, &upHelp); err != nil {
		t.Fatal(err)
	}
	for _, sp := range services {
		for _, key := range []string{"kind " + sp.kind, "service " + sp.service, "port " + strconv.Itoa(sp.port)} {
			if seen[key] {
				t.Errorf("two rows share the %s", key)
			}
			seen[key] = true
		}
		if sp.role == roleGateway {
			gateways++
		}
		var help bytes.Buffer
		if err := run(t.Context(), []string{sp.kind, "--help"}, &bytes.Buffer{}, &help); err != nil {
			t.Errorf("%s --help: %v", sp.kind, err)
		}
		for _, want := range []string{sp.help, "(default " + strconv.Itoa(sp.port) + ")", `(default "` + sp.service + `")`} {
			if !strings.Contains(help.String(), want) {
				t.Errorf("%s --help does not say %q:\n%s", sp.kind, want, help.String())
			}
		}
		if !strings.Contains(upHelp.String(), "-"+sp.kind+"-port int\n    \tport of "+sp.about) {
			t.Errorf("up --help has no --%s-port for %s:\n%s", sp.kind, sp.about, upHelp.String())
		}
	}
	if gateways != 1 {
		t.Errorf("%d gateways in the table, want 1", gateways)
	}
	var usage bytes.Buffer
	run(t.Context(), []string{"help"}, &bytes.Buffer{}, &usage)
	for _, sp := range services {
		if !strings.Contains(usage.String(), sp.summary) {
			t.Errorf("the usage does not list %s as %q", sp.kind, sp.summary)
		}
	}
}
