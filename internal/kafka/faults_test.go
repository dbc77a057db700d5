package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// The tests here break the broker on purpose, in the middle of the
// aggregate's transactions, and check its exactly-once promise: every
// command submitted is answered, and the event log holds its effect once.
// Faults need the cluster's handle, so they run against the embedded
// broker only (kfake's control functions); a real broker has no such knob.
//
// Commands that read a book are the probe for duplicates: the aggregate
// does not deduplicate a plain command (no idempotency key), so if a
// command record were delivered again after its transaction committed,
// the log would hold a second book-read for its command id. Only the
// transaction (events, outcomes and the command's offset, together or
// not at all) keeps that from happening.

// faultCluster starts an embedded broker of the test's own, with the
// bookshelf's topics on it. StartBroker keeps the cluster to itself; the
// tests need it to inject faults.
func faultCluster(t *testing.T) (*kfake.Cluster, Config) {
	t.Helper()
	c, cfg := bareCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	return c, cfg
}

// bareCluster starts an embedded broker of the test's own, without topics,
// and the Config of a bookshelf on it.
func bareCluster(t *testing.T) (*kfake.Cluster, Config) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(embeddedBrokerConfigs))
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	t.Cleanup(c.Close)
	return c, Config{Brokers: c.ListenAddrs(), Topics: TopicsFor("f-" + randHex(4)), Partitions: 3}
}

// describesOnly tells a metadata request that names topic and nothing
// else: EnsureTopics' describe of it.
func describesOnly(r kmsg.Request, topic string) bool {
	req := r.(*kmsg.MetadataRequest)
	return len(req.Topics) == 1 && req.Topics[0].Topic != nil && *req.Topics[0].Topic == topic
}

// topicID returns the id of topic: produce v13 and TxnOffsetCommit v6 name
// topics by id only.
func topicID(t *testing.T, cfg Config, topic string) [16]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(testClient(t, cfg)).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].ID
}

// txnID is the transactional id of a books instance (see Processor.session).
func txnID(cfg Config, instance string) string { return cfg.Topics.BooksGroup + "." + instance }

// ofTxn matches the requests of transaction txn that a fault or a stop
// aims at: its commit, the commit of its offsets, or the append of its
// events (topic events, whose id is eventsID).
func ofTxn(key kmsg.Key, txn, events string, eventsID [16]byte) func(kmsg.Request) bool {
	switch key {
	case kmsg.EndTxn:
		return func(r kmsg.Request) bool {
			req := r.(*kmsg.EndTxnRequest)
			return req.Commit && req.TransactionalID == txn
		}
	case kmsg.TxnOffsetCommit:
		return func(r kmsg.Request) bool { return r.(*kmsg.TxnOffsetCommitRequest).TransactionalID == txn }
	case kmsg.Produce:
		return func(r kmsg.Request) bool {
			req := r.(*kmsg.ProduceRequest)
			if req.TransactionID == nil || *req.TransactionID != txn {
				return false
			}
			for _, rt := range req.Topics {
				if rt.Topic == events || rt.TopicID == eventsID {
					return true
				}
			}
			return false
		}
	}
	panic(fmt.Sprintf("no transaction request %v", key))
}

// A fault answers the first request that match accepts, once, in place of
// the broker: with a response, or with an error, which closes the
// connection. Requests it does not take go to the broker as usual.
type fault struct {
	name   string
	key    kmsg.Key
	match  func(kmsg.Request) bool
	answer func(kmsg.Request) (kmsg.Response, error)
	// abort is whether the fault must end in an aborted transaction.
	// Faults that franz-go heals by retrying the request (a dropped
	// connection, a coordinator moving) need not.
	abort bool
}

// install adds f to the cluster and returns how many requests it answered.
func (f fault) install(c *kfake.Cluster) *atomic.Int32 {
	var hits atomic.Int32
	c.ControlKey(int16(f.key), func(r kmsg.Request) (kmsg.Response, error, bool) {
		// An unanswered request keeps the control function installed;
		// an answered one removes it, so this answers one request.
		if hits.Load() > 0 || !f.match(r) {
			return nil, nil, false
		}
		hits.Add(1)
		resp, err := f.answer(r)
		return resp, err, true
	})
	return &hits
}

// errDropped closes the connection a request came on, unanswered.
var errDropped = errors.New("connection dropped by the test")

func dropConnection(kmsg.Request) (kmsg.Response, error) { return nil, errDropped }

func endTxnError(code *kerr.Error) func(kmsg.Request) (kmsg.Response, error) {
	return func(r kmsg.Request) (kmsg.Response, error) {
		resp := r.(*kmsg.EndTxnRequest).ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = code.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp, nil
	}
}

