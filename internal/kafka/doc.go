// Package kafka is the bookshelf's adapter to Apache Kafka, through
// franz-go: the topics and their creation, the command submitter, the
// transactional command processor (the aggregate), the view follower with
// its dead-letter queue, and an embedded Kafka-protocol broker for running
// without Kafka.
//
// With Config.TracerProvider set, a command's trace follows it through the
// records' W3C traceparent headers: each record processed (a command
// decided, an event applied) is a span whose parent is the context the
// record was written in, not a link, as the OpenTelemetry messaging
// conventions allow for one message at a time (see trace.go).
//
// It imports the domain (package shelf) and no other adapter.
package kafka
