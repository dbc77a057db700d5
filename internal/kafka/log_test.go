package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// The tests here hold the log to its promises: it keeps every event,
// every reader places a book's records by one rule, and what the log
// holds decides the same answer for the aggregate and the views.

// topicConfig returns the configs of topic, by key.
func topicConfig(t *testing.T, cfg Config, topic string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(testClient(t, cfg))
	// A topic just created may be unknown to the broker that answers for
	// a moment (its metadata not there yet): asked again until it knows.
	for {
		got, err := topicConfigs(ctx, adm, topic)
		if err == nil {
			return got[topic]
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createTopic creates topic with configs, before EnsureTopics would.
func createTopic(t *testing.T, cfg Config, topic string, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs := map[string]*string{}
	for k, v := range configs {
		cs[k] = kadm.StringPtr(v)
	}
	if _, err := kadm.NewClient(testClient(t, cfg)).CreateTopic(ctx, cfg.Partitions, -1, cs, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

func TestTopicsAreCreatedToKeepTheLog(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		want := map[string]map[string]string{
			cfg.Topics.Events:   {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
			cfg.Topics.Commands: {"retention.ms": "2592000000", "retention.bytes": "-1", "message.timestamp.type": "LogAppendTime"},
			cfg.Topics.Replies:  {"retention.ms": "3600000"},
			cfg.Topics.DLQ:      {"retention.ms": "-1", "retention.bytes": "-1"},
		}
		for topic, kvs := range want {
			got := topicConfig(t, cfg, topic)
			for k, v := range kvs {
				if got[k] != v {
					t.Errorf("%s: %s = %q, want %q", topic, k, got[k], v)
				}
			}
		}
	})
}

// The embedded broker enforces retention when asked to: an event a week
// and a day old outlives it in the event log, and would not in a topic
// made with the defaults.
func TestEventLogOutlivesRetention(t *testing.T) {
	c, cfg := faultCluster(t)
	createTopic(t, cfg, "defaults", nil)
	old := time.Now().Add(-8 * 24 * time.Hour)
	cl := testClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, topic := range []string{cfg.Topics.Events, cfg.Topics.DLQ, "defaults"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("Dune"), Timestamp: old}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	c.ApplyRetention()
	for topic, want := range map[string]int{cfg.Topics.Events: 1, cfg.Topics.DLQ: 1, "defaults": 0} {
		if n := len(readAll(t, cfg, topic)); n != want {
			t.Errorf("%s holds %d records of 8 days ago after retention, want %d", topic, n, want)
		}
	}
}

func TestEnsureTopicsRefusesALogThatDeletes(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			for _, tc := range []struct {
				configs map[string]string
				named   string
			}{
				{map[string]string{"retention.ms": "86400000"}, "retention.ms=86400000"},
				{map[string]string{"retention.ms": "-1", "retention.bytes": "1073741824"}, "retention.bytes=1073741824"},
				{map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "compact"}, "cleanup.policy=compact"},
				{nil, "retention.ms="}, // the broker's default: a week
			} {
				cfg := Config{Brokers: tg.brokers, Topics: TopicsFor("t-" + randHex(6)), Partitions: 3}
				createTopic(t, cfg, cfg.Topics.Events, tc.configs)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := EnsureTopics(ctx, cfg)
				cancel()
				if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), tc.named) ||
					!strings.Contains(err.Error(), "retention.ms=-1,retention.bytes=-1") {
					t.Errorf("EnsureTopics on an event log with %v: %v; want a permanent error naming %s and the fix", tc.configs, err, tc.named)
				}
			}
		})
	}
}

