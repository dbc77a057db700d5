package shelf

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the start of the views' story; hour(n) is n hours later.
var t0 = time.Date(2024, time.March, 1, 12, 0, 0, 0, time.UTC)

func hour(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }

func added(id string, seq int64, title string, authors ...string) *Event {
	return &Event{ID: id + "-added", Type: TypeBookAdded, Source: EventSource, BookID: id, Seq: seq, Time: t0,
		Title: title, Authors: authors}
}

func readAt(id string, seq int64, at time.Time) *Event {
	return &Event{ID: id + "-read-" + at.Format(time.RFC3339), Type: TypeBookRead, Source: EventSource, BookID: id, Seq: seq,
		Time: at, ReadAt: at}
}

// readTitle is a read known only by its title, as a plain text line gives.
func readTitle(title string, at time.Time) *Event {
	return &Event{Type: TypeBookRead, Title: title, Time: at, ReadAt: at}
}

// outsideRead is a read by id from outside the aggregate: unnumbered, so it
// may come in any order with the book's own events.
func outsideRead(id string, at time.Time) *Event {
	return &Event{Type: TypeBookRead, Source: "outside", BookID: id, Time: at, ReadAt: at}
}

// addedAt is e, a book-added event, at another time.
func addedAt(e *Event, at time.Time) *Event {
	e.Time = at
	return e
}

func removed(id string, seq int64) *Event {
	return &Event{ID: id + "-removed", Type: TypeBookRemoved, Source: EventSource, BookID: id, Seq: seq, Time: t0}
}

// The same few books serve every view test.
var (
	dune     = func() *Event { return added("b1", 1, "Dune", "Frank Herbert") }
	leftHand = func() *Event { return added("b2", 1, "The Left Hand of Darkness", "Ursula K. Le Guin") }
	omens    = func() *Event { return added("b3", 1, "Good Omens", "Terry Pratchett", "Neil Gaiman") }
)

type entry struct {
	id     string
	title  string
	readAt time.Time
}

