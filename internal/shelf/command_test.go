package shelf

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func addBook(id, bookID, title string, authors ...string) Command {
	return Command{ID: id, Type: CmdAddBook, BookID: bookID, Book: &Book{Title: title, Authors: authors}, IssuedAt: now}
}

func markRead(id, bookID string) Command {
	return Command{ID: id, Type: CmdMarkRead, BookID: bookID, IssuedAt: now}
}

func removeBook(id, bookID string) Command {
	return Command{ID: id, Type: CmdRemoveBook, BookID: bookID, IssuedAt: now}
}

// decide decides c and, when it is accepted, applies its events as the
// command processor does.
func decide(s *Shelf, c Command) (Decision, error) {
	d, err := s.Decide(c, now)
	if err == nil {
		for i := range d.Events {
			s.Apply(&d.Events[i])
		}
	}
	return d, err
}

func TestShelfDecide(t *testing.T) {
	tests := []struct {
		name  string
		given []Command // decided and applied first; each must be accepted
		cmd   Command
		want  error  // nil: accepted
		typ   string // the type of the event, when accepted
		seq   int64  // its sequence number
	}{
		{name: "add", cmd: addBook("c1", "b1", "Dune", "Frank Herbert"), typ: TypeBookAdded, seq: 1},
		{name: "add twice", given: []Command{addBook("c1", "b1", "Dune")}, cmd: addBook("c2", "b1", "Dune"), want: ErrConflict},
		{name: "add over a removed book", given: []Command{addBook("c1", "b1", "Dune"), removeBook("c2", "b1")},
			cmd: addBook("c3", "b1", "Dune"), want: ErrConflict},
		{name: "mark read", given: []Command{addBook("c1", "b1", "Dune")}, cmd: markRead("c2", "b1"), typ: TypeBookRead, seq: 2},
		{name: "mark read again", given: []Command{addBook("c1", "b1", "Dune"), markRead("c2", "b1")}, cmd: markRead("c3", "b1"), typ: TypeBookRead, seq: 3},
		{name: "mark read unknown", cmd: markRead("c1", "b1"), want: ErrNotFound},
		{name: "mark read another book", given: []Command{addBook("c1", "b1", "Dune")}, cmd: markRead("c2", "b2"), want: ErrNotFound},
		{name: "mark read removed", given: []Command{addBook("c1", "b1", "Dune"), removeBook("c2", "b1")}, cmd: markRead("c3", "b1"), want: ErrRemoved},
		{name: "remove", given: []Command{addBook("c1", "b1", "Dune")}, cmd: removeBook("c2", "b1"), typ: TypeBookRemoved, seq: 2},
		{name: "remove unknown", cmd: removeBook("c1", "b1"), want: ErrNotFound},
		{name: "remove twice", given: []Command{addBook("c1", "b1", "Dune"), removeBook("c2", "b1")}, cmd: removeBook("c3", "b1"), want: ErrRemoved},
		{name: "no id", cmd: addBook("", "b1", "Dune"), want: ErrInvalid},
		{name: "no book id", cmd: addBook("c1", "", "Dune"), want: ErrInvalid},
		{name: "book id too long", cmd: addBook("c1", strings.Repeat("b", MaxIDLen+1), "Dune"), want: ErrInvalid},
		{name: "add without book", cmd: Command{ID: "c1", Type: CmdAddBook, BookID: "b1"}, want: ErrInvalid},
		{name: "add with a bad book", cmd: addBook("c1", "b1", " "), want: ErrInvalid},
		{name: "unknown type", cmd: Command{ID: "c1", Type: "rate-book", BookID: "b1"}, want: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewShelf()
			for _, c := range tt.given {
				if _, err := decide(s, c); err != nil {
					t.Fatalf("given %s %s: %v", c.Type, c.ID, err)
				}
			}
			d, err := s.Decide(tt.cmd, now)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Decide = %+v, %v; want %v", d, err, tt.want)
				}
				if len(d.Events) != 0 {
					t.Errorf("a refused command left events: %+v", d.Events)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Replay || len(d.Events) != 1 {
				t.Fatalf("Decide = %+v, want one event", d)
			}
			e := d.Events[0]
			if e.Type != tt.typ || e.Seq != tt.seq || e.BookID != tt.cmd.BookID || e.CommandID != tt.cmd.ID ||
				e.Source != EventSource || e.ID == "" || !e.Time.Equal(now) {
				t.Errorf("event = %+v; want type %s, seq %d, book %s, command %s, time %v",
					e, tt.typ, tt.seq, tt.cmd.BookID, tt.cmd.ID, now)
			}
			if d.Book.ID != tt.cmd.BookID || d.Book.Title == "" {
				t.Errorf("Decision.Book = %+v", d.Book)
			}
			if err := e.check(); err != nil {
				t.Errorf("the decided event does not pass the reader's check: %v", err)
			}
		})
	}
}