func txnOffsetCommitError(code *kerr.Error) func(kmsg.Request) (kmsg.Response, error) {
	return func(r kmsg.Request) (kmsg.Response, error) {
		req := r.(*kmsg.TxnOffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
}

func produceError(code *kerr.Error) func(kmsg.Request) (kmsg.Response, error) {
	return func(r kmsg.Request) (kmsg.Response, error) {
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode, sp.BaseOffset = rp.Partition, code.Code, -1
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
}

// commitLost lets the broker commit the transaction, then loses the answer:
// the request is passed on, on a connection of its own, while the control
// function sleeps, and the processor's connection is closed once the
// broker has committed. The processor cannot know the commit happened.
func commitLost(c *kfake.Cluster, brokers []string, forwarded *atomic.Int32) func(kmsg.Request) (kmsg.Response, error) {
	return func(r kmsg.Request) (kmsg.Response, error) {
		req := *r.(*kmsg.EndTxnRequest)
		c.SleepControl(func() {
			// The same request version, so the broker treats the
			// processor's retry as a retry of this one.
			vs := kversion.Stable()
			vs.SetMaxKeyVersion(int16(kmsg.EndTxn), req.Version)
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxVersions(vs))
			if err != nil {
				return
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := req.RequestWith(ctx, cl)
			if err == nil && resp.ErrorCode == 0 {
				forwarded.Add(1)
			}
		})
		return nil, errDropped
	}
}

// tally is the event log, counted: book-added per book id, book-read per
// command id.
type tally struct {
	added, read map[string]int
	total       int
}

func tallyEvents(t *testing.T, cfg Config) tally {
	t.Helper()
	tl := tally{added: map[string]int{}, read: map[string]int{}}
	for _, r := range readAll(t, cfg, cfg.Topics.Events) {
		e, err := shelf.DecodeRecord(r.Value, r.Timestamp)
		if err != nil {
			t.Fatalf("event at %d:%d: %v", r.Partition, r.Offset, err)
		}
		tl.total++
		switch e.Type {
		case shelf.TypeBookAdded:
			tl.added[e.BookID]++
		case shelf.TypeBookRead:
			tl.read[e.CommandID]++
		}
	}
	return tl
}

// exactlyOnce checks that the log holds one book-added per book, one
// book-read per read command, and nothing else.
func (tl tally) exactlyOnce(t *testing.T, books, reads []string) {
	t.Helper()
	for _, b := range books {
		if n := tl.added[b]; n != 1 {
			t.Errorf("book %s: %d book-added events, want 1", b, n)
		}
	}
	for _, c := range reads {
		if n := tl.read[c]; n != 1 {
			t.Errorf("command %s: %d book-read events, want 1", c, n)
		}
	}
	if want := len(books) + len(reads); tl.total != want {
		t.Errorf("event log holds %d events, want %d (%d books, %d reads)", tl.total, want, len(books), len(reads))
	}
}

func readCmd(bookID string) shelf.Command {
	return shelf.Command{ID: "c-" + randHex(8), Type: shelf.CmdMarkRead, BookID: bookID, IssuedAt: time.Now()}
}

// submitAll submits the commands at once, one goroutine each, and returns
// their outcomes in order. A Submit that fails is retried with the same
// command while retry allows, until the deadline; without retry, a failure
// fails the test: the processor must get over the fault on its own.
func submitAll(t *testing.T, sub *Submitter, cmds []shelf.Command, retry bool, deadline time.Time) ([]shelf.Outcome, int) {
	t.Helper()
	outs := make([]shelf.Outcome, len(cmds))
	var retries atomic.Int32
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Go(func() {
			for {
				until := time.Now().Add(20 * time.Second)
				if deadline.Before(until) {
					until = deadline
				}
				ctx, cancel := context.WithDeadline(context.Background(), until)
				o, err := sub.Submit(ctx, c)
				cancel()
				if err == nil {
					outs[i] = o
					return
				}
				if !retry || time.Now().After(deadline) {
					t.Errorf("submit %s %s: %v", c.Type, c.BookID, err)
					return
				}
				retries.Add(1)
			}
		})
	}
	wg.Wait()
	return outs, int(retries.Load())
}

func TestFaultInTransactionLeavesEachCommandOnce(t *testing.T) {
	t.Parallel()
	faults := []struct {
		fault
		// setup completes a fault that needs the cluster itself.
		setup func(t *testing.T, f *fault, c *kfake.Cluster, cfg Config)
	}{
		// 1. The commit itself fails.
		{fault: fault{name: "EndTxn/unknown-server-error", key: kmsg.EndTxn,
			answer: endTxnError(kerr.UnknownServerError), abort: true}},
		{fault: fault{name: "EndTxn/coordinator-not-available", key: kmsg.EndTxn,
			answer: endTxnError(kerr.CoordinatorNotAvailable)}},
		{fault: fault{name: "EndTxn/connection-dropped", key: kmsg.EndTxn,
			answer: dropConnection}},
		{fault: fault{name: "EndTxn/committed-answer-lost", key: kmsg.EndTxn},
			setup: func(t *testing.T, f *fault, c *kfake.Cluster, cfg Config) {
				var forwarded atomic.Int32
				f.answer = commitLost(c, cfg.Brokers, &forwarded)
				t.Cleanup(func() {
					if forwarded.Load() != 1 {
						t.Errorf("the broker committed %d forwarded transactions, want 1", forwarded.Load())
					}
				})
			}},
		// 2. The offsets of the commands fail to join the transaction.
		{fault: fault{name: "TxnOffsetCommit/unknown-server-error", key: kmsg.TxnOffsetCommit,
			answer: txnOffsetCommitError(kerr.UnknownServerError), abort: true}},
		{fault: fault{name: "TxnOffsetCommit/illegal-generation", key: kmsg.TxnOffsetCommit,
			answer: txnOffsetCommitError(kerr.IllegalGeneration), abort: true}},
		{fault: fault{name: "TxnOffsetCommit/coordinator-not-available", key: kmsg.TxnOffsetCommit,
			answer: txnOffsetCommitError(kerr.CoordinatorNotAvailable)}},
		{fault: fault{name: "TxnOffsetCommit/connection-dropped", key: kmsg.TxnOffsetCommit,
			answer: dropConnection}},
		// 3. Appending the events fails.
		{fault: fault{name: "Produce/invalid-producer-epoch", key: kmsg.Produce,
			answer: produceError(kerr.InvalidProducerEpoch), abort: true}},
		{fault: fault{name: "Produce/invalid-record", key: kmsg.Produce,
			answer: produceError(kerr.InvalidRecord), abort: true}},
		{fault: fault{name: "Produce/not-leader", key: kmsg.Produce,
			answer: produceError(kerr.NotLeaderForPartition)}},
		{fault: fault{name: "Produce/connection-dropped", key: kmsg.Produce,
			answer: dropConnection}},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			c, cfg := faultCluster(t)
			g := newGroup(t)
			sub, proc := startBooks(t, g, cfg, "a")

			// Books first, with no fault: the group has formed and the
			// processor holds its partitions' state when the fault hits.
			var books []string
			for i := range 6 {
				id := fmt.Sprintf("book-%d-%s", i, randHex(3))
				books = append(books, id)
				if o := submit(t, sub, addCmd(id, "Title "+id)); o.Status != shelf.StatusAccepted {
					t.Fatalf("add %s: %+v", id, o)
				}
			}

			f := tc.fault
			f.match = ofTxn(f.key, txnID(cfg, "a"), cfg.Topics.Events, topicID(t, cfg, cfg.Topics.Events))
			if tc.setup != nil {
				tc.setup(t, &f, c, cfg)
			}
			aborted := proc.Aborted.Load()
			hits := f.install(c)

			// Then reads of every book and more books, all at once, so
			// the faulted transaction carries several commands.
			var cmds []shelf.Command
			var reads []string
			for _, b := range books {
				cmd := readCmd(b)
				cmds, reads = append(cmds, cmd), append(reads, cmd.ID)
			}
			for i := range 3 {
				id := fmt.Sprintf("book-late-%d-%s", i, randHex(3))
				books = append(books, id)
				cmds = append(cmds, addCmd(id, "Title "+id))
			}
			faulted := time.Now()
			outs, _ := submitAll(t, sub, cmds, false, time.Now().Add(40*time.Second))
			for i, o := range outs {
				if o.CommandID != cmds[i].ID || o.Status != shelf.StatusAccepted || o.Position == "" {
					t.Errorf("%s %s: outcome %+v, want accepted with a position", cmds[i].Type, cmds[i].BookID, o)
				}
			}
			if hits.Load() != 1 {
				t.Fatalf("the fault answered %d requests, want 1: it never happened", hits.Load())
			}
			if n := proc.Aborted.Load() - aborted; f.abort && n == 0 {
				t.Errorf("no transaction aborted: the fault went unnoticed")
			}
			tallyEvents(t, cfg).exactlyOnce(t, books, reads)
			if t.Failed() {
				for i, o := range outs {
					t.Logf("%s %s (command %s) was answered %s at %q", cmds[i].Type, cmds[i].BookID, cmds[i].ID, o.Status, o.Position)
				}
			}
			t.Logf("%d commands answered %v after the fault, %d aborted, %v in all",
				len(cmds), time.Since(faulted).Round(time.Millisecond), proc.Aborted.Load()-aborted,
				time.Since(began).Round(time.Millisecond))
		})
	}
}

