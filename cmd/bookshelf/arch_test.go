package main

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/bookshelf/bookshelf/internal/httpapi"
	"github.com/bookshelf/bookshelf/internal/registry"
)

// The dependency rule: arrows point inward. The domain imports the
// standard library only; an adapter imports the domain and the ports it
// implements, never another adapter; only cmd/bookshelf imports everything.
// And every package says what it is for.
//
// Packages in outside are the only ones that may import modules from
// outside the standard library: one package per outside system.
var allowed = map[string][]string{
	"internal/shelf":                 nil,
	"internal/metrics":               nil, // the Prometheus client library
	"internal/registry":              nil,
	"internal/registry/registrytest": {"internal/registry"},
	"internal/kafka":                 {"internal/shelf"},
	"internal/httpapi":               {"internal/shelf", "internal/metrics"},
	"internal/consul":                {"internal/registry"},
	"internal/load":                  nil,
	"internal/web":                   nil,                // the web app: embedded files, the standard library
	"deploy":                         nil,                // tests only: the compose stack and the manifests
	"internal/chaos":                 {"internal/shelf"}, // the harness: clients and the checker (porcupine)
	"internal/compose":               nil,                // the docker and docker-compose command lines
	"internal/cluster":               nil,                // the processes of make cluster: their pid files, signals, infra/cluster.sh
	"internal/toxiproxy":             nil,                // the proxy that cuts a books replica off from the brokers: its HTTP API
	"internal/tracing":               nil,                // OpenTelemetry: the provider, HTTP spans, trace ids in logs
}

var outside = map[string]bool{"internal/kafka": true, "internal/consul": true, "internal/metrics": true, "internal/chaos": true, "internal/tracing": true}

func TestDependenciesPointInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/bookshelf/bookshelf/"
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Doc        string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module)
		if p.Doc == "" {
			t.Errorf("%s has no package doc comment", rel)
		}
		if rel == "cmd/bookshelf" {
			continue
		}
		ok, known := allowed[rel]
		if !known {
			t.Errorf("%s is not in the dependency table of this test: add it with what it may import", rel)
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				if !outside[rel] && strings.Contains(strings.Split(imp, "/")[0], ".") {
					t.Errorf("%s imports %s: only the adapter of an outside system may", rel, imp)
				}
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s: adapters import the domain and their port, never each other", rel, dep)
			}
		}
	}
	if seen < len(allowed) {
		t.Errorf("saw %d of the %d packages in the table", seen, len(allowed))
	}
}

// The gateway routes by registry name and the services register by it: the
// two packages may not import each other, so this keeps their names one.
func TestServiceNamesAgree(t *testing.T) {
	pairs := map[string][2]string{
		"books":    {httpapi.ServiceBooks, registry.Books},
		"lastread": {httpapi.ServiceLastRead, registry.LastRead},
		"catalog":  {httpapi.ServiceCatalog, registry.Catalog},
		"stats":    {httpapi.ServiceStats, registry.Stats},
	}
	for what, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("%s: the gateway routes to %q, the service registers as %q", what, p[0], p[1])
		}
	}
	for _, pair := range splitList(defaultRoutes()) {
		name, _, _ := strings.Cut(pair, "=")
		found := false
		for _, p := range pairs {
			found = found || p[1] == name
		}
		if !found {
			t.Errorf("--routes default names %q, which no service registers as", name)
		}
	}
}
