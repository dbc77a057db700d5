package shelf

import (
	"errors"
	"fmt"
)

// ErrNotAdmitted: a readable record that the placement rule keeps out of
// every read model and of the aggregate's state (see Admit). Readers
// dead-letter it with the reason, so its writer learns what to do instead.
var ErrNotAdmitted = errors.New("not admitted by the placement rule")

// Admit applies the placement rule to a decoded event before anyone folds
// it; the aggregate and every view apply the same rule, so they agree on
// which books exist.
//
// The aggregate alone decides what books exist. An event states a book
// fact (added, removed) only when the aggregate wrote it: a CloudEvent of
// EventSource with a bookseq, written inside a Kafka transaction (the
// aggregate writes nothing otherwise; kcat and the original Python writers
// cannot), on the partition its subject is placed on (home), where the
// aggregate rebuilds the book from. Such an event passes unchanged.
//
// Anything else is an outside event. An outside read (a plain text line,
// the Python envelope's book-read, another source's CloudEvent) is reading
// history, which the aggregate does not decide on: it passes, stripped of
// the numbering and command of its writer, so that a bookseq the
// aggregate did not assign can never shadow the aggregate's own events.
// An outside book-added or book-removed, or an event that claims the
// aggregate's source without meeting the rule (a copy pushed back by
// hand, a record off its book's partition), is refused with
// ErrNotAdmitted: applied, it would show or hide a book the aggregate
// does not know of or still serves.
func Admit(e *Event, transactional, home bool) error {
	if e.Source == EventSource {
		switch {
		case e.Seq <= 0:
			return fmt.Errorf("%w: an event of source %s without bookseq; only the aggregate writes that source", ErrNotAdmitted, EventSource)
		case !transactional:
			return fmt.Errorf("%w: an event of source %s written outside a transaction; only the aggregate writes that source, and always in one", ErrNotAdmitted, EventSource)
		case !home:
			return fmt.Errorf("%w: the event of book %q is not on the partition that book is placed on (murmur2 of its id); the aggregate never reads it there", ErrNotAdmitted, e.BookID)
		}
		return nil
	}
	if e.Type != TypeBookRead {
		return fmt.Errorf("%w: a %s event from %q, not from the aggregate: add and remove books through the API (POST /books, DELETE /books/{id}), which decides them", ErrNotAdmitted, e.Type, e.Source)
	}
	e.Seq, e.CommandID, e.RequestHash = 0, "", ""
	return nil
}

// FromAggregate tells whether an admitted event is the aggregate's own.
func (e *Event) FromAggregate() bool { return e.Source == EventSource && e.Seq > 0 }
