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
// A view costs a few dozen bytes per book beside its text, where a map of
// pointers to structs of strings cost near a kilobyte, and collecting it
// costs next to nothing however large it grows.

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

// idTable finds a record's number by the book's id: open addressing, with
// the number and 32 bits of the id's hash in each slot, the ids in an
// arena. Ids are never taken out: a view keeps what it learnt of a book
// removed (a cursor may name it, a read may come for it).
type idTable struct {
	slots []uint64 // hash<<32 | number+1; 0 is empty
	ids   chunks[strRef]
	strs  *arena
	seed  maphash.Seed
}

func newIDTable(strs *arena) idTable {
	return idTable{strs: strs, seed: maphash.MakeSeed(), slots: make([]uint64, 1024)}
}

func (t *idTable) hash(id string) uint32 { return uint32(maphash.String(t.seed, id)) }

// find returns the number of id, false if it has none.
func (t *idTable) find(id string) (int32, bool) {
	h := t.hash(id)
	mask := uint32(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == h {
			n := int32(uint32(s) - 1)
			if string(t.strs.bytes(*t.ids.at(n))) == id {
				return n, true
			}
		}
	}
}

// add gives id the next number; id must have none.
func (t *idTable) add(id string) int32 {
	if int(t.ids.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	n := t.ids.add(t.strs.put(id))
	t.insert(t.hash(id), n)
	return n
}

func (t *idTable) insert(h uint32, n int32) {
	mask := uint32(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = uint64(h)<<32 | uint64(uint32(n)+1)
}

func (t *idTable) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	for _, s := range old {
		if s != 0 {
			t.insert(uint32(s>>32), int32(uint32(s)-1))
		}
	}
}

// id is the id of number n, aliasing the arena.
func (t *idTable) idBytes(n int32) []byte { return t.strs.bytes(*t.ids.at(n)) }

func (t *idTable) id(n int32) string { return string(t.idBytes(n)) }

// compareIDs orders numbers by their ids.
func (t *idTable) compareIDs(a, b int32) int { return bytes.Compare(t.idBytes(a), t.idBytes(b)) }

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

// authorList is a book's authors, as the numbers of their names: up to
// two held in it; more as a run of n numbers in the overflow chunks,
// starting at a.
type authorList struct {
	a, b   uint32 // the first two, or where the run starts
	n      uint8
	inline bool
}

// authorStore holds the author lists longer than two.
type authorStore struct {
	more chunks[uint32]
	ns   names
}

func newAuthorStore() authorStore { return authorStore{ns: newNames()} }

func (s *authorStore) put(authors []string) authorList {
	l := authorList{n: uint8(min(len(authors), 255)), inline: len(authors) <= 2}
	if l.inline {
		if len(authors) > 0 {
			l.a = s.ns.intern(authors[0])
		}
		if len(authors) > 1 {
			l.b = s.ns.intern(authors[1])
		}
		return l
	}
	// The overflow is one run: in one chunk, so it is a range.
	if rest := chunkRecords - int(s.more.n)%chunkRecords; rest < int(l.n) {
		for range rest {
			s.more.add(0)
		}
	}
	l.a = uint32(s.more.n)
	for _, a := range authors[:l.n] {
		s.more.add(s.ns.intern(a))
	}
	return l
}

// each calls fn with the number of each author, in order.
func (s *authorStore) each(l authorList, fn func(uint32)) {
	if l.inline {
		if l.n > 0 {
			fn(l.a)
		}
		if l.n > 1 {
			fn(l.b)
		}
		return
	}
	for i := range int32(l.n) {
		fn(*s.more.at(int32(l.a) + i))
	}
}

// names returns the authors' names, never nil.
func (s *authorStore) names(l authorList) []string {
	out := make([]string, 0, l.n)
	s.each(l, func(n uint32) { out = append(out, s.ns.list[n]) })
	return out
}

// keys returns the numbers of the authors' AuthorKeys, each once.
func (s *authorStore) keys(l authorList) []uint32 {
	out := make([]uint32, 0, l.n)
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