func TestLastRead(t *testing.T) {
	tests := []struct {
		name   string
		events []*Event
		limit  int
		want   []entry
	}{
		{name: "empty", limit: 5, want: nil},
		{name: "added but not read", events: []*Event{dune(), leftHand()}, limit: 5, want: nil},
		{name: "most recent first",
			events: []*Event{dune(), leftHand(), omens(), readAt("b1", 2, hour(1)), readAt("b2", 2, hour(2)), readAt("b3", 2, hour(3))},
			limit:  5,
			want:   []entry{{"b3", "Good Omens", hour(3)}, {"b2", "The Left Hand of Darkness", hour(2)}, {"b1", "Dune", hour(1)}}},
		{name: "distinct books",
			events: []*Event{dune(), leftHand(), readAt("b1", 2, hour(1)), readAt("b2", 2, hour(2)), readAt("b1", 3, hour(3))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(3)}, {"b2", "The Left Hand of Darkness", hour(2)}}},
		{name: "limit",
			events: []*Event{dune(), leftHand(), omens(), readAt("b1", 2, hour(1)), readAt("b2", 2, hour(2)), readAt("b3", 2, hour(3))},
			limit:  2,
			want:   []entry{{"b3", "Good Omens", hour(3)}, {"b2", "The Left Hand of Darkness", hour(2)}}},
		{name: "limit 0", events: []*Event{dune(), readAt("b1", 2, hour(1))}, limit: 0, want: nil},
		{name: "negative limit", events: []*Event{dune(), readAt("b1", 2, hour(1))}, limit: -1, want: nil},
		{name: "read_at out of order",
			events: []*Event{dune(), leftHand(), omens(), readAt("b1", 2, hour(3)), readAt("b2", 2, hour(1)), readAt("b3", 2, hour(2))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(3)}, {"b3", "Good Omens", hour(2)}, {"b2", "The Left Hand of Darkness", hour(1)}}},
		{name: "an older read does not move a book back",
			events: []*Event{dune(), leftHand(), readAt("b1", 2, hour(5)), readAt("b2", 2, hour(4)), readAt("b1", 3, hour(1))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(5)}, {"b2", "The Left Hand of Darkness", hour(4)}}},
		{name: "a newer read moves a book forward",
			events: []*Event{dune(), leftHand(), omens(), readAt("b1", 2, hour(1)), readAt("b2", 2, hour(2)), readAt("b3", 2, hour(3)), readAt("b1", 3, hour(4))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(4)}, {"b3", "Good Omens", hour(3)}, {"b2", "The Left Hand of Darkness", hour(2)}}},
		{name: "a later read moves a book to the middle",
			events: []*Event{dune(), leftHand(), omens(), readAt("b1", 2, hour(1)), readAt("b2", 2, hour(2)), readAt("b3", 2, hour(4)), readAt("b1", 3, hour(3))},
			limit:  5,
			want:   []entry{{"b3", "Good Omens", hour(4)}, {"b1", "Dune", hour(3)}, {"b2", "The Left Hand of Darkness", hour(2)}}},
		{name: "removed books hidden",
			events: []*Event{dune(), leftHand(), readAt("b1", 2, hour(2)), readAt("b2", 2, hour(1)), removed("b1", 3)},
			limit:  5,
			want:   []entry{{"b2", "The Left Hand of Darkness", hour(1)}}},
		{name: "removed books do not count against the limit",
			events: []*Event{dune(), leftHand(), omens(), readAt("b1", 2, hour(3)), readAt("b2", 2, hour(2)), readAt("b3", 2, hour(1)), removed("b1", 3)},
			limit:  2,
			want:   []entry{{"b2", "The Left Hand of Darkness", hour(2)}, {"b3", "Good Omens", hour(1)}}},
		{name: "title-only read joins the book with that title",
			events: []*Event{dune(), leftHand(), readTitle("  the LEFT hand of darkness ", hour(1)), readAt("b1", 2, hour(2))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(2)}, {"b2", "The Left Hand of Darkness", hour(1)}}},
		{name: "title-only read and a read by id are one book",
			events: []*Event{dune(), readAt("b1", 2, hour(1)), readTitle("DUNE", hour(2))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(2)}}},
		{name: "title-only read of an unknown title",
			events: []*Event{dune(), readTitle("Solaris", hour(2)), readAt("b1", 2, hour(1))},
			limit:  5,
			want:   []entry{{TitleBookID("Solaris"), "Solaris", hour(2)}, {"b1", "Dune", hour(1)}}},
		{name: "title-only reads of one unknown title are one entry, titled as the latest",
			events: []*Event{readTitle("Solaris", hour(1)), readTitle("solaris", hour(2))},
			limit:  5,
			want:   []entry{{TitleBookID("Solaris"), "solaris", hour(2)}}},
		{name: "an unknown title read twice at once is titled by the smaller text",
			events: []*Event{readTitle("solaris", hour(1)), readTitle(" Solaris ", hour(1)), readTitle("SOLARIS", hour(0))},
			limit:  5,
			want:   []entry{{TitleBookID("Solaris"), "Solaris", hour(1)}}},
		{name: "a title line before its book's add joins the book",
			events: []*Event{readTitle("dune", hour(1)), dune()},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(1)}}},
		{name: "a title line means the book of that title added first",
			events: []*Event{dune(), readTitle("DUNE", hour(2)), addedAt(added("b4", 1, "Dune", "Brian Herbert"), hour(-1))},
			limit:  5,
			want:   []entry{{"b4", "Dune", hour(2)}}},
		{name: "of books of one title added at once, the smaller id",
			events: []*Event{added("b9", 1, "Dune"), readTitle("dune", hour(1)), dune()},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(1)}}},
		{name: "removing the book a title means moves its lines to the next",
			events: []*Event{dune(), addedAt(added("b4", 1, "Dune"), hour(-1)), readTitle("dune", hour(2)), readAt("b1", 2, hour(1)),
				removed("b4", 2)},
			limit: 5,
			want:  []entry{{"b1", "Dune", hour(2)}}},
		{name: "a title whose books are all removed is hidden with them",
			events: []*Event{dune(), readTitle("dune", hour(2)), removed("b1", 2)},
			limit:  5,
			want:   nil},
		{name: "equal read times: the smaller id first",
			events: []*Event{leftHand(), dune(), omens(), readAt("b3", 2, hour(1)), readAt("b1", 2, hour(1)), readAt("b2", 2, hour(1))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(1)}, {"b2", "The Left Hand of Darkness", hour(1)}, {"b3", "Good Omens", hour(1)}}},
		{name: "equal read times: a title line ranks as its book",
			events: []*Event{dune(), leftHand(), readAt("b2", 2, hour(1)), readTitle("dune", hour(1))},
			limit:  1,
			want:   []entry{{"b1", "Dune", hour(1)}}},
		{name: "a book read by id and by title shows once, at the later",
			events: []*Event{dune(), leftHand(), readTitle("dune", hour(3)), readAt("b2", 2, hour(2)), readAt("b1", 2, hour(1))},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(3)}, {"b2", "The Left Hand of Darkness", hour(2)}}},
		{name: "a read of an id not yet added shows once the add is in, titled by it",
			events: []*Event{{Type: TypeBookRead, BookID: "b1", Title: "Not Dune", ReadAt: hour(1)}, dune()},
			limit:  5,
			want:   []entry{{"b1", "Dune", hour(1)}}},
		{name: "a read of an id never added shows nothing",
			events: []*Event{dune(), outsideRead("b9", hour(2)), readAt("b1", 2, hour(1))},
			limit:  1,
			want:   []entry{{"b1", "Dune", hour(1)}}},
		{name: "duplicate and stale events change nothing",
			events: []*Event{dune(), leftHand(), readAt("b1", 2, hour(1)), readAt("b2", 2, hour(2)),
				readAt("b1", 2, hour(9)), // seq 2 again: a duplicate, whatever it says
				dune(), leftHand(), removed("b2", 1)},
			limit: 5,
			want:  []entry{{"b2", "The Left Hand of Darkness", hour(2)}, {"b1", "Dune", hour(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewLastRead()
			for _, e := range tt.events {
				v.Apply(e)
			}
			got := v.Latest(tt.limit)
			if got == nil {
				t.Fatal("Latest returned nil, want an empty list (it is served as JSON)")
			}
			var entries []entry
			for _, g := range got {
				entries = append(entries, entry{g.ID, g.Title, g.ReadAt})
				if g.Authors == nil {
					t.Errorf("entry %s has nil authors", g.ID)
				}
			}
			if !slices.EqualFunc(entries, tt.want, func(a, b entry) bool {
				return a.id == b.id && a.title == b.title && a.readAt.Equal(b.readAt)
			}) {
				t.Errorf("Latest(%d):\n got %v\nwant %v", tt.limit, entries, tt.want)
			}
		})
	}
}