func TestFaultProcessorStopsWithCommandsInFlight(t *testing.T) {
	t.Parallel()
	// Where in a transaction the instance stops: appending its events,
	// committing the commands' offsets, or committing the transaction.
	stops := []struct {
		name string
		key  kmsg.Key
	}{
		{"appending-events", kmsg.Produce},
		{"committing-offsets", kmsg.TxnOffsetCommit},
		{"ending-transaction", kmsg.EndTxn},
	}
	for _, stop := range stops {
		t.Run(stop.name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			c, cfg := faultCluster(t)
			sub, a, b, ga, _ := twoInstances(t, cfg, nil)

			// a stops in the middle of a transaction, once it has
			// decided a command: its context ends while the broker
			// handles the request, which goes through.
			var stopped atomic.Bool
			at := ofTxn(stop.key, txnID(cfg, "a"), cfg.Topics.Events, topicID(t, cfg, cfg.Topics.Events))
			c.ControlKey(int16(stop.key), func(r kmsg.Request) (kmsg.Response, error, bool) {
				if a.Decided.Load() > 0 && at(r) {
					stopped.Store(true)
					ga.cancel()
					c.DropControl()
				}
				return nil, nil, false
			})

			// Commands go on until a has stopped and some more after
			// that, so the stop happens however the books fall on the
			// partitions. They carry an idempotency key: a Submit that
			// failed is retried with the same command, and a retry of a
			// command already decided is answered as a replay, not
			// decided again.
			const (
				atMost = 300 // a never stopping fails the test
				after  = 15  // commands sent once a has stopped
			)
			var (
				mu      sync.Mutex
				cmds    []shelf.Command
				outs    []shelf.Outcome
				books   []string
				retries atomic.Int32
				last    = atMost
			)
			next := func() (int, shelf.Command, bool) {
				mu.Lock()
				defer mu.Unlock()
				i := len(cmds)
				if stopped.Load() && last == atMost {
					last = i + after
				}
				if i >= last {
					return 0, shelf.Command{}, false
				}
				id := fmt.Sprintf("book-%03d-%s", i, randHex(3))
				cmd := addCmd(id, "Title "+id)
				cmd.ID, cmd.RequestHash = "k-"+id, "h-"+id
				cmds, outs, books = append(cmds, cmd), append(outs, shelf.Outcome{}), append(books, id)
				return i, cmd, true
			}
			deadline := time.Now().Add(90 * time.Second)
			var wg sync.WaitGroup
			const workers = 5
			for range workers {
				wg.Go(func() {
					for {
						i, cmd, ok := next()
						if !ok {
							return
						}
						o, r := submitAll(t, sub, []shelf.Command{cmd}, true, deadline)
						mu.Lock()
						outs[i] = o[0]
						mu.Unlock()
						retries.Add(int32(r))
					}
				})
			}
			wg.Wait()
			ga.stop()

			if !stopped.Load() {
				t.Fatalf("a was not stopped in a transaction: it decided %d of %d commands, owning %d partitions (b %d)",
					a.Decided.Load(), len(cmds), a.Assigned(), b.Assigned())
			}
			for i, o := range outs {
				if o.CommandID != cmds[i].ID || (o.Status != shelf.StatusAccepted && o.Status != shelf.StatusReplayed) || o.Position == "" {
					t.Errorf("add %s: outcome %+v, want accepted with a position", cmds[i].BookID, o)
				}
			}
			if b.Assigned() != int(cfg.Partitions) {
				t.Errorf("b owns %d partitions, want all %d", b.Assigned(), cfg.Partitions)
			}
			tallyEvents(t, cfg).exactlyOnce(t, books, nil)
			t.Logf("%d commands answered, %d Submits retried, aborted: a %d, b %d; %v in all",
				len(cmds), retries.Load(), a.Aborted.Load(), b.Aborted.Load(), time.Since(began).Round(time.Millisecond))
		})
	}
}

