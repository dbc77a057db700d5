package shelf

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Query limits shared by the views.
const (
	DefaultLastReadLimit = 5
	MaxLimit             = 100
	DefaultListLimit     = 20
)

// seqGate drops events a view has already applied: per book, only an event
// numbered above the last one applied gets through. Unnumbered events
// (from outside the aggregate) always pass; the reader's log position keeps
// those from being applied twice.
type seqGate map[string]int64

func (g seqGate) pass(e *Event) bool {
	if e.Seq == 0 || e.BookID == "" {
		return true
	}
	if e.Seq <= g[e.BookID] {
		return false
	}
	g[e.BookID] = e.Seq
	return true
}

// titleIndex resolves a title-only read to a book: the first book added
// with that title, else an entry of its own named for the title.
type titleIndex map[string]string

func (t titleIndex) add(e *Event) {
	k := TitleKey(e.Title)
	if _, ok := t[k]; !ok {
		t[k] = e.BookID
	}
}

func (t titleIndex) resolve(e *Event) string {
	if e.BookID != "" {
		return e.BookID
	}
	if id, ok := t[TitleKey(e.Title)]; ok {
		return id
	}
	return TitleBookID(e.Title)
}

// ReadEntry is one line of the last-read view.
type ReadEntry struct {
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Authors []string  `json:"authors"`
	ReadAt  time.Time `json:"read_at"`
}

// LastRead is the view of the books read most recently: distinct books,
// most recent first.
type LastRead struct {
	seq    seqGate
	titles titleIndex
	books  map[string]*lastReadBook
	// reads orders the reads by read_at. A book read again gets a new
	// entry; its old one goes stale and is dropped at the next compaction.
	reads readOrder
}

type lastReadBook struct {
	id      string
	title   string
	authors []string
	read    bool
	readAt  time.Time
	key     readKey // readAt, as readOrder sorts it
	ref     int32   // the book's index in readOrder.books, once read
	removed bool
}

// NewLastRead returns an empty view.
func NewLastRead() *LastRead {
	return &LastRead{seq: seqGate{}, titles: titleIndex{}, books: map[string]*lastReadBook{}}
}

func (v *LastRead) book(id string) *lastReadBook {
	b := v.books[id]
	if b == nil {
		b = &lastReadBook{id: id}
		v.books[id] = b
	}
	return b
}

// Apply folds one event into the view.
func (v *LastRead) Apply(e *Event) {
	if !v.seq.pass(e) {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		b := v.book(e.BookID)
		b.title, b.authors, b.removed = e.Title, e.Authors, false
		v.titles.add(e)
	case TypeBookRemoved:
		if b := v.books[e.BookID]; b != nil {
			b.removed = true
		}
	case TypeBookRead:
		b := v.book(v.titles.resolve(e))
		if b.title == "" {
			b.title = e.Title
		}
		if b.read && !e.ReadAt.After(b.readAt) {
			return // an older read of a book read since
		}
		if b.read {
			v.reads.stale++
		} else {
			b.ref = int32(len(v.reads.books))
			v.reads.books = append(v.reads.books, b)
		}
		b.read, b.readAt, b.key = true, e.ReadAt, keyOf(e.ReadAt)
		v.reads.insert(readRef{b.key, b.ref})
	}
}

// Latest returns up to limit books, most recently read first.
func (v *LastRead) Latest(limit int) []ReadEntry {
	limit = max(limit, 0) // a negative capacity would panic
	out := make([]ReadEntry, 0, min(limit, v.reads.n-v.reads.stale))
	if limit == 0 {
		return out
	}
	v.reads.newestFirst(func(b *lastReadBook) bool {
		if !b.removed {
			out = append(out, ReadEntry{ID: b.id, Title: b.title, Authors: nonNil(b.authors), ReadAt: b.readAt})
		}
		return len(out) < limit
	})
	return out
}

// readOrder keeps reads sorted by time, oldest first, in blocks of at most
// 2*orderBlock entries. Reads mostly arrive in time order and are
// appended; one with an older read_at finds its place by binary search and
// moves at most a block. (A linked list walked to the place made catching
// up on a log of backdated reads quadratic.) Entries hold no pointers, so
// moving them is a plain copy and the collector skips the blocks.
type readOrder struct {
	blocks [][]readRef // none empty
	books  []*lastReadBook
	n      int // entries, stale ones included
	stale  int
}

