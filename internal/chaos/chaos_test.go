package chaos

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// op is an operation from call to ret (ms after t0).
func op(kind, book, key, result string, call, ret int) Op {
	return Op{Kind: kind, Book: book, Key: key, Result: result, Call: at(call), Return: at(ret)}
}

// commandID stands for the API's derivation of command ids from keys.
func commandID(typ, book, key string) string { return typ + "/" + book + "/" + key }

// eventOf is the event a command with that key leaves in the log.
func eventOf(typ, cmd, book, key string, seq int64) shelf.Event {
	return shelf.Event{Type: typ, BookID: book, Seq: seq, CommandID: commandID(cmd, book, key), ReadAt: t0}
}

// The log check finds a lost, a doubled and a refused-but-written
// command, and accepts an unknown one that left one event or none.
func TestCheckLog(t *testing.T) {
	ops := []Op{
		op(OpAdd, "b1", "k1", Ok, 0, 10),
		op(OpRead, "b1", "k2", Ok, 20, 30),        // lost
		op(OpRead, "b1", "k3", Ok, 40, 50),        // doubled
		op(OpRemove, "b1", "k4", Refused, 60, 70), // refused, but written
		op(OpRead, "b1", "k5", Unknown, 80, 90),   // unknown, one event: fine
		op(OpRead, "b1", "k6", Unknown, 80, 90),   // unknown, none: fine
		op(OpGet, "b1", "", Ok, 95, 99),           // not a command
	}
	events := []shelf.Event{
		eventOf(shelf.TypeBookAdded, shelf.CmdAddBook, "b1", "k1", 1),
		eventOf(shelf.TypeBookRead, shelf.CmdMarkRead, "b1", "k3", 2),
		eventOf(shelf.TypeBookRead, shelf.CmdMarkRead, "b1", "k3", 3),
		eventOf(shelf.TypeBookRemoved, shelf.CmdRemoveBook, "b1", "k4", 4),
		eventOf(shelf.TypeBookRead, shelf.CmdMarkRead, "b1", "k5", 5),
	}
	var v Verdict
	CheckLog(&v, ops, events, commandID)
	if v.Commands != 6 || v.Acknowledged != 3 || v.Refused != 1 || v.Unknown != 2 {
		t.Errorf("counted %+v", v)
	}
	if v.Lost != 1 || v.Doubled != 1 || v.Anomalies != 1 {
		t.Errorf("lost %d, doubled %d, anomalies %d; want 1, 1, 1: %v", v.Lost, v.Doubled, v.Anomalies, v.Problems)
	}
}

// The model accepts what one book may do, unknown outcomes either way, and
// flags a read-back that misses an acknowledged write.
func TestLinearizable(t *testing.T) {
	get := func(book string, reads int, call, ret int) Op {
		o := op(OpGet, book, "", Ok, call, ret)
		o.Reads = reads
		return o
	}
	gone := func(book, problem string, call, ret int) Op {
		o := op(OpGet, book, "", Refused, call, ret)
		o.Problem = problem
		return o
	}
	good := []Op{
		gone("b1", "not-found", 0, 5),
		op(OpAdd, "b1", "k1", Ok, 10, 20),
		get("b1", 0, 21, 25),
		op(OpRead, "b1", "k2", Unknown, 30, 40), // may have landed
		get("b1", 0, 41, 45),                    // not yet
		get("b1", 1, 46, 50),                    // now it has
		op(OpRemove, "b1", "k3", Ok, 60, 70),
		gone("b1", "removed", 71, 75),
		op(OpAdd, "b2", "k4", Unknown, 0, 100), // never learned; never read
	}
	var v Verdict
	CheckLinearizable(&v, good, 10*time.Second, "")
	if v.Linearizable != "Ok" || v.Anomalies != 0 {
		t.Errorf("a possible history: %s, %v", v.Linearizable, v.Problems)
	}
	stale := []Op{
		op(OpAdd, "b1", "k1", Ok, 0, 10),
		op(OpRead, "b1", "k2", Ok, 20, 30),
		get("b1", 0, 31, 35), // the acknowledged read is not seen
	}
	v = Verdict{}
	CheckLinearizable(&v, stale, 10*time.Second, "")
	if v.Linearizable != "Illegal" || v.Anomalies != 1 {
		t.Errorf("a stale read-back: %s", v.Linearizable)
	}
	twice := []Op{
		op(OpAdd, "b1", "k1", Ok, 0, 10),
		op(OpRemove, "b1", "k2", Ok, 20, 30),
		op(OpRemove, "b1", "k3", Ok, 40, 50), // removed twice
	}
	v = Verdict{}
	CheckLinearizable(&v, twice, 10*time.Second, "")
	if v.Linearizable != "Illegal" {
		t.Errorf("a book removed twice: %s", v.Linearizable)
	}
}

