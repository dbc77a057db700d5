package kafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Every test here runs against the embedded broker, and against a real
// Kafka broker too when BOOKSHELF_TEST_KAFKA names one. With
// BOOKSHELF_REQUIRE_INFRA set (as CI does), a missing real broker fails
// the run instead of skipping.

type target struct {
	name    string
	brokers []string
}

func targets(t *testing.T) []target {
	t.Helper()
	b, err := StartBroker(BrokerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	ts := []target{{"embedded", []string{b.Addr()}}}
	if addr := os.Getenv("BOOKSHELF_TEST_KAFKA"); addr != "" {
		ts = append(ts, target{"real", strings.Split(addr, ",")})
	} else if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
		t.Errorf("BOOKSHELF_REQUIRE_INFRA is set but BOOKSHELF_TEST_KAFKA is not: run 'make infra' and set it")
	}
	return ts
}

// each runs fn once per broker, on topics of its own.
func each(t *testing.T, fn func(t *testing.T, cfg Config)) { eachWith(t, nil, fn) }

// eachWith is each, with some topics made first as a test needs them:
// pre returns, for a target ("embedded" or "real"), the configs of each
// topic to make (it may skip the target); EnsureTopics adds the others.
func eachWith(t *testing.T, pre func(t *testing.T, target string, ts Topics) map[string]map[string]string,
	fn func(t *testing.T, cfg Config)) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Brokers: tg.brokers, Topics: TopicsFor("t-" + randHex(6)), Partitions: 3}
			if pre != nil {
				for topic, configs := range pre(t, tg.name, cfg.Topics) {
					createTopic(t, cfg, topic, configs)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := EnsureTopics(ctx, cfg); err != nil {
				t.Fatalf("ensure topics: %v", err)
			}
			fn(t, cfg)
		})
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// group runs goroutines and waits for them when the test ends.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	ctx    context.Context
}

func newGroup(t *testing.T) *group {
	ctx, cancel := context.WithCancel(context.Background())
	g := &group{ctx: ctx, cancel: cancel}
	t.Cleanup(g.stop)
	return g
}

func (g *group) stop() { g.cancel(); g.wg.Wait() }

func (g *group) run(t *testing.T, name string, fn func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(g.ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}()
}

func startBooks(t *testing.T, g *group, cfg Config, instance string, opts ...ProcessorOpt) (*Submitter, *Processor) {
	t.Helper()
	sub, err := NewSubmitter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proc := NewProcessor(cfg, instance, opts...)
	// Closed once Run has returned, as its contract asks.
	g.run(t, "submitter", func(ctx context.Context) error { defer sub.Close(); return sub.Run(ctx) })
	g.run(t, "processor", proc.Run)
	return sub, proc
}

func submit(t *testing.T, sub *Submitter, c shelf.Command) shelf.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := sub.Submit(ctx, c)
	if err != nil {
		t.Fatalf("submit %s %s: %v", c.Type, c.BookID, err)
	}
	return o
}

func addCmd(id, title string) shelf.Command {
	return shelf.Command{ID: "c-" + randHex(8), Type: shelf.CmdAddBook, BookID: id,
		Book: &shelf.Book{Title: title, Authors: []string{"Ursula K. Le Guin"}}, IssuedAt: time.Now()}
}

func TestCommandsBecomeEventsAndViews(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		lr := shelf.NewReplica(shelf.NewLastRead())
		f := NewFollower(cfg, "lastread", lr)
		g.run(t, "follower", f.Run)

		add := submit(t, sub, addCmd("b1", "The Dispossessed"))
		if add.Status != shelf.StatusAccepted || add.Book == nil || add.Book.Title != "The Dispossessed" || add.Position == "" {
			t.Fatalf("add outcome = %+v", add)
		}
		read := submit(t, sub, shelf.Command{ID: "c-" + randHex(8), Type: shelf.CmdMarkRead, BookID: "b1", IssuedAt: time.Now()})
		if read.Status != shelf.StatusAccepted || read.ReadAt == nil {
			t.Fatalf("read outcome = %+v", read)
		}
		unknown := submit(t, sub, shelf.Command{ID: "c-" + randHex(8), Type: shelf.CmdMarkRead, BookID: "nope", IssuedAt: time.Now()})
		if !errors.Is(unknown.Err(), shelf.ErrNotFound) {
			t.Fatalf("read of an unknown book: %+v", unknown)
		}
		pos, err := shelf.ParsePosition(read.Position)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := lr.WaitFor(ctx, pos); err != nil {
			t.Fatalf("view never reached %s: %v", pos, err)
		}
		var got []shelf.ReadEntry
		lr.Read(func(v *shelf.LastRead) { got = v.Latest(5) })
		if len(got) != 1 || got[0].ID != "b1" || got[0].Title != "The Dispossessed" {
			t.Fatalf("last read = %+v", got)
		}
	})
}

