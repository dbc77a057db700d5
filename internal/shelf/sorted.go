package shelf

import (
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

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
		// A list starts small: most of a catalog's word and author
		// lists hold a few values.
		s.blocks = append(s.blocks, []T{x})
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
		// Both halves are copies, so the grown array is let go.
		tail := slices.Clone(b[orderBlock:])
		s.blocks[bi] = slices.Clone(b[:orderBlock])
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

// unsortedList is a sortedBlocks whose values may be pushed unsorted, to
// be sorted in when the list is next read: catching up on a log, a view
// sorts each list once rather than finding a place for every value.
type unsortedList[T comparable] struct {
	sortedBlocks[T] // n counts the pending values too
	pending         []T
	// listed is true while the list is among its listSet's dirty ones.
	listed bool
}

// push adds x, unsorted.
func (l *unsortedList[T]) push(x T) {
	l.pending = append(l.pending, x)
	l.n++
}

// settle sorts the pending values in. A few, beside the list, find their
// places one by one; many are sorted and merged with the list in one
// pass, which costs the list's length at most sixteen times theirs.
func (l *unsortedList[T]) settle(cmp func(a, b T) int, after func(a, b T) bool) {
	l.settleSorting(after, func(p []T) []T { return sortParallel(p, cmp) })
}

// settleSorting is settle with the pending values, when many, sorted by
// sortAll, in the order after tells.
func (l *unsortedList[T]) settleSorting(after func(a, b T) bool, sortAll func([]T) []T) {
	p := l.pending
	if len(p) == 0 {
		return
	}
	l.pending = nil
	held := l.n - len(p)
	if len(p)*16 < held {
		l.n = held
		for _, x := range p {
			l.insert(x, after)
		}
		return
	}
	p = sortAll(p)
	blocks := make([][]T, 0, (l.n+orderBlock-1)/orderBlock)
	cur := make([]T, 0, min(orderBlock, l.n))
	put := func(x T) {
		cur = append(cur, x)
		if len(cur) == orderBlock {
			blocks = append(blocks, cur)
			cur = make([]T, 0, orderBlock)
		}
	}
	// Of equal values, those held come first, as insert would have it.
	i := 0
	l.ascend(0, func(x T) bool {
		for ; i < len(p) && after(x, p[i]); i++ {
			put(p[i])
		}
		put(x)
		return true
	})
	for _, x := range p[i:] {
		put(x)
	}
	if len(cur) > 0 {
		blocks = append(blocks, cur)
	}
	l.blocks = blocks
}

// bulk tells whether settling would sort and merge rather than insert.
func (l *unsortedList[T]) bulk() bool { return len(l.pending)*16 >= l.n-len(l.pending) }

// sortParallel sorts xs, a share on each core for a long slice, merging
// the shares after; it returns the sorted values, perhaps in a new slice.
func sortParallel[T any](xs []T, cmp func(a, b T) int) []T {
	parts := runtime.GOMAXPROCS(0)
	if len(xs) < 1<<15 || parts < 2 {
		slices.SortFunc(xs, cmp)
		return xs
	}
	var wg sync.WaitGroup
	shares := make([][]T, parts)
	for i := range shares {
		shares[i] = xs[i*len(xs)/parts : (i+1)*len(xs)/parts]
		wg.Go(func() { slices.SortFunc(shares[i], cmp) })
	}
	wg.Wait()
	for len(shares) > 1 {
		var next [][]T
		for i := 0; i+1 < len(shares); i += 2 {
			next = append(next, mergeSorted(shares[i], shares[i+1], cmp))
		}
		if len(shares)%2 == 1 {
			next = append(next, shares[len(shares)-1])
		}
		shares = next
	}
	return shares[0]
}

// sortByRank sorts book numbers by their ranks: each number beside its
// rank in one integer, and the integers sorted, so that a comparison is
// of two integers in place and the ranks are each read once.
func sortByRank(p []int32, rank []int32) []int32 {
	keys := make([]uint64, len(p))
	for i, n := range p {
		keys[i] = uint64(rank[n])<<32 | uint64(uint32(n))
	}
	slices.Sort(keys)
	for i, k := range keys {
		p[i] = int32(uint32(k))
	}
	return p
}

func mergeSorted[T any](a, b []T, cmp func(a, b T) int) []T {
	out := make([]T, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if cmp(b[0], a[0]) < 0 {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// remove takes x out, if it is there; the pending values are sorted in
// first.
func (l *unsortedList[T]) remove(x T, cmp func(a, b T) int, after func(a, b T) bool) {
	l.settle(cmp, after)
	l.sortedBlocks.remove(x, after)
}

// listSet is the lists of book numbers of one view, in the view's order,
// and which of them have values pending. The view's one writer pushes;
// its readers, any number at once, settle before they read: the first
// sorts the pending values in while the others wait for it.
type listSet struct {
	dirty     []*unsortedList[int32]
	unsettled atomic.Bool
	mu        sync.Mutex
	cmp       func(a, b int32) int
	after     func(a, b int32) bool
	// master, when set, is a list of every book any list holds, and
	// numbers is how many numbers there are: with many values pending,
	// the master is sorted first, by sortMaster (in cmp's order, faster
	// than a sort by cmp), and the others by each book's rank in it, a
	// comparison of two integers.
	master     *unsortedList[int32]
	numbers    func() int32
	sortMaster func([]int32) []int32
}

func newListSet(cmp func(a, b int32) int) listSet {
	return listSet{cmp: cmp, after: func(a, b int32) bool { return cmp(a, b) > 0 }}
}

// push adds book n to l, to be sorted in before l is next read.
func (s *listSet) push(l *unsortedList[int32], n int32) {
	l.push(n)
	if !l.listed { // once: two workers must not settle one list
		l.listed = true
		s.dirty = append(s.dirty, l)
		s.unsettled.Store(true)
	}
}

// remove takes book n out of l.
func (s *listSet) remove(l *unsortedList[int32], n int32) { l.remove(n, s.cmp, s.after) }

// settle sorts in every value pending; a reader calls it before reading.
func (s *listSet) settle() {
	if !s.unsettled.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.unsettled.Load() {
		return
	}
	after := s.after
	sortAll := func(p []int32) []int32 { return sortParallel(p, s.cmp) }
	if m := s.master; m != nil && m.listed && m.bulk() {
		m.settleSorting(s.after, s.sortMaster)
		rank := make([]int32, s.numbers())
		i := int32(0)
		m.ascend(0, func(n int32) bool { rank[n] = i; i++; return true })
		after = func(a, b int32) bool { return rank[a] > rank[b] }
		sortAll = func(p []int32) []int32 { return sortByRank(p, rank) }
	}
	// The lists are apart: each core settles its share.
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(s.dirty))
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(s.dirty); i += workers {
				s.dirty[i].settleSorting(after, sortAll)
			}
		})
	}
	wg.Wait()
	for _, l := range s.dirty {
		l.listed = false
	}
	s.dirty = nil
	s.unsettled.Store(false)
}
