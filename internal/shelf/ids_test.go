package shelf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Each id comes back as it went in, from whichever form it is kept in,
// and the table finds it, and no other, by it.
func TestIDTableKeepsEveryForm(t *testing.T) {
	ids := []string{
		"0123456789abcdef0123456789abcdef",     // hex
		"0123456789ABCDEF0123456789abcdef",     // upper case: text
		"0123456789abcdef0123456789abcde",      // 31 digits: text
		"123e4567-e89b-12d3-a456-426614174000", // a UUID
		"123e4567-e89b-12d3-a456-42661417400g", // not one
		"123e4567e89b-12d3-a456-4266141740000", // dashes elsewhere
		"load-abc-0", "load-abc-7", "load-abc-007", "load-abc-07", "load-abc-10",
		"b0000001", "b1", "b01", "9", "09", "0", "00",
		"x18446744073709551615", // 20 digits, beyond a number: 19 of them
		"x9999999999999999999",  // 19 nines
		"x10000000000000000000", // 20 digits
		"a-", "é-1", "with space 1", "\x00\x01", "\xff", "plain",
		strings.Repeat("z", 300) + "1",
	}
	tab := newIDTable()
	for i, id := range ids {
		if _, ok := tab.find(id); ok {
			t.Fatalf("%q found before it was added", id)
		}
		if n := tab.add(id); n != int32(i) {
			t.Fatalf("%q numbered %d, want %d", id, n, i)
		}
	}
	for i, id := range ids {
		if n, ok := tab.find(id); !ok || n != int32(i) {
			t.Errorf("find(%q) = %d, %v; want %d", id, n, ok, i)
		}
		if got := tab.id(int32(i)); got != id {
			t.Errorf("id(%d) = %q, want %q", i, got, id)
		}
	}
	for _, id := range []string{"load-abc-1", "load-abc-00", "b00000001", "123e4567-e89b-12d3-a456-426614174001", "", "x"} {
		if n, ok := tab.find(id); ok {
			t.Errorf("find(%q) = %d; it was never added", id, n)
		}
	}
	forms := map[string]byte{}
	for i, id := range ids {
		forms[id] = tab.form(int32(i))[0]
	}
	for id, want := range map[string]byte{
		ids[0]: idHex, ids[1]: idText, ids[2]: idText, ids[3]: idUUID, ids[4]: idText, "plain": idText,
		"load-abc-007": idNumber, "x10000000000000000000": idNumber,
	} {
		if forms[id] != want {
			t.Errorf("%q kept in form %d, want %d", id, forms[id], want)
		}
	}
	// The table orders numbers as their ids' texts are ordered.
	for a := range ids {
		for b := range ids {
			if got, want := tab.compareIDs(int32(a), int32(b)), strings.Compare(ids[a], ids[b]); got != want {
				t.Errorf("compareIDs(%q, %q) = %d, want %d", ids[a], ids[b], got, want)
			}
		}
	}
}