func TestIdempotentCommandSurvivesNewOwner(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		keyed := addCmd("b-key", "A Wizard of Earthsea")
		keyed.ID, keyed.RequestHash = "k-1", "hash-1"

		g1 := newGroup(t)
		sub1, _ := startBooks(t, g1, cfg, "first")
		first := submit(t, sub1, keyed)
		if first.Status != shelf.StatusAccepted {
			t.Fatalf("first = %+v", first)
		}
		g1.stop()

		// Another instance owns the partitions now and rebuilds from the log.
		g2 := newGroup(t)
		sub2, _ := startBooks(t, g2, cfg, "second")
		again := submit(t, sub2, keyed)
		if again.Status != shelf.StatusReplayed || again.Position != first.Position {
			t.Fatalf("replay = %+v, want replayed at %s", again, first.Position)
		}
		other := keyed
		other.RequestHash = "hash-2"
		if o := submit(t, sub2, other); !errors.Is(o.Err(), shelf.ErrConflict) {
			t.Fatalf("same key, other request = %+v, want conflict", o)
		}
		if n := countEvents(t, cfg); n != 1 {
			t.Fatalf("event log holds %d events, want 1", n)
		}
	})
}

func countEvents(t *testing.T, cfg Config) int {
	t.Helper()
	return len(readAll(t, cfg, cfg.Topics.Events))
}

func TestPoisonRecordsGoToTheDeadLetterTopicOnce(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		produce(t, cfg, cfg.Topics.Events,
			[]byte("Dune"),
			[]byte{0xff, 0xfe, 'x'},
			[]byte(`{"specversion":"1.0","id":`),
			[]byte(`{"specversion":"1.0","id":"x","source":"s","type":"book-rated","subject":"b"}`),
			[]byte("Solaris"),
		)
		for round := range 2 {
			g := newGroup(t)
			lr := shelf.NewReplica(shelf.NewLastRead())
			f := NewFollower(cfg, "lastread", lr)
			g.run(t, "follower", f.Run)
			select {
			case <-f.CaughtUp():
			case <-ctx.Done():
				t.Fatal("follower never caught up")
			}
			var got []shelf.ReadEntry
			lr.Read(func(v *shelf.LastRead) { got = v.Latest(5) })
			if len(got) != 2 {
				t.Fatalf("round %d: view = %+v, want the two titles", round, got)
			}
			if f.Counts.DeadLettered.Load() != 2 || f.Counts.Skipped.Load() != 1 {
				t.Fatalf("round %d: dead-lettered %d, skipped %d; want 2 and 1", round,
					f.Counts.DeadLettered.Load(), f.Counts.Skipped.Load())
			}
			g.stop()
		}
		// Both rounds met both poison records; the topic has each once.
		dl := readAll(t, cfg, cfg.Topics.DLQ)
		if len(dl) != 2 {
			t.Fatalf("dead-letter topic holds %d records, want 2", len(dl))
		}
		for _, r := range dl {
			hs := headersOf(r)
			if hs[HeaderOriginTopic] != cfg.Topics.Events || hs[HeaderOriginOffset] == "" || hs[HeaderError] == "" {
				t.Fatalf("dead letter headers = %v", hs)
			}
		}
	})
}

// headersOf returns r's headers by key.
func headersOf(r *kgo.Record) map[string]string {
	hs := map[string]string{}
	for _, h := range r.Headers {
		hs[h.Key] = string(h.Value)
	}
	return hs
}

