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
// numbered above the last one applied gets through. Only the aggregate's
// events are numbered (Admit strips the numbering of outside ones), and a
// book's come in one partition, in order, so what the gate lets through
// does not depend on how the partitions interleave. Unnumbered events
// always pass; the reader's log position keeps those from being applied
// twice.
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

// bookFacts is what every view keeps of a book the aggregate added: what
// title resolution and the catalog's order are decided on. All of it comes
// from the book-added event, the same in every replica.
type bookFacts struct {
	id       string
	titleKey string    // TitleKey of the title it was added with
	addedAt  time.Time // the book-added event's time
	added    bool
	removed  bool
}

func (f *bookFacts) add(e *Event) {
	f.titleKey, f.addedAt, f.added, f.removed = TitleKey(e.Title), e.Time, true, false
}

// compareBooks orders books by added time, then id: the catalog's order,
// and the one that picks which of the books sharing a title a title line
// means. Both keys are in the book-added event, so every replica agrees
// whatever order the partitions brought the adds in.
func compareBooks(a, b *bookFacts) int {
	if c := a.addedAt.Compare(b.addedAt); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// titleIndex holds, per TitleKey, the books added with that title and the
// reads known only by it (plain text lines). Which book the lines mean is
// decided when a view is queried, not when a line is applied: a line may
// come before its book's add (from another partition) or before the add of
// another book with that title, and a choice made on arrival would depend
// on the order this replica happened to see them in.
//
// It is built at the first title line, from every book the view holds,
// and kept from then on: a log without text lines (most logs, and every
// one written through the API) costs no entry per book.
type titleIndex struct {
	m     map[string]*titleEntry
	built bool
	// all calls its argument with the facts of every book the view
	// holds, for the build.
	all func(func(*bookFacts))
}

// titlesOf is the title index of a view whose books are books (each
// holding its bookFacts).
func titlesOf[B interface{ facts() *bookFacts }](books map[string]B) titleIndex {
	return titleIndex{all: func(fn func(*bookFacts)) {
		for _, b := range books {
			fn(b.facts())
		}
	}}
}

func (f *bookFacts) facts() *bookFacts { return f }

// get is the entry of a title key, nil if none (or not built).
func (ix *titleIndex) get(key string) *titleEntry { return ix.m[key] }

type titleEntry struct {
	// books added with the title, by compareBooks: one, nearly always,
	// held in one so that adding a book allocates no list.
	books []*bookFacts
	one   [1]*bookFacts
	// The title-only reads: how many, the latest, and the title as the
	// latest wrote it (of reads at the same time, the smaller text), so
	// that the entry's title does not depend on which line came first.
	reads    int
	lastRead time.Time
	text     string
	// id is the entry's own id while no book has the title: TitleBookID,
	// set at the first read.
	id string
	// target is the title's place in LastRead's read order, once a line
	// is read; the other views have none.
	target *readTarget
}

func (ix *titleIndex) entry(key string) *titleEntry {
	t := ix.m[key]
	if t == nil {
		t = &titleEntry{}
		t.books = t.one[:0]
		ix.m[key] = t
	}
	return t
}

// list files an added book under its title, once the index is built.
func (ix *titleIndex) list(f *bookFacts) {
	if ix.built {
		ix.file(f)
	}
}

func (ix *titleIndex) file(f *bookFacts) {
	t := ix.entry(f.titleKey)
	// Books mostly come in the order they were added: after the last.
	if n := len(t.books); n == 0 || compareBooks(t.books[n-1], f) < 0 {
		t.books = append(t.books, f)
		return
	}
	i, _ := slices.BinarySearchFunc(t.books, f, compareBooks)
	t.books = slices.Insert(t.books, i, f)
}

// unlist takes a removed book from under its title before it is added
// again, perhaps with another title and time. The aggregate never re-adds
// an id; an add from elsewhere applied to a view directly may.
func (ix *titleIndex) unlist(f *bookFacts) {
	if t := ix.m[f.titleKey]; t != nil {
		if i, ok := slices.BinarySearchFunc(t.books, f, compareBooks); ok {
			t.books = slices.Delete(t.books, i, i+1)
		}
	}
}

// read counts a title-only read, building the index at the first.
func (ix *titleIndex) read(e *Event) *titleEntry {
	if !ix.built {
		ix.built, ix.m = true, map[string]*titleEntry{}
		ix.all(func(f *bookFacts) {
			if f.added {
				ix.file(f)
			}
		})
	}
	t := ix.entry(TitleKey(e.Title))
	if t.id == "" {
		t.id = TitleBookID(e.Title)
	}
	text := strings.TrimSpace(e.Title)
	if c := e.ReadAt.Compare(t.lastRead); t.reads == 0 || c > 0 || c == 0 && text < t.text {
		t.lastRead, t.text = e.ReadAt, text
	}
	t.reads++
	return t
}

// resolve is the book a title's lines mean: of the books added with the
// title, the first not removed; if every one is removed, the first, so the
// lines are hidden wherever that book is; nil when no book has the title,
// and the lines are an entry of their own.
func (t *titleEntry) resolve() *bookFacts {
	for _, f := range t.books {
		if !f.removed {
			return f
		}
	}
	if len(t.books) > 0 {
		return t.books[0]
	}
	return nil
}

// ReadEntry is one line of the last-read view.
type ReadEntry struct {
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Authors []string  `json:"authors"`
	ReadAt  time.Time `json:"read_at"`
}

// LastRead is the view of the books read most recently: distinct books,
// most recent first. Its answer depends only on the events applied, not on
// the order the partitions interleaved in.
type LastRead struct {
	seq    seqGate
	books  map[string]*lastReadBook
	titles titleIndex
	// reads orders the read targets (a book's reads by id, a title's
	// lines) by their latest read. A target read again gets a new entry;
	// its old one goes stale and is dropped at the next compaction.
	reads readOrder
}

type lastReadBook struct {
	bookFacts
	title   string
	authors []string
	target  readTarget // the reads by id, from before the add too
}

// readTarget is what a read names: a book by its id, or a title. The read
// order sorts targets rather than books because the book a title stands
// for is only decided at query time; a book's read time is the latest of
// its own target's and that of the title resolving to it.
type readTarget struct {
	read   bool
	readAt time.Time
	key    readKey // readAt, as readOrder sorts it
	ref    int32   // the target's index in readOrder.targets, once read
	book   *lastReadBook
	title  *titleEntry
}

// NewLastRead returns an empty view.
func NewLastRead() *LastRead {
	v := &LastRead{seq: seqGate{}, books: map[string]*lastReadBook{}}
	v.titles = titlesOf(v.books)
	return v
}

func (v *LastRead) book(id string) *lastReadBook {
	b := v.books[id]
	if b == nil {
		b = &lastReadBook{bookFacts: bookFacts{id: id}}
		b.target.book = b
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
		if b.added && !b.removed {
			return // a copy of the add: the aggregate adds an id once
		}
		if b.added {
			v.titles.unlist(&b.bookFacts)
		}
		b.bookFacts.add(e)
		b.title, b.authors = e.Title, e.Authors
		v.titles.list(&b.bookFacts)
	case TypeBookRemoved:
		if b := v.books[e.BookID]; b != nil && b.added {
			b.removed = true
		}
	case TypeBookRead:
		if e.BookID != "" {
			v.reads.note(&v.book(e.BookID).target, e.ReadAt)
			return
		}
		t := v.titles.read(e)
		if t.target == nil {
			t.target = &readTarget{title: t}
		}
		v.reads.note(t.target, e.ReadAt)
	}
}

// Latest returns up to limit books, most recently read first; of books
// read at the same time, the smaller id first.
func (v *LastRead) Latest(limit int) []ReadEntry {
	limit = max(limit, 0) // a negative capacity would panic
	out := make([]ReadEntry, 0, min(limit, v.reads.n-v.reads.stale))
	if limit == 0 {
		return out
	}
	// The targets of one read time are gathered and shown by id: the
	// read order cannot sort them so itself, as the book a title stands
	// for is decided here. A book is met once through its id and once
	// through its title at most; newest first, the first meeting is its
	// latest read.
	var (
		group []lastReadShown
		at    readKey
		shown = make(map[string]bool, min(limit, 16))
	)
	flush := func() {
		slices.SortFunc(group, compareShown)
		for _, s := range group {
			if len(out) == limit {
				break
			}
			if !shown[s.ID] {
				shown[s.ID] = true
				out = append(out, s.ReadEntry)
			}
		}
		group = group[:0]
	}
	v.reads.newestFirst(func(t *readTarget) bool {
		if t.key != at {
			flush()
			if len(out) == limit {
				return false
			}
			at = t.key
		}
		if s, ok := v.shows(t); ok {
			group = append(group, s)
		}
		return true
	})
	flush()
	return out
}

// lastReadShown is an entry Latest may show.
type lastReadShown struct {
	ReadEntry
	// untitled: the entry of a title no book has. Should its id equal a
	// book's, the book goes first, so the tie too is the same everywhere.
	untitled bool
}

func compareShown(a, b lastReadShown) int {
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	switch {
	case a.untitled == b.untitled:
		return 0
	case a.untitled:
		return 1
	}
	return -1
}

// shows tells what a target's latest read shows, if anything: a removed
// book, or an id read but never added (the catalog answers 404 for it),
// shows nothing. Title and authors come from the book's add alone.
func (v *LastRead) shows(t *readTarget) (lastReadShown, bool) {
	b := t.book
	if t.title != nil {
		f := t.title.resolve()
		if f == nil {
			return lastReadShown{ReadEntry: ReadEntry{ID: t.title.id, Title: t.title.text, Authors: []string{}, ReadAt: t.readAt},
				untitled: true}, true
		}
		b = v.books[f.id]
	}
	if !b.added || b.removed {
		return lastReadShown{}, false
	}
	return lastReadShown{ReadEntry: ReadEntry{ID: b.id, Title: b.title, Authors: nonNil(b.authors), ReadAt: t.readAt}}, true
}

// sortedBlocks keeps values sorted, in blocks of at most 2*orderBlock
// values. Values mostly arrive in order and are appended; one out of order
// finds its place by binary search and moves at most a block. (A linked
// list walked to the place made catching up on a log of backdated reads
// quadratic; one flat slice would move everything after the place.)
type sortedBlocks[T comparable] struct {
	blocks [][]T // none empty
	n      int
}

const orderBlock = 512

// insert puts x after the values that do not sort after it; after(a, b)
// tells whether a sorts after b.
func (s *sortedBlocks[T]) insert(x T, after func(a, b T) bool) {
	s.n++
	if len(s.blocks) == 0 {
		s.blocks = append(s.blocks, append(make([]T, 0, orderBlock), x))
		return
	}
	bi := len(s.blocks) - 1
	if last := s.blocks[bi]; after(last[len(last)-1], x) {
		bi = sort.Search(len(s.blocks), func(i int) bool {
			b := s.blocks[i]
			return after(b[len(b)-1], x)
		})
	}
	b := s.blocks[bi]
	j := len(b)
	if after(b[j-1], x) {
		j = sort.Search(len(b), func(i int) bool { return after(b[i], x) })
	}
	b = slices.Insert(b, j, x)
	s.blocks[bi] = b
	if len(b) >= 2*orderBlock {
		tail := slices.Clone(b[orderBlock:])
		s.blocks[bi] = b[:orderBlock:orderBlock]
		s.blocks = slices.Insert(s.blocks, bi+1, tail)
	}
}

// remove takes x out, if it is there.
func (s *sortedBlocks[T]) remove(x T, after func(a, b T) bool) {
	// From the first block that does not end before x, through the
	// values that sort neither before nor after it.
	bi := sort.Search(len(s.blocks), func(i int) bool {
		b := s.blocks[i]
		return !after(x, b[len(b)-1])
	})
	for ; bi < len(s.blocks); bi++ {
		b := s.blocks[bi]
		j := sort.Search(len(b), func(i int) bool { return !after(x, b[i]) })
		for ; j < len(b) && !after(b[j], x); j++ {
			if b[j] != x {
				continue
			}
			s.n--
			if b = slices.Delete(b, j, j+1); len(b) == 0 {
				s.blocks = slices.Delete(s.blocks, bi, bi+1)
			} else {
				s.blocks[bi] = b
			}
			return
		}
		if j < len(b) {
			return
		}
	}
}

// ascend calls fn with the values from the offset-th on, in order, while
// fn returns true. Whole blocks before offset are skipped by their length.
func (s *sortedBlocks[T]) ascend(offset int, fn func(T) bool) {
	s.ascendFrom(0, 0, offset, fn)
}

// ascendAfter is ascend from the first value that sorts after pivot, which
// need not be held: a cursor stays good when its value is taken out. It
// finds the place by binary search.
func (s *sortedBlocks[T]) ascendAfter(pivot T, after func(a, b T) bool, offset int, fn func(T) bool) {
	c := s.seek(func(x T) bool { return after(x, pivot) })
	s.ascendFrom(c.bi, c.j, offset, fn)
}

// blockCursor is a place in a sortedBlocks, for walking it one value at a
// time; it is good until the blocks change.
type blockCursor[T comparable] struct {
	s     *sortedBlocks[T]
	bi, j int
}

// seek returns a cursor at the first value for which past is true; past
// must be false for a prefix of the values and true for the rest.
func (s *sortedBlocks[T]) seek(past func(T) bool) blockCursor[T] {
	bi := sort.Search(len(s.blocks), func(i int) bool {
		b := s.blocks[i]
		return past(b[len(b)-1])
	})
	if bi == len(s.blocks) {
		return blockCursor[T]{s: s, bi: bi}
	}
	b := s.blocks[bi]
	return blockCursor[T]{s: s, bi: bi, j: sort.Search(len(b), func(i int) bool { return past(b[i]) })}
}

// value returns the value at the cursor, false past the end.
func (c *blockCursor[T]) value() (T, bool) {
	if c.bi >= len(c.s.blocks) {
		var zero T
		return zero, false
	}
	return c.s.blocks[c.bi][c.j], true
}

// next moves the cursor to the next value.
func (c *blockCursor[T]) next() {
	if c.j++; c.j >= len(c.s.blocks[c.bi]) {
		c.bi, c.j = c.bi+1, 0
	}
}

// ascendFrom calls fn with the values from the j-th of block bi on,
// skipping offset of them, while fn returns true.
func (s *sortedBlocks[T]) ascendFrom(bi, j, offset int, fn func(T) bool) {
	offset = max(offset, 0) + j
	for _, b := range s.blocks[bi:] {
		if offset >= len(b) {
			offset -= len(b)
			continue
		}
		for _, x := range b[offset:] {
			if !fn(x) {
				return
			}
		}
		offset = 0
	}
}

// readOrder keeps the read targets sorted by their latest read, oldest
// first. Entries hold no pointers, so moving them is a plain copy and the
// collector skips the blocks.
type readOrder struct {
	sortedBlocks[readRef] // n counts stale entries too
	targets               []*readTarget
	stale                 int
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
	target int32 // index in readOrder.targets
}

func refAfter(a, b readRef) bool { return a.after(b.readKey) }

// live tells whether r is its target's latest read: a target's read time
// only grows, so a superseded entry never matches again.
func (o *readOrder) live(r readRef) bool { return o.targets[r.target].key == r.readKey }

// note records a read of t at the given time; an older read of a target
// read since changes nothing.
func (o *readOrder) note(t *readTarget, at time.Time) {
	if t.read && !at.After(t.readAt) {
		return
	}
	if t.read {
		o.stale++
	} else {
		t.ref = int32(len(o.targets))
		o.targets = append(o.targets, t)
	}
	t.read, t.readAt, t.key = true, at, keyOf(at)
	o.insert(readRef{t.key, t.ref}, refAfter)
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

// newestFirst calls fn with the target of each live entry, newest first,
// while fn returns true.
func (o *readOrder) newestFirst(fn func(*readTarget) bool) {
	for bi := len(o.blocks) - 1; bi >= 0; bi-- {
		b := o.blocks[bi]
		for j := len(b) - 1; j >= 0; j-- {
			if o.live(b[j]) && !fn(o.targets[b[j].target]) {
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

// Catalog is the view of every book on the shelf. Its answer depends only
// on the events applied, not on the order the partitions interleaved in.
type Catalog struct {
	seq    seqGate
	books  map[string]*catalogBook
	titles titleIndex
	// order holds the books on the shelf by compareBooks, the order List
	// pages in: by the add's time and id rather than the order this
	// replica saw the adds in, so every replica pages alike. A removed
	// book leaves it.
	order sortedBlocks[*catalogBook]
	// byAuthor holds the same, per author (AuthorKey): an author's page
	// and its total cost what the page does, not a walk of the shelf.
	byAuthor map[string]*sortedBlocks[*catalogBook]
	// words finds the books on the shelf by the words of their titles
	// and authors, for ?q=.
	words wordIndex
}

type catalogBook struct {
	bookFacts
	book Book
	// words are the book's search words (see foldedWords).
	words string
	// The reads by id. They count from before the add too: a read from
	// outside the aggregate may come first, from another partition.
	reads    int
	lastRead time.Time
}

// AuthorKey is how ?author= matches a book's author: case and surrounding
// space do not matter.
func AuthorKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// authorKeys are the distinct AuthorKeys of b's authors.
func (b *catalogBook) authorKeys() []string {
	keys := make([]string, 0, len(b.book.Authors))
	for _, a := range b.book.Authors {
		if k := AuthorKey(a); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func catalogAfter(a, b *catalogBook) bool { return compareBooks(&a.bookFacts, &b.bookFacts) > 0 }

// NewCatalog returns an empty view.
func NewCatalog() *Catalog {
	v := &Catalog{seq: seqGate{}, books: map[string]*catalogBook{}, byAuthor: map[string]*sortedBlocks[*catalogBook]{}}
	v.titles = titlesOf(v.books)
	return v
}

// shelve puts b in the order, under each of its authors and its words.
func (v *Catalog) shelve(b *catalogBook) {
	v.order.insert(b, catalogAfter)
	v.words.add(b)
	for _, k := range b.authorKeys() {
		idx := v.byAuthor[k]
		if idx == nil {
			idx = &sortedBlocks[*catalogBook]{}
			v.byAuthor[k] = idx
		}
		idx.insert(b, catalogAfter)
	}
}

// unshelve takes b out of the order, from under its authors and words.
func (v *Catalog) unshelve(b *catalogBook) {
	v.order.remove(b, catalogAfter)
	v.words.remove(b)
	for _, k := range b.authorKeys() {
		if idx := v.byAuthor[k]; idx != nil {
			if idx.remove(b, catalogAfter); idx.n == 0 {
				delete(v.byAuthor, k)
			}
		}
	}
}

func (v *Catalog) book(id string) *catalogBook {
	b := v.books[id]
	if b == nil {
		b = &catalogBook{bookFacts: bookFacts{id: id}}
		v.books[id] = b
	}
	return b
}

// Apply folds one event into the view.
func (v *Catalog) Apply(e *Event) {
	if !v.seq.pass(e) {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		b := v.book(e.BookID)
		if b.added && !b.removed {
			return // a copy of the add: the aggregate adds an id once
		}
		if b.added {
			v.titles.unlist(&b.bookFacts)
		}
		b.bookFacts.add(e)
		b.book = e.Book()
		b.book.Authors = nonNil(b.book.Authors)
		b.words = foldedWords(b.book)
		v.titles.list(&b.bookFacts)
		v.shelve(b)
	case TypeBookRemoved:
		if b := v.books[e.BookID]; b != nil && b.added && !b.removed {
			b.removed = true
			v.unshelve(b)
		}
	case TypeBookRead:
		if e.BookID == "" {
			v.titles.read(e)
			return
		}
		b := v.book(e.BookID)
		if b.reads == 0 || e.ReadAt.After(b.lastRead) {
			b.lastRead = e.ReadAt
		}
		b.reads++
	}
}

// show is b as the catalog shows it: its reads by id and those of the
// title lines that mean it.
func (v *Catalog) show(b *catalogBook) CatalogBook {
	c := CatalogBook{Book: b.book, AddedAt: b.addedAt, Reads: b.reads}
	last := b.lastRead
	if t := v.titles.get(b.titleKey); t != nil && t.reads > 0 && t.resolve() == &b.bookFacts {
		if c.Reads == 0 || t.lastRead.After(last) {
			last = t.lastRead
		}
		c.Reads += t.reads
	}
	if c.Reads > 0 {
		c.LastReadAt = &last
	}
	return c
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
	return v.show(b), nil
}

// List returns the books by the time they were added (then id), those
// with an author named author (any case) when it is not empty, skipping
// offset and returning at most limit; total counts every match.
func (v *Catalog) List(author string, limit, offset int) (books []CatalogBook, total int) {
	books, total, _, _ = v.Page(PageQuery{Author: author, Limit: limit, Offset: offset})
	return books, total
}

// PageQuery asks for one page of the catalog.
type PageQuery struct {
	// Author, when not empty, keeps the books with an author of that name
	// (AuthorKey: any case).
	Author string
	// Q, when not empty, keeps the books found by every word of it: each
	// a prefix of a word of the title or of an author's name
	// (SearchWords: case and accents do not matter).
	Q     string
	Limit int
	// After, when not empty, is a cursor: the page starts after that
	// book, the Next of the page before. It stays good when that book is
	// removed meanwhile. Offset books are skipped from there.
	After  string
	Offset int
}

// Page returns one page of books, by the time they were added (then id):
// at most q.Limit, how many match in all, and the cursor of the page
// after ("" when this is the last). It costs the page, and a binary
// search for a cursor, not a walk of the shelf. The error is a
// *FieldError when q.After names no book this catalog knows.
func (v *Catalog) Page(q PageQuery) (books []CatalogBook, total int, next string, err error) {
	if q.Q != "" {
		return v.search(q)
	}
	idx := &v.order
	if q.Author != "" {
		if idx = v.byAuthor[AuthorKey(q.Author)]; idx == nil {
			idx = &sortedBlocks[*catalogBook]{}
		}
	}
	limit := max(q.Limit, 0) // a negative capacity would panic
	books = make([]CatalogBook, 0, min(limit, idx.n))
	if limit == 0 {
		return books, idx.n, "", nil
	}
	// One more than asked, to know whether a page follows.
	var last *catalogBook
	more := false
	take := func(b *catalogBook) bool {
		if len(books) == limit {
			more = true
			return false
		}
		books = append(books, v.show(b))
		last = b
		return true
	}
	if q.After == "" {
		idx.ascend(q.Offset, take)
	} else {
		pivot, err := v.cursor(q.After)
		if err != nil {
			return nil, 0, "", err
		}
		idx.ascendAfter(pivot, catalogAfter, q.Offset, take)
	}
	if more {
		next = last.id
	}
	return books, idx.n, next, nil
}

// cursor is the book a page starts after: one added, removed since or
// not, so that a cursor outlives its book.
func (v *Catalog) cursor(after string) (*catalogBook, error) {
	b := v.books[after]
	if b == nil || !b.added {
		return nil, invalid("after", "%q is no book of this catalog; use the next cursor of a page", after)
	}
	return b, nil
}

// search is Page for a query of words. Its total takes a walk of the
// books the rarest word's prefix matches (see wordIndex.search).
func (v *Catalog) search(q PageQuery) (books []CatalogBook, total int, next string, err error) {
	words := SearchWords(q.Q)
	switch {
	case len(words) == 0:
		return nil, 0, "", invalid("q", "%q has no word to search for (letters or digits)", q.Q)
	case len(words) > MaxQueryWords:
		return nil, 0, "", invalid("q", "%d words, at most %d", len(words), MaxQueryWords)
	}
	var pivot *catalogBook
	if q.After != "" {
		if pivot, err = v.cursor(q.After); err != nil {
			return nil, 0, "", err
		}
	}
	author := AuthorKey(q.Author)
	limit, skip := max(q.Limit, 0), max(q.Offset, 0)
	books = make([]CatalogBook, 0, min(limit, 16))
	var last *catalogBook
	v.words.search(words, func(b *catalogBook) bool {
		if author != "" && !slices.Contains(b.authorKeys(), author) {
			return true
		}
		total++
		switch {
		case pivot != nil && !catalogAfter(b, pivot):
		case skip > 0:
			skip--
		case len(books) < limit:
			books = append(books, v.show(b))
			last = b
		case next == "" && last != nil:
			next = last.id // a book follows the page
		}
		return true
	})
	return books, total, next, nil
}

// Len is the number of books on the shelf.
func (v *Catalog) Len() int { return v.order.n }

// ReadingStats is the answer of the stats view.
type ReadingStats struct {
	BooksRead     int            `json:"books_read"`
	DistinctBooks int            `json:"distinct_books"`
	BooksOnShelf  int            `json:"books_on_shelf"`
	PerYear       map[string]int `json:"per_year"`
	PerAuthor     map[string]int `json:"per_author"`
}

// Stats is the view of reading statistics: reads in total, per year of
// reading, per author. Its answer depends only on the events applied, not
// on the order the partitions interleaved in.
type Stats struct {
	seq    seqGate
	books  map[string]*statsBook
	titles titleIndex
	// readTitles are the titles read by title-only lines. They are few,
	// so Snapshot gives their reads to the book they mean (and its
	// authors) then, when that book is decided.
	readTitles []*titleEntry
	total      int
	perYear    map[int]int
	// perAuthor counts the reads by id of added books: a read counts for
	// the authors once both it and its book's add are in, whichever came
	// first.
	perAuthor map[string]int
	readIDs   int // distinct ids read by id
	onShelf   int
}

type statsBook struct {
	bookFacts
	authors []string
	reads   int // by id, from before the add too
}

// NewStats returns an empty view.
func NewStats() *Stats {
	v := &Stats{
		seq: seqGate{}, books: map[string]*statsBook{},
		perYear: map[int]int{}, perAuthor: map[string]int{},
	}
	v.titles = titlesOf(v.books)
	return v
}

func (v *Stats) book(id string) *statsBook {
	b := v.books[id]
	if b == nil {
		b = &statsBook{bookFacts: bookFacts{id: id}}
		v.books[id] = b
	}
	return b
}

// credit adds n reads to each author, keeping no author at zero, so that
// a snapshot holds the same names however it came about.
func credit(perAuthor map[string]int, authors []string, n int) {
	if n == 0 {
		return
	}
	for _, a := range authors {
		if perAuthor[a] += n; perAuthor[a] == 0 {
			delete(perAuthor, a)
		}
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
		b := v.book(e.BookID)
		if b.added && !b.removed {
			return // a copy of the add: the aggregate adds an id once
		}
		if b.added {
			v.titles.unlist(&b.bookFacts)
			credit(v.perAuthor, b.authors, -b.reads)
		}
		b.bookFacts.add(e)
		b.authors = e.Authors
		v.titles.list(&b.bookFacts)
		credit(v.perAuthor, b.authors, b.reads)
		v.onShelf++
	case TypeBookRemoved:
		if b := v.books[e.BookID]; b != nil && b.added && !b.removed {
			b.removed = true
			v.onShelf--
		}
	case TypeBookRead:
		v.total++
		v.perYear[e.ReadAt.Year()]++
		if e.BookID == "" {
			if t := v.titles.read(e); t.reads == 1 {
				v.readTitles = append(v.readTitles, t)
			}
			return
		}
		b := v.book(e.BookID)
		if b.reads == 0 {
			v.readIDs++
		}
		b.reads++
		if b.added {
			credit(v.perAuthor, b.authors, 1)
		}
	}
}

// Snapshot returns the statistics now.
func (v *Stats) Snapshot() ReadingStats {
	s := ReadingStats{
		BooksRead:     v.total,
		DistinctBooks: v.readIDs,
		BooksOnShelf:  v.onShelf,
		PerYear:       make(map[string]int, len(v.perYear)),
		PerAuthor:     make(map[string]int, len(v.perAuthor)),
	}
	for y, n := range v.perYear {
		s.PerYear[strconv.Itoa(y)] = n
	}
	for a, n := range v.perAuthor {
		s.PerAuthor[a] = n
	}
	for _, t := range v.readTitles {
		id := t.id
		if f := t.resolve(); f != nil {
			id = f.id
			credit(s.PerAuthor, v.books[id].authors, t.reads)
		}
		if b := v.books[id]; b == nil || b.reads == 0 {
			s.DistinctBooks++ // not read by id as well
		}
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
