package shelf

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// stream writes a realistic event log, as the aggregate would: books
// added, read (some with a read_at days back), now and then removed.
type stream struct {
	rng   *rand.Rand
	now   time.Time
	books []streamBook
	n     int
}

type streamBook struct {
	id      string
	seq     int64
	removed bool
}

var (
	benchWords = []string{"Left", "Hand", "Darkness", "Dispossessed", "Dune", "Messiah", "Children", "Foundation", "Empire",
		"Solaris", "Night", "Wind", "Sea", "Earth", "Tombs", "Shore", "River", "Stars", "Glass", "Bead", "Game", "City",
		"Silence", "Winter", "Summer", "Lathe", "Heaven", "Word", "World", "Forest", "Mountain", "Ice", "Fire", "Ashes"}
	benchAuthors = []string{"Ursula K. Le Guin", "Frank Herbert", "Isaac Asimov", "Stanisław Lem", "Octavia E. Butler",
		"Terry Pratchett", "Neil Gaiman", "Iain M. Banks", "N. K. Jemisin", "Gene Wolfe", "Samuel R. Delany",
		"Philip K. Dick", "Arthur C. Clarke", "Ted Chiang", "Ann Leckie", "Jorge Luis Borges", "Italo Calvino"}
)

func newStream(seed uint64) *stream {
	return &stream{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: time.Date(2023, 1, 1, 8, 0, 0, 0, time.UTC)}
}

// isbn13 makes a valid ISBN-13 from a number.
func isbn13(n int) string {
	d := []byte(fmt.Sprintf("978%09d", n%1_000_000_000))
	sum := 0
	for i, c := range d {
		sum += int(c-'0') * (1 + 2*(i%2))
	}
	return string(append(d, byte('0'+(10-sum%10)%10)))
}

// next returns the next event of the log.
func (s *stream) next() Event {
	s.n++
	s.now = s.now.Add(time.Duration(1+s.rng.IntN(90)) * time.Second)
	cmd := fmt.Sprintf("cmd-%016x", s.rng.Uint64())
	e := Event{ID: cmd + "-1", Source: EventSource, CommandID: cmd, Time: s.now}
	switch r := s.rng.IntN(100); {
	case r < 40 || len(s.books) < 10:
		b := streamBook{id: fmt.Sprintf("%08x-%04x-%04x", s.rng.Uint32(), s.n&0xffff, s.rng.Uint32()&0xffff), seq: 1}
		s.books = append(s.books, b)
		w := func() string { return benchWords[s.rng.IntN(len(benchWords))] }
		e.Type, e.BookID, e.Seq = TypeBookAdded, b.id, 1
		e.Title = fmt.Sprintf("The %s of %s %s", w(), w(), w())
		e.Authors = []string{benchAuthors[s.rng.IntN(len(benchAuthors))]}
		if s.rng.IntN(5) == 0 {
			e.Authors = append(e.Authors, benchAuthors[s.rng.IntN(len(benchAuthors))])
		}
		e.Year = 1950 + s.rng.IntN(75)
		if s.rng.IntN(2) == 0 {
			e.ISBN = isbn13(s.rng.IntN(1_000_000_000))
		}
		if s.rng.IntN(4) == 0 {
			e.RequestHash = fmt.Sprintf("%016x", s.rng.Uint64())
		}
	default:
		b := &s.books[s.rng.IntN(len(s.books))]
		b.seq++
		e.BookID, e.Seq = b.id, b.seq
		if r < 98 || b.removed {
			e.Type, e.ReadAt = TypeBookRead, s.now
			if s.rng.IntN(4) == 0 {
				e.ReadAt = s.now.Add(-time.Duration(s.rng.IntN(72*3600)) * time.Second)
			}
		} else {
			e.Type, b.removed = TypeBookRemoved, true
		}
	}
	return e
}

// records encodes the next n events.
func (s *stream) records(tb testing.TB, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		e := s.next()
		b, err := EncodeEvent(&e)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// benchRecords are ~1000 distinct events of one log.
func benchRecords(tb testing.TB) [][]byte {
	return newStream(1).records(tb, 1000)
}

// ours decodes and applies one pass of records into a fresh view, as a
// view catching up does.
func ours(tb testing.TB, records [][]byte, ts time.Time) *LastRead {
	v := NewLastRead()
	var e Event
	for i, r := range records {
		if err := DecodeRecordInto(&e, r, ts); err != nil {
			tb.Fatal(err)
		}
		e.At = LogPos{Offset: int64(i)}
		v.Apply(&e)
	}
	return v
}

// bareEvent has the fields of an event and nothing else: what a reader
// that trusts its input would decode into.
type bareEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	BookSeq         int64     `json:"bookseq"`
	CommandID       string    `json:"commandid"`
	RequestHash     string    `json:"requesthash"`
	Data            struct {
		Title   string    `json:"title"`
		Authors []string  `json:"authors"`
		Year    int       `json:"year"`
		ISBN    string    `json:"isbn"`
		ReadAt  time.Time `json:"read_at"`
	} `json:"data"`
}