// testClient is a client on cfg's brokers for a test's own look-ups,
// closed when the test ends.
func testClient(t *testing.T, cfg Config) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func readAll(t *testing.T, cfg Config, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A client of its own, closed at once: callers poll with readAll.
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	start, end, err := offsets(ctx, cl, topic)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	if err := readRange(ctx, cfg, topic, start, end, func(r *kgo.Record) { out = append(out, r) }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPartitionsMoveWhenAnInstanceStops(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		sub, _, b, ga, _ := twoInstances(t, cfg, nil)
		const n = 24
		ids := map[string]bool{}
		for i := range n {
			if i == n/2 {
				ga.stop() // b takes a's partitions over and rebuilds them
			}
			id := "book-" + randHex(4)
			ids[id] = true
			if o := submit(t, sub, addCmd(id, "Title "+id)); o.Status != shelf.StatusAccepted {
				t.Fatalf("command %d: %+v", i, o)
			}
			// A second command on an early book lands on rebuilt state.
			if i > n/2 {
				for first := range ids {
					o := submit(t, sub, shelf.Command{ID: "c-" + randHex(8), Type: shelf.CmdMarkRead, BookID: first, IssuedAt: time.Now()})
					if o.Status != shelf.StatusAccepted {
						t.Fatalf("read of %s after the move: %+v", first, o)
					}
					break
				}
			}
		}
		if got, want := countEvents(t, cfg), n+(n/2-1); got != want {
			t.Fatalf("event log holds %d events, want %d: lost or duplicated", got, want)
		}
		if b.Assigned() != int(cfg.Partitions) {
			t.Fatalf("b owns %d partitions, want all %d", b.Assigned(), cfg.Partitions)
		}
	})
}

// A session timeout the broker refuses is a setting to fix, not trouble to
// wait out: the processor stops and says which setting. The embedded
// broker bounds no group's session, so this is for Kafka only.
func TestProcessorStopsOnRefusedSessionTimeout(t *testing.T) {
	skipEmbedded := func(t *testing.T, target string, _ Topics) map[string]map[string]string {
		if target == "embedded" {
			t.Skip("the embedded broker takes any session a consumer group sets")
		}
		return nil
	}
	eachWith(t, skipEmbedded, func(t *testing.T, cfg Config) {
		cfg.SessionTimeout = time.Second // below make infra's 6 s minimum
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := NewProcessor(cfg, "a").Run(ctx)
		if ctx.Err() != nil {
			t.Fatal("the processor kept trying a session timeout the broker refuses")
		}
		// Refused as a consumer group's, then as a classic group's.
		var refused *refusedSessionError
		if !errors.As(err, &refused) || !errors.Is(err, kerr.InvalidSessionTimeout) || !strings.Contains(err.Error(), "session timeout 1s") ||
			!strings.Contains(err.Error(), "group.min.session.timeout.ms") || !strings.Contains(err.Error(), "group.consumer.min.session.timeout.ms") {
			t.Fatalf("Run: %v, want the refused session timeout and both bounds named", err)
		}
	})
}

// twoInstances starts a submitter and two processors, a and b, each in a
// group of its own so a test can stop one, and waits until both own some
// partitions.
//
// per, when set, gives each instance ("a" or "b") its options, and may
// change its copy of cfg (its logger, say).
func twoInstances(t *testing.T, cfg Config, per func(cfg *Config, instance string) []ProcessorOpt) (sub *Submitter, a, b *Processor, ga, gb *group) {
	t.Helper()
	gs := newGroup(t)
	sub, err := NewSubmitter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gs.run(t, "submitter", func(ctx context.Context) error { defer sub.Close(); return sub.Run(ctx) })
	ga, gb = newGroup(t), newGroup(t)
	newProcessor := func(instance string) *Processor {
		c := cfg
		var opts []ProcessorOpt
		if per != nil {
			opts = per(&c, instance)
		}
		return NewProcessor(c, instance, opts...)
	}
	a, b = newProcessor("a"), newProcessor("b")
	ga.run(t, "processor a", a.Run)
	gb.run(t, "processor b", b.Run)
	for deadline := time.Now().Add(20 * time.Second); a.Assigned() == 0 || b.Assigned() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("partitions never spread: a %d, b %d", a.Assigned(), b.Assigned())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sub, a, b, ga, gb
}

