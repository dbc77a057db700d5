package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// testNow is the clock of the tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testClock() time.Time { return testNow }

// fakeSubmitter is the aggregate without Kafka: it runs the real decision
// (shelf.Shelf) on each command, in order, and numbers the events as a
// one-partition log would. Commands go through their encoding first, as on
// the commands topic, so the handler cannot build one the log would refuse.
type fakeSubmitter struct {
	t testing.TB

	mu        sync.Mutex
	shelf     *shelf.Shelf
	next      int64
	events    []shelf.Event
	decisions int
	commands  []shelf.Command
	err       error              // returned by Submit, when set
	refuse    error              // the rejection of every command, when set
	onEvent   func(*shelf.Event) // the views, in tests that have them
}

func newFakeSubmitter(t testing.TB) *fakeSubmitter {
	return &fakeSubmitter{t: t, shelf: shelf.NewShelf()}
}

func (f *fakeSubmitter) Submit(ctx context.Context, c shelf.Command) (shelf.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return shelf.Outcome{}, f.err
	}
	raw, err := shelf.EncodeCommand(&c)
	if err != nil {
		f.t.Errorf("encode command: %v", err)
		return shelf.Outcome{}, err
	}
	c, err = shelf.DecodeCommand(raw)
	if err != nil {
		f.t.Errorf("the handler built a command the log refuses: %v\n%s", err, raw)
		return shelf.Outcome{}, err
	}
	f.commands = append(f.commands, c)
	f.decisions++
	if f.refuse != nil {
		// Through the outcome's encoding, as on the replies topic.
		o := shelf.Rejection(c.ID, f.refuse)
		raw, err := shelf.EncodeOutcome(&o)
		if err != nil {
			return shelf.Outcome{}, err
		}
		return shelf.DecodeOutcome(raw)
	}
	d, err := f.shelf.Decide(c, testNow)
	if err != nil {
		return shelf.Rejection(c.ID, err), nil
	}
	book := d.Book
	out := shelf.Outcome{CommandID: c.ID, Status: shelf.StatusAccepted, Book: &book}
	if d.Replay {
		out.Status = shelf.StatusReplayed
		out.Position = shelf.PositionOf(d.At).String()
		return out, nil
	}
	for i := range d.Events {
		e := d.Events[i]
		e.At = shelf.LogPos{Partition: 0, Offset: f.next}
		f.next++
		f.shelf.Apply(&e)
		f.events = append(f.events, e)
		out.Position = shelf.PositionOf(e.At).String()
		if e.Type == shelf.TypeBookRead {
			t := e.ReadAt
			out.ReadAt = &t
		}
		if f.onEvent != nil {
			f.onEvent(&e)
		}
	}
	return out, nil
}

func (f *fakeSubmitter) eventCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// quietLogger drops what the handlers log, unless -v.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// do sends one request through h and returns the recorded answer.
func do(t testing.TB, h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// problemOf decodes a problem answer, failing the test if it is not one.
func problemOf(t testing.TB, rec *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != ProblemContentType {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, ProblemContentType, rec.Body)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, rec.Body)
	}
	if p.Status != rec.Code {
		t.Errorf("problem status %d, answer %d", p.Status, rec.Code)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem without type, title or detail: %+v", p)
	}
	return p
}

// event builders for the views' tests.
func added(off int64, id, title string, authors ...string) *shelf.Event {
	return &shelf.Event{ID: id + "-add", Type: shelf.TypeBookAdded, BookID: id, Seq: 1, Title: title, Authors: authors,
		Time: testNow.Add(-time.Hour), At: shelf.LogPos{Offset: off}}
}

func readEv(off int64, id string, seq int64, at time.Time) *shelf.Event {
	return &shelf.Event{ID: id + "-read", Type: shelf.TypeBookRead, BookID: id, Seq: seq, ReadAt: at, Time: at,
		At: shelf.LogPos{Offset: off}}
}

func removedEv(off int64, id string, seq int64) *shelf.Event {
	return &shelf.Event{ID: id + "-rm", Type: shelf.TypeBookRemoved, BookID: id, Seq: seq, Time: testNow,
		At: shelf.LogPos{Offset: off}}
}
