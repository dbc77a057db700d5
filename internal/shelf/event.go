package shelf

import (
	"time"
)

// Event types, as they appear in the CloudEvents "type" attribute.
const (
	TypeBookAdded   = "book-added"
	TypeBookRead    = "book-read"
	TypeBookRemoved = "book-removed"
)

// EventSource is the CloudEvents "source" of the events the aggregate writes.
const EventSource = "/bookshelf/books"

// Event is one fact in the log. It is flat rather than one type per event so
// that decoding a record is a single pass; the fields that matter depend on
// Type:
//
//	book-added:   Title, Authors, Year, ISBN
//	book-read:    ReadAt (and Title alone for a plain text line)
//	book-removed: nothing more
type Event struct {
	ID     string
	Type   string
	Source string
	// BookID is the CloudEvents subject. It is empty for a read known only
	// by its title (a plain text line or an old envelope without an id).
	BookID string
	// Seq numbers the events of one book from 1. Applying an event whose
	// Seq is not above the book's changes nothing. Zero means unnumbered
	// (events from outside the aggregate): always applied.
	Seq int64
	// CommandID is the command that caused the event.
	CommandID string
	// RequestHash is set when the command carried an idempotency key: the
	// hash of the request it was made from, so a retry can be recognised
	// after a restart.
	RequestHash string
	Time        time.Time

	Title   string
	Authors []string
	Year    int
	ISBN    string
	ReadAt  time.Time

	// At is where the event sits in the log. Readers set it; it is not part
	// of the encoding.
	At LogPos
}

// Book returns the book a book-added event describes.
func (e *Event) Book() Book {
	return Book{ID: e.BookID, Title: e.Title, Authors: e.Authors, Year: e.Year, ISBN: e.ISBN}
}

// check validates the fields of a known event type.
func (e *Event) check() error {
	switch e.Type {
	case TypeBookAdded, TypeBookRead, TypeBookRemoved:
	default:
		return ErrUnknownType
	}
	// Before the per-type rules, which return early.
	if len(e.BookID) > MaxIDLen {
		return invalid("subject", "longer than %d bytes", MaxIDLen)
	}
	switch e.Type {
	case TypeBookAdded:
		if e.BookID == "" {
			return invalid("subject", "a book-added event needs the book id")
		}
		return e.Book().check()
	case TypeBookRead:
		if e.BookID == "" && e.Title == "" {
			return invalid("subject", "a book-read event needs the book id or a title")
		}
		if e.Title != "" {
			if _, err := cleanText("title", e.Title, MaxTitleLen); err != nil {
				return err
			}
		}
	case TypeBookRemoved:
		if e.BookID == "" {
			return invalid("subject", "a book-removed event needs the book id")
		}
	}
	return nil
}

// MaxIDLen bounds book and command ids.
const MaxIDLen = 128