// An instance that sat idle through several rebalances must not decide on
// the state it held before: the transact session passes on only the first
// revoke between two transactions, so the state is dropped on assignment.
func TestIdleInstanceRebuildsPartitionsGivenBack(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		gs := newGroup(t)
		sub, err := NewSubmitter(cfg)
		if err != nil {
			t.Fatal(err)
		}
		gs.run(t, "submitter", func(ctx context.Context) error { defer sub.Close(); return sub.Run(ctx) })
		ga := newGroup(t)
		a := NewProcessor(cfg, "a")
		ga.run(t, "processor a", a.Run)
		for i := range 3 {
			submit(t, sub, addCmd(fmt.Sprintf("early-%d", i), "Early"))
		}
		join := func(name string) (*Processor, *group) {
			g := newGroup(t)
			p := NewProcessor(cfg, name)
			g.run(t, "processor "+name, p.Run)
			for deadline := time.Now().Add(30 * time.Second); p.Assigned() == 0; {
				if time.Now().After(deadline) {
					t.Fatalf("%s never got a partition", name)
				}
				time.Sleep(20 * time.Millisecond)
			}
			return p, g
		}
		_, gb := join("b")
		gb.stop()
		c, gc := join("c")
		_, gd := join("d")
		var books []string
		for i := 0; len(books) < 12 && i < 200; i++ {
			id := fmt.Sprintf("late-%d", i)
			if o := submit(t, sub, addCmd(id, "Late")); o.Status != shelf.StatusAccepted {
				t.Fatalf("add %s: %+v", id, o)
			}
			books = append(books, id)
		}
		if c.Decided.Load() == 0 {
			t.Log("c decided none of the adds; the scenario is weaker this run")
		}
		gc.stop()
		gd.stop()
		for deadline := time.Now().Add(30 * time.Second); a.Assigned() != int(cfg.Partitions); {
			if time.Now().After(deadline) {
				t.Fatalf("a owns %d partitions, want %d", a.Assigned(), cfg.Partitions)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, id := range books {
			if o := submit(t, sub, addCmd(id, "Late again")); !errors.Is(o.Err(), shelf.ErrConflict) {
				t.Fatalf("a second add of %s: %+v, want a conflict", id, o)
			}
		}
		if n := countEvents(t, cfg); n != 3+len(books) {
			t.Fatalf("event log holds %d events, want %d", n, 3+len(books))
		}
	})
}

// A command near the broker's record limit is dead-lettered cut to size,
// and the commands after it are decided: one oversize record must not
// stop the aggregate.
func TestOversizeCommandDoesNotStopTheAggregate(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		produce(t, cfg, cfg.Topics.Commands, bytes.Repeat([]byte("x"), 900_000))
		for i := range 3 {
			if o := submit(t, sub, addCmd(fmt.Sprintf("after-%d", i), "After")); o.Status != shelf.StatusAccepted {
				t.Fatalf("command after the oversize one: %+v", o)
			}
		}
		var dl []*kgo.Record
		for deadline := time.Now().Add(10 * time.Second); len(dl) == 0 && time.Now().Before(deadline); {
			dl = readAll(t, cfg, cfg.Topics.DLQ)
		}
		if len(dl) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dl))
		}
		if len(dl[0].Value) != shelf.MaxRecordSize {
			t.Fatalf("dead letter of %d bytes, want it cut to %d", len(dl[0].Value), shelf.MaxRecordSize)
		}
	})
}

// Two requests with one idempotency key and different bodies, at once:
// one is decided, the other gets the conflict, each its own answer.
func TestSameKeyOtherBodyAtOnceGetsItsOwnAnswer(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		x, y := addCmd("b-same-key", "X"), addCmd("b-same-key", "Y")
		x.ID, y.ID = "k-same", "k-same"
		x.RequestHash, y.RequestHash = "hash-x", "hash-y"
		outcomes := make(chan shelf.Outcome, 2)
		for _, c := range []shelf.Command{x, y} {
			go func() { outcomes <- submit(t, sub, c) }()
		}
		got := map[string]shelf.Outcome{}
		for range 2 {
			o := <-outcomes
			got[o.RequestHash] = o
		}
		ox, oy := got["hash-x"], got["hash-y"]
		accepted, conflict := ox, oy
		if oy.Status == shelf.StatusAccepted {
			accepted, conflict = oy, ox
		}
		if accepted.Status != shelf.StatusAccepted || !errors.Is(conflict.Err(), shelf.ErrConflict) {
			t.Fatalf("outcomes: x %+v, y %+v; want one accepted and one conflict", ox, oy)
		}
		if want := map[string]string{"hash-x": "X", "hash-y": "Y"}[accepted.RequestHash]; accepted.Book.Title != want {
			t.Fatalf("the accepted answer shows %q, its request said %q", accepted.Book.Title, want)
		}
	})
}