// One slow answer from the broker is not an outage: the probe, which takes
// every instance out of the registry when it says the broker is away,
// says so only once pings are missed in a row.
func TestFaultProbeOutlastsOneSlowAnswer(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	p := NewProbe(cfg)
	// A timeout no ping of a loaded test machine comes near by itself,
	// and an interval longer than a slowed answer: pings share one
	// connection, and a ping sent while a slowed answer is still on its
	// way would wait behind it.
	p.interval, p.timeout = 2*time.Second, time.Second
	g := newGroup(t)
	g.run(t, "probe", p.Run)
	answering := func() bool { return p.Err() == nil }
	waitFor(t, "the probe sees the broker", answering)

	// slow delays the answers to the next n pings (metadata requests
	// naming no topic) past the probe's timeout.
	slow := func(n int32) *atomic.Int32 {
		var delayed atomic.Int32
		c.ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
			// Not handling a request keeps the function for the next.
			if req := r.(*kmsg.MetadataRequest); req.Topics == nil || len(req.Topics) > 0 {
				return nil, nil, false
			}
			if delayed.Add(1) >= n {
				c.DropControl()
			}
			c.SleepControl(func() { time.Sleep(p.timeout + 300*time.Millisecond) })
			return nil, nil, false
		})
		return &delayed
	}

	one := slow(1)
	for deadline := time.Now().Add(2 * p.interval); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !answering() {
			t.Fatalf("one slow answer made the broker count as away: %v", p.Err())
		}
	}
	if one.Load() != 1 {
		t.Fatalf("%d pings were slowed, want 1", one.Load())
	}
	slow(probeMisses + 1)
	waitFor(t, "the broker counts as away after missed pings", func() bool { return !answering() })
	waitFor(t, "the broker counts as answering again", answering)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

