package shelf

import (
	"fmt"
	"time"
)

// Command types, as they travel on the commands topic.
const (
	CmdAddBook    = "add-book"
	CmdMarkRead   = "mark-read"
	CmdRemoveBook = "remove-book"
)

// Command asks the aggregate to change one book. The edge (HTTP) validates
// what a user sent and fills it in; the aggregate decides.
type Command struct {
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	BookID string    `json:"book_id"`
	Book   *Book     `json:"book,omitempty"`   // add-book
	ReadAt time.Time `json:"read_at,omitzero"` // mark-read; zero means when decided
	// RequestHash is set when the request carried an Idempotency-Key; the
	// ID is then derived from the key, so a retry is the same command.
	RequestHash string    `json:"request_hash,omitempty"`
	IssuedAt    time.Time `json:"issued_at"`
}

// check validates a command read from the log: a writer we do not control
// may have put anything there.
func (c *Command) check() error {
	if c.ID == "" || len(c.ID) > MaxIDLen {
		return invalid("id", "must be 1 to %d bytes", MaxIDLen)
	}
	if c.BookID == "" || len(c.BookID) > MaxIDLen {
		return invalid("book_id", "must be 1 to %d bytes", MaxIDLen)
	}
	switch c.Type {
	case CmdAddBook:
		if c.Book == nil {
			return invalid("book", "is required for %s", CmdAddBook)
		}
		return c.Book.check()
	case CmdMarkRead, CmdRemoveBook:
		return nil
	default:
		return invalid("type", "unknown command type %q", c.Type)
	}
}

// Decision is what the aggregate made of a command.
type Decision struct {
	// Events to append; empty for a replay.
	Events []Event
	// Book is the book after the command.
	Book Book
	// Replay is true when the command was decided before (same idempotency
	// key, same request): nothing new happens and At says where its event is.
	Replay bool
	At     LogPos
	// ReadAt is when the book was read, for a replayed mark-read.
	ReadAt time.Time
}

// Shelf is the aggregate's state: every book of the partitions an instance
// owns, enough to decide the next command. It is not safe for concurrent
// use; one goroutine owns it. Like the views' (see store.go), its state is
// kept pointer-free: a million books cost a few dozen bytes each beside
// their text, and nothing for the collector to walk.
type Shelf struct {
	strs    arena
	ids     idTable
	state   chunks[bookState]
	authors authorStore
	// keys holds, by book number, the keyed commands of the books that
	// had any (every one written through the API; none imported).
	keys map[int32]*bookKeys
}

type bookState struct {
	seq     int64
	title   strRef
	isbn    strRef
	authors authorList
	year    int32
	removed bool
}

// bookKeys remembers commands that carried an idempotency key, for
// KeyWindow; pruneAt is the size at which old ones are dropped next (it
// doubles with what stays, so pruning costs O(1) a command).
type bookKeys struct {
	keyed   map[string]keyedOutcome
	pruneAt int
}

type keyedOutcome struct {
	requestHash string
	at          LogPos
	readAt      time.Time
	decided     time.Time
}

// KeyWindow is how long the aggregate remembers an idempotency key: a
// retry within it is recognised, one after it is a new command. Every
// command the gateway passes on carries a key, so without a window the
// memory of a much-read book would grow for ever.
const KeyWindow = 24 * time.Hour

// minPrune is how many keys a book holds before the old ones are pruned.
const minPrune = 64

// NewShelf returns an empty shelf.
func NewShelf() *Shelf {
	s := &Shelf{authors: newAuthorStore(), keys: map[int32]*bookKeys{}}
	s.ids = newIDTable()
	return s
}

// Len is the number of books the shelf holds, removed ones included.
func (s *Shelf) Len() int { return int(s.state.n) }

// find returns the number and state of a book, nil if the shelf has none.
func (s *Shelf) find(id string) (int32, *bookState) {
	n, ok := s.ids.find(id)
	if !ok {
		return 0, nil
	}
	return n, s.state.at(n)
}