// Adding partitions to a log that holds events moves every book's home:
// the aggregate would rebuild each book from another partition than its
// events are on. EnsureTopics refuses, and says which count fits.
func TestEnsureTopicsRefusesAChangedPartitionCount(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		for i := range 12 {
			if o := submit(t, sub, addCmd(fmt.Sprintf("book-%d", i), "Dune")); o.Status != shelf.StatusAccepted {
				t.Fatalf("add: %+v", o)
			}
		}
		g.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := EnsureTopics(ctx, cfg); err != nil {
			t.Fatalf("ensure topics, unchanged: %v", err)
		}
		t.Logf("adding 2 partitions to %s", cfg.Topics.All())
		if _, err := kadm.NewClient(testClient(t, cfg)).CreatePartitions(ctx, 2, cfg.Topics.Events, cfg.Topics.Commands, cfg.Topics.Replies); err != nil {
			t.Fatal(err)
		}
		// A broker shows partitions just added a moment later, and not of
		// every topic at once: wait for all of them.
		for _, topic := range []string{cfg.Topics.Events, cfg.Topics.Commands, cfg.Topics.Replies} {
			waitFor(t, topic+" with 5 partitions", func() bool {
				n, err := partitionsOf(ctx, testClient(t, cfg), topic)
				return err == nil && n == 5
			})
		}
		err := EnsureTopics(ctx, cfg)
		if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "its events fit 3 partitions") {
			t.Fatalf("EnsureTopics after adding partitions: %v; want a permanent error saying the events fit 3 partitions", err)
		}
	})
}

// Home must place a book where franz-go's and Kafka's default partitioner
// place its key: the logs written before the rule was stated, and any
// keyed writer of the Java client, agree with it.
func TestHomeIsKafkasPlacement(t *testing.T) {
	// Kafka's own vectors (UtilsTest.testMurmur2).
	for in, want := range map[string]int32{
		"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
		"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107,
	} {
		if got := int32(murmur2([]byte(in))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
	for _, n := range []int32{1, 3, 7, 12} {
		tp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
		for i := range 500 {
			id := fmt.Sprintf("book-%d-%s", i, randHex(i%7))
			if got, want := Home(id, n), int32(tp.Partition(&kgo.Record{Key: []byte(id)}, int(n))); got != want {
				t.Fatalf("Home(%q, %d) = %d, franz-go places it on %d", id, n, got, want)
			}
		}
	}
}

// produceAt writes records to topic as a client we did not write would:
// outside any transaction, on the partition given (-1: by Home of the key).
func produceAt(t *testing.T, cfg Config, topic string, part int32, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(cfg.baseOpts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if part < 0 {
		part = Home(key, cfg.Partitions)
	}
	r := &kgo.Record{Topic: topic, Partition: part, Value: value}
	if key != "" {
		r.Key = []byte(key)
	}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, part, err)
	}
}

// otherThan is a partition that is not p.
func otherThan(p, n int32) int32 { return (p + 1) % n }

func cloudEvent(typ, source, subject string, seq int64, data string) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":"x-%s","source":%q,"type":%q,"subject":%q,"bookseq":%d,"data":%s}`,
		randHex(4), source, typ, subject, seq, data)
}