// A command whose append the broker never answers (it went away with the
// request in flight) is given up at the caller's deadline: the HTTP
// handler then answers 503 instead of hanging until the broker is back.
func TestFaultSubmitGivesUpOnAnUnansweredAppend(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	g := newGroup(t)
	sub, _ := startBooks(t, g, cfg, "a")
	commandsID := topicID(t, cfg, cfg.Topics.Commands)
	release := make(chan struct{})
	defer close(release)
	var held atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		for _, rt := range r.(*kmsg.ProduceRequest).Topics {
			if rt.Topic == cfg.Topics.Commands || rt.TopicID == commandsID {
				held.Add(1)
				c.DropControl()
				c.SleepControl(func() { <-release })
				break
			}
		}
		return nil, nil, false
	})
	waitFor(t, "the submitter reads outcomes", sub.Ready)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	began := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := sub.Submit(ctx, addCmd("book-held", "Held"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Submit: %v, want ErrUnavailable", err)
		}
		if held.Load() != 1 {
			t.Fatalf("%d appends were held, want 1", held.Load())
		}
		t.Logf("given up after %v", time.Since(began).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("Submit outlasted its deadline by 9 s with its append unanswered")
	}
}

// A topic just created can be unknown to the broker that answers the next
// describe for a while (seen on a real Kafka holding thousands of topics).
// EnsureTopics must wait for it, not fail the service's or test's setup.
func TestFaultEnsureTopicsWaitsForANewTopic(t *testing.T) {
	c, cfg := bareCluster(t)

	// The first describes naming the commands topic alone are answered
	// "unknown topic" or "no leader", as a broker not yet told of it, or
	// of its leaders, would.
	const hidden = 3
	var hid atomic.Int32
	c.ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if !describesOnly(r, cfg.Topics.Commands) {
			return nil, nil, false
		}
		req := r.(*kmsg.MetadataRequest)
		// An answered request removes the function unless kept, and
		// a kept one stays until dropped.
		c.KeepControl()
		n := hid.Add(1)
		if n >= hidden {
			c.DropControl()
		}
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(cfg.Topics.Commands)
		if n == 2 {
			// Known, but a partition has no leader yet.
			for p := range cfg.Partitions {
				rp := kmsg.NewMetadataResponseTopicPartition()
				rp.Partition, rp.Leader = p, -1
				rp.ErrorCode = kerr.LeaderNotAvailable.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
		} else {
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatalf("ensure topics with a topic unknown to %d describes: %v", hidden, err)
	}
	if n := hid.Load(); n != hidden {
		t.Fatalf("%d describes were answered unknown, want %d", n, hidden)
	}
}

// A describe the broker refuses for good (here: not authorised) is not
// waited out: EnsureTopics says so at once, as a permanent error.
func TestFaultEnsureTopicsGivesUpOnARefusedDescribe(t *testing.T) {
	c, cfg := bareCluster(t)
	c.ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if !describesOnly(r, cfg.Topics.Commands) {
			return nil, nil, false
		}
		req := r.(*kmsg.MetadataRequest)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(cfg.Topics.Commands)
		rt.ErrorCode = kerr.TopicAuthorizationFailed.Code
		resp.Topics = append(resp.Topics, rt)
		c.KeepControl()
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := EnsureTopics(ctx, cfg)
	if !errors.Is(err, ErrPermanent) || !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("EnsureTopics with a refused describe: %v, want a permanent authorisation error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("EnsureTopics took %v to give up on a refused describe", d)
	}
}

// bookOn returns a new book id whose commands land on partition part of
// the commands topic, as the submitter's partitioner places them.
func bookOn(t *testing.T, cfg Config, part int32) string {
	t.Helper()
	for range 10000 {
		id := "book-" + randHex(4)
		if Home(id, cfg.Partitions) == part {
			return id
		}
	}
	t.Fatalf("no book id found for partition %d", part)
	return ""
}

// committedOffset is the books group's committed offset of a commands
// partition, or -1.
func committedOffset(t *testing.T, cfg Config, part int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(testClient(t, cfg)).FetchOffsets(ctx, cfg.Topics.BooksGroup)
	if err != nil {
		t.Fatalf("fetch the group's offsets: %v", err)
	}
	if o, ok := offs.Lookup(cfg.Topics.Commands, part); ok {
		return o.At
	}
	return -1
}

// firstOffset is the offset of the first command on a commands partition.
func firstOffset(t *testing.T, cfg Config, part int32) int64 {
	t.Helper()
	for _, r := range readAll(t, cfg, cfg.Topics.Commands) {
		if r.Partition == part {
			return r.Offset
		}
	}
	t.Fatalf("no command on partition %d", part)
	return 0
}

// owned returns the partitions p owns now.
func owned(p *Processor) []int32 {
	p.staleMu.Lock()
	defer p.staleMu.Unlock()
	return slices.Sorted(maps.Keys(p.ownedParts))
}

// An instance given a partition whose previous owner died with a
// transaction open (events appended, nothing committed) cannot rebuild it
// until the broker times that transaction out. Meanwhile the commands of
// the partitions it already owned must be decided as usual.
func TestFaultRebuildDoesNotHoldBackOtherPartitions(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	// A transaction timeout well past the session timeout: b takes over
	// while a's transaction is still open, however slow the machine.
	// And few commands held for a rebuild before its partition pauses.
	const maxHeld = 3
	var bLog lockedBuffer
	sub, a, b, ga, _ := twoInstances(t, cfg, func(cfg *Config, instance string) []ProcessorOpt {
		if instance == "b" {
			cfg.Logger = slog.New(slog.NewTextHandler(&bLog, nil))
		}
		// Waited out, not ended: this is what happens where the brokers
		// cannot tell the open transactions (fence_test.go has the rest).
		return []ProcessorOpt{TxnTimeout(20 * time.Second), MaxHeld(maxHeld), WaitOutOpenTransactions()}
	})
	ofA, ofB := owned(a), owned(b)

	// a dies once it has appended the events of its first transaction,
	// as a killed process would: it neither commits nor aborts that
	// transaction, which stays open until the broker times it out, nor
	// leaves the group, which waits out its session. (It is told it was
	// fenced for each, so it gives up at once.)
	var stopped atomic.Bool
	txn := txnID(cfg, "a")
	at := ofTxn(kmsg.Produce, txn, cfg.Topics.Events, topicID(t, cfg, cfg.Topics.Events))
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if at(r) {
			stopped.Store(true)
			ga.cancel()
			c.DropControl()
		} else {
			c.KeepControl()
		}
		return nil, nil, false
	})
	// From then on, a's offset commits and transaction ends, commit or
	// abort, are answered "fenced" in the broker's place.
	fence := func(key kmsg.Key, ofA func(kmsg.Request) bool, answer func(kmsg.Request) (kmsg.Response, error)) {
		c.ControlKey(int16(key), func(r kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if !stopped.Load() || !ofA(r) {
				return nil, nil, false
			}
			resp, err := answer(r)
			return resp, err, true
		})
	}
	fence(kmsg.TxnOffsetCommit, ofTxn(kmsg.TxnOffsetCommit, txn, "", [16]byte{}), txnOffsetCommitError(kerr.ProducerFenced))
	fence(kmsg.EndTxn, func(r kmsg.Request) bool { return r.(*kmsg.EndTxnRequest).TransactionalID == txn },
		endTxnError(kerr.ProducerFenced))
	c.ControlKey(int16(kmsg.LeaveGroup), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !stopped.Load() {
			return nil, nil, false
		}
		return r.(*kmsg.LeaveGroupRequest).ResponseKind(), nil, true
	})
	type answer struct {
		o   shelf.Outcome
		err error
		at  time.Time
	}
	books := []string{bookOn(t, cfg, ofA[0])}
	left := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		o, err := sub.Submit(ctx, addCmd(books[0], "Left Open"))
		left <- answer{o, err, time.Now()}
	}()
	waitFor(t, "a stopped with its transaction open", stopped.Load)
	// b takes a's partitions once the group gives up on a (the session
	// timeout), and fetches the command a left undecided again.
	for deadline := time.Now().Add(30 * time.Second); b.Assigned() != int(cfg.Partitions); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("b never took a's partitions: it owns %v", owned(b))
		}
	}
	tookOver := time.Now()

	// More commands for the partition being rebuilt: more than b holds
	// before it pauses that partition. All are decided once it is built.
	const more = 10
	var moreWG sync.WaitGroup
	for range more {
		books = append(books, bookOn(t, cfg, ofA[0]))
		id := books[len(books)-1]
		moreWG.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			if o, err := sub.Submit(ctx, addCmd(id, "Behind")); err != nil || o.Status != shelf.StatusAccepted {
				t.Errorf("add %s on the partition being rebuilt: %+v, %v", id, o, err)
			}
		})
	}

	// The commands of b's own partitions, while it rebuilds a's.
	var slowest time.Duration
	for i := range 5 {
		began := time.Now()
		books = append(books, bookOn(t, cfg, ofB[i%len(ofB)]))
		if o := submit(t, sub, addCmd(books[len(books)-1], "Beside")); o.Status != shelf.StatusAccepted {
			t.Fatalf("add on b's partition %d: outcome %+v", ofB[i%len(ofB)], o)
		}
		slowest = max(slowest, time.Since(began))
	}
	ownDone := time.Now()
	// b committed those while holding the commands of a's partition: its
	// commits must leave that partition at the first held command, or a
	// crash of b now would lose them all.
	committed := committedOffset(t, cfg, ofA[0])
	l := <-left
	if l.err != nil || l.o.Status != shelf.StatusAccepted {
		t.Fatalf("the command a left open: %+v, %v", l.o, l.err)
	}
	if first := firstOffset(t, cfg, ofA[0]); l.at.After(ownDone) && committed > first {
		t.Errorf("while its commands were held, partition %d was committed at %d, past its first command at %d",
			ofA[0], committed, first)
	}
	moreWG.Wait()
	if !strings.Contains(bLog.String(), "paused a partition being rebuilt") {
		t.Errorf("%d commands were held for the rebuild, and b never paused the partition (at %d)", 1+more, maxHeld)
	}
	t.Logf("after b took over: its own partitions' commands answered within %v (slowest), the one a left open %v later",
		slowest.Round(time.Millisecond), l.at.Sub(tookOver).Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Errorf("a command on b's own partitions took %v: held back while b rebuilt a's partition", slowest)
	} else if !l.at.After(ownDone) {
		t.Fatalf("the command a left open was answered before b's own: the rebuild did not wait, so this test showed nothing")
	}
	tallyEvents(t, cfg).exactlyOnce(t, books, nil)
}