// book is book n as it was added.
func (s *Shelf) book(n int32) Book {
	st := s.state.at(n)
	b := Book{ID: s.ids.id(n), Title: s.strs.str(st.title), Year: int(st.year), ISBN: s.strs.str(st.isbn)}
	if st.authors.n() > 0 {
		b.Authors = s.authors.names(st.authors)
	}
	return b
}

// Decide turns a command into events, or refuses it with a domain error. It
// does not change the shelf: the caller applies the events once they are
// appended (or at once, if it rolls back by rebuilding).
func (s *Shelf) Decide(c Command, now time.Time) (Decision, error) {
	if err := c.check(); err != nil {
		return Decision{}, err
	}
	n, st := s.find(c.BookID)
	if k := s.keys[n]; c.RequestHash != "" && st != nil && k != nil {
		if prev, ok := k.keyed[c.ID]; ok {
			if prev.requestHash != c.RequestHash {
				return Decision{}, fmt.Errorf("%w: the idempotency key was used with another request", ErrConflict)
			}
			return Decision{Book: s.book(n), Replay: true, At: prev.at, ReadAt: prev.readAt}, nil
		}
	}
	ev := Event{
		ID:          c.ID + "-1",
		Source:      EventSource,
		BookID:      c.BookID,
		CommandID:   c.ID,
		RequestHash: c.RequestHash,
		Time:        now.UTC(),
	}
	switch c.Type {
	case CmdAddBook:
		if st != nil {
			return Decision{}, fmt.Errorf("%w: book %s exists already", ErrConflict, c.BookID)
		}
		b := *c.Book
		ev.Type, ev.Seq = TypeBookAdded, 1
		ev.Title, ev.Authors, ev.Year, ev.ISBN = b.Title, b.Authors, b.Year, b.ISBN
		b.ID = c.BookID
		return Decision{Events: []Event{ev}, Book: b}, nil
	case CmdMarkRead:
		if err := st.usable(); err != nil {
			return Decision{}, err
		}
		ev.Type, ev.Seq = TypeBookRead, st.seq+1
		ev.ReadAt = c.ReadAt.UTC()
		if c.ReadAt.IsZero() {
			ev.ReadAt = ev.Time
		}
		return Decision{Events: []Event{ev}, Book: s.book(n)}, nil
	case CmdRemoveBook:
		if err := st.usable(); err != nil {
			return Decision{}, err
		}
		ev.Type, ev.Seq = TypeBookRemoved, st.seq+1
		return Decision{Events: []Event{ev}, Book: s.book(n)}, nil
	}
	return Decision{}, invalid("type", "unknown command type %q", c.Type)
}

func (st *bookState) usable() error {
	switch {
	case st == nil:
		return ErrNotFound
	case st.removed:
		return ErrRemoved
	}
	return nil
}

// Apply folds an event into the shelf. An event whose sequence number is
// not above the book's is a duplicate or stale and changes nothing, so
// reading a partition twice is harmless.
func (s *Shelf) Apply(e *Event) {
	if e.BookID == "" || e.Seq <= 0 {
		// Only the aggregate's own, numbered events (see Admit) decide
		// what a book is; outside reads concern views alone.
		return
	}
	n, st := s.find(e.BookID)
	if st == nil {
		if e.Type != TypeBookAdded {
			return
		}
		n = s.ids.add(e.BookID)
		st = s.state.at(s.state.add(bookState{}))
	}
	if e.Seq <= st.seq {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		st.title, st.isbn, st.year = s.strs.put(e.Title), s.strs.put(e.ISBN), int32(e.Year)
		st.authors = s.authors.put(e.Authors)
	case TypeBookRemoved:
		st.removed = true
	case TypeBookRead:
	default:
		return
	}
	st.seq = e.Seq
	if e.RequestHash != "" {
		k := s.keys[n]
		if k == nil {
			k = &bookKeys{keyed: map[string]keyedOutcome{}}
			s.keys[n] = k
		}
		k.keyed[e.CommandID] = keyedOutcome{requestHash: e.RequestHash, at: e.At, readAt: e.ReadAt, decided: e.Time}
		if len(k.keyed) >= max(k.pruneAt, minPrune) {
			k.pruneKeys(e.Time.Add(-KeyWindow))
		}
	}
}

