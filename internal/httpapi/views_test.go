package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// lastReadFixture is a replica holding three books read in turn, one of
// them removed afterwards.
func lastReadFixture() *shelf.Replica[*shelf.LastRead] {
	rep := shelf.NewReplica(shelf.NewLastRead())
	for _, e := range []*shelf.Event{
		added(0, "dune", "Dune", "Frank Herbert"),
		added(1, "emma", "Emma", "Jane Austen"),
		added(2, "ulysses", "Ulysses", "James Joyce"),
		readEv(3, "dune", 2, testNow.Add(-3*time.Hour)),
		readEv(4, "emma", 2, testNow.Add(-2*time.Hour)),
		readEv(5, "ulysses", 2, testNow.Add(-time.Hour)),
		removedEv(6, "ulysses", 3),
	} {
		rep.Apply(e)
	}
	return rep
}

type entriesAnswer struct {
	Books []shelf.ReadEntry `json:"books"`
}

func ids(entries []shelf.ReadEntry) string {
	var s []string
	for _, e := range entries {
		s = append(s, e.ID)
	}
	return strings.Join(s, ",")
}

func TestLastRead(t *testing.T) {
	rep := lastReadFixture()
	h := LastRead(rep, nil, WithLogger(quietLogger(t)))
	for _, tc := range []struct {
		target string
		want   string
	}{
		{"/books/last-read", "emma,dune"},
		// The original's paths answer the original's bare list.
		{"/bookshelf/books/last/read", "emma,dune"},
		{"/", "emma,dune"},
		{"/?limit=1", "emma"},
		{"/?limit=1&offset=1", "dune"},
		{"/?offset=5", ""},
		{"/books/last-read?limit=1", "emma"},
		{"/books/last-read?limit=1&offset=1", "dune"},
		{"/books/last-read?offset=5", ""},
		{"/books/last-read?author=x&other=y", "emma,dune"},
	} {
		rec := do(t, h, "GET", tc.target, "")
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", tc.target, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != JSONContentType {
			t.Errorf("Content-Type %q", ct)
		}
		if cl := rec.Header().Get("Content-Length"); cl == "" {
			t.Errorf("no Content-Length")
		}
		var got entriesAnswer
		if strings.HasPrefix(tc.target, "/books/") {
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Books == nil {
				t.Fatalf("%s: %v %s", tc.target, err, rec.Body)
			}
		} else if err := json.Unmarshal(rec.Body.Bytes(), &got.Books); err != nil || got.Books == nil {
			t.Fatalf("%s: %v %s, want a JSON list", tc.target, err, rec.Body)
		}
		if ids(got.Books) != tc.want {
			t.Errorf("%s: %s, want %s", tc.target, ids(got.Books), tc.want)
		}
	}
	rec := do(t, h, "GET", "/books/last-read", "")
	var got entriesAnswer
	json.Unmarshal(rec.Body.Bytes(), &got)
	if e := got.Books[0]; e.Title != "Emma" || e.Authors[0] != "Jane Austen" || !e.ReadAt.Equal(testNow.Add(-2*time.Hour)) {
		t.Errorf("entry %+v", e)
	}

	// The cached page follows the view.
	rep.Apply(readEv(7, "dune", 3, testNow))
	rec = do(t, h, "GET", "/books/last-read", "")
	json.Unmarshal(rec.Body.Bytes(), &got)
	if ids(got.Books) != "dune,emma" {
		t.Errorf("after a new read: %s", ids(got.Books))
	}
}

func TestViewQueryErrors(t *testing.T) {
	lr := LastRead(lastReadFixture(), nil, WithLogger(quietLogger(t)))
	cat := Catalog(shelf.NewReplica(shelf.NewCatalog()), nil, WithLogger(quietLogger(t)))
	for _, tc := range []struct {
		h      http.Handler
		target string
		field  string
	}{
		{lr, "/books/last-read?limit=0", "limit"},
		{lr, "/books/last-read?limit=101", "limit"},
		{lr, "/books/last-read?limit=x", "limit"},
		{lr, "/books/last-read?limit=", "limit"},
		{lr, "/books/last-read?offset=-1", "offset"},
		{lr, "/books/last-read?offset=1.5", "offset"},
		{lr, "/books/last-read?limit=%zz", ""},
		{cat, "/books?limit=1000", "limit"},
		{cat, "/books?author=" + strings.Repeat("a", 257), "author"},
		{cat, "/books/a%20b", "id"},
		{cat, "/books?after=no-such-book", "after"},
		{cat, "/books?q=%21%21", "q"},
		{cat, "/books?q=" + strings.Repeat("a", 257), "q"},
		{cat, "/books?after=" + strings.Repeat("b", shelf.MaxIDLen+1), "after"},
	} {
		rec := do(t, tc.h, "GET", tc.target, "")
		if rec.Code != 400 {
			t.Errorf("%s: %d, want 400", tc.target, rec.Code)
			continue
		}
		if p := problemOf(t, rec); p.Field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.target, p.Field, tc.field)
		}
	}
}

