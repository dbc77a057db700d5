package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
	"github.com/bookshelf/bookshelf/internal/shelf"
)

// benchLastRead is a last-read replica holding 1000 books, each read once.
func benchLastRead() *shelf.Replica[*shelf.LastRead] {
	rep := shelf.NewReplica(shelf.NewLastRead())
	var off int64
	for i := range 1000 {
		id := fmt.Sprintf("book-%04d", i)
		rep.Apply(added(off, id, "Title of book "+strconv.Itoa(i), "Author A", "Author B"))
		rep.Apply(readEv(off+1, id, 2, testNow.Add(time.Duration(i)*time.Minute)))
		off += 2
	}
	return rep
}

// lastReadHandlers returns our last-read handler and the bare one, and the
// request both answer.
func lastReadHandlers(tb testing.TB) (ours, bare http.Handler, req *http.Request) {
	rep := benchLastRead()
	_, ours = newLastReadHandler(rep, nil, newConfig([]Option{
		WithLogger(slog.New(slog.DiscardHandler)), WithMetrics(metrics.NewRegistry()),
	}))
	var entries []shelf.ReadEntry
	rep.Read(func(v *shelf.LastRead) { entries = v.Latest(5) })
	buf, err := encodeJSON(lastReadList{Books: entries})
	if err != nil {
		tb.Fatal(err)
	}
	body := append([]byte(nil), buf.Bytes()...)
	bare = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", JSONContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
	req = httptest.NewRequest("GET", "/books/last-read?limit=5", nil)
	// Both answer the same bytes, or the comparison means nothing.
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	ours.ServeHTTP(a, req)
	bare.ServeHTTP(b, req)
	if a.Code != 200 || a.Body.String() != b.Body.String() {
		tb.Fatalf("answers differ: %d %s / %s", a.Code, a.Body, b.Body)
	}
	return ours, bare, req
}

func serveOnce(b *testing.B, h http.Handler, req *http.Request) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("status %d", rec.Code)
	}
}

// BenchmarkLastReadGET is the last-read view's GET through its mux and
// middleware (metrics on, logging off), limit 5, from 1000 books.
func BenchmarkLastReadGET(b *testing.B) {
	h, _, req := lastReadHandlers(b)
	b.ReportAllocs()
	for b.Loop() {
		serveOnce(b, h, req)
	}
}

// BenchmarkLastReadGETBare is the floor: a handler writing the same bytes.
func BenchmarkLastReadGETBare(b *testing.B) {
	_, h, req := lastReadHandlers(b)
	b.ReportAllocs()
	for b.Loop() {
		serveOnce(b, h, req)
	}
}

// BenchmarkLastReadRatio runs both and reports bare ns / ours ns: 1 means
// our handler costs nothing over writing the bytes; the target is 0.85 or
// more.
//
// The two run interleaved, in batches timed by the process's CPU clock,
// alternating which goes first: on a shared machine, wall time and two
// separate runs measure the neighbours as much as the code. (Calling
// testing.Benchmark inside a benchmark would deadlock.)
func BenchmarkLastReadRatio(b *testing.B) {
	ours, bare, req := lastReadHandlers(b)
	benchRatio(b, ours, bare, req)
}

// benchRatio times ours and bare on req, interleaved, and reports bare ns
// / ours ns as "ratio".
func benchRatio(b *testing.B, ours, bare http.Handler, req *http.Request) {
	const batch = 1000
	timed := func(h http.Handler) time.Duration {
		start := cpuNow()
		for range batch {
			serveOnce(b, h, req)
		}
		return cpuNow() - start
	}
	var tOurs, tBare time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tOurs += timed(ours)
			tBare += timed(bare)
		} else {
			tBare += timed(bare)
			tOurs += timed(ours)
		}
		n += batch
	}
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(n), "ours-cpu-ns/op")
	b.ReportMetric(float64(tBare.Nanoseconds())/float64(n), "bare-cpu-ns/op")
	b.ReportMetric(float64(tBare)/float64(tOurs), "ratio")
}

// millionCatalog is a catalog replica of a million books, two authors
// each of 5 000, titles of three words of 660, as the load scenarios
// make them; built once per run.
var millionCatalog = sync.OnceValue(func() *shelf.Replica[*shelf.Catalog] {
	rep := shelf.NewReplica(shelf.NewCatalog())
	words := []string{"Dune", "Solaris", "Foundation", "Night", "Wind", "Sea", "Earth", "Tombs", "Shore", "River",
		"Stars", "Glass", "Bead", "Game", "City", "Silence", "Winter", "Summer", "Heaven", "World", "Forest", "Fire"}
	w := func(k int) string { return fmt.Sprintf("%s%d", words[k%len(words)], (k/len(words))%30) }
	for i := range 1_000_000 {
		rep.Apply(added(int64(i), fmt.Sprintf("book-%07d", i), w(i*7919)+" "+w(i*104729+1)+" "+w(i*1299709+2),
			fmt.Sprintf("Author %d", i%5000), fmt.Sprintf("Writer %d", (i/7)%5000)))
	}
	return rep
})

// BenchmarkCatalogRatio is each indexed query of the catalog at a million
// books, through its handler, beside a bare handler writing the same
// bytes; "uncached" is the same query with the view moved by one event
// before each request, so that the page is built and encoded each time.
func BenchmarkCatalogRatio(b *testing.B) {
	rep := millionCatalog()
	h := Catalog(rep, nil, WithLogger(slog.New(slog.DiscardHandler)), WithMetrics(metrics.NewRegistry()))
	for _, q := range []struct{ name, target string }{
		{"first page", "/books?limit=20"},
		{"author", "/books?author=Author+4242&limit=20"},
		{"deep offset", "/books?limit=20&offset=999900"},
		{"cursor", "/books?limit=20&after=book-0500000"},
		{"q one word", "/books?q=dune7&limit=20"},
		{"q two words", "/books?q=dune7+sol&limit=20"},
	} {
		req := httptest.NewRequest("GET", q.target, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id"`) {
			b.Fatalf("%s: %d %s", q.target, rec.Code, rec.Body)
		}
		body := rec.Body.Bytes()
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", JSONContentType)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body)
		})
		b.Run(q.name, func(b *testing.B) { benchRatio(b, h, bare, req) })
		b.Run(q.name+" uncached", func(b *testing.B) {
			off := int64(2_000_000)
			for b.Loop() {
				b.StopTimer()
				off++
				rep.Advance(0, off) // the view moves: nothing kept is good
				b.StartTimer()
				serveOnce(b, h, req)
			}
		})
	}
}
