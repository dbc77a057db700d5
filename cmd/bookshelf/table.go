package main

import (
	"fmt"
	"strings"

	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/registry"
)

// spec is one row of the table of services: what the subcommands, their
// help, `up`, the gateway's default routes and the deployments (through
// the subcommands' --help, which deploy's tests read) know of a service.
type spec struct {
	kind    string // the subcommand
	service string // the name it registers under, which the gateway routes by
	port    int    // the default HTTP port
	role    string // registered as the instance's meta "role"
	about   string // what `up` calls it
	summary string // the line in `bookshelf help`
	help    string // the first lines of `bookshelf <kind> --help`
}

// The roles of the table; a view's kind picks its read model in newView.
const (
	roleAggregate = "aggregate"
	roleView      = "view"
	roleGateway   = "gateway"
)

// services is the table, in the order `up` starts them (the gateway, which
// routes to the others, last) and the usage lists them.
var services = []spec{
	{kind: "books", service: registry.Books, port: 8081, role: roleAggregate, about: "the books aggregate",
		summary: "run the aggregate: the command API and the transactional command processor",
		help:    "The aggregate: takes commands over HTTP (POST /books, DELETE /books/{id},\nPOST /books/{id}/read), decides them in Kafka transactions, answers with the outcome."},
	{kind: "lastread", service: registry.LastRead, port: 8087, role: roleView, about: "the last-read view",
		summary: "run the view of the books read last (registered as " + registry.LastRead + ")",
		help:    "The view of the books read last: GET / and GET /books/last-read (?limit=, default 5)."},
	{kind: "catalog", service: registry.Catalog, port: 8084, role: roleView, about: "the catalog view",
		summary: "run the view of every book (registered as " + registry.Catalog + ")",
		help:    "The view of every book: GET /books (?author= ?q= ?limit= ?offset= ?after=), GET /books/{id}."},
	{kind: "stats", service: registry.Stats, port: 8085, role: roleView, about: "the stats view",
		summary: "run the view of reading statistics (registered as " + registry.Stats + ")",
		help:    "The view of reading statistics: GET /stats."},
	{kind: "gateway", service: registry.Gateway, port: 8080, role: roleGateway, about: "the gateway (public API)",
		summary: "run the public API, routing to the services it finds",
		help:    "The public API and web page, routing each request to an instance of the service behind it."},
}

// defaultPartitions is the partition count of each topic a service creates
// when --partitions is not given.
const defaultPartitions = int(kafka.DefaultPartitions)

// specOf is the row of a subcommand; the table is fixed, so a missing row
// is a bug.
func specOf(kind string) spec {
	for _, s := range services {
		if s.kind == kind {
			return s
		}
	}
	panic(fmt.Sprintf("no service %q in the table", kind))
}

// defaultRoutes is where the services behind the gateway listen by default
// on one machine, as the gateway's --routes takes them.
func defaultRoutes() string {
	var pairs []string
	for _, s := range services {
		if s.role != roleGateway {
			pairs = append(pairs, fmt.Sprintf("%s=http://127.0.0.1:%d", s.service, s.port))
		}
	}
	return strings.Join(pairs, ",")
}
