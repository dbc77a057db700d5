package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// checkAnswer fails on anything but an allowed status, and on an error
// answer that is not a well-formed problem.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	if !slices.Contains(allowed, rec.Code) {
		t.Fatalf("status %d, allowed %v: %s", rec.Code, allowed, rec.Body)
	}
	if rec.Code < 300 {
		if rec.Header().Get("Content-Type") != JSONContentType || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("success is not JSON: %v %s", rec.Header(), rec.Body)
		}
		return
	}
	var p Problem
	if rec.Header().Get("Content-Type") != ProblemContentType || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != rec.Code || p.Detail == "" {
		t.Fatalf("bad problem: %v %s", rec.Header(), rec.Body)
	}
}

func fuzzRequest(method, target string, body []byte, contentType, key string) *http.Request {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set(IdempotencyKeyHeader, key)
	}
	return req
}

func FuzzAddBookBody(f *testing.F) {
	for _, s := range []string{
		`{"title":"Dune","authors":["Frank Herbert"],"year":1965,"isbn":"978-0-441-17271-9"}`,
		`{"title":"Dune","authors":null}`,
		`{"title":"Dune","authors":[]}`,
		`{"title":"Dune","authors":"x","year":"x"}`,
		`{"title":"Dune","year":1.5e300}`,
		`{"title":"Dune","isbn":"0-306-40615-2"}`,
		`{"title":"Dune","isbn":"123X"}`,
		`{"title":"\u0000"}`,
		`{"title":"Dune"} x`,
		`{"title":`,
		`[]`, `null`, ``, ` `, `"x"`,
	} {
		f.Add([]byte(s), "application/json", "")
		f.Add([]byte(s), "application/json; charset=utf-8", "key-1")
	}
	f.Add([]byte(`{"title":"Dune"}`), "text/plain", "")
	f.Add([]byte(`{"title":"Dune"}`), "application/problem+json", "k\x00")
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, body []byte, contentType, key string) {
		sub := newFakeSubmitter(t)
		h := Books(sub, WithClock(testClock), WithLogger(log))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, fuzzRequest("POST", "/books", body, contentType, key))
		checkAnswer(t, rec, 201, 400, 409, 413, 415)
		if rec.Code == 201 {
			var b shelf.Book
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || rec.Header().Get("Location") != "/books/"+b.ID {
				t.Fatalf("created: %v %v %s", err, rec.Header(), rec.Body)
			}
			// The same request again is the same answer when keyed.
			if key != "" {
				again := httptest.NewRecorder()
				h.ServeHTTP(again, fuzzRequest("POST", "/books", body, contentType, key))
				if again.Code != 201 || again.Body.String() != rec.Body.String() {
					t.Fatalf("keyed retry: %d %s, first %s", again.Code, again.Body, rec.Body)
				}
			}
		}
	})
}

func FuzzReadBody(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `{"read_at":null}`,
		`{"read_at":"2024-05-01T20:00:00Z"}`,
		`{"read_at":"2024-05-01T20:00:00.123456789+02:00"}`,
		`{"read_at":"0001-01-01T00:00:00Z"}`,
		`{"read_at":"9999-12-31T23:59:59Z"}`,
		`{"read_at":"yesterday"}`,
		`{"read_at":5}`,
		`{"read_at":"2024-05-01T20:00:00Z","x":1}`,
		`{"read_at":"2024-05-01T20:00:00Z"}{}`,
	} {
		f.Add([]byte(s), "application/json")
		f.Add([]byte(s), "")
	}
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		sub := newFakeSubmitter(t)
		book := shelf.Book{Title: "Dune"}
		if out, err := sub.Submit(context.Background(), shelf.Command{ID: "c1", Type: shelf.CmdAddBook, BookID: "dune", Book: &book}); err != nil || out.Status != shelf.StatusAccepted {
			t.Fatalf("add: %v %+v", err, out)
		}
		h := Books(sub, WithClock(testClock), WithLogger(log))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, fuzzRequest("POST", "/books/dune/read", body, contentType, ""))
		checkAnswer(t, rec, 200, 400, 413, 415)
	})
}
