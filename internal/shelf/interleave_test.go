package shelf

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every replica of a view reads every partition, and the partitions
// interleave in an order that differs between replicas and between runs.
// Folding the same per-partition sequences in many interleavings must give
// the same answer to every query.
func TestViewsInterleavingIndependent(t *testing.T) {
	logs, orders := 200, 20
	if testing.Short() {
		logs = 40
	}
	var cover interleaveCover
	for seed := range uint64(logs) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		l := genInterleaveLog(rng, &cover)
		var want []queryAnswer
		var wantOrder []string
		for order := range orders {
			seq := l.merge(rng)
			got := l.ask(fold(seq))
			if want == nil {
				want, wantOrder = got, eventNames(seq)
				checkShape(t, seed, got)
				continue
			}
			for i := range want {
				if !reflect.DeepEqual(got[i].answer, want[i].answer) {
					t.Fatalf("seed %d, interleaving %d: %s differs\n got %s\nwant %s\nlog:\n%s\nfirst order: %v\nthis order:  %v",
						seed, order, want[i].query, show(got[i].answer), show(want[i].answer), l, wantOrder, eventNames(seq))
				}
			}
		}
	}
	// The test is only as good as the logs it made.
	t.Logf("coverage: %+v", cover)
	if min(cover.sameTitle, cover.removed, cover.titleLines, cover.unknownTitles, cover.ghostReads, cover.lineBeforeAdd,
		cover.sameAddTime, cover.sameReadTime) == 0 {
		t.Errorf("some case never came up: %+v", cover)
	}
}

// interleaveCover counts the cases the generated logs hold.
type interleaveCover struct {
	sameTitle, removed, titleLines, unknownTitles, ghostReads int
	lineBeforeAdd, sameAddTime, sameReadTime                  int
}

// interleaveLog is a log of a few partitions, each in its own order, and
// what to ask of the views folded from it.
type interleaveLog struct {
	parts   [][]*Event
	ids     []string // book ids, unknown ids and title ids, to Get
	authors []string // as List takes them, in varied case
}

var (
	interleaveTitles  = []string{"Dune", "Emma", "The Dispossessed", "Good Omens", "Persuasion", "Ulysses", "Solaris"}
	interleaveAuthors = []string{"Frank Herbert", "Jane Austen", "Ursula K. Le Guin", "Terry Pratchett", "Neil Gaiman"}
)

