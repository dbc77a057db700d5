// Package httpapi is the HTTP edge of the bookshelf: the aggregate's
// command handler (Books), the views' query handlers (LastRead, Catalog,
// Stats), the public gateway that routes to them (Gateway), and what every
// service shares: problem+json errors (RFC 9457), request body rules,
// /healthz, /readyz, /metrics, request logging and the server's timeouts.
//
// It imports the domain (internal/shelf) and the metrics registry, and no
// other adapter: what it needs from Kafka or the registry is declared here
// as a small interface (Submitter, Resolver) and wired in cmd/bookshelf.
//
// Every error a client sees goes through one table (problemFor) that maps
// domain errors to statuses. Bad input is a 4xx, never a 500; a failure of
// the command path (shelf.ErrUnavailable: the event log cannot take
// writes, no outcome in time) is a 503 with Retry-After; an error the
// table does not know is a bug, a 500 logged with its request.
package httpapi