func TestLastReadAuthors(t *testing.T) {
	v := NewLastRead()
	for _, e := range []*Event{omens(), readTitle("good omens", hour(1)), readTitle("Solaris", hour(2))} {
		v.Apply(e)
	}
	got := v.Latest(DefaultLastReadLimit)
	if len(got) != 2 {
		t.Fatalf("Latest = %+v", got)
	}
	if len(got[0].Authors) != 0 {
		t.Errorf("unknown title has authors %v", got[0].Authors)
	}
	if want := []string{"Terry Pratchett", "Neil Gaiman"}; !slices.Equal(got[1].Authors, want) {
		t.Errorf("Good Omens authors = %v, want %v", got[1].Authors, want)
	}
}

// Reads applied in any order give the same list as reads in time order,
// whether the books' adds come before them or after.
func TestLastReadOrderIndependent(t *testing.T) {
	const books = 20
	var adds, events []*Event
	for i := range books {
		id := string(rune('a' + i))
		adds = append(adds, added(id, 1, "Book "+id))
		events = append(events, outsideRead(id, hour((i*7)%books)))
	}
	inOrder := NewLastRead()
	sorted := slices.Clone(events)
	slices.SortFunc(sorted, func(a, b *Event) int { return a.ReadAt.Compare(b.ReadAt) })
	for _, e := range append(slices.Clone(adds), sorted...) {
		inOrder.Apply(e)
	}
	shuffled := NewLastRead()
	for _, e := range append(slices.Clone(events), adds...) {
		shuffled.Apply(e)
	}
	a, b := inOrder.Latest(books), shuffled.Latest(books)
	if len(a) != books || !slices.EqualFunc(a, b, func(x, y ReadEntry) bool { return x.ID == y.ID && x.ReadAt.Equal(y.ReadAt) }) {
		t.Errorf("in order %v\nshuffled %v", a, b)
	}
	if !slices.IsSortedFunc(a, func(x, y ReadEntry) int { return y.ReadAt.Compare(x.ReadAt) }) {
		t.Errorf("not most recent first: %v", a)
	}
}

