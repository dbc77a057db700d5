package shelf

import (
	"bytes"
	"hash/maphash"
	"time"
)

// The views hold a record per book, and a shelf may hold millions. Their
// state is therefore kept in forms the garbage collector need not look
// into: records and strings in fixed chunks of pointer-free memory,
// referred to by number, and a hash table of numbers from ids to records.
// Ids and titles are kept in compact forms that give them back exactly
// (ids.go, textcode.go). A view costs a few dozen bytes per book in all,
// where a map of pointers to structs of strings cost near a kilobyte, and
// collecting it costs next to nothing however large it grows.

// chunkRecords is how many records a chunk holds: chunks never move once
// made, so a pointer to a record stays good, and growing costs no copy.
const chunkRecords = 4096

// chunks holds values of a pointer-free type T, numbered from 0.
type chunks[T any] struct {
	c [][]T
	n int32
}

func (c *chunks[T]) add(x T) int32 {
	if int(c.n)%chunkRecords == 0 {
		c.c = append(c.c, make([]T, 0, chunkRecords))
	}
	last := &c.c[len(c.c)-1]
	*last = append(*last, x)
	c.n++
	return c.n - 1
}

func (c *chunks[T]) at(i int32) *T { return &c.c[i/chunkRecords][i%chunkRecords] }

// strRef is a string held in an arena: its offset, shifted, and length.
type strRef uint64

const (
	refLenBits  = 16
	arenaChunk  = 1 << 20
	maxArenaStr = 1<<refLenBits - 1
)

// arena holds strings back to back in chunks that never move. A string
// longer than maxArenaStr bytes is cut there; nothing the views keep is
// (a title is at most MaxTitleLen characters, four bytes each at most).
type arena struct {
	c   [][]byte
	off uint64 // of the next string
}

func (a *arena) put(s string) strRef { return a.putBytes([]byte(s)) }

func (a *arena) putBytes(s []byte) strRef {
	if len(s) > maxArenaStr {
		s = s[:maxArenaStr]
	}
	if len(s) == 0 {
		return 0
	}
	last := len(a.c) - 1
	if last < 0 || len(a.c[last])+len(s) > arenaChunk {
		a.c = append(a.c, make([]byte, 0, arenaChunk))
		last++
		a.off = uint64(last) * arenaChunk
	}
	a.c[last] = append(a.c[last], s...)
	r := strRef(a.off<<refLenBits | uint64(len(s)))
	a.off += uint64(len(s))
	return r
}

// bytes is the string r refers to, aliasing the arena: read it, do not
// keep it.
func (a *arena) bytes(r strRef) []byte {
	n := uint64(r) & maxArenaStr
	if n == 0 {
		return nil
	}
	off := uint64(r) >> refLenBits
	c := a.c[off/arenaChunk]
	at := off % arenaChunk
	return c[at : at+n : at+n]
}

func (a *arena) str(r strRef) string { return string(a.bytes(r)) }

// idTable finds a record's number by the book's id: open addressing, each
// slot four bytes, the number and, above it, bits of the id's hash; the
// ids in their compact forms (see idCodec) among blobs. Ids are never
// taken out: a view keeps what it learnt of a book removed (a cursor may
// name it, a read may come for it).
type idTable struct {
	slots []uint32 // tag | number+1; 0 is empty
	bits  uint     // len(slots) is 1<<bits
	forms chunks[uint32]
	recs  blobs
	codec idCodec
	seed  maphash.Seed
}

// idForm is room for the form of an id on the stack: most fit.
type idForm [48]byte

func newIDTable() idTable {
	return idTable{seed: maphash.MakeSeed(), slots: make([]uint32, 1<<10), bits: 10, codec: newIDCodec()}
}

func (t *idTable) hash(form []byte) uint64 { return maphash.Bytes(t.seed, form) }

// The slot of a hash: its low bits place it, its high bits tag it, above
// the number (which is below len(slots), the table being at most three
// quarters full).
func (t *idTable) mask() uint32              { return 1<<t.bits - 1 }
func (t *idTable) tag(h uint64) uint32       { return uint32(h>>32) &^ t.mask() }
func (t *idTable) place(h uint64) uint32     { return uint32(h) & t.mask() }
func (t *idTable) form(n int32) []byte       { return t.recs.get(*t.forms.at(n)) }
func (t *idTable) slotNumber(s uint32) int32 { return int32(s&t.mask()) - 1 }

// find returns the number of id, false if it has none.
func (t *idTable) find(id string) (int32, bool) {
	var buf idForm
	f, ok := t.codec.encode(buf[:0], id, false)
	if !ok {
		return 0, false
	}
	return t.findForm(f, t.hash(f))
}

func (t *idTable) findForm(f []byte, h uint64) (int32, bool) {
	mask, tag := t.mask(), t.tag(h)
	for i := t.place(h); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&^mask == tag {
			if n := t.slotNumber(s); string(t.form(n)) == string(f) {
				return n, true
			}
		}
	}
}