// Deciding does not change the shelf: until its event is applied, a
// command may be decided again with the same result.
func TestShelfDecideDoesNotApply(t *testing.T) {
	s := NewShelf()
	for range 2 {
		if _, err := s.Decide(addBook("c1", "b1", "Dune"), now); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d after deciding only", s.Len())
	}
}

func TestShelfDecideAddCarriesTheBook(t *testing.T) {
	c := addBook("c1", "b1", "Dune", "Frank Herbert")
	c.Book.Year, c.Book.ISBN = 1965, "9780441172719"
	d, err := NewShelf().Decide(c, now.In(time.FixedZone("CEST", 2*3600)))
	if err != nil {
		t.Fatal(err)
	}
	e := d.Events[0]
	if e.Title != "Dune" || len(e.Authors) != 1 || e.Authors[0] != "Frank Herbert" || e.Year != 1965 || e.ISBN != "9780441172719" {
		t.Errorf("event = %+v", e)
	}
	if e.Time.Location() != time.UTC {
		t.Errorf("event time %v is not in UTC", e.Time)
	}
	if b := d.Book; b.ID != "b1" || b.Title != "Dune" || b.Year != 1965 {
		t.Errorf("Decision.Book = %+v", b)
	}
}

func TestShelfDecideReadAt(t *testing.T) {
	s := NewShelf()
	if _, err := decide(s, addBook("c1", "b1", "Dune")); err != nil {
		t.Fatal(err)
	}
	d, err := s.Decide(markRead("c2", "b1"), now)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Events[0].ReadAt; !got.Equal(now) {
		t.Errorf("ReadAt without one in the command = %v, want the decision time %v", got, now)
	}
	at := time.Date(2023, 12, 24, 20, 0, 0, 0, time.FixedZone("", -5*3600))
	c := markRead("c3", "b1")
	c.ReadAt = at
	d, err = s.Decide(c, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Events[0].ReadAt; !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("ReadAt = %v, want %v in UTC", got, at)
	}
}

