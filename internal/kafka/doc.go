// Package kafka is the bookshelf's adapter to Apache Kafka, through
// franz-go: the topics and their creation, the command submitter, the
// transactional command processor (the aggregate), the view follower with
// its dead-letter queue, and an embedded Kafka-protocol broker for running
// without Kafka.
//
// It imports the domain (package shelf) and no other adapter.
package kafka