// add gives id the next number; id must have none.
func (t *idTable) add(id string) int32 {
	if int(t.forms.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	var buf idForm
	f, _ := t.codec.encode(buf[:0], id, true)
	n := t.forms.add(t.recs.put(f))
	t.insert(t.hash(f), n)
	return n
}

func (t *idTable) insert(h uint64, n int32) {
	mask := t.mask()
	i := t.place(h)
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = t.tag(h) | uint32(n+1)
}

// grow doubles the table: a slot keeps too few bits of the hash to move
// by, so each id's is taken again.
func (t *idTable) grow() {
	t.slots, t.bits = make([]uint32, 2*len(t.slots)), t.bits+1
	for n := range t.forms.n {
		t.insert(t.hash(t.form(n)), n)
	}
}

// appendID appends the id of number n to dst.
func (t *idTable) appendID(dst []byte, n int32) []byte { return t.codec.decode(dst, t.form(n)) }

func (t *idTable) id(n int32) string {
	var buf idForm
	return string(t.appendID(buf[:0], n))
}

// compareIDs orders numbers by their ids.
func (t *idTable) compareIDs(a, b int32) int {
	fa, fb := t.form(a), t.form(b)
	if fa[0] == fb[0] && (fa[0] == idHex || fa[0] == idText) {
		// Their bytes are in the order of their texts.
		return bytes.Compare(fa[1:], fb[1:])
	}
	if oa, ok := t.codec.order(fa); ok {
		if ob, ok := t.codec.order(fb); ok && oa.stem == ob.stem {
			return oa.compare(ob)
		}
	}
	var ba, bb idForm
	return bytes.Compare(t.codec.decode(ba[:0], fa), t.codec.decode(bb[:0], fb))
}

// names interns author names: each distinct name is held once, and a
// book holds the names' numbers. Names are few beside books.
type names struct {
	num  map[string]uint32
	list []string
	// key is the number of each name's AuthorKey among keys.
	key  []uint32
	keys map[string]uint32
}

func newNames() names { return names{num: map[string]uint32{}, keys: map[string]uint32{}} }

func (ns *names) intern(name string) uint32 {
	if n, ok := ns.num[name]; ok {
		return n
	}
	n := uint32(len(ns.list))
	if n > authorLow {
		panic("shelf: more author names than an authorList numbers")
	}
	ns.num[name] = n
	ns.list = append(ns.list, name)
	k := AuthorKey(name)
	kn, ok := ns.keys[k]
	if !ok {
		kn = uint32(len(ns.keys))
		ns.keys[k] = kn
	}
	ns.key = append(ns.key, kn)
	return n
}

// authorList is a book's authors, as the numbers of their names, in eight
// bytes: up to two held in it, their count in the top bits of a; more as a
// run of numbers in the overflow chunks, a holding the run mark and the
// count, b where the run starts. A name's number is below 1<<30 (a
// billion names would not fit in memory first).
type authorList struct {
	a, b uint32
}

const (
	authorShift = 30
	authorRun   = 3 << authorShift // a's top bits for a run
	authorLow   = 1<<authorShift - 1
	maxAuthors  = 255 // the most a list keeps
)

// n is how many authors l holds.
func (l authorList) n() int {
	if l.a&authorRun == authorRun {
		return int(l.a & authorLow)
	}
	return int(l.a >> authorShift)
}

// authorStore holds the author lists longer than two.
type authorStore struct {
	more chunks[uint32]
	ns   names
}

func newAuthorStore() authorStore { return authorStore{ns: newNames()} }

func (s *authorStore) put(authors []string) authorList {
	n := min(len(authors), maxAuthors)
	if n <= 2 {
		var l authorList
		if n > 0 {
			l.a = s.ns.intern(authors[0])
		}
		if n > 1 {
			l.b = s.ns.intern(authors[1])
		}
		l.a |= uint32(n) << authorShift
		return l
	}
	// The overflow is one run: in one chunk, so it is a range.
	if rest := chunkRecords - int(s.more.n)%chunkRecords; rest < n {
		for range rest {
			s.more.add(0)
		}
	}
	l := authorList{a: authorRun | uint32(n), b: uint32(s.more.n)}
	for _, a := range authors[:n] {
		s.more.add(s.ns.intern(a))
	}
	return l
}

// each calls fn with the number of each author, in order.
func (s *authorStore) each(l authorList, fn func(uint32)) {
	n := l.n()
	if l.a&authorRun != authorRun {
		if n > 0 {
			fn(l.a & authorLow)
		}
		if n > 1 {
			fn(l.b)
		}
		return
	}
	for i := range int32(n) {
		fn(*s.more.at(int32(l.b) + i))
	}
}

// names returns the authors' names, never nil.
func (s *authorStore) names(l authorList) []string {
	out := make([]string, 0, l.n())
	s.each(l, func(n uint32) { out = append(out, s.ns.list[n]) })
	return out
}

// keys returns the numbers of the authors' AuthorKeys, each once.
func (s *authorStore) keys(l authorList) []uint32 {
	out := make([]uint32, 0, l.n())
	s.each(l, func(n uint32) {
		if k := s.ns.key[n]; !containsKey(out, k) {
			out = append(out, k)
		}
	})
	return out
}

func containsKey(ks []uint32, k uint32) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// readKey is a time as two integers: comparing them is cheaper than
// comparing time.Time values, and they hold no pointer. The views' times
// are in UTC (the codec makes them so), which time() gives back.
type readKey struct {
	sec  int64
	nsec int32
}

func keyOf(t time.Time) readKey { return readKey{sec: t.Unix(), nsec: int32(t.Nanosecond())} }

func (k readKey) after(o readKey) bool { return k.sec > o.sec || k.sec == o.sec && k.nsec > o.nsec }

func (k readKey) compare(o readKey) int {
	switch {
	case k.after(o):
		return 1
	case o.after(k):
		return -1
	}
	return 0
}

func (k readKey) time() time.Time { return time.Unix(k.sec, int64(k.nsec)).UTC() }