// readKey is a time as two integers: comparing them is cheaper than
// comparing time.Time values, and they hold no pointer.
type readKey struct {
	sec  int64
	nsec int32
}

func keyOf(t time.Time) readKey { return readKey{sec: t.Unix(), nsec: int32(t.Nanosecond())} }

func (k readKey) after(o readKey) bool { return k.sec > o.sec || k.sec == o.sec && k.nsec > o.nsec }

type readRef struct {
	readKey
	book int32 // index in readOrder.books
}

// live tells whether r is its book's latest read: a book's read time only
// grows, so a superseded entry never matches again.
func (o *readOrder) live(r readRef) bool { return o.books[r.book].key == r.readKey }

const orderBlock = 512

func (o *readOrder) insert(r readRef) {
	o.n++
	if len(o.blocks) == 0 {
		o.blocks = append(o.blocks, append(make([]readRef, 0, orderBlock), r))
		return
	}
	// Among equal times the read applied last goes after the others: it
	// shows first.
	bi := len(o.blocks) - 1
	if last := o.blocks[bi]; last[len(last)-1].after(r.readKey) {
		bi = sort.Search(len(o.blocks), func(i int) bool {
			b := o.blocks[i]
			return b[len(b)-1].after(r.readKey)
		})
	}
	b := o.blocks[bi]
	j := len(b)
	if j > 0 && b[j-1].after(r.readKey) {
		j = sort.Search(len(b), func(i int) bool { return b[i].after(r.readKey) })
	}
	b = slices.Insert(b, j, r)
	o.blocks[bi] = b
	if len(b) >= 2*orderBlock {
		tail := slices.Clone(b[orderBlock:])
		o.blocks[bi] = b[:orderBlock:orderBlock]
		o.blocks = slices.Insert(o.blocks, bi+1, tail)
	}
	if o.stale > o.n/2 && o.stale > orderBlock {
		o.compact()
	}
}

// compact drops stale entries, so they never outnumber the live ones for
// long: amortised, a constant cost per read.
func (o *readOrder) compact() {
	var blocks [][]readRef
	var cur []readRef
	for _, b := range o.blocks {
		for _, r := range b {
			if !o.live(r) {
				continue
			}
			if cur == nil {
				cur = make([]readRef, 0, orderBlock)
			}
			cur = append(cur, r)
			if len(cur) == orderBlock {
				blocks, cur = append(blocks, cur), nil
			}
		}
	}
	if cur != nil {
		blocks = append(blocks, cur)
	}
	o.n -= o.stale
	o.blocks, o.stale = blocks, 0
}