func TestCatalogList(t *testing.T) {
	books := []*Event{
		added("b1", 1, "Dune", "Frank Herbert"),
		added("b2", 1, "The Left Hand of Darkness", "Ursula K. Le Guin"),
		added("b3", 1, "Dune Messiah", "Frank Herbert"),
		added("b4", 1, "Good Omens", "Terry Pratchett", "Neil Gaiman"),
		added("b5", 1, "Children of Dune", "Frank Herbert"),
		added("b6", 1, "The Dispossessed", "Ursula K. Le Guin"),
	}
	tests := []struct {
		name          string
		extra         []*Event
		author        string
		limit, offset int
		want          []string
		total         int
	}{
		{name: "all, in the order added", limit: 20, want: []string{"b1", "b2", "b3", "b4", "b5", "b6"}, total: 6},
		{name: "limit", limit: 2, want: []string{"b1", "b2"}, total: 6},
		{name: "limit and offset", limit: 2, offset: 2, want: []string{"b3", "b4"}, total: 6},
		{name: "offset to the end", limit: 10, offset: 4, want: []string{"b5", "b6"}, total: 6},
		{name: "offset past the end", limit: 10, offset: 6, want: nil, total: 6},
		{name: "limit 0", limit: 0, want: nil, total: 6},
		{name: "negative limit", limit: -3, want: nil, total: 6},
		{name: "negative offset", limit: 1, offset: -3, want: []string{"b1"}, total: 6},
		{name: "author", author: "Frank Herbert", limit: 20, want: []string{"b1", "b3", "b5"}, total: 3},
		{name: "author any case", author: "  fRANK hERBERT ", limit: 20, want: []string{"b1", "b3", "b5"}, total: 3},
		{name: "author with offset", author: "frank herbert", limit: 1, offset: 1, want: []string{"b3"}, total: 3},
		{name: "second author", author: "neil gaiman", limit: 20, want: []string{"b4"}, total: 1},
		{name: "author is a whole name", author: "Frank", limit: 20, want: nil, total: 0},
		{name: "unknown author", author: "Stanisław Lem", limit: 20, want: nil, total: 0},
		{name: "removed skipped", extra: []*Event{removed("b3", 2), removed("b2", 2)},
			limit: 20, want: []string{"b1", "b4", "b5", "b6"}, total: 4},
		{name: "removed skipped by offset too", extra: []*Event{removed("b1", 2)},
			limit: 2, offset: 1, want: []string{"b3", "b4"}, total: 5},
		{name: "removed skipped by author", extra: []*Event{removed("b1", 2)}, author: "frank herbert",
			limit: 20, want: []string{"b3", "b5"}, total: 2},
		{name: "duplicates ignored", extra: []*Event{added("b1", 1, "Dune"), added("b2", 0, "The Left Hand of Darkness")},
			limit: 20, want: []string{"b1", "b2", "b3", "b4", "b5", "b6"}, total: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewCatalog()
			for _, e := range append(slices.Clone(books), tt.extra...) {
				v.Apply(e)
			}
			got, total := v.List(tt.author, tt.limit, tt.offset)
			if got == nil {
				t.Fatal("List returned nil, want an empty list")
			}
			var ids []string
			for _, b := range got {
				ids = append(ids, b.ID)
			}
			if !slices.Equal(ids, tt.want) || total != tt.total {
				t.Errorf("List(%q, %d, %d) = %v, %d; want %v, %d", tt.author, tt.limit, tt.offset, ids, total, tt.want, tt.total)
			}
			if n := len(books) - len(tt.extra); tt.name == "removed skipped" && v.Len() != n {
				t.Errorf("Len = %d, want %d", v.Len(), n)
			}
		})
	}
}