// pruneKeys forgets the keys decided before cutoff.
func (k *bookKeys) pruneKeys(cutoff time.Time) {
	for id, o := range k.keyed {
		if o.decided.Before(cutoff) {
			delete(k.keyed, id)
		}
	}
	k.pruneAt = 2 * len(k.keyed)
}

// Place records where the event of a keyed command landed, once the log has
// told. Until then a replay of that command would report a zero position.
func (s *Shelf) Place(e *Event) {
	n, st := s.find(e.BookID)
	k := s.keys[n]
	if st == nil || k == nil || e.RequestHash == "" {
		return
	}
	if o, ok := k.keyed[e.CommandID]; ok {
		o.at = e.At
		k.keyed[e.CommandID] = o
	}
}

// KeyedAt says where the event of a keyed command landed, once placed.
func (s *Shelf) KeyedAt(bookID, commandID string) (LogPos, bool) {
	n, st := s.find(bookID)
	k := s.keys[n]
	if st == nil || k == nil {
		return LogPos{}, false
	}
	o, ok := k.keyed[commandID]
	return o.at, ok
}

// Outcome is the answer to a command, sent back to whoever issued it.
type Outcome struct {
	CommandID string `json:"command_id"`
	// Status is "accepted", "replayed" or "rejected".
	Status string `json:"status"`
	Book   *Book  `json:"book,omitempty"`
	// ReadAt is when the book was read, for mark-read.
	ReadAt   *time.Time `json:"read_at,omitempty"`
	Position string     `json:"position,omitempty"`
	// Error names the domain error of a rejection: "invalid",
	// "not-found", "removed", "conflict", "refused" or "undecidable";
	// Detail is the message for a person.
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Field is the wrong field of an "invalid" rejection.
	Field string `json:"field,omitempty"`
	// RequestHash is the command's: two requests with one idempotency key
	// and different bodies share a command id, and each must get the
	// answer to its own.
	RequestHash string `json:"request_hash,omitempty"`
}

// Outcome statuses.
const (
	StatusAccepted = "accepted"
	StatusReplayed = "replayed"
	StatusRejected = "rejected"
)

// Rejection builds the outcome of a refused command.
func Rejection(commandID string, err error) Outcome {
	o := Outcome{CommandID: commandID, Status: StatusRejected, Detail: err.Error()}
	var fe *FieldError
	switch {
	case asFieldError(err, &fe):
		o.Error, o.Field, o.Detail = "invalid", fe.Field, fe.Reason
	case isErr(err, ErrNotFound):
		o.Error = "not-found"
	case isErr(err, ErrRemoved):
		o.Error = "removed"
	case isErr(err, ErrConflict):
		o.Error = "conflict"
	case isErr(err, ErrRefused):
		o.Error = "refused"
	case isErr(err, ErrUndecidable):
		o.Error = "undecidable"
	default:
		o.Error = "invalid"
	}
	return o
}

// Err turns a rejection back into a domain error (nil for a success).
func (o Outcome) Err() error {
	if o.Status != StatusRejected {
		return nil
	}
	switch o.Error {
	case "not-found":
		return rejected(ErrNotFound, o.Detail)
	case "removed":
		return rejected(ErrRemoved, o.Detail)
	case "conflict":
		return rejected(ErrConflict, o.Detail)
	case "refused":
		return rejected(ErrRefused, o.Detail)
	case "undecidable":
		return rejected(ErrUndecidable, o.Detail)
	}
	if o.Field != "" {
		return &FieldError{Field: o.Field, Reason: o.Detail}
	}
	return rejected(ErrInvalid, o.Detail)
}

// rejected is a sentinel with the detail of a rejection as its message.
// Wrapping with "%w: %s" would repeat the sentinel's text, which Detail
// already holds, every time an outcome is relayed.
func rejected(kind error, detail string) error {
	if detail == "" || detail == kind.Error() {
		return kind
	}
	return &rejection{kind: kind, detail: detail}
}

type rejection struct {
	kind   error
	detail string
}

func (r *rejection) Error() string { return r.detail }
func (r *rejection) Unwrap() error { return r.kind }