// Past maxIDPrefixes, ids of new prefixes are kept as text, and those of
// known ones still as numbers: each is found whichever it got.
func TestIDTableBeyondThePrefixes(t *testing.T) {
	tab := newIDTable()
	var ids []string
	for i := range maxIDPrefixes + 500 {
		ids = append(ids, fmt.Sprintf("p%d-%d", i, i%7))
		if i%3 == 0 {
			ids = append(ids, fmt.Sprintf("p%d-%d", i%50, i))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	seen := map[string]int32{}
	for _, id := range ids {
		if _, dup := seen[id]; !dup {
			seen[id] = tab.add(id)
		}
	}
	text := 0
	for id, n := range seen {
		if got, ok := tab.find(id); !ok || got != n || tab.id(n) != id {
			t.Fatalf("%q: find %d, %v, id %q; want %d", id, got, ok, tab.id(n), n)
		}
		if tab.form(n)[0] == idText {
			text++
		}
	}
	if len(tab.codec.prefixes) != maxIDPrefixes || text == 0 {
		t.Errorf("%d prefixes, %d ids as text: want %d, some", len(tab.codec.prefixes), text, maxIDPrefixes)
	}
	if _, ok := tab.find("p99999-1"); ok {
		t.Error("found an id of a prefix never seen")
	}
}

// A table grown far past its first size finds every id of the forms the
// aggregate and the imports make, and sorts them as their texts.
func TestIDTableGrows(t *testing.T) {
	tab := newIDTable()
	rng := rand.New(rand.NewPCG(5, 6))
	var ids []string
	for i := range 50_000 {
		switch i % 3 {
		case 0:
			ids = append(ids, fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()))
		case 1:
			ids = append(ids, fmt.Sprintf("load-x-%d", i))
		default:
			ids = append(ids, fmt.Sprintf("book %x", rng.Uint64()))
		}
		tab.add(ids[i])
	}
	for i, id := range ids {
		if n, ok := tab.find(id); !ok || n != int32(i) {
			t.Fatalf("find(%q) = %d, %v; want %d", id, n, ok, i)
		}
	}
	nums := make([]int32, len(ids))
	for i := range nums {
		nums[i] = int32(i)
	}
	slices.SortFunc(nums, tab.compareIDs)
	if !slices.IsSortedFunc(nums, func(a, b int32) int { return strings.Compare(ids[a], ids[b]) }) {
		t.Error("compareIDs does not order as the ids' texts")
	}
}

// Any id goes in and comes back, found by itself alone.
func FuzzIDTable(f *testing.F) {
	for _, s := range []string{"0123456789abcdef0123456789abcdef", "123e4567-e89b-12d3-a456-426614174000", "load-x-007", "b1", "plain", ""} {
		f.Add(s, s+"1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		tab := newIDTable()
		na := tab.add(a)
		if a == b {
			if n, ok := tab.find(b); !ok || n != na {
				t.Fatalf("find(%q) = %d, %v", b, n, ok)
			}
			return
		}
		if _, ok := tab.find(b); ok {
			t.Fatalf("%q found after adding %q only", b, a)
		}
		nb := tab.add(b)
		for n, id := range map[int32]string{na: a, nb: b} {
			if got, ok := tab.find(id); !ok || got != n || tab.id(n) != id {
				t.Fatalf("%q: find %d, %v, id %q; want %d", id, got, ok, tab.id(n), n)
			}
		}
		if got, want := tab.compareIDs(na, nb), strings.Compare(a, b); got != want {
			t.Fatalf("compareIDs(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}

// The catalog's bulk sort reads each book's place once; it must order as
// compare does: by time added, then by the ids' texts, whatever their
// forms, stems and digit counts.
func TestSortByOrderIsCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	stems := []string{"load-abc-", "load-abc-1", "b", "", "x-", "b0"}
	c := NewCatalog()
	vb := &c.books
	var nums []int32
	for range 3000 {
		var id string
		switch rng.IntN(4) {
		case 0:
			id = fmt.Sprintf("%032x", rng.Uint64())
		case 1:
			id = stems[rng.IntN(len(stems))] + "t" + strconv.Itoa(rng.IntN(50))
		default:
			w := 1 + rng.IntN(6)
			id = fmt.Sprintf("%s%0*d", stems[rng.IntN(len(stems))], w, rng.IntN(int(math.Pow10(w))))
		}
		if _, ok := vb.ids.find(id); ok {
			continue
		}
		c.Apply(&Event{Type: TypeBookAdded, Source: EventSource, BookID: id, Seq: 1, Title: "t",
			Time: time.Unix(int64(rng.IntN(3)), int64(rng.IntN(2))).UTC()})
		n, _ := vb.ids.find(id)
		nums = append(nums, n)
	}
	want := slices.Clone(nums)
	slices.SortFunc(want, func(a, b int32) int {
		if c := vb.at(a).addedAt().compare(vb.at(b).addedAt()); c != 0 {
			return c
		}
		return strings.Compare(vb.ids.id(a), vb.ids.id(b))
	})
	if got := vb.sortByOrder(slices.Clone(nums)); !slices.Equal(got, want) {
		t.Error("sortByOrder does not order as compare")
	}
}