// Sequence numbers count a book's events from 1, and applying is
// idempotent: a duplicate or an older event changes nothing.
func TestShelfApply(t *testing.T) {
	s := NewShelf()
	var log []Event
	for i, c := range []Command{addBook("c1", "b1", "Dune"), markRead("c2", "b1"), markRead("c3", "b1")} {
		d, err := decide(s, c)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Events[0].Seq; got != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, got)
		}
		log = append(log, d.Events...)
	}

	// Everything again, and an older add with another title: the book stays
	// as it is and the next event is still number 4.
	for i := range log {
		s.Apply(&log[i])
	}
	stale := log[0]
	stale.Title = "Dune Messiah"
	s.Apply(&stale)
	d, err := decide(s, removeBook("c4", "b1"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Events[0].Seq != 4 || d.Book.Title != "Dune" {
		t.Errorf("after replays: seq %d, book %+v; want 4, Dune", d.Events[0].Seq, d.Book)
	}
	removed := d.Events[0]

	// Replaying the add after the removal does not bring the book back.
	s.Apply(&log[0])
	if _, err := s.Decide(markRead("c5", "b1"), now); !errors.Is(err, ErrRemoved) {
		t.Errorf("mark read after replaying the add: %v, want ErrRemoved", err)
	}

	// A fresh shelf rebuilt from the log, in order, twice over, decides the
	// same.
	rebuilt := NewShelf()
	for range 2 {
		for _, e := range append(log, removed) {
			rebuilt.Apply(&e)
		}
	}
	if _, err := rebuilt.Decide(markRead("c5", "b1"), now); !errors.Is(err, ErrRemoved) {
		t.Errorf("rebuilt: mark read: %v, want ErrRemoved", err)
	}
	if rebuilt.Len() != 1 {
		t.Errorf("rebuilt: Len = %d", rebuilt.Len())
	}
}

func TestShelfApplyIgnores(t *testing.T) {
	s := NewShelf()
	for _, e := range []Event{
		{Type: TypeBookRead, BookID: "b1", Seq: 2},          // a book not added
		{Type: TypeBookRemoved, BookID: "b2", Seq: 2},       // a book not added
		{Type: TypeBookRead, Title: "Dune"},                 // title only: views' business
		{Type: TypeBookAdded, Title: "Dune"},                // no id
		{Type: "book-rated", BookID: "b3", Seq: 1},          // unknown type
		{Type: "book-rated", BookID: "b3", Seq: 2, Year: 1}, // still unknown
	} {
		s.Apply(&e)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d, want 0", s.Len())
	}
}

// Only the aggregate's numbered events decide what a book is: an
// unnumbered one (from outside, which Admit lets through only as a read)
// changes nothing, so it cannot make the aggregate and the views disagree.
func TestShelfApplyUnnumbered(t *testing.T) {
	s := NewShelf()
	s.Apply(&Event{Type: TypeBookAdded, BookID: "b1", Title: "Dune"})
	if _, err := s.Decide(markRead("c1", "b1"), now); !errors.Is(err, ErrNotFound) {
		t.Errorf("mark read after an unnumbered add: %v, want ErrNotFound", err)
	}
	s.Apply(&Event{Type: TypeBookAdded, Source: EventSource, BookID: "b1", Seq: 1, Title: "Dune"})
	s.Apply(&Event{Type: TypeBookRemoved, BookID: "b1"})
	if _, err := s.Decide(markRead("c2", "b1"), now); err != nil {
		t.Errorf("mark read after an unnumbered remove: %v, want it decided", err)
	}
}

func TestShelfIdempotency(t *testing.T) {
	keyed := func(c Command, hash string) Command { c.RequestHash = hash; return c }
	at := LogPos{Partition: 2, Offset: 40}

	s := NewShelf()
	add := keyed(addBook("k1", "b1", "Dune"), "h1")
	d, err := decide(s, add)
	if err != nil {
		t.Fatal(err)
	}
	if d.Replay || d.Events[0].RequestHash != "h1" {
		t.Fatalf("first decision = %+v", d)
	}

	// Applied but not yet placed: a replay, at a position not known yet.
	d, err = s.Decide(add, now)
	if err != nil || !d.Replay || len(d.Events) != 0 || d.At != (LogPos{}) {
		t.Fatalf("before Place: %+v, %v; want a replay at the zero position", d, err)
	}

	e := Event{Type: TypeBookAdded, BookID: "b1", CommandID: "k1", RequestHash: "h1", At: at}
	s.Place(&e)
	placed, err := s.Decide(add, now.Add(time.Hour))
	if err != nil || !placed.Replay || len(placed.Events) != 0 || placed.At != at || placed.Book.Title != "Dune" || placed.Book.ID != "b1" {
		t.Fatalf("after Place: %+v, %v; want a replay of b1 at %v", placed, err, at)
	}

	// The same key with another request.
	if _, err := s.Decide(keyed(addBook("k1", "b1", "Dune Messiah"), "h2"), now); !errors.Is(err, ErrConflict) {
		t.Errorf("same key, other request: %v, want ErrConflict", err)
	}
	// A keyed mark-read is recognised too, and does not confuse the add.
	read := keyed(markRead("k2", "b1"), "h3")
	d, err = decide(s, read)
	if err != nil || d.Replay || d.Events[0].Seq != 2 {
		t.Fatalf("keyed mark read: %+v, %v", d, err)
	}
	if d, err := s.Decide(read, now); err != nil || !d.Replay {
		t.Errorf("keyed mark read again: %+v, %v; want a replay", d, err)
	}
	if d, err := s.Decide(add, now); err != nil || !d.Replay || d.At != at {
		t.Errorf("add again after a read: %+v, %v; want a replay at %v", d, err, at)
	}
	// Without a key, the same command id is decided afresh.
	if _, err := s.Decide(addBook("k1", "b1", "Dune"), now); !errors.Is(err, ErrConflict) {
		t.Errorf("unkeyed add of an existing book: %v, want ErrConflict", err)
	}

	// After a restart the shelf is rebuilt from the log, where each event
	// knows its position: the replay reports it without Place.
	rebuilt := NewShelf()
	logged := Event{ID: "k1-1", Type: TypeBookAdded, BookID: "b1", Seq: 1, CommandID: "k1", RequestHash: "h1", Title: "Dune", At: at}
	rebuilt.Apply(&logged)
	if d, err := rebuilt.Decide(add, now); err != nil || !d.Replay || d.At != at {
		t.Errorf("rebuilt: %+v, %v; want a replay at %v", d, err, at)
	}
}

// Place does nothing for events that carried no key, or books it does not
// hold.
func TestShelfPlaceIgnores(t *testing.T) {
	s := NewShelf()
	s.Place(&Event{BookID: "b1", CommandID: "c1", RequestHash: "h", At: LogPos{Offset: 3}})
	if _, err := decide(s, addBook("c1", "b1", "Dune")); err != nil {
		t.Fatal(err)
	}
	s.Place(&Event{BookID: "b1", CommandID: "c1", At: LogPos{Offset: 3}})
	s.Place(&Event{BookID: "b1", CommandID: "c9", RequestHash: "h", At: LogPos{Offset: 3}})
	c := addBook("c1", "b1", "Dune")
	c.RequestHash = "h"
	if _, err := s.Decide(c, now); !errors.Is(err, ErrConflict) {
		t.Errorf("a key never applied: %v, want ErrConflict (book exists)", err)
	}
}

func TestRejectionRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		kind   string
		field  string
		target error
	}{
		{"field error", &FieldError{Field: "title", Reason: "must not be empty"}, "invalid", "title", ErrInvalid},
		{"wrapped field error", fmt.Errorf("add b1: %w", &FieldError{Field: "isbn", Reason: "bad check digit"}), "invalid", "isbn", ErrInvalid},
		{"invalid without field", fmt.Errorf("%w: no such thing", ErrInvalid), "invalid", "", ErrInvalid},
		{"not found", ErrNotFound, "not-found", "", ErrNotFound},
		{"wrapped not found", fmt.Errorf("mark b1 read: %w", ErrNotFound), "not-found", "", ErrNotFound},
		{"removed", ErrRemoved, "removed", "", ErrRemoved},
		{"conflict", fmt.Errorf("%w: book b1 exists already", ErrConflict), "conflict", "", ErrConflict},
		{"bare conflict", ErrConflict, "conflict", "", ErrConflict},
		{"refused", fmt.Errorf("%w: MESSAGE_TOO_LARGE", ErrRefused), "refused", "", ErrRefused},
		{"foreign error", io.ErrUnexpectedEOF, "invalid", "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Rejection("c1", tt.err)
			if o.CommandID != "c1" || o.Status != StatusRejected || o.Error != tt.kind || o.Field != tt.field || o.Detail == "" {
				t.Fatalf("Rejection = %+v; want error %q, field %q", o, tt.kind, tt.field)
			}
			// Through the replies topic and back.
			b, err := EncodeOutcome(&o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeOutcome(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != o {
				t.Fatalf("DecodeOutcome(EncodeOutcome(%+v)) = %+v", o, got)
			}
			back := got.Err()
			if !errors.Is(back, tt.target) {
				t.Errorf("Err() = %v, want it to match %v", back, tt.target)
			}
			if tt.field != "" {
				var fe *FieldError
				if !errors.As(back, &fe) || fe.Field != tt.field {
					t.Errorf("Err() = %#v, want a FieldError on %s", back, tt.field)
				}
			}
			// Relaying an outcome again does not change it.
			if again := Rejection("c1", back); again != o {
				t.Errorf("Rejection(o.Err()) = %+v, want %+v", again, o)
			}
		})
	}
}

