package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// A previous owner that died with a transaction open on a partition (here
// a producer of the group's that appended an event and then never ended
// its transaction, of a minute) holds back that partition's readers until
// the broker times it out. The instance given the partition ends that
// transaction at once instead: the partition's next command is decided in
// seconds, not after the minute; the dead owner's event never lands; and
// the dead owner, were it to come back, is fenced.
func TestRebuildEndsADeadOwnersOpenTransaction(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		book := bookOn(t, cfg, 0)
		dead := deadOwner(ctx, t, cfg, book)

		g := newGroup(t)
		defer g.stop()
		sub, _ := startBooks(t, g, cfg, "heir")
		began := time.Now()
		o := submit(t, sub, addCmd(book, "Landed"))
		took := time.Since(began)
		if o.Status != shelf.StatusAccepted {
			t.Fatalf("the add was not accepted: %+v", o)
		}
		// Without the fence the rebuild waits for the minute.
		if took > 20*time.Second {
			t.Errorf("the first command on the partition took %v: the open transaction was waited out", took)
		}
		t.Logf("decided %v after the heir started", took.Round(time.Millisecond))

		var titles []string
		for _, r := range readAll(t, cfg, cfg.Topics.Events) {
			if got, err := shelf.DecodeRecord(r.Value, r.Timestamp); err == nil && got.Title != "" {
				titles = append(titles, got.Title)
			}
		}
		if len(titles) != 1 || titles[0] != "Landed" {
			t.Errorf("the log holds %v, want only the heir's event", titles)
		}
		// The dead owner comes back: its transaction is no longer its own.
		err := dead.EndTransaction(ctx, kgo.TryCommit)
		if err == nil || !(errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
			errors.Is(err, kerr.InvalidTxnState) || errors.Is(err, kerr.TransactionAbortable)) {
			t.Errorf("the dead owner's commit after the fence: %v, want it fenced", err)
		}
	})
}

// An open transaction of a member of the group is never ended by an
// instance given the partition: a member that gave the partition up in a
// rebalance may not have ended its transaction yet, and fencing it would
// stop all of its partitions. The heir waits for it instead, and the
// member's commit goes through.
func TestRebuildLeavesAMembersOpenTransaction(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		book := bookOn(t, cfg, 0)
		id := txnID(cfg, "alive")
		// A member of the books group (on a topic of its own, so that it
		// takes none of the commands' partitions) with a transaction open
		// on the event log's partition 0.
		alive, err := kgo.NewClient(append(cfg.baseOpts(),
			kgo.TransactionalID(id), kgo.ClientID(id),
			kgo.TransactionTimeout(time.Minute),
			kgo.ConsumerGroup(cfg.Topics.BooksGroup), kgo.ConsumeTopics(cfg.Topics.Replies),
			// The group's protocol, as the processor's (sessionOpts).
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer alive.Close()
		go func() {
			for ctx.Err() == nil {
				alive.PollFetches(ctx) // stays a member
			}
		}()
		waitFor(t, "the member in the group", func() bool {
			members, err := groupMembers(ctx, kadm.NewClient(testClient(t, cfg)), cfg.Topics.BooksGroup)
			return err == nil && members[id]
		})
		openWithAnAdd(ctx, t, alive, cfg, book, "The Member's")

		g := newGroup(t)
		defer g.stop()
		sub, heir := startBooks(t, g, cfg, "heir")
		waitFor(t, "the heir owning partition 0", func() bool { return heir.Assigned() == int(cfg.Partitions) })
		// The heir waits for the member's transaction: the command does
		// not get decided while it is open.
		sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = sub.Submit(sctx, addCmd(book, "Waits"))
		scancel()
		if err == nil {
			t.Fatal("a command on the partition was decided while the member's transaction was open: it was ended")
		}
		if err := alive.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("the member's commit: %v, want it through (not fenced)", err)
		}
		// The member's add is in the log; the heir's same book is then a
		// replay or a conflict, decided either way.
		o := submit(t, sub, addCmd(book, "After"))
		if o.Status == "" {
			t.Fatalf("no outcome after the member's commit: %+v", o)
		}
	})
}