func TestCatalog(t *testing.T) {
	rep := shelf.NewReplica(shelf.NewCatalog())
	for _, e := range []*shelf.Event{
		added(0, "dune", "Dune", "Frank Herbert"),
		added(1, "emma", "Emma", "Jane Austen"),
		added(2, "persuasion", "Persuasion", "Jane Austen"),
		added(3, "gone", "Gone"),
		removedEv(4, "gone", 2),
		readEv(5, "emma", 2, testNow),
	} {
		rep.Apply(e)
	}
	h := Catalog(rep, nil, WithLogger(quietLogger(t)))
	type list struct {
		Books                []shelf.CatalogBook `json:"books"`
		Total, Limit, Offset int
		Next                 string
	}
	for _, tc := range []struct {
		target               string
		want                 string
		total, limit, offset int
		next                 string
	}{
		{"/books", "dune,emma,persuasion", 3, 20, 0, ""},
		{"/bookshelf/books", "dune,emma,persuasion", 3, 20, 0, ""},
		{"/books?limit=1&offset=1", "emma", 3, 1, 1, "emma"},
		{"/books?author=jane+austen", "emma,persuasion", 2, 20, 0, ""},
		{"/books?author=nobody", "", 0, 20, 0, ""},
		// Paging by cursor: each page's next is the after of the one
		// that follows; the last has none.
		{"/books?limit=1", "dune", 3, 1, 0, "dune"},
		{"/books?limit=1&after=dune", "emma", 3, 1, 0, "emma"},
		{"/books?limit=1&after=emma", "persuasion", 3, 1, 0, ""},
		{"/books?limit=5&after=dune&offset=1", "persuasion", 3, 5, 1, ""},
		{"/books?author=Jane+Austen&limit=1&after=emma", "persuasion", 2, 1, 0, ""},
		// Search by words of the title or an author, each a prefix.
		{"/books?q=jane+aus", "emma,persuasion", 2, 20, 0, ""},
		{"/books?q=PERS", "persuasion", 1, 20, 0, ""},
		{"/books?q=austen&limit=1", "emma", 2, 1, 0, "emma"},
		{"/books?q=austen&limit=1&after=emma", "persuasion", 2, 1, 0, ""},
		{"/books?q=dune&author=jane+austen", "", 0, 20, 0, ""},
		// A removed book's cursor still knows its place: the books are
		// added at one time, so they go by id.
		{"/books?after=gone", "persuasion", 3, 20, 0, ""},
	} {
		rec := do(t, h, "GET", tc.target, "")
		var got list
		if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", tc.target, rec.Code, err, rec.Body)
		}
		var s []string
		for _, b := range got.Books {
			s = append(s, b.ID)
		}
		if strings.Join(s, ",") != tc.want || got.Total != tc.total || got.Limit != tc.limit || got.Offset != tc.offset ||
			got.Next != tc.next || got.Books == nil {
			t.Errorf("%s: %s %+v", tc.target, s, got)
		}
	}

	rec := do(t, h, "GET", "/books/emma", "")
	var b shelf.CatalogBook
	if err := json.Unmarshal(rec.Body.Bytes(), &b); rec.Code != 200 || err != nil || b.Title != "Emma" || b.Reads != 1 {
		t.Errorf("get: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, "GET", "/books/nope", "")
	if p := problemOf(t, rec); rec.Code != 404 || !strings.HasSuffix(p.Type, "/not-found") || !strings.Contains(p.Detail, `"nope"`) {
		t.Errorf("unknown: %d %+v", rec.Code, p)
	}
	rec = do(t, h, "GET", "/books/gone", "")
	if p := problemOf(t, rec); rec.Code != 404 || !strings.Contains(p.Detail, "removed") {
		t.Errorf("removed: %d %+v", rec.Code, p)
	}
}

func TestStats(t *testing.T) {
	rep := shelf.NewReplica(shelf.NewStats())
	rep.Apply(added(0, "emma", "Emma", "Jane Austen"))
	rep.Apply(readEv(1, "emma", 2, testNow))
	h := Stats(rep, nil, WithLogger(quietLogger(t)))
	rec := do(t, h, "GET", "/stats", "")
	var s shelf.ReadingStats
	if err := json.Unmarshal(rec.Body.Bytes(), &s); rec.Code != 200 || err != nil {
		t.Fatalf("%d %v %s", rec.Code, err, rec.Body)
	}
	if s.BooksRead != 1 || s.PerAuthor["Jane Austen"] != 1 || s.PerYear["2025"] != 1 || s.BooksOnShelf != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestViewNotReady(t *testing.T) {
	var ready atomic.Bool
	readyFn := func() (bool, string) {
		if ready.Load() {
			return true, ""
		}
		return false, "catching up: 1200 of 5000 records"
	}
	opts := []Option{WithLogger(quietLogger(t))}
	for _, tc := range []struct {
		h      http.Handler
		target string
	}{
		{LastRead(lastReadFixture(), readyFn, opts...), "/books/last-read"},
		{Catalog(shelf.NewReplica(shelf.NewCatalog()), readyFn, opts...), "/books"},
		{Catalog(shelf.NewReplica(shelf.NewCatalog()), readyFn, opts...), "/books/x"},
		{Stats(shelf.NewReplica(shelf.NewStats()), readyFn, opts...), "/stats"},
	} {
		ready.Store(false)
		for _, target := range []string{tc.target, "/readyz"} {
			rec := do(t, tc.h, "GET", target, "")
			if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
				t.Errorf("%s not ready: %d %v", target, rec.Code, rec.Header())
				continue
			}
			if p := problemOf(t, rec); !strings.Contains(p.Detail, "catching up: 1200 of 5000 records") {
				t.Errorf("%s: detail %q", target, p.Detail)
			}
		}
		if rec := do(t, tc.h, "GET", "/healthz", ""); rec.Code != 200 {
			t.Errorf("healthz while catching up: %d", rec.Code)
		}
		ready.Store(true)
		for _, target := range []string{tc.target, "/readyz"} {
			if rec := do(t, tc.h, "GET", target, ""); rec.Code == 503 {
				t.Errorf("%s ready: %d %s", target, rec.Code, rec.Body)
			}
		}
	}
}

// TestReadYourWrites: a GET carrying Bookshelf-Position is answered from a
// state at or after it, waiting a bounded time.
func TestReadYourWrites(t *testing.T) {
	t.Run("reached while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rep := lastReadFixture() // next offset 7
			h := LastRead(rep, nil, WithLogger(quietLogger(t)))
			go func() {
				time.Sleep(500 * time.Millisecond)
				rep.Apply(readEv(7, "dune", 3, testNow))
			}()
			start := time.Now()
			rec := do(t, h, "GET", "/books/last-read", "", PositionHeader, "0:7")
			var got entriesAnswer
			json.Unmarshal(rec.Body.Bytes(), &got)
			if rec.Code != 200 || ids(got.Books) != "dune,emma" {
				t.Errorf("%d %s", rec.Code, rec.Body)
			}
			if waited := time.Since(start); waited != 500*time.Millisecond {
				t.Errorf("waited %v, want until the write arrived", waited)
			}
		})
	})
	t.Run("reached already", func(t *testing.T) {
		h := LastRead(lastReadFixture(), nil)
		if rec := do(t, h, "GET", "/books/last-read", "", PositionHeader, "0:6"); rec.Code != 200 {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("never reached", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := Catalog(shelf.NewReplica(shelf.NewCatalog()), nil, WithWaitTimeout(2*time.Second), WithLogger(quietLogger(t)))
			start := time.Now()
			rec := do(t, h, "GET", "/books", "", PositionHeader, "0:7,3:1")
			if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
				t.Fatalf("%d %v", rec.Code, rec.Header())
			}
			if p := problemOf(t, rec); !strings.Contains(p.Detail, "not caught up with your write") {
				t.Errorf("detail %q", p.Detail)
			}
			if waited := time.Since(start); waited != 2*time.Second {
				t.Errorf("waited %v, want the wait timeout", waited)
			}
		})
	})
	t.Run("malformed", func(t *testing.T) {
		h := Stats(shelf.NewReplica(shelf.NewStats()), nil)
		for _, v := range []string{"x", "0:-1", "a:1", strings.Repeat("0:1,", 300)} {
			rec := do(t, h, "GET", "/stats", "", PositionHeader, v)
			if rec.Code != 400 {
				t.Errorf("%q: %d", v, rec.Code)
				continue
			}
			if p := problemOf(t, rec); p.Field != PositionHeader {
				t.Errorf("%q: field %q", v, p.Field)
			}
		}
	})
}

