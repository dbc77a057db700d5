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
