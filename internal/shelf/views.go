package shelf

import (
	"cmp"
	"slices"
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

// bookFacts is what every view keeps of a book: the last event number it
// applied, and what title resolution and the catalog's order are decided
// on. All of it comes from the aggregate's events, the same in every
// replica. Its fields are four bytes each, twenty in all, a million of
// them 20 MB.
type bookFacts struct {
	// seq is the number of the last event applied (see viewBooks.pass),
	// or bigSeq when it is past what four bytes hold.
	seq   uint32
	title uint32 // the title it was added with, in viewBooks.titles
	// The book-added event's time: seconds in two halves, nanoseconds
	// with the added and removed bits above them.
	addedLo uint32
	addedHi int32
	nsec    uint32
}

const (
	bigSeq      = 1<<32 - 1
	factAdded   = 1 << 31
	factRemoved = 1 << 30
	factNsec    = factRemoved - 1 // nanoseconds are below 1<<30
)

func (f *bookFacts) added() bool   { return f.nsec&factAdded != 0 }
func (f *bookFacts) removed() bool { return f.nsec&factRemoved != 0 }

func (f *bookFacts) addedAt() readKey {
	return readKey{int64(f.addedHi)<<32 | int64(f.addedLo), int32(f.nsec & factNsec)}
}

// addedNow records an add at k: the book is on the shelf.
func (f *bookFacts) addedNow(k readKey) {
	f.addedLo, f.addedHi, f.nsec = uint32(k.sec), int32(k.sec>>32), uint32(k.nsec)|factAdded
}

func (f *bookFacts) remove() { f.nsec |= factRemoved }

// viewBooks numbers the books a view knows and keeps their facts; each
// view keeps what else it needs of a book in chunks by the same numbers.
type viewBooks struct {
	strs arena
	// titles are the books' titles, as words (see wordCodec).
	titles  blobs
	words   wordCodec
	scratch []byte
	ids     idTable
	facts   chunks[bookFacts]
	// bigSeqs are the event numbers past what bookFacts.seq holds: none
	// the aggregate writes in practice (a book of four billion events),
	// but a number is a number.
	bigSeqs map[int32]int64
	// grow is called when a book gets its number, for the view to make
	// room for it.
	grow func()
}

func (vb *viewBooks) init(grow func()) {
	vb.ids, vb.words, vb.grow = newIDTable(), newWordCodec(), grow
	vb.titles.put(nil) // a book not added has the title at 0: none
}

// number returns the number of the book id, giving it one if it has none.
func (vb *viewBooks) number(id string) int32 {
	if n, ok := vb.ids.find(id); ok {
		return n
	}
	n := vb.ids.add(id)
	vb.facts.add(bookFacts{})
	vb.grow()
	return n
}

// find returns the number of the book id, false if the view knows none.
func (vb *viewBooks) find(id string) (int32, bool) { return vb.ids.find(id) }

func (vb *viewBooks) at(n int32) *bookFacts { return vb.facts.at(n) }

func (vb *viewBooks) seq(n int32) int64 {
	if s := vb.at(n).seq; s != bigSeq {
		return int64(s)
	}
	return vb.bigSeqs[n]
}

func (vb *viewBooks) setSeq(n int32, seq int64) {
	if seq < bigSeq {
		vb.at(n).seq = uint32(seq)
		return
	}
	if vb.bigSeqs == nil {
		vb.bigSeqs = map[int32]int64{}
	}
	vb.at(n).seq, vb.bigSeqs[n] = bigSeq, seq
}

// pass drops events a view has already applied: per book, only an event
// numbered above the last one applied gets through. Only the aggregate's
// events are numbered (Admit strips the numbering of outside ones), and a
// book's come in one partition, in order, so what the gate lets through
// does not depend on how the partitions interleave. Unnumbered events
// always pass; the reader's log position keeps those from being applied
// twice.
//
// It returns the book's number when it looked it up, -1 when not: give it
// to numberOf, to look it up once.
func (vb *viewBooks) pass(e *Event) (int32, bool) {
	if e.Seq == 0 || e.BookID == "" {
		return -1, true
	}
	n := vb.number(e.BookID)
	if e.Seq <= vb.seq(n) {
		return n, false
	}
	vb.setSeq(n, e.Seq)
	return n, true
}

// numberOf is the number of e's book: n, if pass looked it up.
func (vb *viewBooks) numberOf(e *Event, n int32) int32 {
	if n >= 0 {
		return n
	}
	return vb.number(e.BookID)
}

// add records the facts of a book-added event for book n; false when it
// is a copy of the add of a book on the shelf (the aggregate adds an id
// once), which changes nothing.
func (vb *viewBooks) add(n int32, e *Event, titles *titleIndex) bool {
	f := vb.at(n)
	if f.added() && !f.removed() {
		return false
	}
	if f.added() {
		titles.unlist(n)
	}
	vb.scratch = vb.words.encode(vb.scratch[:0], e.Title)
	f.title = vb.titles.put(vb.scratch)
	f.addedNow(keyOf(e.Time))
	titles.list(n)
	return true
}

// remove marks book n removed; false if it was not on the shelf.
func (vb *viewBooks) remove(id string) (int32, bool) {
	n, ok := vb.find(id)
	if !ok {
		return 0, false
	}
	f := vb.at(n)
	if !f.added() || f.removed() {
		return 0, false
	}
	f.remove()
	return n, true
}

func (vb *viewBooks) title(n int32) string {
	var buf [64]byte
	return string(vb.words.decode(buf[:0], vb.titles.get(vb.at(n).title)))
}

func (vb *viewBooks) titleKey(n int32) string { return TitleKey(vb.title(n)) }

// compare orders books by added time, then id: the catalog's order, and
// the one that picks which of the books sharing a title a title line
// means. Both keys are in the book-added event, so every replica agrees
// whatever order the partitions brought the adds in.
func (vb *viewBooks) compare(a, b int32) int {
	if c := vb.at(a).addedAt().compare(vb.at(b).addedAt()); c != 0 {
		return c
	}
	return vb.ids.compareIDs(a, b)
}

// orderKey is a book's place in compare's order, read out once for a
// sort: the added time, and a numbered id's place among its stem's, so
// that most comparisons read neither the facts nor the id table.
type orderKey struct {
	sec      int64
	nsec     int32
	n        int32
	numbered bool
	id       idOrder
}

// sortByOrder sorts book numbers as compare orders them.
func (vb *viewBooks) sortByOrder(p []int32) []int32 {
	keys := make([]orderKey, len(p))
	for i, n := range p {
		at := vb.at(n).addedAt()
		keys[i] = orderKey{sec: at.sec, nsec: at.nsec, n: n}
		keys[i].id, keys[i].numbered = vb.ids.codec.order(vb.ids.form(n))
	}
	keys = sortParallel(keys, func(a, b orderKey) int {
		if c := cmp.Compare(a.sec, b.sec); c != 0 {
			return c
		}
		if c := cmp.Compare(a.nsec, b.nsec); c != 0 {
			return c
		}
		if a.numbered && b.numbered && a.id.stem == b.id.stem {
			return a.id.compare(b.id)
		}
		return vb.ids.compareIDs(a.n, b.n)
	})
	for i, k := range keys {
		p[i] = k.n
	}
	return p
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
	vb    *viewBooks
}

type titleEntry struct {
	// books added with the title, by viewBooks.compare: one, nearly
	// always, held in one so that adding a book allocates no list.
	books []int32
	one   [1]int32
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
	// is read there; num numbers it among the view's title targets.
	target readTarget
	num    int32
}

// get is the entry of a title key, nil if none (or not built).
func (ix *titleIndex) get(key string) *titleEntry { return ix.m[key] }

func (ix *titleIndex) entry(key string) *titleEntry {
	t := ix.m[key]
	if t == nil {
		t = &titleEntry{num: -1}
		t.books = t.one[:0]
		ix.m[key] = t
	}
	return t
}

// list files an added book under its title, once the index is built.
func (ix *titleIndex) list(n int32) {
	if ix.built {
		ix.file(n)
	}
}

func (ix *titleIndex) file(n int32) {
	t := ix.entry(ix.vb.titleKey(n))
	// Books mostly come in the order they were added: after the last.
	if k := len(t.books); k == 0 || ix.vb.compare(t.books[k-1], n) < 0 {
		t.books = append(t.books, n)
		return
	}
	i, _ := slices.BinarySearchFunc(t.books, n, ix.vb.compare)
	t.books = slices.Insert(t.books, i, n)
}

// unlist takes a removed book from under its title before it is added
// again, perhaps with another title and time. The aggregate never re-adds
// an id; an add from elsewhere applied to a view directly may.
func (ix *titleIndex) unlist(n int32) {
	if t := ix.m[ix.vb.titleKey(n)]; t != nil {
		if i, ok := slices.BinarySearchFunc(t.books, n, ix.vb.compare); ok {
			t.books = slices.Delete(t.books, i, i+1)
		}
	}
}

// read counts a title-only read, building the index at the first.
func (ix *titleIndex) read(e *Event) *titleEntry {
	if !ix.built {
		ix.built, ix.m = true, map[string]*titleEntry{}
		for n := range ix.vb.facts.n {
			if ix.vb.at(n).added() {
				ix.file(n)
			}
		}
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
// lines are hidden wherever that book is; false when no book has the
// title, and the lines are an entry of their own.
func (t *titleEntry) resolve(vb *viewBooks) (int32, bool) {
	for _, n := range t.books {
		if !vb.at(n).removed() {
			return n, true
		}
	}
	if len(t.books) > 0 {
		return t.books[0], true
	}
	return 0, false
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
	books   viewBooks
	more    chunks[lastReadBook]
	authors authorStore
	titles  titleIndex
	// reads orders the read targets (a book's reads by id, a title's
	// lines) by their latest read. A target read again gets a new entry;
	// its old one goes stale and is dropped at the next compaction.
	reads readOrder
	// titleTargets are the titles read, by their num.
	titleTargets []*titleEntry
}

type lastReadBook struct {
	authors authorList
	target  readTarget // the reads by id, from before the add too
}

// readTarget is what a read names: a book by its id, or a title. The read
// order sorts targets rather than books because the book a title stands
// for is only decided at query time; a book's read time is the latest of
// its own target's and that of the title resolving to it.
type readTarget struct {
	key  readKey // the latest read
	read bool
}

// A target's code in the read order: a book's number, or the complement
// of a title's num.
func titleCode(num int32) int32 { return ^num }

// NewLastRead returns an empty view.
func NewLastRead() *LastRead {
	v := &LastRead{authors: newAuthorStore()}
	v.books.init(func() { v.more.add(lastReadBook{}) })
	v.titles.vb = &v.books
	v.reads.key = v.targetKey
	return v
}

func (v *LastRead) targetKey(code int32) readKey {
	if code < 0 {
		return v.titleTargets[^code].target.key
	}
	return v.more.at(code).target.key
}

// Apply folds one event into the view.
func (v *LastRead) Apply(e *Event) {
	known, ok := v.books.pass(e)
	if !ok {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		n := v.books.numberOf(e, known)
		if v.books.add(n, e, &v.titles) {
			v.more.at(n).authors = v.authors.put(e.Authors)
		}
	case TypeBookRemoved:
		v.books.remove(e.BookID)
	case TypeBookRead:
		if e.BookID != "" {
			n := v.books.numberOf(e, known)
			v.reads.note(n, &v.more.at(n).target, e.ReadAt)
			return
		}
		t := v.titles.read(e)
		if t.num < 0 {
			t.num = int32(len(v.titleTargets))
			v.titleTargets = append(v.titleTargets, t)
		}
		v.reads.note(titleCode(t.num), &t.target, e.ReadAt)
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
	v.reads.newestFirst(func(code int32, key readKey) bool {
		if key != at {
			flush()
			if len(out) == limit {
				return false
			}
			at = key
		}
		if s, ok := v.shows(code, key); ok {
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

// shows tells what a target's latest read, at key, shows, if anything: a
// removed book, or an id read but never added (the catalog answers 404
// for it), shows nothing. Title and authors come from the book's add
// alone.
func (v *LastRead) shows(code int32, key readKey) (lastReadShown, bool) {
	n := code
	if code < 0 {
		t := v.titleTargets[^code]
		var ok bool
		if n, ok = t.resolve(&v.books); !ok {
			return lastReadShown{ReadEntry: ReadEntry{ID: t.id, Title: t.text, Authors: []string{}, ReadAt: key.time()},
				untitled: true}, true
		}
	}
	if f := v.books.at(n); !f.added() || f.removed() {
		return lastReadShown{}, false
	}
	return lastReadShown{ReadEntry: ReadEntry{ID: v.books.ids.id(n), Title: v.books.title(n),
		Authors: v.authors.names(v.more.at(n).authors), ReadAt: key.time()}}, true
}

// readOrder keeps the read targets sorted by their latest read, oldest
// first. Entries hold no pointers, so moving them is a plain copy and the
// collector skips the blocks.
type readOrder struct {
	sortedBlocks[readRef] // n counts stale entries too
	stale                 int
	// key is the latest read of a target, by its code.
	key func(code int32) readKey
}

type readRef struct {
	readKey
	target int32 // the target's code
}

func refAfter(a, b readRef) bool { return a.after(b.readKey) }

// live tells whether r is its target's latest read: a target's read time
// only grows, so a superseded entry never matches again.
func (o *readOrder) live(r readRef) bool { return o.key(r.target) == r.readKey }

// note records a read at the given time of the target t, coded code; an
// older read of a target read since changes nothing.
func (o *readOrder) note(code int32, t *readTarget, at time.Time) {
	k := keyOf(at)
	if t.read && !k.after(t.key) {
		return
	}
	if t.read {
		o.stale++
	}
	t.read, t.key = true, k
	o.insert(readRef{k, code}, refAfter)
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

// newestFirst calls fn with the code and read time of each live entry,
// newest first, while fn returns true.
func (o *readOrder) newestFirst(fn func(code int32, key readKey) bool) {
	for bi := len(o.blocks) - 1; bi >= 0; bi-- {
		b := o.blocks[bi]
		for j := len(b) - 1; j >= 0; j-- {
			if o.live(b[j]) && !fn(b[j].target, b[j].readKey) {
				return
			}
		}
	}
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
	books   viewBooks
	more    chunks[catalogBook]
	authors authorStore
	titles  titleIndex
	// order holds the books on the shelf by viewBooks.compare, the order
	// List pages in: by the add's time and id rather than the order this
	// replica saw the adds in, so every replica pages alike. A removed
	// book leaves it.
	order unsortedList[int32]
	// byAuthor holds the same, per author (by the number of its
	// AuthorKey): an author's page and its total cost what the page
	// does, not a walk of the shelf.
	byAuthor map[uint32]*unsortedList[int32]
	// words finds the books on the shelf by the words of their titles
	// and authors, for ?q=.
	words wordIndex
	// lists are the order, byAuthor's and words' lists: books are
	// pushed unsorted and sorted in at the next query.
	lists   listSet
	scratch []byte
}

type catalogBook struct {
	authors authorList
	isbn    strRef
	// words are the book's search words (see foldedWords).
	words strRef
	year  int32
	// The reads by id. They count from before the add too: a read from
	// outside the aggregate may come first, from another partition.
	reads        int32
	lastReadSec  int64
	lastReadNsec int32
}

// AuthorKey is how ?author= matches a book's author: case and surrounding
// space do not matter.
func AuthorKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// NewCatalog returns an empty view.
func NewCatalog() *Catalog {
	v := &Catalog{authors: newAuthorStore(), byAuthor: map[uint32]*unsortedList[int32]{}}
	v.books.init(func() { v.more.add(catalogBook{}) })
	v.titles.vb = &v.books
	v.lists = newListSet(v.books.compare)
	v.lists.master, v.lists.numbers, v.lists.sortMaster = &v.order, func() int32 { return v.books.facts.n }, v.books.sortByOrder
	v.words.lists = &v.lists
	v.words.wordsOf = func(n int32) []byte { return v.books.strs.bytes(v.more.at(n).words) }
	return v
}

// shelve puts book n in the order, under each of its authors and its
// words.
func (v *Catalog) shelve(n int32) {
	v.lists.push(&v.order, n)
	v.words.add(n)
	for _, k := range v.authors.keys(v.more.at(n).authors) {
		idx := v.byAuthor[k]
		if idx == nil {
			idx = &unsortedList[int32]{}
			v.byAuthor[k] = idx
		}
		v.lists.push(idx, n)
	}
}

// unshelve takes book n out of the order, from under its authors and
// words.
func (v *Catalog) unshelve(n int32) {
	v.lists.remove(&v.order, n)
	v.words.remove(n)
	for _, k := range v.authors.keys(v.more.at(n).authors) {
		if idx := v.byAuthor[k]; idx != nil {
			if v.lists.remove(idx, n); idx.n == 0 {
				delete(v.byAuthor, k)
			}
		}
	}
}

// Apply folds one event into the view.
func (v *Catalog) Apply(e *Event) {
	known, ok := v.books.pass(e)
	if !ok {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		n := v.books.numberOf(e, known)
		if !v.books.add(n, e, &v.titles) {
			return
		}
		b := v.more.at(n)
		b.authors = v.authors.put(e.Authors)
		b.isbn, b.year = v.books.strs.put(e.ISBN), int32(e.Year)
		v.scratch = appendFoldedWords(v.scratch[:0], e.Title, e.Authors)
		b.words = v.books.strs.putBytes(v.scratch)
		v.shelve(n)
	case TypeBookRemoved:
		if n, ok := v.books.remove(e.BookID); ok {
			v.unshelve(n)
		}
	case TypeBookRead:
		if e.BookID == "" {
			v.titles.read(e)
			return
		}
		b := v.more.at(v.books.numberOf(e, known))
		if k := keyOf(e.ReadAt); b.reads == 0 || k.after(readKey{b.lastReadSec, b.lastReadNsec}) {
			b.lastReadSec, b.lastReadNsec = k.sec, k.nsec
		}
		b.reads++
	}
}

// show is book n as the catalog shows it: its reads by id and those of
// the title lines that mean it.
func (v *Catalog) show(n int32) CatalogBook {
	f, b := v.books.at(n), v.more.at(n)
	c := CatalogBook{
		Book: Book{ID: v.books.ids.id(n), Title: v.books.title(n), Authors: v.authors.names(b.authors),
			Year: int(b.year), ISBN: v.books.strs.str(b.isbn)},
		AddedAt: f.addedAt().time(), Reads: int(b.reads),
	}
	last := readKey{b.lastReadSec, b.lastReadNsec}.time()
	if v.titles.built { // else no title line is read
		if t := v.titles.get(v.books.titleKey(n)); t != nil && t.reads > 0 {
			if r, ok := t.resolve(&v.books); ok && r == n {
				if c.Reads == 0 || t.lastRead.After(last) {
					last = t.lastRead
				}
				c.Reads += t.reads
			}
		}
	}
	if c.Reads > 0 {
		c.LastReadAt = &last
	}
	return c
}

// Get returns one book.
func (v *Catalog) Get(id string) (CatalogBook, error) {
	n, ok := v.books.find(id)
	switch {
	case !ok || !v.books.at(n).added():
		return CatalogBook{}, ErrNotFound
	case v.books.at(n).removed():
		return CatalogBook{}, ErrRemoved
	}
	return v.show(n), nil
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

// authorIndex is the list of the books by author (any case), empty if
// none has that author.
func (v *Catalog) authorIndex(author string) *sortedBlocks[int32] {
	if k, ok := v.authors.ns.keys[AuthorKey(author)]; ok {
		if idx := v.byAuthor[k]; idx != nil {
			return &idx.sortedBlocks
		}
	}
	return &sortedBlocks[int32]{}
}

// Settle sorts the books applied since the last query into the indexes.
// A query does it first; a reader may do it ahead of the queries, as a
// view that has caught up does, so the first query does not wait for it.
func (v *Catalog) Settle() { v.lists.settle() }

// Page returns one page of books, by the time they were added (then id):
// at most q.Limit, how many match in all, and the cursor of the page
// after ("" when this is the last). It costs the page, and a binary
// search for a cursor, not a walk of the shelf. The error is a
// *FieldError when q.After names no book this catalog knows.
func (v *Catalog) Page(q PageQuery) (books []CatalogBook, total int, next string, err error) {
	v.lists.settle()
	if q.Q != "" {
		return v.search(q)
	}
	idx := &v.order.sortedBlocks
	if q.Author != "" {
		idx = v.authorIndex(q.Author)
	}
	limit := max(q.Limit, 0) // a negative capacity would panic
	books = make([]CatalogBook, 0, min(limit, idx.n))
	if limit == 0 {
		return books, idx.n, "", nil
	}
	// One more than asked, to know whether a page follows.
	last := int32(-1)
	more := false
	take := func(n int32) bool {
		if len(books) == limit {
			more = true
			return false
		}
		books = append(books, v.show(n))
		last = n
		return true
	}
	if q.After == "" {
		idx.ascend(q.Offset, take)
	} else {
		pivot, err := v.cursor(q.After)
		if err != nil {
			return nil, 0, "", err
		}
		idx.ascendAfter(pivot, v.lists.after, q.Offset, take)
	}
	if more {
		next = v.books.ids.id(last)
	}
	return books, idx.n, next, nil
}

// cursor is the book a page starts after: one added, removed since or
// not, so that a cursor outlives its book.
func (v *Catalog) cursor(after string) (int32, error) {
	n, ok := v.books.find(after)
	if !ok || !v.books.at(n).added() {
		return 0, invalid("after", "%q is no book of this catalog; use the next cursor of a page", after)
	}
	return n, nil
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
	pivot := int32(-1)
	if q.After != "" {
		if pivot, err = v.cursor(q.After); err != nil {
			return nil, 0, "", err
		}
	}
	author, byAuthor := uint32(0), q.Author != ""
	if byAuthor {
		var ok bool
		if author, ok = v.authors.ns.keys[AuthorKey(q.Author)]; !ok {
			return []CatalogBook{}, 0, "", nil
		}
	}
	limit, skip := max(q.Limit, 0), max(q.Offset, 0)
	books = make([]CatalogBook, 0, min(limit, 16))
	last := int32(-1)
	v.words.search(words, func(n int32) bool {
		if byAuthor && !containsKey(v.authors.keys(v.more.at(n).authors), author) {
			return true
		}
		total++
		switch {
		case pivot >= 0 && !v.lists.after(n, pivot):
		case skip > 0:
			skip--
		case len(books) < limit:
			books = append(books, v.show(n))
			last = n
		case next == "" && last >= 0:
			next = v.books.ids.id(last) // a book follows the page
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
	books   viewBooks
	more    chunks[statsBook]
	authors authorStore
	titles  titleIndex
	// readTitles are the titles read by title-only lines. They are few,
	// so Snapshot gives their reads to the book they mean (and its
	// authors) then, when that book is decided.
	readTitles []*titleEntry
	total      int
	perYear    map[int]int
	// perAuthor counts the reads by id of added books, by the author's
	// number: a read counts for the authors once both it and its book's
	// add are in, whichever came first.
	perAuthor map[uint32]int
	readIDs   int // distinct ids read by id
	onShelf   int
}

type statsBook struct {
	authors authorList
	reads   int32 // by id, from before the add too
}

// NewStats returns an empty view.
func NewStats() *Stats {
	v := &Stats{authors: newAuthorStore(), perYear: map[int]int{}, perAuthor: map[uint32]int{}}
	v.books.init(func() { v.more.add(statsBook{}) })
	v.titles.vb = &v.books
	return v
}

// credit adds n reads to each author of l, keeping no author at zero, so
// that a snapshot holds the same names however it came about.
func (v *Stats) credit(l authorList, n int) {
	if n == 0 {
		return
	}
	v.authors.each(l, func(a uint32) {
		if v.perAuthor[a] += n; v.perAuthor[a] == 0 {
			delete(v.perAuthor, a)
		}
	})
}

// Apply folds one event into the view. Removing a book does not unread it:
// the statistics are of reading history.
func (v *Stats) Apply(e *Event) {
	known, ok := v.books.pass(e)
	if !ok {
		return
	}
	switch e.Type {
	case TypeBookAdded:
		n := v.books.numberOf(e, known)
		b := v.more.at(n)
		if f := v.books.at(n); f.added() && f.removed() {
			v.credit(b.authors, -int(b.reads)) // re-added: its old authors lose its reads
		}
		if !v.books.add(n, e, &v.titles) {
			return
		}
		b.authors = v.authors.put(e.Authors)
		v.credit(b.authors, int(b.reads))
		v.onShelf++
	case TypeBookRemoved:
		if _, ok := v.books.remove(e.BookID); ok {
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
		n := v.books.numberOf(e, known)
		b := v.more.at(n)
		if b.reads == 0 {
			v.readIDs++
		}
		b.reads++
		if v.books.at(n).added() {
			v.credit(b.authors, 1)
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
		s.PerAuthor[v.authors.ns.list[a]] += n
	}
	for _, t := range v.readTitles {
		n, ok := t.resolve(&v.books)
		if ok {
			for _, a := range v.authors.names(v.more.at(n).authors) {
				if s.PerAuthor[a] += t.reads; s.PerAuthor[a] == 0 {
					delete(s.PerAuthor, a)
				}
			}
		} else if n, ok = v.books.find(t.id); !ok {
			s.DistinctBooks++ // no book of that id at all
			continue
		}
		if v.more.at(n).reads == 0 {
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