// genInterleaveLog makes a log: books of the aggregate, each on one
// partition in its own order (added, read, perhaps removed), and reads
// from outside anywhere: title lines (of books, in any case and spacing,
// before or after the add; of no book) and reads by id (of books, of ids
// never added).
func genInterleaveLog(rng *rand.Rand, cover *interleaveCover) *interleaveLog {
	nparts := 3 + rng.IntN(2)
	runs := make([][][]*Event, nparts) // per partition, sequences to merge
	l := &interleaveLog{}
	var books []interleaveBook
	taken := map[string]bool{}
	addTimes, readTimes := map[time.Time]int{}, map[time.Time]int{}
	readTime := func() time.Time {
		at := t0.Add(time.Duration(rng.IntN(12)) * 30 * time.Minute)
		readTimes[at]++
		return at
	}
	for i := range 3 + rng.IntN(8) {
		id := fmt.Sprintf("b%02d", rng.IntN(100)) // ids not in the order of their adds
		for taken[id] {
			id += "x"
		}
		taken[id] = true
		title := interleaveTitles[rng.IntN(len(interleaveTitles)-1)] // the last one never names a book
		if len(books) > 0 && rng.IntN(4) == 0 {
			title = books[rng.IntN(len(books))].title
		}
		var authors []string
		for range 1 + rng.IntN(2) {
			authors = append(authors, interleaveAuthors[rng.IntN(len(interleaveAuthors))])
		}
		b := interleaveBook{id: id, title: title, part: rng.IntN(nparts), added: t0.Add(-time.Duration(rng.IntN(3)) * time.Hour)}
		addTimes[b.added]++
		for _, o := range books {
			if o.title == title {
				cover.sameTitle++
			}
		}
		books = append(books, b)
		run := []*Event{{ID: id + "-added", Type: TypeBookAdded, Source: EventSource, BookID: id, Seq: 1, Time: b.added,
			Title: title, Authors: authors, Year: 1960 + i}}
		for range rng.IntN(4) {
			at := readTime()
			run = append(run, &Event{ID: fmt.Sprintf("%s-read-%d", id, len(run)), Type: TypeBookRead, Source: EventSource,
				BookID: id, Seq: int64(len(run) + 1), Time: at, ReadAt: at})
		}
		if rng.IntN(4) == 0 {
			run = append(run, &Event{ID: id + "-removed", Type: TypeBookRemoved, Source: EventSource, BookID: id,
				Seq: int64(len(run) + 1), Time: t0})
			cover.removed++
		}
		runs[b.part] = append(runs[b.part], run)
		l.ids = append(l.ids, id)
	}
	for i := range 5 + rng.IntN(12) {
		at := readTime()
		e := &Event{ID: fmt.Sprintf("outside-%d", i), Type: TypeBookRead, Source: "outside", Time: at, ReadAt: at}
		switch r := rng.IntN(10); {
		case r < 5:
			cover.titleLines++
			title := interleaveTitles[len(interleaveTitles)-1]
			if r < 4 {
				title = books[rng.IntN(len(books))].title
			} else {
				cover.unknownTitles++
			}
			e.Title = varyCase(rng, title)
		case r < 8:
			e.BookID = books[rng.IntN(len(books))].id
		default:
			e.BookID = fmt.Sprintf("ghost-%d", rng.IntN(2))
			cover.ghostReads++
		}
		p := rng.IntN(nparts)
		runs[p] = append(runs[p], []*Event{e})
	}
	for _, n := range addTimes {
		if n > 1 {
			cover.sameAddTime++
		}
	}
	for _, n := range readTimes {
		if n > 1 {
			cover.sameReadTime++
		}
	}
	// Each partition is a random merge of its books' runs and outside
	// reads; its order is fixed from here on.
	l.parts = make([][]*Event, nparts)
	for p, rs := range runs {
		l.parts[p] = mergeRuns(rng, rs)
		for off, e := range l.parts[p] {
			e.At = LogPos{Partition: int32(p), Offset: int64(off)}
		}
	}
	// A title line that a partition holds before its book's add, the add
	// being on the same partition (across partitions it happens anyway).
	for _, part := range l.parts {
		seen := map[string]bool{}
		for _, e := range part {
			if e.Type == TypeBookAdded {
				seen[TitleKey(e.Title)] = true
			}
			if e.BookID == "" && !seen[TitleKey(e.Title)] {
				for _, b := range books {
					if TitleKey(b.title) == TitleKey(e.Title) && b.part == int(e.At.Partition) {
						cover.lineBeforeAdd++
						break
					}
				}
			}
		}
	}
	l.ids = append(l.ids, "ghost-0", "ghost-1", "nope")
	for _, title := range interleaveTitles {
		l.ids = append(l.ids, TitleBookID(title))
	}
	for _, a := range interleaveAuthors {
		l.authors = append(l.authors, a, strings.ToUpper(a))
	}
	l.authors = append(l.authors, "Nobody")
	return l
}

type interleaveBook struct {
	id, title string
	part      int
	added     time.Time
}

// varyCase writes a title as a person might: any case, stray spaces.
func varyCase(rng *rand.Rand, title string) string {
	switch rng.IntN(4) {
	case 0:
		title = strings.ToLower(title)
	case 1:
		title = strings.ToUpper(title)
	case 2:
		title = "  " + title + " "
	}
	return title
}

// mergeRuns interleaves sequences at random, keeping the order of each.
func mergeRuns(rng *rand.Rand, runs [][]*Event) []*Event {
	runs = slices.DeleteFunc(slices.Clone(runs), func(r []*Event) bool { return len(r) == 0 })
	var out []*Event
	for len(runs) > 0 {
		i := rng.IntN(len(runs))
		out = append(out, runs[i][0])
		if runs[i] = runs[i][1:]; len(runs[i]) == 0 {
			runs = append(runs[:i], runs[i+1:]...)
		}
	}
	return out
}

// merge is one replica's way through the log: the partitions interleaved
// at random, or now and then read one after another.
func (l *interleaveLog) merge(rng *rand.Rand) []*Event {
	if rng.IntN(4) == 0 {
		var out []*Event
		for _, p := range rng.Perm(len(l.parts)) {
			out = append(out, l.parts[p]...)
		}
		return out
	}
	return mergeRuns(rng, l.parts)
}

type folded struct {
	lr  *LastRead
	cat *Catalog
	st  *Stats
}

func fold(seq []*Event) folded {
	f := folded{NewLastRead(), NewCatalog(), NewStats()}
	for _, e := range seq {
		f.lr.Apply(e)
		f.cat.Apply(e)
		f.st.Apply(e)
	}
	return f
}

type queryAnswer struct {
	query  string
	answer any
}

type getAnswer struct {
	Book CatalogBook
	Err  error
}

type listAnswer struct {
	Books []CatalogBook
	Total int
}

