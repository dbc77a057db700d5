package kafka

// DefaultTopic is the event log's name; the other topics are named after it.
const DefaultTopic = "bookshelf"

// Suffixes of the topics derived from the event log's name. Renaming one
// strands what was written under the old name, so they live here only.
const (
	commandsSuffix = ".commands"
	repliesSuffix  = ".replies"
	dlqSuffix      = ".dlq"
	booksGroupPart = ".books"
)

// Topics names every topic and group of one bookshelf.
type Topics struct {
	// Events is the event log, keyed by book id: the source of truth.
	Events string
	// Commands carries commands, keyed by book id, with as many
	// partitions as Events: partition p of one maps to partition p of the
	// other.
	Commands string
	// Replies carries the outcome of each command back to the instance
	// that submitted it, written in the same transaction as its events.
	Replies string
	// DLQ holds records a consumer could not use, with headers naming
	// where they came from and why.
	DLQ string
	// BooksGroup is the consumer group of the aggregate's instances.
	BooksGroup string
}

// TopicsFor derives every name from the event log's.
func TopicsFor(events string) Topics {
	if events == "" {
		events = DefaultTopic
	}
	return Topics{
		Events:     events,
		Commands:   events + commandsSuffix,
		Replies:    events + repliesSuffix,
		DLQ:        events + dlqSuffix,
		BooksGroup: events + booksGroupPart,
	}
}

// All lists the topics, event log first.
func (t Topics) All() []string { return []string{t.Events, t.Commands, t.Replies, t.DLQ} }

// Header keys of a dead-lettered record.
const (
	HeaderOriginTopic     = "bookshelf-origin-topic"
	HeaderOriginPartition = "bookshelf-origin-partition"
	HeaderOriginOffset    = "bookshelf-origin-offset"
	HeaderOriginTimestamp = "bookshelf-origin-timestamp"
	HeaderError           = "bookshelf-error"
	HeaderDeadLetteredBy  = "bookshelf-dead-lettered-by"
	// HeaderOriginKey is the original record's key, when it had one: a
	// dead letter's own key names its origin instead.
	HeaderOriginKey = "bookshelf-origin-key"
)

// Header keys of redrive (see Redrive). A redriven record carries
// HeaderRedriven, the times it has been sent back from the dead-letter
// topic; dead-lettered again, it keeps it among its headers. The
// dead-letter topic records each redrive as a marker record carrying
// HeaderRedriveOf (the dead letter's partition:offset) and
// HeaderRedrivenTo (where the copy went, topic/partition/offset).
const (
	HeaderRedriven   = "bookshelf-redriven"
	HeaderRedriveOf  = "bookshelf-redrive-of"
	HeaderRedrivenTo = "bookshelf-redriven-to"
)