// bare is the baseline: encoding/json into a plain struct and a map of
// the latest read per book. No checks, no tolerance, no order.
func bare(tb testing.TB, records [][]byte) map[string]time.Time {
	last := map[string]time.Time{}
	var e bareEvent
	for _, r := range records {
		e = bareEvent{}
		if err := json.Unmarshal(r, &e); err != nil {
			tb.Fatal(err)
		}
		if e.Type == TypeBookRead && e.Data.ReadAt.After(last[e.Subject]) {
			last[e.Subject] = e.Data.ReadAt
		}
	}
	return last
}

func reportPerEvent(b *testing.B, events int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

func BenchmarkDecodeApply(b *testing.B) {
	records := benchRecords(b)
	n := 0
	for b.Loop() {
		ours(b, records, t0)
		n += len(records)
	}
	reportPerEvent(b, n)
}

func BenchmarkDecodeApplyBare(b *testing.B) {
	records := benchRecords(b)
	n := 0
	for b.Loop() {
		bare(b, records)
		n += len(records)
	}
	reportPerEvent(b, n)
}

// BenchmarkDecodeApplyRatio times both in the same run, pass by pass in
// turn so that whatever else the machine does falls on both alike, and
// reports bare time over ours: 1 means as fast as the bare baseline.
func BenchmarkDecodeApplyRatio(b *testing.B) {
	records := benchRecords(b)
	var oursTime, bareTime time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		ours(b, records, t0)
		mid := time.Now()
		bare(b, records)
		oursTime += mid.Sub(start)
		bareTime += time.Since(mid)
		n += len(records)
	}
	b.ReportMetric(float64(oursTime.Nanoseconds())/float64(n), "ns/event-ours")
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(n), "ns/event-bare")
	b.ReportMetric(float64(bareTime)/float64(oursTime), "ratio")
}