// A rebuild's client starts from the brokers the session's client knows,
// not only from the one a service was seeded with: that one may be the
// broker that stopped.
func TestKnownBrokersAreAllOfThem(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.BrokerConfigs(embeddedBrokerConfigs))
	if err != nil {
		t.Fatalf("embedded brokers: %v", err)
	}
	t.Cleanup(c.Close)
	seed := c.ListenAddrs()[:1]
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := knownBrokers(context.Background(), cl, seed)
	slices.Sort(got)
	want := slices.Clone(c.ListenAddrs())
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("known brokers %v, want all of %v", got, want)
	}
}

// A books replica may reach the brokers through a TCP proxy (the compose
// stack's books-cut does). When a broker behind it dies, the proxy still
// accepts a connection and closes it before any answer; franz-go takes an
// end of file on a connection's first read for a TLS or SASL mismatch and
// does not retry it, so a heartbeat to that broker lost the group session
// at once, and with it every partition of the replica. Here the broker
// closes every new connection, and the heartbeats' own, for less than the
// session: the member must keep its partitions.
func TestGroupMemberOutlastsABrokerClosingNewConnections(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	var down atomic.Bool
	for _, key := range []kmsg.Key{kmsg.ApiVersions, kmsg.Heartbeat} {
		c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if down.Load() {
				return nil, errDropped, true
			}
			return nil, nil, false
		})
	}
	var assigned, lost atomic.Int32
	opts := append(cfg.baseOpts(),
		kgo.ConsumerGroup("g-"+randHex(4)),
		kgo.ConsumeTopics(cfg.Topics.Commands),
		kgo.SessionTimeout(DefaultSessionTimeout),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			assigned.Add(int32(len(m[cfg.Topics.Commands])))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			lost.Add(int32(len(m[cfg.Topics.Commands])))
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	waitFor(t, "the member's partitions", func() bool { return assigned.Load() == cfg.Partitions })

	down.Store(true)
	time.Sleep(time.Second)
	down.Store(false)
	time.Sleep(time.Second)
	if n := lost.Load(); n != 0 {
		t.Fatalf("the member lost %d partitions to connections closed for a second", n)
	}
	if n := assigned.Load(); n != cfg.Partitions {
		t.Fatalf("partitions assigned %d times, want %d once each", n, cfg.Partitions)
	}
}