// Events another writer put in the log (kcat, the original's Python
// envelope, a copy of the aggregate's own) must never let the views say
// what the aggregate does not: a book the API does not know, a removed
// book back, or a bookseq that hides the aggregate's next event.
func TestOutsideEventsCannotContradictTheAggregate(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		n := cfg.Partitions
		if o := submit(t, sub, addCmd("b1", "Dune")); o.Status != shelf.StatusAccepted {
			t.Fatalf("add b1: %+v", o)
		}
		if o := submit(t, sub, addCmd("b2", "Solaris")); o.Status != shelf.StatusAccepted {
			t.Fatalf("add b2: %+v", o)
		}
		if o := submit(t, sub, shelf.Command{ID: "c-" + randHex(8), Type: shelf.CmdRemoveBook, BookID: "b2"}); o.Status != shelf.StatusAccepted {
			t.Fatalf("remove b2: %+v", o)
		}
		var ours []byte // b1's book-added
		for _, r := range readAll(t, cfg, cfg.Topics.Events) {
			if string(r.Key) == "b1" {
				ours = r.Value
				break
			}
		}
		before := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
		ev := cfg.Topics.Events
		// Not admitted: an outside add off its home (kcat -K places by
		// CRC32), an unkeyed envelope add, an outside add of a removed
		// book, and a copy of the aggregate's event pushed by hand.
		produceAt(t, cfg, ev, otherThan(Home("b-kcat", n), n), "b-kcat",
			cloudEvent(shelf.TypeBookAdded, "kcat", "b-kcat", 1, `{"title":"Outside"}`))
		produceAt(t, cfg, ev, 0, "", []byte(`{"id":"e1","name":"book_added","created":"2016-02-25T16:28:46","payload":"{\"id\": \"b-py\", \"title\": \"Python\"}"}`))
		produceAt(t, cfg, ev, -1, "b2", cloudEvent(shelf.TypeBookAdded, "kcat", "b2", 1, `{"title":"Solaris"}`))
		produceAt(t, cfg, ev, -1, "b1", ours)
		// Admitted as an outside read: a read of b1, an hour ago, with a
		// bookseq far above the aggregate's, off b1's home.
		produceAt(t, cfg, ev, otherThan(Home("b1", n), n), "b1",
			cloudEvent(shelf.TypeBookRead, "kcat", "b1", 99, `{"read_at":"`+before+`"}`))

		read := submit(t, sub, readCmd("b1"))
		if read.Status != shelf.StatusAccepted || read.ReadAt == nil {
			t.Fatalf("read b1: %+v", read)
		}
		for _, id := range []string{"b-kcat", "b-py"} {
			if o := submit(t, sub, readCmd(id)); !errors.Is(o.Err(), shelf.ErrNotFound) {
				t.Errorf("the aggregate on a read of %s: %+v, want not found", id, o)
			}
		}
		pos, err := shelf.ParsePosition(read.Position)
		if err != nil {
			t.Fatal(err)
		}
		cat := shelf.NewReplica(shelf.NewCatalog())
		lr := shelf.NewReplica(shelf.NewLastRead())
		fc, fl := NewFollower(cfg, "catalog", cat), NewFollower(cfg, "lastread", lr)
		g.run(t, "catalog", fc.Run)
		g.run(t, "lastread", fl.Run)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cat.WaitFor(ctx, pos); err != nil {
			t.Fatal(err)
		}
		if err := lr.WaitFor(ctx, pos); err != nil {
			t.Fatal(err)
		}
		// The position is that of b1's home partition; the outside read
		// is on another, which the views may reach a moment later.
		waitFor(t, "the views to count the outside read of b1", func() bool {
			var reads int
			cat.Read(func(v *shelf.Catalog) {
				if b, err := v.Get("b1"); err == nil {
					reads = b.Reads
				}
			})
			return reads >= 2
		})
		cat.Read(func(v *shelf.Catalog) {
			for id, want := range map[string]error{"b-kcat": shelf.ErrNotFound, "b-py": shelf.ErrNotFound, "b2": shelf.ErrRemoved} {
				if _, err := v.Get(id); !errors.Is(err, want) {
					t.Errorf("catalog Get(%s) = %v, want %v, as the aggregate says", id, err, want)
				}
			}
			if b, err := v.Get("b1"); err != nil || b.Reads != 2 || b.LastReadAt == nil || !b.LastReadAt.Equal(*read.ReadAt) {
				t.Errorf("catalog b1 = %+v, %v; want 2 reads, the last at %v", b, err, read.ReadAt)
			}
			if _, total := v.List("", 10, 0); total != 1 {
				t.Errorf("catalog lists %d books, want 1 (b1)", total)
			}
		})
		lr.Read(func(v *shelf.LastRead) {
			got := v.Latest(5)
			if len(got) != 1 || got[0].ID != "b1" || !got[0].ReadAt.Equal(*read.ReadAt) {
				t.Errorf("last read = %+v; want b1 read at %v, the aggregate's read", got, read.ReadAt)
			}
		})
		waitFor(t, "4 records dead-lettered", func() bool { return fc.Counts.DeadLettered.Load() == 4 })
		var dl []*kgo.Record
		waitFor(t, "the dead letters written", func() bool { dl = readAll(t, cfg, cfg.Topics.DLQ); return len(dl) >= 4 })
		for _, r := range dl {
			if hs := headersOf(r); hs[HeaderOriginTopic] != ev || !strings.Contains(hs[HeaderError], "not admitted") {
				t.Errorf("dead letter headers %v", hs)
			}
		}
	})
}