// The checker's own fold: copies of an event count once, the last five
// read are by read time then id, a removed book leaves the shelf.
func TestFold(t *testing.T) {
	ev := func(typ, book string, seq int64, readAt int) shelf.Event {
		return shelf.Event{Type: typ, BookID: book, Seq: seq, ReadAt: at(readAt)}
	}
	f := fold([]shelf.Event{
		ev(shelf.TypeBookAdded, "a", 1, 0), ev(shelf.TypeBookAdded, "b", 1, 0), ev(shelf.TypeBookAdded, "c", 1, 0),
		ev(shelf.TypeBookRead, "a", 2, 100), ev(shelf.TypeBookRead, "a", 2, 100), // a copy
		ev(shelf.TypeBookRead, "b", 2, 300), ev(shelf.TypeBookRead, "c", 2, 300),
		ev(shelf.TypeBookRemoved, "c", 3, 0),
	})
	if f.books["a"].reads != 1 || f.reads != 3 || f.onShelf() != 2 {
		t.Errorf("reads of a %d, reads %d, on the shelf %d", f.books["a"].reads, f.reads, f.onShelf())
	}
	if got := strings.Join(f.lastRead(), ","); got != "b,a" {
		t.Errorf("last read %s, want b,a", got)
	}
}

// The figures: the window of a fault is the longest an acknowledged
// command waited from it; the timeline has a bucket per second.
func TestFigures(t *testing.T) {
	ops := []Op{
		op(OpAdd, "p0", "k1", Ok, 0, 100),
		op(OpAdd, "p1", "k2", Ok, 0, 200),
		op(OpRead, "p0", "k3", Ok, 1000, 1500), // after the fault at 1000
		op(OpRead, "p1", "k4", Ok, 1100, 3000),
	}
	faults := []Fault{{Kind: "kill books", At: at(1000), Healed: at(1200), Ready: at(2000)}}
	r := Figures(1, 1, ops, faults, Verdict{Acknowledged: 4})
	k := r.ByKind["kill books"]
	if k == nil || k.WorstWindow != 1900*time.Millisecond {
		t.Fatalf("window %+v, want 1.9 s (the read called at 1.1 s, acknowledged at 3 s)", k)
	}
	if len(r.Timeline) != 4 || r.Timeline[0].Acked != 2 || r.Timeline[3].Acked != 1 {
		t.Errorf("timeline %+v", r.Timeline)
	}
	if !strings.HasPrefix(r.Summary(), "chaos: 1 cycles, 1 faults, 4 acknowledged, 0 lost, 0 doubled, 0 anomalies") {
		t.Errorf("summary %q", r.Summary())
	}
	var html strings.Builder
	r.WriteHTML(&html, "")
	if !strings.Contains(html.String(), "<svg") || !strings.Contains(html.String(), "kill books") {
		t.Errorf("the page lacks its timeline")
	}
}