func TestCatalogGet(t *testing.T) {
	v := NewCatalog()
	add := added("b1", 1, "Dune", "Frank Herbert")
	add.Year, add.ISBN, add.Time = 1965, "9780441172719", hour(-1)
	for _, e := range []*Event{
		add,
		leftHand(),
		readAt("b1", 2, hour(1)),
		readAt("b1", 3, hour(3)),
		readAt("b1", 3, hour(3)),           // duplicate
		readTitle(" dune ", hour(2)),       // a plain text line about b1
		readTitle("Dune Messiah", hour(4)), // another book
		readAt("b2", 2, hour(1)),
		removed("b2", 3),
	} {
		v.Apply(e)
	}
	got, err := v.Get("b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "b1" || got.Title != "Dune" || !slices.Equal(got.Authors, []string{"Frank Herbert"}) ||
		got.Year != 1965 || got.ISBN != "9780441172719" || !got.AddedAt.Equal(hour(-1)) {
		t.Errorf("Get(b1) = %+v", got)
	}
	if got.Reads != 3 {
		t.Errorf("Reads = %d, want 3 (two by id, one by title, a duplicate ignored)", got.Reads)
	}
	if got.LastReadAt == nil || !got.LastReadAt.Equal(hour(3)) {
		t.Errorf("LastReadAt = %v, want %v", got.LastReadAt, hour(3))
	}
	if _, err := v.Get("b2"); !errors.Is(err, ErrRemoved) {
		t.Errorf("Get(removed) = %v, want ErrRemoved", err)
	}
	if _, err := v.Get("b9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	// A title read of an unknown book is counted, but is no book of the
	// catalog.
	if _, err := v.Get(TitleBookID("Dune Messiah")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(title-only) = %v, want ErrNotFound", err)
	}
	if v.Len() != 1 {
		t.Errorf("Len = %d, want 1", v.Len())
	}
	if b, _ := v.Get("b1"); b.Authors == nil {
		t.Error("authors are nil")
	}
}

// A read seen before the add it belongs to (events from outside the
// aggregate are unnumbered and may come in any order) still counts.
func TestCatalogReadBeforeAdd(t *testing.T) {
	v := NewCatalog()
	v.Apply(&Event{Type: TypeBookRead, BookID: "b1", ReadAt: hour(1)})
	if _, err := v.Get("b1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get before the add = %v, want ErrNotFound", err)
	}
	if books, total := v.List("", 10, 0); len(books) != 0 || total != 0 {
		t.Errorf("List before the add = %v, %d", books, total)
	}
	v.Apply(&Event{Type: TypeBookAdded, BookID: "b1", Title: "Dune", Time: hour(2)})
	got, err := v.Get("b1")
	if err != nil || got.Reads != 1 || got.Authors == nil {
		t.Errorf("Get after the add = %+v, %v; want 1 read", got, err)
	}
}

// The catalog lists by the add's time, then id, however the adds came in:
// replicas that read the partitions in other orders page alike.
func TestCatalogOrderByAdd(t *testing.T) {
	adds := []*Event{
		addedAt(added("b1", 1, "Dune", "Frank Herbert"), hour(2)),
		addedAt(added("b3", 1, "Emma", "Jane Austen"), hour(1)),
		addedAt(added("b2", 1, "Persuasion", "Jane Austen"), hour(1)),
		addedAt(added("b0", 1, "Ulysses", "James Joyce"), hour(0)),
		addedAt(added("b4", 1, "Solaris", "Stanisław Lem"), hour(3)),
	}
	list := func(v *Catalog, author string, limit, offset int) string {
		books, total := v.List(author, limit, offset)
		var ids []string
		for _, b := range books {
			ids = append(ids, b.ID)
		}
		return fmt.Sprint(ids, " ", total)
	}
	for _, perm := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}} {
		v := NewCatalog()
		for _, i := range perm {
			v.Apply(adds[i])
		}
		for _, tc := range []struct {
			author        string
			limit, offset int
			want          string
		}{
			{"", 10, 0, "[b0 b2 b3 b1 b4] 5"},
			{"", 2, 1, "[b2 b3] 5"},
			{"", 1, 4, "[b4] 5"},
			{"jane austen", 1, 1, "[b3] 2"},
		} {
			if got := list(v, tc.author, tc.limit, tc.offset); got != tc.want {
				t.Errorf("applied in order %v: List(%q, %d, %d) = %s, want %s", perm, tc.author, tc.limit, tc.offset, got, tc.want)
			}
		}
		v.Apply(removed("b2", 2))
		if got, want := list(v, "", 2, 1), "[b3 b1] 4"; got != want || v.Len() != 4 {
			t.Errorf("applied in order %v, b2 removed: List = %s, Len %d; want %s, 4", perm, got, v.Len(), want)
		}
	}
}

// Title lines count for the book their title means, decided when asked:
// a line before its book's add counts, and a book of the same title added
// earlier takes the lines over, until it is removed.
func TestCatalogTitleReads(t *testing.T) {
	v := NewCatalog()
	for _, e := range []*Event{
		readTitle("dune", hour(3)), // before any Dune
		dune(),
		readAt("b1", 2, hour(1)),
		readTitle(" DUNE", hour(2)),
		addedAt(added("b4", 1, "Dune", "Brian Herbert"), hour(-1)),
		outsideRead("b4", hour(0)),
	} {
		v.Apply(e)
	}
	check := func(when, id string, reads int, last time.Time) {
		t.Helper()
		b, err := v.Get(id)
		if err != nil || b.Reads != reads || b.LastReadAt == nil || !b.LastReadAt.Equal(last) {
			t.Errorf("%s: Get(%s) = %+v, %v; want %d reads, the last at %v", when, id, b, err, reads, last)
		}
	}
	check("both added", "b4", 3, hour(3))
	check("both added", "b1", 1, hour(1))
	v.Apply(removed("b4", 2))
	check("b4 removed", "b1", 3, hour(3))
	if _, err := v.Get("b4"); !errors.Is(err, ErrRemoved) {
		t.Errorf("Get(b4) = %v, want ErrRemoved", err)
	}
	if _, err := v.Get(TitleBookID("Dune")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(title id) = %v, want ErrNotFound", err)
	}
}

func TestCatalogAddedNoAuthors(t *testing.T) {
	v := NewCatalog()
	v.Apply(added("b1", 1, "Dune"))
	if got, _ := v.List("", 10, 0); len(got) != 1 || got[0].Authors == nil {
		t.Errorf("List = %+v, want authors [] rather than null", got)
	}
}

