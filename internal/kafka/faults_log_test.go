package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// producesTo tells a produce request that writes to topic (whose id is
// id): of transaction txn, or any when txn is "".
func producesTo(r kmsg.Request, txn, topic string, id [16]byte) bool {
	req := r.(*kmsg.ProduceRequest)
	if txn != "" && (req.TransactionID == nil || *req.TransactionID != txn) {
		return false
	}
	for _, rt := range req.Topics {
		if rt.Topic == topic || rt.TopicID == id {
			return true
		}
	}
	return false
}

// When the dead-letter topic cannot be written at all (here: this
// instance is not authorised), the partition of the command to
// dead-letter waits, the instance says why, and the other partitions go
// on. Once the topic takes writes again, the partition carries on where
// it was: the poison command dead-lettered once, the one behind it
// decided once.
func TestFaultUnwritableDeadLetterTopicHoldsOnlyItsPartition(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	dlqID := topicID(t, cfg, cfg.Topics.DLQ)
	var refuse atomic.Bool
	refuse.Store(true)
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() || !producesTo(r, "", cfg.Topics.DLQ, dlqID) {
			return nil, nil, false
		}
		refused.Add(1)
		resp, err := produceError(kerr.TopicAuthorizationFailed)(r)
		return resp, err, true
	})
	// A good command before the poison one, in the same first batch: it
	// waits with it, decided on the state the partition had.
	before := addCmd(bookOn(t, cfg, 0), "Before")
	value, err := shelf.EncodeCommand(&before)
	if err != nil {
		t.Fatal(err)
	}
	produceAt(t, cfg, cfg.Topics.Commands, 0, before.BookID, value)
	produceAt(t, cfg, cfg.Topics.Commands, 0, "x", []byte("not a command"))
	g := newGroup(t)
	sub, proc := startBooks(t, g, cfg, "a")
	waitFor(t, "the submitter reads outcomes", sub.Ready)
	behind := addCmd(bookOn(t, cfg, 0), "Behind")
	answered := make(chan shelf.Outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		o, err := sub.Submit(ctx, behind)
		if err != nil {
			t.Errorf("the command behind the poison one: %v", err)
		}
		answered <- o
	}()
	books := []string{before.BookID, behind.BookID}
	for _, part := range []int32{1, 2} {
		c := addCmd(bookOn(t, cfg, part), "Beside")
		books = append(books, c.BookID)
		if o := submit(t, sub, c); o.Status != shelf.StatusAccepted {
			t.Fatalf("a command on partition %d beside the held one: %+v", part, o)
		}
	}
	waitFor(t, "the instance says partition 0 waits for the dead-letter topic", func() bool {
		err := proc.DeadLetterTrouble()
		return err != nil && strings.Contains(err.Error(), "[0]") && proc.WaitingOnDeadLetters() == 1
	})
	t.Logf("while refused: %v", proc.DeadLetterTrouble())
	select {
	case o := <-answered:
		t.Fatalf("the command behind the poison one was answered %+v while its dead letter could not be written", o)
	case <-time.After(500 * time.Millisecond):
	}

	refuse.Store(false)
	select {
	case o := <-answered:
		if o.Status != shelf.StatusAccepted {
			t.Fatalf("the command behind the poison one: %+v", o)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held partition did not go on once the dead-letter topic took writes")
	}
	waitFor(t, "the trouble is over", func() bool { return proc.DeadLetterTrouble() == nil && proc.WaitingOnDeadLetters() == 0 })
	if n := len(readAll(t, cfg, cfg.Topics.DLQ)); n != 1 {
		t.Errorf("dead-letter topic holds %d records, want the poison command once", n)
	}
	tallyEvents(t, cfg).exactlyOnce(t, books, nil)
	t.Logf("%d dead-letter writes refused", refused.Load())
}

// The embedded broker does not check timestamps; here it refuses those of
// instance a as a real broker refuses a clock too far ahead.
func TestFaultClockAheadIsTheInstancesProblem(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	eventsID := topicID(t, cfg, cfg.Topics.Events)
	txn := txnID(cfg, "a")
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !producesTo(r, txn, cfg.Topics.Events, eventsID) {
			return nil, nil, false
		}
		resp, err := produceError(kerr.InvalidTimestamp)(r)
		return resp, err, true
	})
	clockAhead(t, cfg)
}