// TestLastReadPageCache: the cached first page follows the replica's
// version, also while events arrive during the requests.
func TestLastReadPageCache(t *testing.T) {
	t.Run("follows the replica", func(t *testing.T) {
		rep := lastReadFixture()
		h := LastRead(rep, nil, WithLogger(quietLogger(t)))
		get := func() string {
			var got entriesAnswer
			json.Unmarshal(do(t, h, "GET", "/books/last-read", "").Body.Bytes(), &got)
			return ids(got.Books)
		}
		if got := get(); got != "emma,dune" {
			t.Fatalf("first: %s", got)
		}
		if got := get(); got != "emma,dune" {
			t.Fatalf("from the cache: %s", got)
		}
		rep.Apply(readEv(7, "dune", 3, testNow))
		if got := get(); got != "dune,emma" {
			t.Errorf("after an event: %s", got)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		rep := lastReadFixture()
		h := LastRead(rep, nil, WithLogger(quietLogger(t)))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 200 {
				id := []string{"dune", "emma"}[i%2]
				rep.Apply(readEv(int64(7+i), id, int64(3+i/2), testNow.Add(time.Duration(i)*time.Second)))
			}
		}()
		for range 200 {
			if rec := do(t, h, "GET", "/books/last-read?limit=2", ""); rec.Code != 200 {
				t.Fatalf("%d", rec.Code)
			}
		}
		<-done
		var got entriesAnswer
		json.Unmarshal(do(t, h, "GET", "/books/last-read?limit=2", "").Body.Bytes(), &got)
		if ids(got.Books) != "emma,dune" || !got.Books[0].ReadAt.Equal(testNow.Add(199*time.Second)) {
			t.Errorf("after the last event: %+v", got.Books)
		}
	})
}

