// Package shelf is the bookshelf's domain: books, the commands that change
// them, the events those commands leave in the log, the decision that turns
// one into the other, and the read models (views) folded from the events.
//
// It uses the standard library only. Kafka, HTTP and the registry are
// adapters that import this package; it imports none of them.
//
// The event format (CloudEvents 1.0, JSON structured mode) lives here too,
// because it is the contract between services, not a detail of a transport.
package shelf