// A rebuild has no time limit while it reads: here every fetch is slowed,
// and the partition holds several fetches' worth (franz-go fetches at most
// 1 MiB of a partition at a time), so that rebuilding it takes several
// times the stall limit. One that reads nothing for the stall limit is
// given up.
func TestFaultRebuildHasNoLimitWhileItReads(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	const n, size = 8000, 1000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Uncompressed, so that the partition holds as many bytes as the
	// fetches must carry.
	cl, err := kgo.NewClient(append(cfg.baseOpts(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		v := fmt.Appendf(nil, "%0*d", size, i)
		cl.Produce(ctx, &kgo.Record{Topic: cfg.Topics.Events, Partition: 0, Value: v}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var delay atomic.Int64
	delay.Store(int64(600 * time.Millisecond))
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		d := time.Duration(delay.Load())
		c.SleepControl(func() { time.Sleep(d) })
		return nil, nil, false
	})
	const stall = 2 * time.Second
	p := NewProcessor(cfg, "slow", RebuildStall(stall))
	began := time.Now()
	st, err := p.build(ctx, p.cfg, 0)
	took := time.Since(began)
	if err != nil || st == nil {
		t.Fatalf("a rebuild reading all along, for %v with a stall limit of %v: %v", took, stall, err)
	}
	t.Logf("rebuilt %d records of %d bytes in %v, stall limit %v", n, size, took, stall)
	if took < 2*stall {
		t.Errorf("the rebuild took %v, not the several stall limits this test needs", took)
	}

	delay.Store(int64(10 * time.Second))
	began = time.Now()
	_, err = p.build(ctx, p.cfg, 0)
	if !errors.Is(err, errRebuildStalled) {
		t.Fatalf("a rebuild reading nothing: %v after %v, want it given up as stalled", err, time.Since(began))
	}
	if d := time.Since(began); d > 3*stall {
		t.Fatalf("a stalled rebuild was given up after %v, stall limit %v", d, stall)
	}
}

// A view whose dead letters the topic refuses goes on reading: the poison
// record stays in the log, the failure is counted, and the records behind
// it are applied.
func TestFaultViewGoesOnWhenTheDeadLetterTopicRefuses(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	dlqID := topicID(t, cfg, cfg.Topics.DLQ)
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !producesTo(r, "", cfg.Topics.DLQ, dlqID) {
			return nil, nil, false
		}
		resp, err := produceError(kerr.TopicAuthorizationFailed)(r)
		return resp, err, true
	})
	produce(t, cfg, cfg.Topics.Events, []byte("Dune"), []byte{0xff, 0xfe}, []byte("Solaris"))
	g := newGroup(t)
	lr := shelf.NewReplica(shelf.NewLastRead())
	f := NewFollower(cfg, "lastread", lr)
	g.run(t, "follower", f.Run)
	waitFor(t, "the failed dead letter counted", func() bool { return f.DeadLettersFailed() == 1 })
	<-f.CaughtUp()
	var got []shelf.ReadEntry
	lr.Read(func(v *shelf.LastRead) { got = v.Latest(5) })
	if len(got) != 2 {
		t.Fatalf("view = %+v, want both titles", got)
	}
}

// A rebuild whose listing of the event log fails (a partition's leader
// that died and is not fenced yet) lists it again and goes on, where it
// failed the batch, which came back later and later.
func TestFaultRebuildListsTheLogAgainWhenTheListingFails(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var failed atomic.Int32
	c.ControlKey(int16(kmsg.ListOffsets), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if failed.Add(1) > 3 {
			return nil, nil, false
		}
		c.KeepControl()
		return listOffsetsFailing(r.(*kmsg.ListOffsetsRequest), kerr.UnknownServerError), nil, true
	})
	p := NewProcessor(cfg, "lister")
	if _, err := p.build(ctx, p.cfg, 0); err != nil {
		t.Fatalf("a rebuild whose first listings failed: %v", err)
	}
	if n := failed.Load(); n <= 3 {
		t.Fatalf("%d listings asked, want the failed ones asked again", n)
	}
}

// listOffsetsFailing answers req with err for every partition it asks for.
func listOffsetsFailing(req *kmsg.ListOffsetsRequest, err *kerr.Error) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = err.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
