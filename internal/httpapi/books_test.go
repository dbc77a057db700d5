package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
	"github.com/bookshelf/bookshelf/internal/shelf"
)

func newBooks(t testing.TB) (http.Handler, *fakeSubmitter) {
	f := newFakeSubmitter(t)
	return Books(f, WithClock(testClock), WithLogger(quietLogger(t))), f
}

// addBook adds a book through h and returns its id.
func addBook(t testing.TB, h http.Handler, body string) string {
	t.Helper()
	rec := do(t, h, "POST", "/books", body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("add: %d %s", rec.Code, rec.Body)
	}
	var b shelf.Book
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.ID == "" {
		t.Fatalf("add answer %s: %v", rec.Body, err)
	}
	return b.ID
}

func TestBooksAdd(t *testing.T) {
	h, f := newBooks(t)
	rec := do(t, h, "POST", "/books", `{"title":"  Dune ","authors":["Frank Herbert"],"year":1965,"isbn":"978-0-441-17271-9"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var b shelf.Book
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	want := shelf.Book{ID: b.ID, Title: "Dune", Authors: []string{"Frank Herbert"}, Year: 1965, ISBN: "9780441172719"}
	if fmt.Sprint(b) != fmt.Sprint(want) || len(b.ID) != 32 {
		t.Errorf("book %+v, want %+v with a 32-digit id", b, want)
	}
	if got := rec.Header().Get("Location"); got != "/books/"+b.ID {
		t.Errorf("Location %q", got)
	}
	if got := rec.Header().Get(PositionHeader); got != "0:0" {
		t.Errorf("Bookshelf-Position %q, want 0:0", got)
	}
	if ct := rec.Header().Get("Content-Type"); ct != JSONContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if f.eventCount() != 1 || f.commands[0].Type != shelf.CmdAddBook || f.commands[0].BookID != b.ID {
		t.Errorf("commands %+v", f.commands)
	}

	// Without authors, and through the original path; authors: null is absent.
	for _, path := range []string{"/books", "/bookshelf/books"} {
		rec = do(t, h, "POST", path, `{"title":"Anonymous","authors":null}`)
		if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"authors":[]`) {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

func TestBooksBadInput(t *testing.T) {
	big := `{"title":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		field                    string // of the problem, when it names one
		detail                   string // a piece of the detail
	}{
		{"broken json", "POST", "/books", `{"title":`, nil, 400, "", "not valid JSON"},
		{"syntax error offset", "POST", "/books", `{"title" "x"}`, nil, 400, "", "at byte"},
		{"not an object", "POST", "/books", `["Dune"]`, nil, 400, "", "JSON object"},
		{"trailing garbage", "POST", "/books", `{"title":"Dune"} x`, nil, 400, "", "goes on after"},
		{"two objects", "POST", "/books", `{"title":"Dune"}{"title":"Emma"}`, nil, 400, "", "goes on after"},
		{"empty body", "POST", "/books", ``, nil, 400, "", "empty"},
		{"missing title", "POST", "/books", `{"authors":["A"]}`, nil, 400, "title", "required"},
		{"blank title", "POST", "/books", `{"title":"  "}`, nil, 400, "title", ""},
		{"empty authors", "POST", "/books", `{"title":"Dune","authors":[]}`, nil, 400, "authors", ""},
		{"authors a string", "POST", "/books", `{"title":"Dune","authors":"Frank"}`, nil, 400, "authors", "list of strings"},
		{"authors of numbers", "POST", "/books", `{"title":"Dune","authors":[1]}`, nil, 400, "authors", ""},
		{"year a string", "POST", "/books", `{"title":"Dune","year":"x"}`, nil, 400, "year", "integer"},
		{"year a fraction", "POST", "/books", `{"title":"Dune","year":1.5}`, nil, 400, "year", ""},
		{"year zero", "POST", "/books", `{"title":"Dune","year":0}`, nil, 400, "year", ""},
		{"year ahead", "POST", "/books", `{"title":"Dune","year":2999}`, nil, 400, "year", ""},
		{"title a number", "POST", "/books", `{"title":7}`, nil, 400, "title", "string"},
		{"bad isbn", "POST", "/books", `{"title":"Dune","isbn":"123"}`, nil, 400, "isbn", ""},
		{"unknown field", "POST", "/books", `{"title":"Dune","author":"Frank"}`, nil, 400, "author", "unknown field"},
		{"too large", "POST", "/books", big, nil, 413, "", "64 KiB"},
		{"text/plain", "POST", "/books", `{"title":"Dune"}`, []string{"Content-Type", "text/plain"}, 415, "", "application/json"},
		{"no content type", "POST", "/books", `{"title":"Dune"}`, []string{"Content-Type", ""}, 415, "", ""},
		{"latin1 charset", "POST", "/books", `{"title":"Dune"}`, []string{"Content-Type", "application/json; charset=latin1"}, 415, "", ""},
		{"bad media type", "POST", "/books", `{"title":"Dune"}`, []string{"Content-Type", "application/"}, 415, "", ""},
		{"key too long", "POST", "/books", `{"title":"Dune"}`, []string{IdempotencyKeyHeader, strings.Repeat("k", 256)}, 400, IdempotencyKeyHeader, ""},
		{"key not ascii", "POST", "/books", `{"title":"Dune"}`, []string{IdempotencyKeyHeader, "clé"}, 400, IdempotencyKeyHeader, ""},
		{"read unknown book", "POST", "/books/nope/read", ``, nil, 404, "", `no book with id "nope"`},
		{"delete unknown book", "DELETE", "/books/nope", ``, nil, 404, "", "no book"},
		{"finished unknown book", "POST", "/bookshelf/books/nope/finished", ``, nil, 404, "", ""},
		{"bad id", "POST", "/books/a%20b/read", ``, nil, 400, "id", ""},
		{"id too long", "DELETE", "/books/" + strings.Repeat("a", 129), ``, nil, 400, "id", ""},
		{"read_at not a time", "POST", "/books/nope/read", `{"read_at":"yesterday"}`, nil, 400, "read_at", "RFC 3339"},
		{"read_at a number", "POST", "/books/nope/read", `{"read_at":5}`, nil, 400, "read_at", ""},
		{"read_at ahead", "POST", "/books/nope/read", `{"read_at":"2025-06-01T12:06:00Z"}`, nil, 400, "read_at", "future"},
		{"read body text/plain", "POST", "/books/nope/read", `{}`, []string{"Content-Type", "text/plain"}, 415, "", ""},
		{"wrong method", "GET", "/books", ``, nil, 405, "", "GET is not allowed"},
		{"unknown path", "GET", "/nothing/here", ``, nil, 404, "", "nothing at /nothing/here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, f := newBooks(t)
			rec := do(t, h, tc.method, tc.path, tc.body, tc.header...)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			p := problemOf(t, rec)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q: %+v", p.Field, tc.field, p)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q does not say %q", p.Detail, tc.detail)
			}
			if p.Instance == "" {
				t.Errorf("no instance")
			}
			if tc.status == 400 && tc.field != "" && !strings.Contains(p.Detail, tc.field) {
				t.Errorf("detail %q does not name the field %s", p.Detail, tc.field)
			}
			if tc.status == 405 && rec.Header().Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if tc.status != 404 && f.eventCount() != 0 {
				t.Errorf("a refused request changed the shelf")
			}
		})
	}
}

func TestBooksSubmitFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		detail string
	}{
		{"log down", fmt.Errorf("%w: kafka: not enough replicas", shelf.ErrUnavailable), "cannot take writes"},
		{"no outcome", fmt.Errorf("%w: wait for outcome: %w", shelf.ErrUnavailable, context.DeadlineExceeded), "Idempotency-Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, f := newBooks(t)
			f.err = tc.err
			for _, req := range [][3]string{{"POST", "/books", `{"title":"Dune"}`}, {"POST", "/books/x/read", ""}, {"DELETE", "/books/x", ""}} {
				rec := do(t, h, req[0], req[1], req[2])
				if rec.Code != http.StatusServiceUnavailable {
					t.Fatalf("%v: status %d: %s", req, rec.Code, rec.Body)
				}
				if ra := rec.Header().Get("Retry-After"); ra != "1" {
					t.Errorf("Retry-After %q", ra)
				}
				if p := problemOf(t, rec); !strings.Contains(p.Detail, tc.detail) || strings.Contains(p.Detail, "kafka") {
					t.Errorf("detail %q", p.Detail)
				}
			}
		})
	}
}

// An error the command path does not call retriable is a bug: a 500,
// logged with the request, never a 503 that would have clients and the
// gateway retry it.
func TestBooksUnknownErrorIsALogged500(t *testing.T) {
	var log strings.Builder // the handler writes it before do returns
	f := newFakeSubmitter(t)
	f.err = errors.New("encode command: a bug")
	h := Books(f, WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	rec := do(t, h, "POST", "/books", `{"title":"Dune"}`)
	if rec.Code != 500 || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("status %d, Retry-After %q: %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if p := problemOf(t, rec); strings.Contains(p.Detail, "a bug") {
		t.Errorf("the problem tells the client the server's error: %q", p.Detail)
	}
	if out := log.String(); !strings.Contains(out, `msg="request failed"`) || !strings.Contains(out, "status=500") || !strings.Contains(out, "a bug") {
		t.Errorf("the 500 is not logged with its error:\n%s", out)
	}
}

// A command whose events the log refuses for good (here: too large for
// the event topic) is answered 422 with the log's reason, not 503: sending
// it again would get the same answer.
func TestBooksRefusedByTheLog(t *testing.T) {
	h, f := newBooks(t)
	f.refuse = fmt.Errorf("%w: append to bookshelf/0: MESSAGE_TOO_LARGE: The request included a message larger than the max message size the server will accept.", shelf.ErrRefused)
	for _, req := range [][3]string{{"POST", "/books", `{"title":"Dune"}`}, {"POST", "/books/x/read", ""}, {"DELETE", "/books/x", ""}} {
		rec := do(t, h, req[0], req[1], req[2])
		if rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("%v: status %d: %s", req, rec.Code, rec.Body)
		}
		p := problemOf(t, rec)
		if !strings.HasSuffix(p.Type, "/refused") || !strings.Contains(p.Detail, "MESSAGE_TOO_LARGE") || rec.Header().Get("Retry-After") != "" {
			t.Errorf("%v: problem %+v, Retry-After %q", req, p, rec.Header().Get("Retry-After"))
		}
	}
}

// A Submitter that honours its context: the handler bounds the wait.
type slowSubmitter struct{}

func (slowSubmitter) Submit(ctx context.Context, _ shelf.Command) (shelf.Outcome, error) {
	<-ctx.Done()
	return shelf.Outcome{}, ctx.Err()
}

func TestBooksSubmitTimeout(t *testing.T) {
	h := Books(slowSubmitter{}, WithSubmitTimeout(20*time.Millisecond), WithLogger(quietLogger(t)))
	rec := do(t, h, "POST", "/books", `{"title":"Dune"}`)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d %v", rec.Code, rec.Header())
	}
}

func TestBooksReadAndRemove(t *testing.T) {
	h, f := newBooks(t)
	id := addBook(t, h, `{"title":"Emma","authors":["Jane Austen"]}`)

	// No body at all, no Content-Type: read now.
	rec := do(t, h, "POST", "/books/"+id+"/read", "")
	if rec.Code != 200 {
		t.Fatalf("read: %d %s", rec.Code, rec.Body)
	}
	var got readAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Title != "Emma" || len(got.Authors) != 1 || got.ReadAt == nil || !got.ReadAt.Equal(testNow) {
		t.Errorf("read answer %+v", got)
	}
	if rec.Header().Get(PositionHeader) != "0:1" {
		t.Errorf("position %q", rec.Header().Get(PositionHeader))
	}

	// With read_at, through the original path; a null read_at means now.
	at := "2024-05-01T20:00:00+02:00"
	rec = do(t, h, "POST", "/bookshelf/books/"+id+"/finished", `{"read_at":"`+at+`"}`)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"read_at":"2024-05-01T18:00:00Z"`) {
		t.Errorf("finished: %d %s", rec.Code, rec.Body)
	}
	if rec = do(t, h, "POST", "/books/"+id+"/read", `{"read_at":null}`); rec.Code != 200 {
		t.Errorf("null read_at: %d %s", rec.Code, rec.Body)
	}
	// White space is no body: no Content-Type needed.
	if rec = do(t, h, "POST", "/books/"+id+"/read", " \n", "Content-Type", ""); rec.Code != 200 {
		t.Errorf("blank body: %d %s", rec.Code, rec.Body)
	}

	rec = do(t, h, "DELETE", "/books/"+id, "")
	if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 || rec.Header().Get(PositionHeader) == "" {
		t.Fatalf("delete: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	n := f.eventCount()
	for _, req := range [][2]string{{"DELETE", "/books/" + id}, {"POST", "/books/" + id + "/read"}} {
		rec = do(t, h, req[0], req[1], "")
		if rec.Code != 404 {
			t.Fatalf("%v after removal: %d", req, rec.Code)
		}
		if p := problemOf(t, rec); !strings.Contains(p.Detail, "removed") || !strings.HasSuffix(p.Type, "/removed") {
			t.Errorf("removed problem %+v", p)
		}
	}
	if f.eventCount() != n {
		t.Errorf("refused commands appended events")
	}
}

func TestBooksIdempotencyKey(t *testing.T) {
	h, f := newBooks(t)
	body := `{"title":"Dune","authors":["Frank Herbert"]}`
	first := do(t, h, "POST", "/books", body, IdempotencyKeyHeader, "key-1")
	if first.Code != 201 {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	// The retry, through the original path too: the same command.
	for _, path := range []string{"/books", "/bookshelf/books"} {
		again := do(t, h, "POST", path, body, IdempotencyKeyHeader, "key-1")
		if again.Code != 201 || again.Body.String() != first.Body.String() || again.Header().Get("Location") != first.Header().Get("Location") {
			t.Errorf("retry on %s: %d %s, first %s", path, again.Code, again.Body, first.Body)
		}
		if again.Header().Get(PositionHeader) != first.Header().Get(PositionHeader) {
			t.Errorf("retry position %q, first %q", again.Header().Get(PositionHeader), first.Header().Get(PositionHeader))
		}
	}
	if n := f.eventCount(); n != 1 {
		t.Errorf("%d events for one keyed add, want 1", n)
	}
	c0, c1 := f.commands[0], f.commands[1]
	if c0.ID != c1.ID || c0.BookID != c1.BookID || c0.RequestHash == "" || c0.RequestHash != c1.RequestHash {
		t.Errorf("retry is another command: %+v vs %+v", c0, c1)
	}

	// The same key with another body: a conflict, nothing appended.
	other := do(t, h, "POST", "/books", `{"title":"Emma"}`, IdempotencyKeyHeader, "key-1")
	if other.Code != http.StatusConflict {
		t.Fatalf("other body: %d %s", other.Code, other.Body)
	}
	if p := problemOf(t, other); strings.HasPrefix(p.Detail, "conflict") || !strings.Contains(p.Detail, "idempotency key") {
		t.Errorf("conflict detail %q", p.Detail)
	}
	// Another key: another book.
	if rec := do(t, h, "POST", "/books", body, IdempotencyKeyHeader, "key-2"); rec.Code != 201 || rec.Header().Get("Location") == first.Header().Get("Location") {
		t.Errorf("other key: %d %v", rec.Code, rec.Header())
	}

	// A keyed read: retried, one event; the key of an add on a read is
	// another command.
	var b shelf.Book
	json.Unmarshal(first.Body.Bytes(), &b)
	n := f.eventCount()
	r1 := do(t, h, "POST", "/books/"+b.ID+"/read", `{"read_at":"2025-01-01T00:00:00Z"}`, IdempotencyKeyHeader, "key-1")
	r2 := do(t, h, "POST", "/books/"+b.ID+"/read", `{"read_at":"2025-01-01T00:00:00Z"}`, IdempotencyKeyHeader, "key-1")
	if r1.Code != 200 || r2.Code != 200 || r1.Body.String() != r2.Body.String() || f.eventCount() != n+1 {
		t.Errorf("keyed read: %d %s / %d %s, %d events", r1.Code, r1.Body, r2.Code, r2.Body, f.eventCount()-n)
	}
	if r3 := do(t, h, "POST", "/books/"+b.ID+"/read", "", IdempotencyKeyHeader, "key-1"); r3.Code != 409 {
		t.Errorf("keyed read with another body: %d", r3.Code)
	}
}

func TestIdempotencyDerivation(t *testing.T) {
	h := &books{cfg: newConfig(nil)}
	a := h.command(shelf.CmdMarkRead, routeRead, "b1", "k", nil, testNow)
	b := h.command(shelf.CmdMarkRead, routeRead, "b2", "k", nil, testNow)
	c := h.command(shelf.CmdRemoveBook, routeRemove, "b1", "k", nil, testNow)
	d := h.command(shelf.CmdMarkRead, routeRead, "b1", "k", []byte("{}"), testNow)
	if a.ID == b.ID || a.ID == c.ID || len(a.ID) != 32 {
		t.Errorf("ids must differ per book and route: %s %s %s", a.ID, b.ID, c.ID)
	}
	if a.ID != d.ID || a.RequestHash == d.RequestHash {
		t.Errorf("same key and route: same id, body in the hash only")
	}
	if r := h.command(shelf.CmdMarkRead, routeRead, "b1", "", nil, testNow); r.RequestHash != "" || len(r.ID) != 32 {
		t.Errorf("unkeyed %+v", r)
	}
}

// KeyedBookID and KeyedCommandID, which a checker finds a client's
// commands by, are the ids the handler gives them.
func TestKeyedIDs(t *testing.T) {
	h, f := newBooks(t)
	key := "the-key"
	id := KeyedBookID(key)
	for _, c := range []struct{ method, target, body, typ string }{
		{"POST", "/books", `{"title":"Dune"}`, shelf.CmdAddBook},
		{"POST", "/books/" + id + "/read", `{}`, shelf.CmdMarkRead},
		{"DELETE", "/books/" + id, "", shelf.CmdRemoveBook},
	} {
		if rec := do(t, h, c.method, c.target, c.body, IdempotencyKeyHeader, key); rec.Code >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.target, rec.Code, rec.Body)
		}
		got := f.commands[len(f.commands)-1]
		if got.BookID != id || got.ID != KeyedCommandID(c.typ, id, key) {
			t.Errorf("%s %s: command %s on %s, want %s on %s", c.method, c.target, got.ID, got.BookID, KeyedCommandID(c.typ, id, key), id)
		}
	}
}

// Each command's latency is counted under its type and outcome.
func TestBooksCommandLatency(t *testing.T) {
	reg := metrics.NewRegistry()
	h := Books(newFakeSubmitter(t), WithClock(testClock), WithLogger(quietLogger(t)), WithMetrics(reg))
	id := addBook(t, h, `{"title":"Dune"}`)
	if rec := do(t, h, "DELETE", "/books/"+id, ""); rec.Code != 204 {
		t.Fatalf("remove: %d", rec.Code)
	}
	if rec := do(t, h, "DELETE", "/books/"+id, ""); rec.Code != 404 {
		t.Fatalf("remove again: %d", rec.Code)
	}
	slow := Books(slowSubmitter{}, WithSubmitTimeout(20*time.Millisecond), WithLogger(quietLogger(t)), WithMetrics(reg))
	do(t, slow, "POST", "/books", `{"title":"Dune"}`)
	var sb strings.Builder
	reg.WriteTo(&sb)
	for _, want := range []string{
		"# TYPE bookshelf_command_duration_seconds histogram",
		`bookshelf_command_duration_seconds_count{command="add-book",outcome="accepted"} 1`,
		`bookshelf_command_duration_seconds_count{command="remove-book",outcome="accepted"} 1`,
		`bookshelf_command_duration_seconds_count{command="remove-book",outcome="rejected"} 1`,
		`bookshelf_command_duration_seconds_count{command="add-book",outcome="unavailable"} 1`,
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("no %s in\n%s", want, sb.String())
		}
	}
}