// A broker's death can hold up a transaction's flush for most of the
// work's time (its partitions' leaders move), and the commit that follows
// needs only a few hundred milliseconds more. Here the broker answers the
// commit only once the work's time has passed, within the transaction
// timeout: the transaction commits, and nothing is aborted or decided
// again (a commit cut short at the work's deadline ended the session).
func TestFaultCommitOutlastsTheWorksDeadline(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	g := newGroup(t)
	const txnTimeout = 4 * time.Second
	sub, proc := startBooks(t, g, cfg, "a", TxnTimeout(txnTimeout))
	id := "book-" + randHex(3)
	if o := submit(t, sub, addCmd(id, "Title "+id)); o.Status != shelf.StatusAccepted {
		t.Fatalf("add %s: %+v", id, o)
	}

	var slept atomic.Int32
	match := ofTxn(kmsg.EndTxn, txnID(cfg, "a"), cfg.Topics.Events, [16]byte{})
	// The transaction to slow down begins after the command is sent.
	var began atomic.Int64
	c.ControlKey(int16(kmsg.EndTxn), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if began.Load() == 0 || !match(r) || !slept.CompareAndSwap(0, 1) {
			return nil, nil, false
		}
		// Answered past the work's time (txnWork), before the timeout.
		wake := time.Unix(0, began.Load()).Add(proc.txnWork() + 300*time.Millisecond)
		c.SleepControl(func() { time.Sleep(time.Until(wake)) })
		return nil, nil, false
	})
	aborted := proc.Aborted.Load()
	cmd := readCmd(id)
	began.Store(time.Now().UnixNano())
	if o := submit(t, sub, cmd); o.Status != shelf.StatusAccepted {
		t.Fatalf("read %s: %+v", id, o)
	}
	if slept.Load() != 1 {
		t.Fatal("the commit was never held up: the test did not happen")
	}
	if n := proc.Aborted.Load() - aborted; n != 0 {
		t.Fatalf("%d transactions aborted: the commit was cut short at the work's deadline", n)
	}
	tallyEvents(t, cfg).exactlyOnce(t, []string{id}, []string{cmd.ID})
}