// ask puts every query to the views.
func (l *interleaveLog) ask(f folded) []queryAnswer {
	var out []queryAnswer
	for _, limit := range []int{0, 1, 3, 5, 100} {
		out = append(out, queryAnswer{fmt.Sprintf("Latest(%d)", limit), f.lr.Latest(limit)})
	}
	for _, id := range l.ids {
		b, err := f.cat.Get(id)
		out = append(out, queryAnswer{fmt.Sprintf("Get(%q)", id), getAnswer{b, err}})
	}
	for _, lo := range [][2]int{{0, 0}, {1, 0}, {2, 1}, {3, 2}, {5, 3}, {100, 0}, {100, 4}} {
		books, total := f.cat.List("", lo[0], lo[1])
		out = append(out, queryAnswer{fmt.Sprintf("List(\"\", %d, %d)", lo[0], lo[1]), listAnswer{books, total}})
	}
	for _, a := range l.authors {
		for _, lo := range [][2]int{{100, 0}, {1, 1}} {
			books, total := f.cat.List(a, lo[0], lo[1])
			out = append(out, queryAnswer{fmt.Sprintf("List(%q, %d, %d)", a, lo[0], lo[1]), listAnswer{books, total}})
		}
	}
	out = append(out, queryAnswer{"Len()", f.cat.Len()})
	s := f.st.Snapshot()
	out = append(out, queryAnswer{"Snapshot()", s}, queryAnswer{"TopAuthors(3)", s.TopAuthors(3)})
	return out
}

// checkShape checks what an answer must look like, whatever the order:
// the last read distinct and newest first (ties by id), the catalog by
// added time then id.
func checkShape(t *testing.T, seed uint64, answers []queryAnswer) {
	t.Helper()
	for _, a := range answers {
		switch a.query {
		case "Latest(100)":
			entries := a.answer.([]ReadEntry)
			seen := map[string]bool{}
			for i, e := range entries {
				if seen[e.ID] {
					t.Fatalf("seed %d: %s shows %s twice: %+v", seed, a.query, e.ID, entries)
				}
				seen[e.ID] = true
				if i > 0 {
					p := entries[i-1]
					if c := p.ReadAt.Compare(e.ReadAt); c < 0 || c == 0 && p.ID > e.ID {
						t.Fatalf("seed %d: %s out of order at %d: %+v", seed, a.query, i, entries)
					}
				}
			}
		case `List("", 100, 0)`:
			books := a.answer.(listAnswer).Books
			for i := 1; i < len(books); i++ {
				p, b := books[i-1], books[i]
				if c := p.AddedAt.Compare(b.AddedAt); c > 0 || c == 0 && p.ID >= b.ID {
					t.Fatalf("seed %d: %s out of order at %d: %s", seed, a.query, i, show(a.answer))
				}
			}
		}
	}
}

func (l *interleaveLog) String() string {
	var b strings.Builder
	for p, part := range l.parts {
		fmt.Fprintf(&b, "  partition %d:\n", p)
		for _, e := range part {
			fmt.Fprintf(&b, "    %s\n", eventName(e))
		}
	}
	return b.String()
}

func eventName(e *Event) string {
	switch {
	case e.Type == TypeBookAdded:
		return fmt.Sprintf("%s added %q %v at %s", e.BookID, e.Title, e.Authors, e.Time.Format("15:04"))
	case e.Type == TypeBookRemoved:
		return e.BookID + " removed"
	case e.BookID == "":
		return fmt.Sprintf("line %q read at %s", e.Title, e.ReadAt.Format("15:04"))
	case e.Seq == 0:
		return fmt.Sprintf("%s read (outside) at %s", e.BookID, e.ReadAt.Format("15:04"))
	}
	return fmt.Sprintf("%s read at %s", e.BookID, e.ReadAt.Format("15:04"))
}

func eventNames(seq []*Event) []string {
	out := make([]string, len(seq))
	for i, e := range seq {
		out[i] = fmt.Sprintf("%d/%d", e.At.Partition, e.At.Offset)
	}
	return out
}

// show prints an answer with the times of its pointers, not their
// addresses.
func show(a any) string {
	switch a := a.(type) {
	case getAnswer:
		return fmt.Sprintf("{%s %v}", showBook(a.Book), a.Err)
	case listAnswer:
		var s []string
		for _, b := range a.Books {
			s = append(s, showBook(b))
		}
		return fmt.Sprintf("%v total %d", s, a.Total)
	}
	return fmt.Sprintf("%+v", a)
}

func showBook(b CatalogBook) string {
	last := "never"
	if b.LastReadAt != nil {
		last = b.LastReadAt.Format("15:04")
	}
	return fmt.Sprintf("%s %q %v added %s reads %d last %s", b.ID, b.Title, b.Authors, b.AddedAt.Format("15:04"), b.Reads, last)
}
