// Command consul builds only the Consul agent, pinned at Consul 1.14.8, so
// that the local test infrastructure (infra/up.sh) can run a real agent in
// -dev mode without a Consul release download.
//
// It is a separate Go module on purpose:
//
//   - The product module must not inherit Consul's large dependency tree; a
//     nested go.mod keeps this directory out of the root module's build and
//     `go test ./...`.
//   - Consul 1.14.8 is the newest MPL-2.0 release that the Go module proxy
//     serves here. Building the whole github.com/hashicorp/consul main package
//     fails because command/operator needs an api module version that was
//     never published, so only command/agent is linked, with
//     github.com/hashicorp/consul/api pinned to v1.18.0.
//
// Usage mirrors the real binary for the parts that matter here:
//
//	consul agent -dev -client 127.0.0.1 -bind 127.0.0.1
//	consul version
package main

import (
	"fmt"
	"io"
	"log"
	"os"

	mcli "github.com/mitchellh/cli"

	"github.com/hashicorp/consul/command/agent"
	"github.com/hashicorp/consul/command/cli"
	"github.com/hashicorp/consul/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// The agent configures its own logger; silence the standard library one
	// the same way the upstream main does.
	log.SetOutput(io.Discard)

	ui := &cli.BasicUI{
		BasicUi: mcli.BasicUi{Writer: os.Stdout, ErrorWriter: os.Stderr},
	}

	sub := "agent"
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}

	switch sub {
	case "agent":
		cmd := agent.New(ui)
		if cmd == nil {
			return 1
		}
		return cmd.Run(args)
	case "version", "-version", "--version", "-v":
		fmt.Fprintf(os.Stdout, "Consul %s (agent only)\n", version.GetHumanVersion())
		return 0
	default:
		fmt.Fprintf(os.Stderr, "usage: consul agent [options] | consul version (only the agent is built, got %q)\n", sub)
		return 1
	}
}