// BenchmarkDecodeApplyMillion is a view catching up on a log of a million
// events on one core: a million distinct records, decoded and applied to
// one LastRead. The records are made in chunks with the timer stopped, so
// they need not all be in memory at once. The garbage of making them is
// partly collected on the timer's time (one core: the collector shares it),
// so the figure is an upper bound.
func BenchmarkDecodeApplyMillion(b *testing.B) {
	const total, chunk = 1_000_000, 50_000
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for b.Loop() {
		b.StopTimer()
		s := newStream(2)
		v := NewLastRead()
		var e Event
		for done := 0; done < total; done += chunk {
			records := s.records(b, chunk)
			b.StartTimer()
			for i, r := range records {
				if err := DecodeRecordInto(&e, r, t0); err != nil {
					b.Fatal(err)
				}
				e.At = LogPos{Offset: int64(done + i)}
				v.Apply(&e)
			}
			b.StopTimer()
		}
		if len(v.Latest(DefaultLastReadLimit)) != DefaultLastReadLimit {
			b.Fatal("the view is empty")
		}
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/1M-events")
}

// The benchmark data must be what it claims: distinct, valid, of both
// types, and bare and ours must agree on what was read last.
func TestBenchRecords(t *testing.T) {
	records := benchRecords(t)
	seen := map[string]bool{}
	types := map[string]int{}
	for _, r := range records {
		if seen[string(r)] {
			t.Fatalf("duplicate record %s", r)
		}
		seen[string(r)] = true
		e, err := DecodeRecord(r, t0)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		types[e.Type]++
	}
	if types[TypeBookAdded] < 300 || types[TypeBookRead] < 500 {
		t.Errorf("types = %v", types)
	}
	v := ours(t, records, t0)
	last := bare(t, records)
	got := v.Latest(MaxLimit)
	if len(got) < 50 {
		t.Fatalf("only %d books read", len(got))
	}
	for _, r := range got {
		if !r.ReadAt.Equal(last[r.ID]) {
			t.Errorf("%s: ours read at %v, bare %v", r.ID, r.ReadAt, last[r.ID])
		}
	}
}

// catalogOfMillion is a catalog of a million books, two authors each of
// 5 000, titles of three words of a thousand; built once per run.
var catalogOfMillion = sync.OnceValue(func() *Catalog {
	rng := rand.New(rand.NewPCG(1, 2))
	v := NewCatalog()
	at := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	word := func() string { return fmt.Sprintf("%s%d", benchWords[rng.IntN(len(benchWords))], rng.IntN(30)) }
	for i := range 1_000_000 {
		at = at.Add(time.Duration(rng.IntN(3)) * time.Second)
		v.Apply(&Event{Type: TypeBookAdded, Source: EventSource, Seq: 1, BookID: fmt.Sprintf("b%07d", i), Time: at,
			Title:   word() + " " + word() + " " + word(),
			Authors: []string{fmt.Sprintf("Author %d", rng.IntN(5000)), fmt.Sprintf("Writer %d", rng.IntN(5000))}})
	}
	return v
})

// Pages of the catalog at a million books: each costs its page and a
// binary search, not a walk of the shelf; a search costs the books its
// rarest word's prefix matches.
func BenchmarkCatalogPageMillion(b *testing.B) {
	v := catalogOfMillion()
	for _, bc := range []struct {
		name string
		q    PageQuery
	}{
		{"first page", PageQuery{Limit: 20}},
		{"deep offset", PageQuery{Limit: 20, Offset: 900_000}},
		{"cursor", PageQuery{Limit: 20, After: "b0500000"}},
		{"author", PageQuery{Limit: 20, Author: "author 4242"}},
		{"author deep cursor", PageQuery{Limit: 20, Author: "Writer 17", After: "b0900000"}},
		{"q one word", PageQuery{Limit: 20, Q: "dune7"}},
		{"q two words", PageQuery{Limit: 20, Q: "dune7 sola"}},
		{"q author name", PageQuery{Limit: 20, Q: "author 4242"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var total int
			for b.Loop() {
				books, n, _, err := v.Page(bc.q)
				if err != nil || len(books) == 0 {
					b.Fatalf("%+v: %d books, %v", bc.q, len(books), err)
				}
				total = n
			}
			b.ReportMetric(float64(total), "total")
		})
	}
}

// millionAdds are the events of a shelf of a million books as the load
// scenarios make it: ids of the aggregate's form, titles of three words,
// two authors each of 5 000; then, for the last-read view, a read of
// each book.
func millionEvents(reads bool) func(func(*Event)) {
	return func(fn func(*Event)) {
		rng := rand.New(rand.NewPCG(3, 4))
		at := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
		word := func() string { return fmt.Sprintf("%s%d", benchWords[rng.IntN(len(benchWords))], rng.IntN(30)) }
		var e Event
		for i := range 1_000_000 {
			at = at.Add(time.Duration(rng.IntN(3)) * time.Second)
			e = Event{Type: TypeBookAdded, Source: EventSource, Seq: 1, BookID: fmt.Sprintf("%016x%016x", rng.Uint64(), i), Time: at,
				Title:   word() + " " + word() + " " + word(),
				Authors: []string{fmt.Sprintf("Author %d", rng.IntN(5000)), fmt.Sprintf("Writer %d", rng.IntN(5000))}}
			fn(&e)
			if reads {
				id := e.BookID
				e = Event{Type: TypeBookRead, Source: EventSource, Seq: 2, BookID: id, Time: at, ReadAt: at}
				fn(&e)
			}
		}
	}
}

// noView applies nothing: the cost of making the events alone.
type noView struct{}

func (noView) Apply(*Event) {}

// Applying a million books to each view, one core: the time per event
// and what the view's state holds per book afterwards (the heap in use
// after a collection, beside the heap before). The events are made as
// they are applied, so that the view's strings are its own; "events
// only" is what making them costs, to take off the others' times.
func BenchmarkApplyMillion(b *testing.B) {
	for _, bc := range []struct {
		name  string
		reads bool
		view  func() Projection
	}{
		{"events only", true, func() Projection { return noView{} }},
		{"catalog", false, func() Projection { return NewCatalog() }},
		{"last-read", true, func() Projection { return NewLastRead() }},
		{"stats", true, func() Projection { return NewStats() }},
		{"books", true, func() Projection { return NewShelf() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			var heap float64
			events := 0
			for b.Loop() {
				b.StopTimer()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				v := bc.view()
				events = 0
				b.StartTimer()
				millionEvents(bc.reads)(func(e *Event) { v.Apply(e); events++ })
				if c, ok := v.(*Catalog); ok {
					c.Settle() // as a view that has caught up does
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = float64(after.HeapAlloc) - float64(before.HeapAlloc)
				runtime.KeepAlive(v)
				b.StartTimer()
			}
			b.ReportMetric(heap/1e6, "heap-B/book")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
		})
	}
}

// Sorting a million books into the catalog's indexes once it has caught
// up (Settle): the books of a bulk import, all added at one time, so their
// order is their ids'; numbered ids, read a partition's turn after
// another's, as a view reads twelve partitions.
func BenchmarkSettleMillion(b *testing.B) {
	at := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	const n, parts = 1_000_000, 12
	for b.Loop() {
		b.StopTimer()
		c := NewCatalog()
		for j := range n / parts {
			for p := range parts {
				i := p*(n/parts) + j
				e := Event{Type: TypeBookAdded, Source: EventSource, Seq: 1, BookID: fmt.Sprintf("import-%d", i), Time: at,
					Title:   loadLikeTitle(i),
					Authors: []string{fmt.Sprintf("Author %d", i%5000), fmt.Sprintf("Writer %d", (i/7)%5000)}}
				c.Apply(&e)
			}
		}
		runtime.GC()
		b.StartTimer()
		c.Settle()
	}
}

func loadLikeTitle(i int) string {
	w := func(k int) string { return fmt.Sprintf("%s%d", benchWords[k%len(benchWords)], (k/len(benchWords))%30) }
	return w(i*7919) + " " + w(i*104729+1) + " " + w(i*1299709+2)
}