// A command that cannot be decided here gets a definite answer, not a
// wait for ever: one of a type this version does not know (a rolling
// upgrade), and one placed off its book's home partition.
func TestUndecidableCommandsAreAnswered(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		rate := shelf.Command{ID: "c-rate-" + randHex(4), Type: "rate-book", BookID: "b1", IssuedAt: time.Now()}
		if o := submit(t, sub, rate); !errors.Is(o.Err(), shelf.ErrUndecidable) || !strings.Contains(o.Detail, "rate-book") {
			t.Errorf("a command of an unknown type: %+v, want undecidable naming its type", o)
		}
		mis := addCmd("b-mis", "Misplaced")
		value, _ := shelf.EncodeCommand(&mis)
		produceAt(t, cfg, cfg.Topics.Commands, otherThan(Home("b-mis", cfg.Partitions), cfg.Partitions), "b-mis", value)
		var got *shelf.Outcome
		waitFor(t, "the misplaced command answered", func() bool {
			for _, r := range readAll(t, cfg, cfg.Topics.Replies) {
				if o, err := shelf.DecodeOutcome(r.Value); err == nil && o.CommandID == mis.ID {
					got = &o
				}
			}
			return got != nil
		})
		if !errors.Is(got.Err(), shelf.ErrUndecidable) || !strings.Contains(got.Detail, "home is partition") {
			t.Errorf("the misplaced command: %+v, want undecidable naming its home", got)
		}
		if o := submit(t, sub, readCmd("b-mis")); !errors.Is(o.Err(), shelf.ErrNotFound) {
			t.Errorf("a read of the misplaced book: %+v, want not found", o)
		}
		if n := countEvents(t, cfg); n != 0 {
			t.Errorf("the log holds %d events, want none", n)
		}
		waitFor(t, "both dead-lettered", func() bool { return len(readAll(t, cfg, cfg.Topics.DLQ)) == 2 })
	})
}

// A command that fits the commands topic may not fit the dead-letter
// topic once the dead letter's headers are added. The dead letter is cut
// to fit, and the partition goes on.
func TestADeadLetterAlwaysFits(t *testing.T) {
	const limit = 4096
	eachWith(t, func(_ *testing.T, _ string, ts Topics) map[string]map[string]string {
		return map[string]map[string]string{ts.DLQ: {"max.message.bytes": fmt.Sprint(limit), "retention.ms": "-1"}}
	}, func(t *testing.T, cfg Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		// Random, so that compression cannot make it fit.
		poison := []byte("not a command " + randHex(limit/2-8))
		cl, err := kgo.NewClient(append(cfg.baseOpts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		// Three at once: their dead letters go out together, and
		// must fit the topic as a batch too.
		var rs []*kgo.Record
		for range 3 {
			rs = append(rs, &kgo.Record{Topic: cfg.Topics.Commands, Partition: 0, Key: []byte("x"), Value: poison,
				Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(strings.Repeat("t", 200))}}})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce the poison commands: %v", err)
		}
		// A valid command behind it, on the same partition.
		if o := submit(t, sub, addCmd(bookOn(t, cfg, 0), "Behind")); o.Status != shelf.StatusAccepted {
			t.Fatalf("the command behind the poison one: %+v", o)
		}
		dl := readAll(t, cfg, cfg.Topics.DLQ)
		if len(dl) != 3 {
			t.Fatalf("dead-letter topic holds %d records, want 3", len(dl))
		}
		for _, d := range dl {
			hs := headersOf(d)
			size := len(d.Key) + len(d.Value)
			for _, h := range d.Headers {
				size += len(h.Key) + len(h.Value)
			}
			if hs[HeaderOriginalSize] != fmt.Sprint(len(poison)) || !strings.HasPrefix(string(poison), string(d.Value)) ||
				hs[HeaderError] == "" || hs[HeaderOriginTimestamp] == "" || size > limit {
				t.Errorf("dead letter of %d bytes (headers %v), want a cut under %d bytes marked with the original size %d",
					size, hs, limit, len(poison))
			}
		}
	})
}