func TestOutcomeErrOfSuccess(t *testing.T) {
	for _, s := range []string{StatusAccepted, StatusReplayed} {
		if err := (Outcome{CommandID: "c1", Status: s}).Err(); err != nil {
			t.Errorf("%s: Err() = %v", s, err)
		}
	}
}

func TestDecodeOutcomeRefuses(t *testing.T) {
	for _, in := range []string{``, `{`, `[]`, `{"status":"accepted"}`} {
		if _, err := DecodeOutcome([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeOutcome(%q) = %v, want ErrMalformed", in, err)
		}
	}
}

// Keys are remembered for KeyWindow: a retry within it is a replay, one
// after it a new command; a much-read book does not hold keys for ever.
func TestKeysAreRememberedForTheWindow(t *testing.T) {
	s := NewShelf()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := Command{ID: "add", Type: CmdAddBook, BookID: "b", Book: &Book{Title: "T"}}
	d, err := s.Decide(add, start)
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(&d.Events[0])
	read := func(id string, at time.Time) Decision {
		t.Helper()
		c := Command{ID: id, Type: CmdMarkRead, BookID: "b", RequestHash: "h-" + id}
		d, err := s.Decide(c, at)
		if err != nil {
			t.Fatal(err)
		}
		for i := range d.Events {
			s.Apply(&d.Events[i])
		}
		return d
	}
	read("first", start)
	if d := read("first", start.Add(time.Hour)); !d.Replay {
		t.Fatal("a retry within the window was decided again")
	}
	// Two days of keyed reads, one every ten minutes.
	for i := range 288 {
		read(fmt.Sprintf("r%d", i), start.Add(time.Duration(i)*10*time.Minute))
	}
	if n := len(s.keys[0].keyed); n > 2*(24*6)+minPrune {
		t.Fatalf("the book holds %d keys; two days of reads, one window's worth is 144", n)
	}
	if d := read("first", start.Add(72*time.Hour)); d.Replay {
		t.Fatal("a key from three days ago was still remembered")
	}
}