func TestStats(t *testing.T) {
	lastYear := time.Date(2023, time.December, 31, 23, 0, 0, 0, time.UTC)
	v := NewStats()
	for _, e := range []*Event{
		dune(), leftHand(), omens(),
		readAt("b1", 2, lastYear),
		readAt("b1", 3, hour(1)),
		readAt("b1", 3, hour(1)), // duplicate
		readAt("b3", 2, hour(2)),
		readTitle("the left hand of darkness", hour(3)),
		readTitle("Solaris", hour(4)),
	} {
		v.Apply(e)
	}
	want := ReadingStats{
		BooksRead:     5,
		DistinctBooks: 4,
		BooksOnShelf:  3,
		PerYear:       map[string]int{"2023": 1, "2024": 4},
		PerAuthor:     map[string]int{"Frank Herbert": 2, "Ursula K. Le Guin": 1, "Terry Pratchett": 1, "Neil Gaiman": 1},
	}
	checkStats(t, "before removals", v.Snapshot(), want)

	// Removing a book does not unread it.
	v.Apply(removed("b1", 4))
	v.Apply(removed("b9", 2)) // never added
	want.BooksOnShelf = 2
	checkStats(t, "after removing b1", v.Snapshot(), want)

	// A snapshot is a copy.
	s := v.Snapshot()
	s.PerAuthor["Frank Herbert"] = 100
	s.PerYear["1999"] = 1
	checkStats(t, "after changing a snapshot", v.Snapshot(), want)
}

// Reads count for their book's authors whatever came first: the read or
// the add, the title line or the book it means.
func TestStatsReadsBeforeAdd(t *testing.T) {
	reads := []*Event{
		outsideRead("b1", hour(1)),
		readTitle("good omens", hour(2)),
		readTitle("Solaris", hour(3)),
		outsideRead("b9", hour(4)), // never added
	}
	want := ReadingStats{
		BooksRead:     5,
		DistinctBooks: 4, // b1, b3 by its title, Solaris, b9
		BooksOnShelf:  2,
		PerYear:       map[string]int{"2024": 5},
		PerAuthor:     map[string]int{"Frank Herbert": 2, "Terry Pratchett": 1, "Neil Gaiman": 1},
	}
	for _, addsFirst := range []bool{false, true} {
		v := NewStats()
		events := append(slices.Clone(reads), dune(), omens(), readAt("b1", 2, hour(5)))
		if addsFirst {
			events = append([]*Event{dune(), omens(), readAt("b1", 2, hour(5))}, reads...)
		}
		for _, e := range events {
			v.Apply(e)
		}
		when := fmt.Sprint("adds first: ", addsFirst)
		checkStats(t, when, v.Snapshot(), want)

		// A Good Omens added earlier is the one the line means now.
		v.Apply(addedAt(added("b5", 1, "Good Omens", "Someone Else"), hour(-1)))
		checkStats(t, when+", another Good Omens", v.Snapshot(), ReadingStats{
			BooksRead: 5, DistinctBooks: 4, BooksOnShelf: 3, PerYear: want.PerYear,
			PerAuthor: map[string]int{"Frank Herbert": 2, "Someone Else": 1},
		})
	}
}

func checkStats(t *testing.T, when string, got, want ReadingStats) {
	t.Helper()
	if got.BooksRead != want.BooksRead || got.DistinctBooks != want.DistinctBooks || got.BooksOnShelf != want.BooksOnShelf ||
		!maps.Equal(got.PerYear, want.PerYear) || !maps.Equal(got.PerAuthor, want.PerAuthor) {
		t.Errorf("%s:\n got %+v\nwant %+v", when, got, want)
	}
}

func TestStatsEmpty(t *testing.T) {
	s := NewStats().Snapshot()
	if s.PerYear == nil || s.PerAuthor == nil || s.BooksRead != 0 {
		t.Errorf("Snapshot of nothing = %+v; want empty maps, not nil", s)
	}
}