// A broker that refuses the timestamps an instance writes (its clock is
// ahead of message.timestamp.after.max.ms) refuses that instance, not the
// commands: it gives up its partitions, and another instance decides
// them. None is answered refused.
func TestClockAheadIsTheInstancesProblem(t *testing.T) {
	eachWith(t, func(t *testing.T, target string, ts Topics) map[string]map[string]string {
		if target == "embedded" {
			t.Skip("the embedded broker does not check timestamps: TestFaultClockAheadIsTheInstancesProblem injects the refusal")
		}
		return map[string]map[string]string{ts.Events: {
			"retention.ms": "-1", "retention.bytes": "-1", "message.timestamp.after.max.ms": "3600000"}}
	}, func(t *testing.T, cfg Config) {
		clockAhead(t, cfg)
	})
}

// clockAhead runs instance a with its clock two hours ahead beside b, and
// checks every command is decided, once, by b.
func clockAhead(t *testing.T, cfg Config) {
	t.Helper()
	sub, a, _, _, _ := twoInstances(t, cfg, func(_ *Config, instance string) []ProcessorOpt {
		opts := []ProcessorOpt{Quarantine(time.Minute)}
		if instance == "a" {
			opts = append(opts, Clock(func() time.Time { return time.Now().Add(2 * time.Hour) }))
		}
		return opts
	})
	var books []string
	var cmds []shelf.Command
	for i := range 9 {
		id := fmt.Sprintf("book-%d", i)
		books = append(books, id)
		cmds = append(cmds, addCmd(id, "Dune"))
	}
	outs, _ := submitAll(t, sub, cmds, true, time.Now().Add(60*time.Second))
	for i, o := range outs {
		if o.Status != shelf.StatusAccepted {
			t.Errorf("add %s: %+v, want accepted", cmds[i].BookID, o)
		}
	}
	if a.Healthy() || a.Assigned() != 0 {
		t.Errorf("instance a, its clock ahead: healthy %v, owns %d partitions; want out of the group", a.Healthy(), a.Assigned())
	}
	tallyEvents(t, cfg).exactlyOnce(t, books, nil)
}

// The idempotency window is measured by the decision clock, the broker's
// time of each command, not by the deciding instance's clock: an instance
// a day ahead must not forget the keys decided a moment ago.
func TestKeyWindowHoldsUnderASkewedInstance(t *testing.T) {
	eachWith(t, func(_ *testing.T, target string, ts Topics) map[string]map[string]string {
		if target != "real" {
			return nil
		}
		// A real broker refuses records an hour ahead by default
		// (TestClockAheadIsTheInstancesProblem); let these in, to see
		// what the idempotency window makes of them.
		return map[string]map[string]string{ts.Events: {"retention.ms": "-1", "retention.bytes": "-1",
			"message.timestamp.after.max.ms": "9223372036854775807"}}
	}, keyWindow)
}