// WithReady adds to a view's /readyz (such as a lost broker) without
// refusing queries the replica can answer.
func TestViewWithReady(t *testing.T) {
	h := Stats(shelf.NewReplica(shelf.NewStats()), nil, WithLogger(quietLogger(t)),
		WithReady(func() (bool, string) { return false, "no broker for 30s" }))
	rec := do(t, h, "GET", "/readyz", "")
	if rec.Code != 503 {
		t.Fatalf("readyz %d", rec.Code)
	}
	if p := problemOf(t, rec); !strings.Contains(p.Detail, "no broker for 30s") {
		t.Errorf("detail %q", p.Detail)
	}
	if rec := do(t, h, "GET", "/stats", ""); rec.Code != 200 {
		t.Errorf("stats %d", rec.Code)
	}
}

// The catalog's and the statistics' kept answers follow the replica: the
// same query after an event answers the new state, and different queries
// never answer each other's pages.
func TestViewAnswersFollowTheReplica(t *testing.T) {
	cat := shelf.NewReplica(shelf.NewCatalog())
	st := shelf.NewReplica(shelf.NewStats())
	apply := func(e *shelf.Event) { cat.Apply(e); st.Apply(e) }
	apply(added(1, "dune", "Dune", "Frank Herbert"))
	catalog := Catalog(cat, nil, WithLogger(quietLogger(t)))
	stats := Stats(st, nil, WithLogger(quietLogger(t)))
	total := func(target string) int {
		var got struct{ Total int }
		json.Unmarshal(do(t, catalog, "GET", target, "").Body.Bytes(), &got)
		return got.Total
	}
	read := func() int {
		var got shelf.ReadingStats
		json.Unmarshal(do(t, stats, "GET", "/stats", "").Body.Bytes(), &got)
		return got.BooksRead
	}
	for range 2 { // the second from what is kept
		if n, m, r := total("/books"), total("/books?author=nobody"), read(); n != 1 || m != 0 || r != 0 {
			t.Fatalf("total %d, by nobody %d, read %d; want 1, 0, 0", n, m, r)
		}
	}
	apply(added(2, "emma", "Emma", "Jane Austen"))
	apply(readEv(3, "emma", 2, testNow))
	if n, q, r := total("/books"), total("/books?q=emm"), read(); n != 2 || q != 1 || r != 1 {
		t.Errorf("after two events: total %d, q=emm %d, read %d; want 2, 1, 1", n, q, r)
	}
}