func TestTopAuthors(t *testing.T) {
	s := ReadingStats{PerAuthor: map[string]int{"Le Guin": 3, "Herbert": 5, "Gaiman": 3, "Pratchett": 1}}
	tests := []struct {
		n    int
		want []string
	}{
		{2, []string{"Herbert", "Gaiman"}}, // ties by name
		{4, []string{"Herbert", "Gaiman", "Le Guin", "Pratchett"}},
		{10, []string{"Herbert", "Gaiman", "Le Guin", "Pratchett"}},
		{0, []string{}},
		{-1, []string{}},
	}
	for _, tt := range tests {
		if got := s.TopAuthors(tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("TopAuthors(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

// Every view is a Projection, so a Replica can hold it.
var (
	_ Projection = (*LastRead)(nil)
	_ Projection = (*Catalog)(nil)
	_ Projection = (*Stats)(nil)
	_ Projection = (*Shelf)(nil)
)

// TestLastReadModel checks LastRead against the plainest implementation
// there is, over many books (enough for readOrder to split blocks and
// compact) read in and out of time order.
func TestLastReadModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			type model struct {
				readAt  time.Time
				read    bool
				added   bool
				removed bool
			}
			books := map[string]*model{}
			v := NewLastRead()
			clock := t0
			books2 := 3 * orderBlock
			entries := 0 // reads that made an entry
			for op := range 20 * orderBlock {
				id := fmt.Sprint("b", rng.IntN(books2))
				m := books[id]
				if m == nil {
					m = &model{}
					books[id] = m
				}
				switch r := rng.IntN(100); {
				case r < 5:
					v.Apply(&Event{Type: TypeBookRemoved, BookID: id})
					m.removed = m.added // the view ignores a book it never saw added
				case r < 10:
					v.Apply(&Event{Type: TypeBookAdded, BookID: id, Title: id})
					m.added, m.removed = true, false
				default:
					clock = clock.Add(time.Minute)
					at := clock
					switch rng.IntN(4) {
					case 0: // backdated, perhaps far
						at = clock.Add(-time.Duration(rng.IntN(op+1)) * time.Minute)
					case 1: // the same time as another read
						at = t0.Add(time.Duration(rng.IntN(op+1)) * time.Minute)
					}
					v.Apply(&Event{Type: TypeBookRead, BookID: id, ReadAt: at})
					if !m.read || at.After(m.readAt) {
						m.read, m.readAt = true, at
						entries++
					}
				}
				if op%500 == 0 || op == 20*orderBlock-1 {
					checkReadOrder(t, &v.reads)
					var want []string
					for id, m := range books {
						if m.read && m.added && !m.removed {
							want = append(want, id)
						}
					}
					slices.SortFunc(want, func(a, b string) int {
						if c := books[b].readAt.Compare(books[a].readAt); c != 0 {
							return c
						}
						return strings.Compare(a, b) // the same in every replica
					})
					for _, limit := range []int{1, MaxLimit, len(want) + 1} {
						var got []string
						for _, e := range v.Latest(limit) {
							got = append(got, e.ID)
							if !e.ReadAt.Equal(books[e.ID].readAt) {
								t.Fatalf("op %d: %s read at %v, want %v", op, e.ID, e.ReadAt, books[e.ID].readAt)
							}
						}
						if w := want[:min(limit, len(want))]; !slices.Equal(got, w) {
							t.Fatalf("op %d: Latest(%d):\n got %v\nwant %v", op, limit, got, w)
						}
					}
				}
			}
			// The test is only as good as the paths it took.
			if len(v.reads.blocks) < 2 || v.reads.n >= entries {
				t.Errorf("%d entries in %d blocks after %d reads: no split or no compaction", v.reads.n, len(v.reads.blocks), entries)
			}
		})
	}
}

// checkReadOrder checks the invariants of a readOrder.
func checkReadOrder(t *testing.T, o *readOrder) {
	t.Helper()
	n, stale := 0, 0
	prev := readKey{sec: -1 << 63}
	for i, b := range o.blocks {
		if len(b) == 0 || len(b) >= 2*orderBlock {
			t.Fatalf("block %d holds %d entries", i, len(b))
		}
		for _, r := range b {
			if prev.after(r.readKey) {
				t.Fatalf("block %d: %v after %v", i, r.readKey, prev)
			}
			prev = r.readKey
			n++
			if !o.live(r) {
				stale++
			}
		}
	}
	if n != o.n || stale != o.stale {
		t.Fatalf("readOrder counts %d entries, %d stale; holds %d, %d", o.n, o.stale, n, stale)
	}
	if o.stale > o.n/2 && o.stale > orderBlock {
		t.Fatalf("%d of %d entries stale: not compacted", o.stale, o.n)
	}
}

// Reads applied newest first, as when a history is imported backwards, cost
// no more than reads in order: no walk through the list per read.
func TestLastReadBackwards(t *testing.T) {
	const n = 20 * orderBlock
	v := NewLastRead()
	for i := range n {
		v.Apply(&Event{Type: TypeBookAdded, BookID: fmt.Sprint("b", i), Title: fmt.Sprint("Book ", i)})
	}
	for i := range n {
		v.Apply(&Event{Type: TypeBookRead, BookID: fmt.Sprint("b", i), ReadAt: t0.Add(-time.Duration(i) * time.Minute)})
	}
	checkReadOrder(t, &v.reads)
	got := v.Latest(3)
	if len(got) != 3 || got[0].ID != "b0" || got[2].ID != "b2" {
		t.Errorf("Latest(3) = %v", got)
	}
	if len(v.reads.blocks) < n/(2*orderBlock) {
		t.Errorf("%d entries in %d blocks", n, len(v.reads.blocks))
	}
}