// newestFirst calls fn with the book of each live entry, newest first,
// while fn returns true.
func (o *readOrder) newestFirst(fn func(*lastReadBook) bool) {
	for bi := len(o.blocks) - 1; bi >= 0; bi-- {
		b := o.blocks[bi]
		for j := len(b) - 1; j >= 0; j-- {
			if o.live(b[j]) && !fn(o.books[b[j].book]) {
				return
			}
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CatalogBook is a book as the catalog shows it.
type CatalogBook struct {
	Book
	AddedAt    time.Time  `json:"added_at"`
	Reads      int        `json:"reads"`
	LastReadAt *time.Time `json:"last_read_at,omitempty"`
}

// Catalog is the view of every book on the shelf.
type Catalog struct {
	seq    seqGate
	titles titleIndex
	books  map[string]*catalogBook
	// order is the books in the order they were added; removed ones stay
	// and are skipped, so offsets stay cheap to walk.
	order []*catalogBook
	live  int
}

type catalogBook struct {
	CatalogBook
	added   bool
	removed bool
	authors map[string]bool // lower-cased, for ?author=
}

// NewCatalog returns an empty view.
func NewCatalog() *Catalog {
	return &Catalog{seq: seqGate{}, titles: titleIndex{}, books: map[string]*catalogBook{}}
}

// Apply folds one event into the view.
func (v *Catalog) Apply(e *Event) {
	if !v.seq.pass(e) {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		b := v.books[e.BookID]
		if b == nil {
			b = &catalogBook{}
			v.books[e.BookID] = b
		}
		if b.added && !b.removed {
			return
		}
		if !b.added {
			v.order = append(v.order, b)
		}
		b.Book = e.Book()
		b.Authors = nonNil(b.Authors)
		b.AddedAt, b.added, b.removed = e.Time, true, false
		b.authors = make(map[string]bool, len(e.Authors))
		for _, a := range e.Authors {
			b.authors[strings.ToLower(strings.TrimSpace(a))] = true
		}
		v.live++
		v.titles.add(e)
	case TypeBookRemoved:
		if b := v.books[e.BookID]; b != nil && b.added && !b.removed {
			b.removed = true
			v.live--
		}
	case TypeBookRead:
		id := v.titles.resolve(e)
		b := v.books[id]
		if b == nil {
			// A read of a book not (yet) added: count it, so an add that
			// shows up later carries its reads.
			b = &catalogBook{}
			v.books[id] = b
		}
		b.Reads++
		if b.LastReadAt == nil || e.ReadAt.After(*b.LastReadAt) {
			t := e.ReadAt
			b.LastReadAt = &t
		}
	}
}

// Get returns one book.
func (v *Catalog) Get(id string) (CatalogBook, error) {
	b := v.books[id]
	switch {
	case b == nil || !b.added:
		return CatalogBook{}, ErrNotFound
	case b.removed:
		return CatalogBook{}, ErrRemoved
	}
	return b.CatalogBook, nil
}

// List returns the books in the order they were added, those with an
// author named author (any case) when it is not empty, skipping offset and
// returning at most limit; total counts every match.
func (v *Catalog) List(author string, limit, offset int) (books []CatalogBook, total int) {
	author = strings.ToLower(strings.TrimSpace(author))
	limit = max(limit, 0) // a negative capacity would panic
	books = make([]CatalogBook, 0, min(limit, v.live))
	for _, b := range v.order {
		if b.removed || (author != "" && !b.authors[author]) {
			continue
		}
		if total >= offset && len(books) < limit {
			books = append(books, b.CatalogBook)
		}
		total++
	}
	return books, total
}

// Len is the number of books on the shelf.
func (v *Catalog) Len() int { return v.live }

// ReadingStats is the answer of the stats view.
type ReadingStats struct {
	BooksRead     int            `json:"books_read"`
	DistinctBooks int            `json:"distinct_books"`
	BooksOnShelf  int            `json:"books_on_shelf"`
	PerYear       map[string]int `json:"per_year"`
	PerAuthor     map[string]int `json:"per_author"`
}

// Stats is the view of reading statistics: reads in total, per year of
// reading, per author.
type Stats struct {
	seq       seqGate
	titles    titleIndex
	authors   map[string][]string // book id -> authors
	removed   map[string]bool
	readBooks map[string]bool
	total     int
	perYear   map[int]int
	perAuthor map[string]int
}

// NewStats returns an empty view.
func NewStats() *Stats {
	return &Stats{
		seq: seqGate{}, titles: titleIndex{}, authors: map[string][]string{},
		removed: map[string]bool{}, readBooks: map[string]bool{},
		perYear: map[int]int{}, perAuthor: map[string]int{},
	}
}

// Apply folds one event into the view. Removing a book does not unread it:
// the statistics are of reading history.
func (v *Stats) Apply(e *Event) {
	if !v.seq.pass(e) {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		v.authors[e.BookID] = e.Authors
		delete(v.removed, e.BookID)
		v.titles.add(e)
	case TypeBookRemoved:
		if _, ok := v.authors[e.BookID]; ok {
			v.removed[e.BookID] = true
		}
	case TypeBookRead:
		id := v.titles.resolve(e)
		v.total++
		v.readBooks[id] = true
		v.perYear[e.ReadAt.Year()]++
		for _, a := range v.authors[id] {
			v.perAuthor[a]++
		}
	}
}

// Snapshot returns the statistics now.
func (v *Stats) Snapshot() ReadingStats {
	s := ReadingStats{
		BooksRead:     v.total,
		DistinctBooks: len(v.readBooks),
		BooksOnShelf:  len(v.authors) - len(v.removed),
		PerYear:       make(map[string]int, len(v.perYear)),
		PerAuthor:     make(map[string]int, len(v.perAuthor)),
	}
	for y, n := range v.perYear {
		s.PerYear[strconv.Itoa(y)] = n
	}
	for a, n := range v.perAuthor {
		s.PerAuthor[a] = n
	}
	return s
}

// TopAuthors returns the n authors read most, most read first.
func (s ReadingStats) TopAuthors(n int) []string {
	names := make([]string, 0, len(s.PerAuthor))
	for a := range s.PerAuthor {
		names = append(names, a)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := s.PerAuthor[b] - s.PerAuthor[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return names[:min(max(n, 0), len(names))]
}