// keyWindow decides 70 keyed reads of one book on instance a, then 60 on
// an instance 25 hours ahead, and retries the first.
func keyWindow(t *testing.T, cfg Config) {
	keyed := func(i int) shelf.Command {
		return shelf.Command{ID: fmt.Sprintf("k-%d", i), Type: shelf.CmdMarkRead, BookID: "b1",
			RequestHash: fmt.Sprintf("h-%d", i), IssuedAt: time.Now()}
	}
	ga := newGroup(t)
	sub, _ := startBooks(t, ga, cfg, "a")
	if o := submit(t, sub, addCmd("b1", "Dune")); o.Status != shelf.StatusAccepted {
		t.Fatalf("add: %+v", o)
	}
	first := submit(t, sub, keyed(0))
	for i := 1; i < 70; i++ {
		submit(t, sub, keyed(i))
	}
	ga.stop()

	gb := newGroup(t)
	sub, _ = startBooks(t, gb, cfg, "b-ahead", Clock(func() time.Time { return time.Now().Add(25 * time.Hour) }))
	for i := 70; i < 130; i++ {
		if o := submit(t, sub, keyed(i)); o.Status != shelf.StatusAccepted {
			t.Fatalf("keyed read %d: %+v", i, o)
		}
	}
	again := submit(t, sub, keyed(0))
	if again.Status != shelf.StatusReplayed || again.Position != first.Position {
		t.Errorf("the first key retried after an instance a day ahead decided: %+v, want a replay at %s", again, first.Position)
	}
}

// The embedded broker's logs from earlier versions were made with its
// defaults; `up` sets them to keep every event, and they pass the check.
func TestKeepEventsMendsAnEmbeddedLogOfAnEarlierVersion(t *testing.T) {
	_, cfg := bareCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if was, err := KeepEvents(ctx, cfg); err != nil || was != nil {
		t.Fatalf("KeepEvents with no log yet: %v %v, want nothing done", was, err)
	}
	createTopic(t, cfg, cfg.Topics.Events, nil)
	if err := EnsureTopics(ctx, cfg); !errors.Is(err, ErrPermanent) {
		t.Fatalf("EnsureTopics on a log with the defaults: %v, want it refused", err)
	}
	was, err := KeepEvents(ctx, cfg)
	if err != nil || len(was) != 1 || was[0] != "retention.ms=604800000" {
		t.Fatalf("KeepEvents on a log with the defaults: %v %v, want it to say retention.ms was 604800000", was, err)
	}
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatalf("EnsureTopics once mended: %v", err)
	}
	if was, err := KeepEvents(ctx, cfg); err != nil || was != nil {
		t.Fatalf("KeepEvents again: %v %v, want nothing to do", was, err)
	}
}

// Books imported straight into the log are books the aggregate added, for
// every reader: the views list them, and the aggregate knows them.
func TestImportedBooksAreTheAggregates(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		var books []shelf.Book
		for i := range 25_000 {
			books = append(books, shelf.Book{ID: fmt.Sprintf("imp-%d", i), Title: fmt.Sprintf("Title %d", i), Authors: []string{"Someone"}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var progress []int
		if err := ImportBooks(ctx, cfg, books, func(n int) { progress = append(progress, n) }); err != nil {
			t.Fatal(err)
		}
		if len(progress) != 3 || progress[2] != len(books) {
			t.Errorf("progress %v, want 3 steps to %d", progress, len(books))
		}
		g := newGroup(t)
		cat := shelf.NewReplica(shelf.NewCatalog())
		f := NewFollower(cfg, "catalog", cat)
		g.run(t, "follower", f.Run)
		<-f.CaughtUp()
		cat.Read(func(v *shelf.Catalog) {
			if v.Len() != len(books) {
				t.Errorf("the catalog holds %d books, want %d", v.Len(), len(books))
			}
		})
		if n := f.Counts.DeadLettered.Load(); n != 0 {
			t.Errorf("%d imported records dead-lettered", n)
		}
		if n, behind := f.Lag(); n != 0 || behind != 0 {
			t.Errorf("caught up, the follower says it lags %d records, %s", n, behind)
		}
		sub, _ := startBooks(t, g, cfg, "a")
		if o := submit(t, sub, readCmd("imp-4242")); o.Status != shelf.StatusAccepted {
			t.Errorf("a read of an imported book: %+v", o)
		}
		if o := submit(t, sub, addCmd("imp-7", "Again")); !errors.Is(o.Err(), shelf.ErrConflict) {
			t.Errorf("adding an imported book again: %+v, want a conflict", o)
		}
	})
}