// Paging by cursor visits every book once, in order, whatever the page
// size, with or without an author, and a cursor stays good when its book
// is removed meanwhile. The author index follows removes and re-adds.
func TestCatalogPageByCursor(t *testing.T) {
	v := NewCatalog()
	var all, herbert []string
	at := map[string]time.Time{}
	for i := range 2000 {
		id := fmt.Sprintf("b%04d", i)
		author := "Ursula K. Le Guin"
		if i%3 == 0 {
			author = "Frank Herbert"
			herbert = append(herbert, id)
		}
		e := added(id, 1, "Title", author, "Someone Else")
		// Times out of order, and some equal: the order is (time, id).
		e.Time = t0.Add(time.Duration((i*7919)%1000) * time.Second)
		v.Apply(e)
		all = append(all, id)
		at[id] = e.Time
	}
	order := func(ids []string) []string {
		ids = slices.Clone(ids)
		slices.SortFunc(ids, func(a, b string) int {
			if c := at[a].Compare(at[b]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		return ids
	}
	walk := func(author string, limit int, remove string) ([]string, int) {
		var got []string
		q := PageQuery{Author: author, Limit: limit}
		total := -1
		for pages := 0; ; pages++ {
			books, n, next, err := v.Page(q)
			if err != nil {
				t.Fatalf("Page(%+v): %v", q, err)
			}
			if total < 0 {
				total = n
			}
			for _, b := range books {
				got = append(got, b.ID)
			}
			if next == "" {
				return got, total
			}
			if next != books[len(books)-1].ID || pages > 10000 {
				t.Fatalf("Page(%+v): next %q after %d books", q, next, len(books))
			}
			if remove == next {
				v.Apply(removed(next, 2)) // the cursor's book leaves
			}
			q.After = next
		}
	}
	for _, limit := range []int{1, 7, 100} {
		if got, total := walk("", limit, ""); !slices.Equal(got, order(all)) || total != len(all) {
			t.Fatalf("paging by %d: %d books, total %d; want all %d in order", limit, len(got), total, len(all))
		}
		if got, total := walk(" frank HERBERT", limit, ""); !slices.Equal(got, order(herbert)) || total != len(herbert) {
			t.Fatalf("paging Frank Herbert by %d: %d books, total %d; want %d in order", limit, len(got), total, len(herbert))
		}
	}
	// A cursor whose book is removed while a client pages goes on from
	// where that book was.
	cut := order(herbert)[10]
	got, _ := walk("Frank Herbert", 11, cut)
	if want := order(herbert); !slices.Equal(got, want) {
		t.Fatalf("paging while the cursor's book is removed: %d books, want %d", len(got), len(want))
	}
	if _, total, _, _ := v.Page(PageQuery{Author: "frank herbert", Limit: 1}); total != len(herbert)-1 {
		t.Fatalf("after removing one, Frank Herbert has %d books, want %d", total, len(herbert)-1)
	}
	if _, _, _, err := v.Page(PageQuery{Limit: 5, After: "no-such-book"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a cursor of no book: %v, want an invalid field", err)
	}
	// A book re-added (from outside the aggregate) comes back under its
	// authors, the new ones.
	again := added(cut, 3, "Title", "Stanisław Lem")
	v.Apply(again)
	if _, n, _, _ := v.Page(PageQuery{Author: "stanisław lem", Limit: 1}); n != 1 {
		t.Fatalf("the re-added book under its new author: %d", n)
	}
	if _, n, _, _ := v.Page(PageQuery{Author: "frank herbert", Limit: 1}); n != len(herbert)-1 {
		t.Fatalf("the re-added book under its old author: %d, want %d", n, len(herbert)-1)
	}
}

// A book's facts are kept in four-byte fields: event numbers past them
// still gate, and add times far from now (before 1970, past 2106) still
// order the catalog and come back as they were.
func TestViewFactsPastFourBytes(t *testing.T) {
	big := int64(1) << 33
	long := []time.Time{
		time.Date(1901, 1, 1, 0, 0, 0, 999_999_999, time.UTC),
		time.Date(2200, 6, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	v := NewCatalog()
	v.Apply(addedAt(added("late", big, "Late", "A"), long[2]))
	v.Apply(addedAt(added("early", 1, "Early", "A"), long[0]))
	v.Apply(addedAt(added("mid", bigSeq-1, "Mid", "A"), long[1]))
	v.Apply(readAt("late", big, hour(1)))   // applied already: dropped
	v.Apply(readAt("late", big+1, hour(2))) // the next: counted
	v.Apply(readAt("mid", bigSeq, hour(3)))
	v.Apply(readAt("mid", bigSeq, hour(4))) // the same again
	books, _ := v.List("", 10, 0)
	var got []string
	for _, b := range books {
		got = append(got, fmt.Sprintf("%s %s %d", b.ID, b.AddedAt.Format(time.RFC3339Nano), b.Reads))
	}
	want := []string{
		"early 1901-01-01T00:00:00.999999999Z 0",
		"mid 2200-06-01T00:00:00.000000001Z 1",
		"late 9999-12-31T23:59:59Z 1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("catalog %q, want %q", got, want)
	}
}