// A fault's window is told apart from the brokers' own recovery: beyond it
// is how much longer the commands waiting when the brokers served again
// waited, 0 when none was. A command sent after that (during the broker's
// restart) counts in the window, not beyond.
func TestFiguresBeyondTheBrokers(t *testing.T) {
	ops := []Op{
		op(OpAdd, "p0", "k1", Ok, 1000, 2600),
		op(OpAdd, "p2", "k3", Ok, 4100, 5900), // during the restart
		op(OpAdd, "p1", "k2", Ok, 6000, 6400),
	}
	faults := []Fault{
		{Kind: "kill broker", At: at(1000), Served: at(2500), Healed: at(4000), Ready: at(6000)},
		{Kind: "kill broker", At: at(6000), Served: at(6900), Healed: at(7500), Ready: at(8000)},
		{Kind: "kill gateway", At: at(9000), Ready: at(9500)}, // not asked
	}
	r := Figures(1, 3, ops, faults, Verdict{Acknowledged: 3})
	k := r.ByKind["kill broker"]
	if k.WorstWindow != 1800*time.Millisecond {
		t.Errorf("worst window %v, want the restart's 1.8 s", k.WorstWindow)
	}
	want := []time.Duration{1500 * time.Millisecond, 900 * time.Millisecond}
	if len(k.Served) != 2 || k.Served[0] != want[0] || k.Served[1] != want[1] {
		t.Errorf("brokers served after %v, want %v", k.Served, want)
	}
	if len(k.Beyond) != 2 || k.Beyond[0] != 100*time.Millisecond || k.Beyond[1] != 0 {
		t.Errorf("beyond %v, want [100ms 0s]: the command waiting when the brokers served answered 0.1 s after (not the restart's 1.8 s), and none waiting", k.Beyond)
	}
	if g := r.ByKind["kill gateway"]; len(g.Served) != 0 {
		t.Errorf("a fault the brokers were not asked after has %v", g.Served)
	}
	var text strings.Builder
	r.WriteText(&text)
	if !strings.Contains(text.String(), "brokers p50") || !strings.Contains(text.String(), "kill broker") {
		t.Errorf("the text lacks the brokers' table:\n%s", text.String())
	}
}

// brokers answer Check with an error until ready is closed.
type brokers struct{ ready chan struct{} }

func (b brokers) Check(ctx context.Context) error {
	select {
	case <-b.ready:
		return nil
	default:
		return context.DeadlineExceeded
	}
}

// The watch says when the brokers first served, and zero when they had
// not by the time it was stopped, or none were given.
func TestWatchServing(t *testing.T) {
	b := brokers{ready: make(chan struct{})}
	served := watchServing(t.Context(), b)
	time.Sleep(120 * time.Millisecond)
	opened := time.Now()
	close(b.ready)
	time.Sleep(200 * time.Millisecond)
	if got, _ := served(); got.Before(opened) || got.Sub(opened) > 150*time.Millisecond {
		t.Errorf("served at %v, want within a try of %v", got, opened)
	}
	never := watchServing(t.Context(), brokers{ready: make(chan struct{})})
	time.Sleep(100 * time.Millisecond)
	if got, last := never(); !got.IsZero() || !errors.Is(last, context.DeadlineExceeded) {
		t.Errorf("brokers that never served: %v, last %v; want zero and their refusal", got, last)
	}
	if got, _ := watchServing(t.Context(), nil)(); !got.IsZero() {
		t.Errorf("no brokers: %v, want zero", got)
	}
}

// The first fault waits for the clients' commands to be acknowledged, and
// a system that acknowledges none in time is an error that says so.
func TestWarmUpWaitsForAcknowledgements(t *testing.T) {
	t.Parallel()
	h := &History{}
	go func() {
		time.Sleep(2500 * time.Millisecond)
		h.Add(Op{Kind: OpAdd, Result: Refused})
		h.Add(Op{Kind: OpGet, Result: Ok})
		h.Add(Op{Kind: OpAdd, Result: Ok})
		time.Sleep(200 * time.Millisecond)
		h.Add(Op{Kind: OpAdd, Result: Ok})
	}()
	began := time.Now()
	if err := warmUp(t.Context(), h, 2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); waited < 2700*time.Millisecond {
		t.Errorf("warm after %v, before the second acknowledged command", waited)
	}
	err := warmUp(t.Context(), &History{}, 1, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "0 commands acknowledged") {
		t.Errorf("none acknowledged: %v, want it said", err)
	}
}