// A broker that refuses a consumer group's session (stock Kafka bounds it
// by 45 s at least) gets a classic group, with the member's session, and
// the commands are decided all the same.
func TestFaultRefusedGroupSessionRunsTheGroupClassic(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.IncrementalAlterConfigs), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.IncrementalAlterConfigsRequest)
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		resp.Version = req.Version
		for _, res := range req.Resources {
			if res.ResourceType != kmsg.ConfigResourceTypeGroupConfig {
				return nil, nil, false
			}
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
			rr.ErrorCode = kerr.InvalidConfig.Code
			rr.ErrorMessage = kmsg.StringPtr("consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.")
			resp.Resources = append(resp.Resources, rr)
		}
		refused.Add(1)
		return resp, nil, true
	})
	g := newGroup(t)
	sub, p := startBooks(t, g, cfg, "a")
	waitFor(t, "a owning every partition", func() bool { return p.Assigned() == int(cfg.Partitions) })
	if o := submit(t, sub, addCmd("book-classic", "Classic")); o.Status != shelf.StatusAccepted {
		t.Fatalf("the add in a classic group: %+v", o)
	}
	if refused.Load() == 0 {
		t.Fatal("the group's session was never set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(testClient(t, cfg)).DescribeGroups(ctx, cfg.Topics.BooksGroup)
	if err != nil {
		t.Fatal(err)
	}
	if d := gs[cfg.Topics.BooksGroup]; d.Err != nil || d.Protocol != "cooperative-sticky" || len(d.Members) != 1 {
		t.Fatalf("the group: protocol %q, %d members, err %v; want a classic cooperative-sticky group of one", d.Protocol, len(d.Members), d.Err)
	}
}
