package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Verdict is what the checker proved, or found wrong.
type Verdict struct {
	Commands     int      `json:"commands"`
	Acknowledged int      `json:"acknowledged"`
	Refused      int      `json:"refused"`
	Unknown      int      `json:"unknown"`
	Lost         int      `json:"lost"`         // acknowledged, no event in the log
	Doubled      int      `json:"doubled"`      // more than one event for one command
	Anomalies    int      `json:"anomalies"`    // everything else found wrong
	Linearizable string   `json:"linearizable"` // porcupine's verdict: Ok, Illegal or Unknown (timed out)
	Problems     []string `json:"problems,omitempty"`
	Views        []View   `json:"views"`
}

// View is one replica of a view, checked against the fold of the log.
type View struct {
	Service   string        `json:"service"`
	Address   string        `json:"address"`
	Converged bool          `json:"converged"`
	After     time.Duration `json:"after_ns"` // how long it took, from the end of the run
	Problem   string        `json:"problem,omitempty"`
}

func (v *Verdict) problem(format string, args ...any) {
	v.Anomalies++
	if len(v.Problems) < 50 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// CommandID is the id of the command of type typ (shelf.CmdAddBook, ...)
// on book that a request with the Idempotency-Key key becomes: how the
// checker finds its events.
type CommandID func(typ, book, key string) string

// CheckLog holds the clients' commands to the committed log: an
// acknowledged command left exactly one event, a refused one none, one
// whose outcome is unknown one at most.
func CheckLog(v *Verdict, ops []Op, events []shelf.Event, commandID CommandID) {
	perCommand := map[string]int{}
	for _, e := range events {
		if e.CommandID != "" {
			perCommand[e.CommandID]++
		}
	}
	types := map[string]string{OpAdd: shelf.CmdAddBook, OpRead: shelf.CmdMarkRead, OpRemove: shelf.CmdRemoveBook}
	for _, o := range ops {
		if !o.Command() {
			continue
		}
		v.Commands++
		n := perCommand[commandID(types[o.Kind], o.Book, o.Key)]
		switch o.Result {
		case Ok:
			v.Acknowledged++
			switch {
			case n == 0:
				v.Lost++
				v.Problems = append(v.Problems, fmt.Sprintf("lost: %s %s (key %s) acknowledged at %s, no event", o.Kind, o.Book, o.Key, o.Return.Format(time.StampMilli)))
			case n > 1:
				v.Doubled++
				v.Problems = append(v.Problems, fmt.Sprintf("doubled: %s %s (key %s): %d events", o.Kind, o.Book, o.Key, n))
			}
		case Refused:
			v.Refused++
			if n > 0 {
				v.problem("refused but written: %s %s (key %s, %s): %d events", o.Kind, o.Book, o.Key, o.Problem, n)
			}
		case Unknown:
			v.Unknown++
			if n > 1 {
				v.Doubled++
				v.Problems = append(v.Problems, fmt.Sprintf("doubled: %s %s (key %s, outcome unknown): %d events", o.Kind, o.Book, o.Key, n))
			}
		}
	}
}

// CheckLinearizable checks the outcomes per book against a model of one
// book; when they are not linearizable, it writes porcupine's picture of
// the history to visual (when not empty).
func CheckLinearizable(v *Verdict, ops []Op, timeout time.Duration, visual string) {
	if len(ops) == 0 {
		v.Linearizable = string(porcupine.Ok)
		return
	}
	origin := ops[0].Call
	for _, o := range ops {
		if o.Call.Before(origin) {
			origin = o.Call
		}
	}
	res, info := porcupine.CheckOperationsVerbose(bookModel.ToModel(), operations(ops, origin), timeout)
	v.Linearizable = string(res)
	if res == porcupine.Illegal {
		v.problem("the outcomes of some book are not linearizable (see %s)", visual)
		if visual != "" {
			_ = porcupine.VisualizePath(bookModel.ToModel(), info, visual)
		}
	}
}

// folded is the log's state as the checker folds it itself.
type folded struct {
	books      map[string]*foldedBook
	reads      int  // read events, by id or by title
	titleLines bool // reads by title only: the last-read order is then the view's to decide
}

type foldedBook struct {
	added, removed bool
	reads          int
	lastRead       time.Time
}

func fold(events []shelf.Event) folded {
	f := folded{books: map[string]*foldedBook{}}
	book := func(id string) *foldedBook {
		b := f.books[id]
		if b == nil {
			b = &foldedBook{}
			f.books[id] = b
		}
		return b
	}
	seq := map[string]int64{}
	for _, e := range events {
		if e.Seq > 0 && e.BookID != "" { // a copy of an event applied already
			if e.Seq <= seq[e.BookID] {
				continue
			}
			seq[e.BookID] = e.Seq
		}
		switch e.Type {
		case shelf.TypeBookAdded:
			b := book(e.BookID)
			b.added, b.removed = true, false
		case shelf.TypeBookRemoved:
			if b := f.books[e.BookID]; b != nil && b.added {
				b.removed = true
			}
		case shelf.TypeBookRead:
			f.reads++
			if e.BookID == "" {
				f.titleLines = true
				continue
			}
			b := book(e.BookID)
			b.reads++
			if e.ReadAt.After(b.lastRead) {
				b.lastRead = e.ReadAt
			}
		}
	}
	return f
}

// lastRead is the fold's last five books read.
func (f folded) lastRead() []string {
	var ids []string
	for id, b := range f.books {
		if b.added && !b.removed && b.reads > 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := f.books[b].lastRead.Compare(f.books[a].lastRead); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return ids[:min(5, len(ids))]
}

func (f folded) onShelf() int {
	n := 0
	for _, b := range f.books {
		if b.added && !b.removed {
			n++
		}
	}
	return n
}

// Replicas lists the addresses (host:port) of every replica of a service.
type Replicas func(ctx context.Context, service string) ([]string, error)

// CheckViews waits, up to wait, for the registry to list each view's
// replicas and for every one of them to answer what the fold of the log
// says: the catalog each of the run's books, the last-read view its five,
// the statistics their counts.
func CheckViews(ctx context.Context, v *Verdict, events []shelf.Event, books []string, replicas Replicas, wait time.Duration) {
	f := fold(events)
	cl := &http.Client{Timeout: 5 * time.Second}
	began := time.Now()
	checks := []struct {
		service string
		check   func(base string) string
	}{
		{"booklist", func(base string) string { return checkCatalog(ctx, cl, base, f, books) }},
		{"lastreadbooks", func(base string) string { return checkLastRead(ctx, cl, base, f) }},
		{"readingstats", func(base string) string { return checkStats(ctx, cl, base, f) }},
	}
	for _, c := range checks {
		checkReplicas(ctx, v, c.service, c.check, replicas, began, wait)
	}
}

// checkReplicas checks every replica of service until each agrees or the
// wait is over, listing the replicas again each round. A registry that
// restarted (the last fault may have been one) lists them again only once
// they register again, and it may first list, as healthy, a registration
// it kept of a replica that is gone (killed, it never left), until that
// one's check fails: a replica no longer listed is not checked further,
// and one listed late is checked too. An empty or failed listing changes
// nothing.
func checkReplicas(ctx context.Context, v *Verdict, service string, check func(base string) string, replicas Replicas, began time.Time, wait time.Duration) {
	pending := map[string]string{} // address -> its last problem
	var agreed []View
	checked := map[string]bool{}
	var listErr error
	for {
		addrs, err := replicas(ctx, service)
		listErr = err
		if err == nil && len(addrs) > 0 {
			listed := map[string]bool{}
			for _, a := range addrs {
				listed[a] = true
				if !checked[a] {
					if _, ok := pending[a]; !ok {
						pending[a] = "not answered yet"
					}
				}
			}
			for a := range pending {
				if !listed[a] {
					delete(pending, a)
				}
			}
		}
		for _, a := range slices.Sorted(maps.Keys(pending)) {
			if p := check("http://" + a); p != "" {
				pending[a] = p
				continue
			}
			delete(pending, a)
			checked[a] = true
			agreed = append(agreed, View{Service: service, Address: a, Converged: true, After: time.Since(began)})
		}
		if len(pending) == 0 && len(agreed) > 0 || time.Since(began) > wait || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	v.Views = append(v.Views, agreed...)
	if len(agreed) == 0 && len(pending) == 0 {
		v.problem("no replica of %s to check: %v", service, listErr)
	}
	for _, a := range slices.Sorted(maps.Keys(pending)) {
		v.problem("%s at %s does not agree with the log: %s", service, a, pending[a])
		v.Views = append(v.Views, View{Service: service, Address: a, After: time.Since(began), Problem: pending[a]})
	}
}

func getJSON(ctx context.Context, cl *http.Client, url string, into any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK && into != nil {
		err = json.Unmarshal(b, into)
	}
	return resp.StatusCode, err
}

func checkCatalog(ctx context.Context, cl *http.Client, base string, f folded, books []string) string {
	for _, id := range books {
		var b struct{ Reads int }
		status, err := getJSON(ctx, cl, base+"/books/"+id, &b)
		if err != nil && status == 0 {
			return err.Error()
		}
		want := f.books[id]
		switch {
		case want == nil || !want.added || want.removed:
			if status != http.StatusNotFound {
				return fmt.Sprintf("book %s: %d, want 404 (not on the shelf in the log)", id, status)
			}
		case status != http.StatusOK:
			return fmt.Sprintf("book %s: %d, want 200", id, status)
		case b.Reads != want.reads:
			return fmt.Sprintf("book %s: %d reads, the log has %d", id, b.Reads, want.reads)
		}
	}
	return ""
}

func checkLastRead(ctx context.Context, cl *http.Client, base string, f folded) string {
	var got struct{ Books []struct{ ID string } }
	if _, err := getJSON(ctx, cl, base+"/books/last-read", &got); err != nil {
		return err.Error()
	}
	if f.titleLines {
		return "" // which book a title line means is the view's to decide
	}
	var ids []string
	for _, b := range got.Books {
		ids = append(ids, b.ID)
	}
	if want := f.lastRead(); !slices.Equal(ids, want) {
		return fmt.Sprintf("last read %v, the log says %v", ids, want)
	}
	return ""
}

func checkStats(ctx context.Context, cl *http.Client, base string, f folded) string {
	var got shelf.ReadingStats
	if _, err := getJSON(ctx, cl, base+"/stats", &got); err != nil {
		return err.Error()
	}
	if got.BooksRead != f.reads || got.BooksOnShelf != f.onShelf() {
		return fmt.Sprintf("%d read, %d on the shelf; the log says %d and %d", got.BooksRead, got.BooksOnShelf, f.reads, f.onShelf())
	}
	return ""
}