// The view check waits for replicas a registry does not list yet (as after
// its restart), and reports a view with none once its wait is over.
func TestCheckViewsWaitsForReplicas(t *testing.T) {
	// An empty log: every view of it answers {} (nothing read, nothing on
	// the shelf).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	asked := map[string]int{}
	late := func(_ context.Context, service string) ([]string, error) {
		asked[service]++
		if asked[service] < 3 {
			return nil, nil
		}
		return []string{addr}, nil
	}
	var v Verdict
	CheckViews(t.Context(), &v, nil, nil, late, 10*time.Second)
	if v.Anomalies != 0 || len(v.Views) != 3 {
		t.Errorf("replicas listed late: %d anomalies %v, %d views checked", v.Anomalies, v.Problems, len(v.Views))
	}

	var none Verdict
	start := time.Now()
	CheckViews(t.Context(), &none, nil, nil, func(context.Context, string) ([]string, error) { return nil, nil }, 600*time.Millisecond)
	if none.Anomalies != 3 || !strings.Contains(strings.Join(none.Problems, "\n"), "no replica of booklist") {
		t.Errorf("no replica ever: %d anomalies %v, want 3", none.Anomalies, none.Problems)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("gave up on the replicas after %s, before the wait of 600ms", d)
	}
}

// A registry restarted from its data may first list, as healthy, a
// replica that is gone: the check goes on with the replicas it lists
// next, and a replica still listed that disagrees is an anomaly.
func TestCheckViewsFollowsTheListedReplicas(t *testing.T) {
	// An empty log: the book asked for is on no shelf, and the other
	// views answer {}.
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/books/b") {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "{}")
	}))
	defer good.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneAddr := strings.TrimPrefix(gone.URL, "http://")
	gone.Close()
	goodAddr := strings.TrimPrefix(good.URL, "http://")
	asked := map[string]int{}
	restarted := func(_ context.Context, service string) ([]string, error) {
		asked[service]++
		if asked[service] < 3 {
			return []string{goneAddr}, nil
		}
		return []string{goodAddr}, nil
	}
	var v Verdict
	CheckViews(t.Context(), &v, nil, []string{"b1"}, restarted, 10*time.Second)
	if v.Anomalies != 0 || len(v.Views) != 3 {
		t.Errorf("a gone replica listed first: %d anomalies %v, %d views", v.Anomalies, v.Problems, len(v.Views))
	}
	for _, r := range v.Views {
		if r.Address != goodAddr || !r.Converged {
			t.Errorf("view %+v, want %s converged", r, goodAddr)
		}
	}

	var stuck Verdict
	CheckViews(t.Context(), &stuck, nil, []string{"b1"}, func(context.Context, string) ([]string, error) {
		return []string{goodAddr, goneAddr}, nil
	}, 600*time.Millisecond)
	if stuck.Anomalies != 3 || !strings.Contains(strings.Join(stuck.Problems, "\n"), goneAddr) {
		t.Errorf("a listed replica that never answers: %d anomalies %v, want 3", stuck.Anomalies, stuck.Problems)
	}
}

// A client whose gateway does not answer (its port closed, as a killed
// gateway's is) sends the retry, with the same key, to the next gateway at
// once, and stays there; a gateway that answers, even 503, keeps it.
func TestClientGoesOnToTheNextGateway(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	var keys []string
	var busy bool
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			keys = append(keys, r.Header.Get(IdempotencyKeyHeader))
			if busy {
				busy = false
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set(PositionHeader, "0:1")
			w.WriteHeader(http.StatusCreated)
			return
		}
		io.WriteString(w, `{"reads":0}`)
	}))
	defer live.Close()

	c := &Client{ID: 0, Gateways: []string{deadURL, live.URL}, Prefix: "t", History: &History{}, HTTP: live.Client(),
		BookID: func(key string) string { return "b-" + key }}
	c.gw = 0
	start := time.Now()
	op := c.do(context.Background(), Op{Kind: OpAdd, Book: "b-1", Key: "k1"}, http.MethodPost, "/books", `{}`)
	if op.Result != Ok || op.Tries != 2 || c.gw != 1 || op.Position != "0:1" {
		t.Fatalf("add through a dead gateway first: result %s, %d tries, gateway %d, position %q", op.Result, op.Tries, c.gw, op.Position)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the retry on the next gateway took %v: it should not wait", d)
	}
	busy = true
	op = c.do(context.Background(), Op{Kind: OpAdd, Book: "b-2", Key: "k2"}, http.MethodPost, "/books", `{}`)
	if op.Result != Ok || op.Tries != 2 || c.gw != 1 {
		t.Fatalf("a 503 moved the client: result %s, %d tries, gateway %d", op.Result, op.Tries, c.gw)
	}
	if want := []string{"k1", "k2", "k2"}; strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Errorf("keys the live gateway saw: %v, want %v", keys, want)
	}
}