// deadOwner is a previous owner, "dead", of the group's that appended the
// add of book to the event log's partition 0 in a transaction of a minute
// and never ended it.
func deadOwner(ctx context.Context, t *testing.T, cfg Config, book string) *kgo.Client {
	t.Helper()
	dead, err := kgo.NewClient(append(cfg.baseOpts(),
		kgo.TransactionalID(txnID(cfg, "dead")),
		kgo.TransactionTimeout(time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	openWithAnAdd(ctx, t, dead, cfg, book, "Never Landed")
	return dead
}

// openWithAnAdd begins a transaction of cl and appends in it, to the event
// log's partition 0, the add of book under title, as an owner would; the
// transaction is left open.
func openWithAnAdd(ctx context.Context, t *testing.T, cl *kgo.Client, cfg Config, book, title string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	e := shelf.Event{ID: "e-" + randHex(8), Type: shelf.TypeBookAdded, Source: shelf.EventSource, BookID: book, Seq: 1,
		CommandID: "c-" + randHex(8), Time: time.Now(), Title: title, Authors: []string{"Somebody"}}
	value, err := shelf.EncodeEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.Events, Partition: 0, Key: []byte(book), Value: value,
		Headers: eventHeaders}).FirstErr(); err != nil {
		t.Fatalf("the open transaction's append: %v", err)
	}
}

// A dead owner whose open transaction had committed offsets of the
// commands partition (as the transact session does before its commit)
// holds that partition's committed offset unstable (KIP-447): the group's
// fetch of it is refused, and asked again only a second later. The heir
// ends the transaction as it is given the partition and before that
// fetch, so the fetch is never refused.
func TestAssignmentEndsADeadOwnersPendingOffsetCommit(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		book := bookOn(t, cfg, 0)
		dead := deadOwner(ctx, t, cfg, book)
		pid, epoch, err := dead.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID(cfg, "dead"), pid, epoch, cfg.Topics.BooksGroup
		if resp, err := add.RequestWith(ctx, dead); err != nil || resp.ErrorCode != 0 {
			t.Fatalf("add offsets to the transaction: %v %+v", err, resp)
		}
		commit := kmsg.NewPtrTxnOffsetCommitRequest()
		commit.TransactionalID, commit.ProducerID, commit.ProducerEpoch = txnID(cfg, "dead"), pid, epoch
		commit.Group, commit.Generation = cfg.Topics.BooksGroup, -1
		tds, err := kadm.NewClient(testClient(t, cfg)).ListTopics(ctx, cfg.Topics.Commands)
		if err != nil {
			t.Fatal(err)
		}
		ct := kmsg.NewTxnOffsetCommitRequestTopic()
		ct.Topic, ct.TopicID = cfg.Topics.Commands, tds[cfg.Topics.Commands].ID
		cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch = 0, 0, -1
		ct.Partitions = append(ct.Partitions, cp)
		commit.Topics = append(commit.Topics, ct)
		resp, err := commit.RequestWith(ctx, dead)
		if err != nil {
			t.Fatal(err)
		}
		if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
			t.Fatalf("the dead owner's offset commit: %v", err)
		}
		// Unstable now, as a heir's group would find it.
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.RequireStable = true
		fg := kmsg.NewOffsetFetchRequestGroup()
		fg.Group, fg.MemberEpoch = cfg.Topics.BooksGroup, -1
		fgt := kmsg.NewOffsetFetchRequestGroupTopic()
		fgt.Topic, fgt.TopicID, fgt.Partitions = cfg.Topics.Commands, tds[cfg.Topics.Commands].ID, []int32{0}
		fg.Topics = append(fg.Topics, fgt)
		fetch.Groups = append(fetch.Groups, fg)
		// (The embedded broker knows no group before a member joins.)
		fr, err := fetch.RequestWith(ctx, testClient(t, cfg))
		if err != nil || len(fr.Groups) != 1 {
			t.Fatalf("before the heir, the offset fetch: %v", err)
		}
		if gerr := kerr.ErrorForCode(fr.Groups[0].ErrorCode); gerr != kerr.GroupIDNotFound &&
			(gerr != nil || len(fr.Groups[0].Topics) != 1 ||
				kerr.ErrorForCode(fr.Groups[0].Topics[0].Partitions[0].ErrorCode) != kerr.UnstableOffsetCommit) {
			t.Fatalf("before the heir, the offset fetch answered %+v; want UNSTABLE_OFFSET_COMMIT", fr)
		}

		var log lockedBuffer
		hcfg := cfg
		hcfg.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		g := newGroup(t)
		defer g.stop()
		sub, _ := startBooks(t, g, hcfg, "heir")
		if o := submit(t, sub, addCmd(book, "Landed")); o.Status != shelf.StatusAccepted {
			t.Fatalf("the add was not accepted: %+v", o)
		}
		if !strings.Contains(log.String(), "transactional_id="+txnID(cfg, "dead")) {
			t.Fatalf("the heir did not end the dead owner's transaction:\n%s", log.String())
		}
		if strings.Contains(log.String(), kerr.UnstableOffsetCommit.Message) {
			t.Errorf("the heir's offset fetch met the dead owner's pending commit: the fence came after it:\n%s",
				grepLines(log.String(), kerr.UnstableOffsetCommit.Message))
		}
	})
}

// grepLines is the lines of s that hold sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