// produce writes values to topic as they are, as a client we did not write
// would, each keyed "k".
func produce(t *testing.T, cfg Config, topic string, values ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(cfg.baseOpts(), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: v}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// A command whose event the log refuses for good (here: larger than the
// event topic's max.message.bytes) must not stop the aggregate. Its first
// refusal aborts the batch, the next batch goes one command at a time,
// and a second refusal pins it: it is dead-lettered and answered
// "refused", while the commands beside it are decided as usual.
func TestCommandWhoseEventTheLogRefusesIsAnsweredAndDeadLettered(t *testing.T) {
	const limit = 4096
	// The event log is made first, with the small limit.
	eachWith(t, func(_ *testing.T, _ string, ts Topics) map[string]map[string]string {
		return map[string]map[string]string{ts.Events: {"max.message.bytes": strconv.Itoa(limit), "retention.ms": "-1", "retention.bytes": "-1"}}
	}, func(t *testing.T, cfg Config) {
		g := newGroup(t)
		sub, proc := startBooks(t, g, cfg, "a")

		big := addCmd("b-big", "Too Many Authors")
		big.Book.Authors = nil
		for i := range shelf.MaxAuthors {
			// Random, so that compression cannot shrink it below the limit.
			big.Book.Authors = append(big.Book.Authors, fmt.Sprintf("%03d %s", i, randHex(100)))
		}
		// Sent together, so the big one may share batches with others.
		cmds := []shelf.Command{addCmd("b-small-0", "Small 0"), big, addCmd("b-small-1", "Small 1"), addCmd("b-small-2", "Small 2")}
		outcomes := make([]shelf.Outcome, len(cmds))
		var wg sync.WaitGroup
		for i, c := range cmds {
			wg.Go(func() { outcomes[i] = submit(t, sub, c) })
		}
		wg.Wait()
		for i, c := range cmds {
			o := outcomes[i]
			if c.BookID == big.BookID {
				if !errors.Is(o.Err(), shelf.ErrRefused) || !strings.Contains(o.Detail, "MESSAGE_TOO_LARGE") {
					t.Errorf("the big add: outcome %+v, want refused naming MESSAGE_TOO_LARGE", o)
				}
			} else if o.Status != shelf.StatusAccepted {
				t.Errorf("add %s beside the big one: outcome %+v", c.BookID, o)
			}
		}
		if o := submit(t, sub, addCmd("b-after", "After")); o.Status != shelf.StatusAccepted {
			t.Fatalf("add after the big one: outcome %+v", o)
		}
		// The same command again is refused again, not retried for ever.
		again := big
		again.ID = "c-" + randHex(8)
		if o := submit(t, sub, again); !errors.Is(o.Err(), shelf.ErrRefused) {
			t.Fatalf("the big add again: outcome %+v, want refused", o)
		}

		var dl []*kgo.Record
		for deadline := time.Now().Add(10 * time.Second); len(dl) < 2 && time.Now().Before(deadline); {
			dl = readAll(t, cfg, cfg.Topics.DLQ)
		}
		if len(dl) != 2 {
			t.Fatalf("%d dead letters, want the big add's two commands", len(dl))
		}
		for _, r := range dl {
			hs := headersOf(r)
			if hs[HeaderOriginTopic] != cfg.Topics.Commands || !strings.Contains(hs[HeaderError], "MESSAGE_TOO_LARGE") {
				t.Errorf("dead letter headers %v", hs)
			}
		}
		if n := len(readAll(t, cfg, cfg.Topics.Events)); n != 4 {
			t.Errorf("event log holds %d events, want the 4 small adds", n)
		}
		if a := proc.Aborted.Load(); a < 4 || a > 8 {
			t.Errorf("%d transactions aborted, want 2 per big add (one to suspect, one to blame)", a)
		}
	})
}

// A partition with a long log takes a while to rebuild: the rebuild logs
// how far it is while it runs, as the views do when they catch up.
func TestRebuildShowsProgress(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		const n = 50_000
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(append(cfg.baseOpts(),
			kgo.DefaultProduceTopic(cfg.Topics.Events), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var failed atomic.Value
		for i := range n {
			cl.Produce(ctx, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "Title %d", i)}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil || failed.Load() != nil {
			t.Fatalf("produce %d records: %v %v", n, err, failed.Load())
		}

		var log lockedBuffer
		cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
		p := NewProcessor(cfg, "progress", RebuildProgress(5*time.Millisecond))
		if _, err := p.build(ctx, p.cfg, 0); err != nil {
			t.Fatal(err)
		}
		out := log.String()
		progress, end := false, false
		for _, line := range strings.Split(out, "\n") {
			progress = progress || strings.Contains(line, `msg="rebuilding partition state"`) &&
				strings.Contains(line, " partition=0 done=") && strings.Contains(line, fmt.Sprintf(" total=%d ", n))
			end = end || strings.Contains(line, `msg="rebuilt partition state"`) && strings.Contains(line, " partition=0 ")
		}
		if !progress || !end {
			t.Fatalf("rebuilding %d records logged progress %v and its end %v:\n%s", n, progress, end, out)
		}
	})
}

// lockedBuffer is a bytes.Buffer for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
