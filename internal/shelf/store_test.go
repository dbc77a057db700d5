package shelf

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// An unsorted list, pushed to, settled and taken from in any order, holds
// what a sorted slice would, by either way of settling (a few values
// inserted one by one, or many sorted and merged).
func TestUnsortedListModel(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 3))
		keys := rng.Perm(20_000) // book number -> its place in the order
		cmp := func(a, b int32) int { return keys[a] - keys[b] }
		s := newListSet(cmp)
		var l unsortedList[int32]
		var model []int32
		next := int32(0)
		for op := range 800 {
			switch r := rng.IntN(100); {
			case r < 70: // a burst of pushes, small or large beside the list
				for range 1 + rng.IntN([]int{3, 40, 2000}[rng.IntN(3)]) {
					if int(next) < len(keys) {
						s.push(&l, next)
						model = append(model, next)
						next++
					}
				}
			case r < 85 && len(model) > 0:
				i := rng.IntN(len(model))
				s.remove(&l, model[i])
				model = slices.Delete(model, i, i+1)
			default:
				s.settle()
				slices.SortFunc(model, cmp)
				var got []int32
				l.ascend(0, func(n int32) bool { got = append(got, n); return true })
				if !slices.Equal(got, model) || l.n != len(model) {
					t.Fatalf("seed %d, op %d: the list holds %d values (n %d), want %d", seed, op, len(got), l.n, len(model))
				}
				for i, b := range l.blocks {
					if len(b) == 0 || len(b) >= 2*orderBlock {
						t.Fatalf("seed %d, op %d: block %d holds %d", seed, op, i, len(b))
					}
				}
			}
		}
	}
}

// Readers settle at once, any number of them: one sorts, the others wait,
// and each then reads the whole list (run with -race).
func TestListSetSettlesOnceForManyReaders(t *testing.T) {
	v := NewCatalog()
	for i := range 5000 {
		v.Apply(added(fmt.Sprintf("b%05d", (i*7919)%5000), 1, fmt.Sprint("Title ", i), "Someone", "Else"))
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			books, total, _, err := v.Page(PageQuery{Author: "someone", Limit: 10})
			if err != nil || total != 5000 || len(books) != 10 || books[0].ID != "b00000" {
				t.Errorf("page: %d books of %d, first %v, %v", len(books), total, books[:min(1, len(books))], err)
			}
		})
	}
	wg.Wait()
}

// An author list of any length comes back in order, up to maxAuthors;
// lists of two or fewer are held in the list itself, longer ones in runs
// that never straddle a chunk.
func TestAuthorStore(t *testing.T) {
	s := newAuthorStore()
	var lists [][]string
	var kept []authorList
	for i := range 3 * chunkRecords / 100 {
		authors := make([]string, []int{0, 1, 2, 3, 7, 300}[i%6])
		for j := range authors {
			authors[j] = fmt.Sprintf("Author %d", (i*31+j)%500)
		}
		lists, kept = append(lists, authors), append(kept, s.put(authors))
	}
	for i, l := range kept {
		want := lists[i][:min(len(lists[i]), maxAuthors)]
		if got := s.names(l); !slices.Equal(got, want) || l.n() != len(want) {
			t.Fatalf("list %d: %d names %q, n %d; want %q", i, len(got), got, l.n(), want)
		}
		if len(want) > 2 && int(l.b)/chunkRecords != (int(l.b)+len(want)-1)/chunkRecords {
			t.Fatalf("list %d: its run straddles a chunk", i)
		}
	}
}
