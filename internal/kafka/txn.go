package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// pending is one command's work in the open transaction.
type pending struct {
	rec     *kgo.Record
	cmd     shelf.Command
	dec     shelf.Decision
	outcome shelf.Outcome
	events  []*kgo.Record
	// refusal is why the broker refused one of this command's records
	// for good, if it did; guarded by the txn's mu.
	refusal error
	// letter is the command's dead letter, when it is not decided (see
	// triage), why is the reason, and sent tells it is written.
	letter *kgo.Record
	why    error
	sent   bool
}

// batch decides the fetched commands and commits their effects in one
// transaction. On any failure the transaction aborts, the consumer rewinds
// to the last committed offsets, and the state of the partitions touched is
// dropped to be rebuilt from the log: nothing half-done survives.
func (p *Processor) batch(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) error {
	began := time.Now()
	p.dropStale()
	recs, err := p.ready(ctx, sess.Client(), fetches)
	if err != nil {
		return p.rewind(ctx, sess, err)
	}
	// Commands that go to the dead-letter topic are written there first,
	// outside the transaction: a dead letter the topic does not take
	// then holds back its own partition only, not the batch.
	work := p.sendDeadLetters(ctx, p.triage(recs))
	if len(work) == 0 {
		return nil // all held: nothing to decide yet
	}

	if err := sess.Begin(); err != nil {
		return &endError{fmt.Errorf("begin transaction: %w", err)}
	}
	// Once begun, the transaction is ended whatever happens to ctx: one
	// left open would hold back every reader of its partitions until the
	// broker times it out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.txnWork())
	defer cancel()
	t := &txn{p: p, sess: sess, work: work, touched: map[int32]bool{}}
	if err := t.run(ctx); err != nil {
		for part := range t.touched {
			delete(p.owned, part)
		}
		return err
	}
	t.settle()
	p.noteDecided(began, len(work))
	return nil
}

// txn is the transaction of one batch of commands, begun: it decides each
// command on its partition's state (decide), writes the events and then
// the outcomes (write), and commits them with the commands' offsets; or it
// aborts, and the caller drops the state it touched.
//
// Only the Run goroutine uses it, but franz-go calls the promises of its
// records (landed) on goroutines of its own: they write failed, and the
// refusals of pending, under mu.
type txn struct {
	p    *Processor
	sess *kgo.GroupTransactSession
	work []*pending
	// touched is the partitions whose state the transaction changed.
	touched map[int32]bool

	mu     sync.Mutex
	failed error

	// Counted once the transaction commits: an aborted batch is decided
	// again, and would count twice.
	decided, rejected, deadLettered int64
}

// run decides the work, writes it round by round, and commits, or aborts
// on the first failure.
func (t *txn) run(ctx context.Context) error {
	for _, w := range t.work {
		if err := t.decide(ctx, w); err != nil {
			return t.abort(ctx, err)
		}
	}
	for _, round := range t.rounds() {
		if err := t.write(ctx, round); err != nil {
			t.blame(round)
			if errors.Is(err, kerr.InvalidTimestamp) {
				return &clockError{t.abort(ctx, err)}
			}
			return t.abort(ctx, err)
		}
	}
	return t.commit(ctx)
}

// decide decides one command on its partition's state, applies its events
// to that state, and builds their records. A command bound for the
// dead-letter topic is only counted: its outcome, if it can have one, is
// set (see triage). A command the domain rejects gets its rejection as
// outcome. The error is only that of encoding an event.
func (t *txn) decide(ctx context.Context, w *pending) error {
	r := w.rec
	t.touched[r.Partition] = true
	if w.letter != nil {
		t.deadLettered++
		if w.cmd.ID != "" {
			t.rejected++
		}
		return nil
	}
	st := t.p.owned[r.Partition]
	// The decision's clock is the command's timestamp, which the
	// broker sets on the commands topic (LogAppendTime): the times in
	// events, and the idempotency window measured by them, do not
	// depend on the clock of the instance that decides.
	dec, traced, err := t.p.tracedDecide(ctx, st, w.cmd, r)
	if err != nil {
		t.rejected++
		w.outcome = shelf.Rejection(w.cmd.ID, err)
		return nil
	}
	t.decided++
	w.dec = dec
	for i := range dec.Events {
		e := &dec.Events[i]
		st.Apply(e)
		rec, err := t.p.eventRecord(traced, r.Partition, e)
		if err != nil {
			return err
		}
		w.events = append(w.events, rec)
	}
	return nil
}

// eventRecord is the record of an event decided on partition part of the
// commands, for the same partition of the event log; traced is nil, or the
// context of the decide span (trace.go) the record's trace continues.
func (p *Processor) eventRecord(traced context.Context, part int32, e *shelf.Event) (*kgo.Record, error) {
	value, err := shelf.EncodeEvent(e)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return &kgo.Record{
		Topic: p.cfg.Topics.Events, Partition: part,
		Key: []byte(e.BookID), Value: value,
		// The record's timestamp is this instance's clock: a broker
		// that refuses it (message.timestamp.*.max.ms) refuses this
		// instance, not the command.
		Timestamp: p.now(),
		Headers:   eventHeaders,
		Context:   traced,
	}, nil
}

// eventHeaders are the headers of every event record: the content type
// of a CloudEvent in structured mode. Shared by the records, which only
// read them.
var eventHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json")}}

// rounds is the work in the rounds it is written in (see refusals.rounds):
// together, but the commands of a suspect partition one at a time.
func (t *txn) rounds() [][]*pending {
	parts := make([]int32, len(t.work))
	for i, w := range t.work {
		parts[i] = w.rec.Partition
	}
	var out [][]*pending
	for _, idx := range t.p.refusals.rounds(parts) {
		round := make([]*pending, len(idx))
		for j, i := range idx {
			round[j] = t.work[i]
		}
		out = append(out, round)
	}
	return out
}

// write appends the events of round, then, as they carry the events'
// positions, their outcomes.
func (t *txn) write(ctx context.Context, round []*pending) error {
	for _, w := range round {
		for _, rec := range w.events {
			t.sess.Produce(ctx, rec, t.landed(w))
		}
	}
	if err := t.flush(ctx, "events"); err != nil {
		return err
	}
	for _, w := range round {
		if w.cmd.ID == "" {
			continue // no one to answer
		}
		rec, err := t.outcomeRecord(w)
		if err != nil {
			return err
		}
		t.sess.Produce(ctx, rec, t.landed(w))
	}
	return t.flush(ctx, "outcomes")
}

// outcomeRecord is the record of w's outcome, for the replies partition of
// its command's partition; an outcome not yet set is the command's
// acceptance, its events placed.
func (t *txn) outcomeRecord(w *pending) (*kgo.Record, error) {
	if w.outcome.Status == "" {
		w.outcome = t.accepted(w)
	}
	w.outcome.RequestHash = w.cmd.RequestHash
	value, err := shelf.EncodeOutcome(&w.outcome)
	if err != nil {
		return nil, fmt.Errorf("encode outcome: %w", err)
	}
	return &kgo.Record{
		Topic: t.p.cfg.Topics.Replies, Partition: w.rec.Partition,
		Key: []byte(w.cmd.ID), Value: value,
	}, nil
}

// landed is the promise of a record of w. Every record of the transaction
// must land: franz-go fails a record the broker refuses for good without
// failing the transaction, so a commit would otherwise go through without
// it.
func (t *txn) landed(w *pending) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		if err == nil {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		t.failed = errors.Join(t.failed, fmt.Errorf("append to %s/%d: %w", r.Topic, r.Partition, err))
		if w.refusal == nil && refusedForGood(err) {
			w.refusal = err
		}
	}
}

// flush waits for the records produced so far, and returns their
// failures.
func (t *txn) flush(ctx context.Context, what string) error {
	if err := t.sess.Client().Flush(ctx); err != nil {
		return fmt.Errorf("flush %s: %w", what, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// blame passes the refusals round met to the processor's refusals.
func (t *txn) blame(round []*pending) {
	notes := make([]written, len(round))
	t.mu.Lock() // a flush cut short may leave answers coming
	for i, w := range round {
		notes[i] = written{part: w.rec.Partition, offset: w.rec.Offset, refusal: w.refusal}
	}
	t.mu.Unlock()
	t.p.refusals.blame(notes)
}

// abortTimeout is the least time an abort or a commit is given: longer
// than a dead broker's partitions and coordinators take to move.
const abortTimeout = 10 * time.Second

// endTimeout is the time of an abort or a commit of its own: the
// transaction timeout, abortTimeout at least.
func (t *txn) endTimeout() time.Duration { return max(t.p.txnTimeout, abortTimeout) }

// abort ends the transaction without its effects, and returns cause.
func (t *txn) abort(ctx context.Context, cause error) error {
	t.p.Aborted.Add(1)
	// The abort has a time of its own: the work's may be what ran out (a
	// broker died under a flush), and an abort that fails ends the
	// session, which costs a rejoin of the group and a new producer id.
	// It waits out a broker's death (its coordinators move in a few
	// seconds) rather than give up before.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.endTimeout())
	defer cancel()
	if _, err := t.sess.End(ctx, kgo.TryAbort); err != nil {
		return &endError{errors.Join(cause, fmt.Errorf("abort: %w", err))}
	}
	return cause
}

// commit ends the transaction with its effects and the commands' offsets,
// those of partitions with held commands lowered (see keepHeld).
//
// Like an abort, the commit has a time of its own: the work's may run out
// while a broker's death holds up the flush, and a commit cut short ends
// the session (a rejoin, a new producer id, every partition rebuilt),
// where the commit itself takes a few hundred milliseconds once the
// coordinators moved. More time commits nothing the broker would not:
// past the transaction timeout, it has aborted the transaction itself and
// refuses the commit.
func (t *txn) commit(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.endTimeout())
	defer cancel()
	committed, err := t.sess.End(kgo.PreTxnCommitFnContext(ctx, t.p.keepHeld), kgo.TryCommit)
	if err != nil {
		t.p.Aborted.Add(1)
		return &endError{fmt.Errorf("commit transaction: %w", err)}
	}
	if !committed {
		t.p.Aborted.Add(1)
		return errors.New("transaction aborted (the group rebalanced or the broker refused); the commands will be decided again")
	}
	return nil
}

// settle counts the committed work, and forgets what was kept about its
// commands until they committed.
func (t *txn) settle() {
	t.p.Decided.Add(t.decided)
	t.p.Rejected.Add(t.rejected)
	t.p.DeadLettered.Add(t.deadLettered)
	for _, w := range t.work {
		t.p.refusals.committed(w.rec.Partition, w.rec.Offset)
		t.p.lettered.remove(w.rec.Partition, w.rec.Offset)
	}
}

// accepted builds the outcome of a command decided into events (or
// replayed), after its events were produced and placed.
func (t *txn) accepted(w *pending) shelf.Outcome {
	o := shelf.Outcome{CommandID: w.cmd.ID, Status: shelf.StatusAccepted}
	b := w.dec.Book
	o.Book = &b
	st := t.p.owned[w.rec.Partition]
	var at []shelf.LogPos
	for i, rec := range w.events {
		e := &w.dec.Events[i]
		e.At = shelf.LogPos{Partition: rec.Partition, Offset: rec.Offset}
		st.Place(e)
		at = append(at, e.At)
		if e.Type == shelf.TypeBookRead {
			readAt := e.ReadAt
			o.ReadAt = &readAt
		}
	}
	if w.dec.Replay {
		o.Status = shelf.StatusReplayed
		// Ask the shelf, not the decision: the first try may have been
		// decided in this very batch and placed only now.
		if pos, ok := st.KeyedAt(w.cmd.BookID, w.cmd.ID); ok {
			w.dec.At = pos
		}
		at = append(at, w.dec.At)
		if !w.dec.ReadAt.IsZero() {
			readAt := w.dec.ReadAt
			o.ReadAt = &readAt
		}
	}
	if len(at) > 0 {
		o.Position = shelf.PositionOf(at...).String()
	}
	return o
}

// rewind puts the session back at the last committed offsets, so the
// polled records are fetched again, and returns cause.
func (p *Processor) rewind(ctx context.Context, sess *kgo.GroupTransactSession, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.txnWork())
	defer cancel()
	if err := sess.Begin(); err != nil {
		return &endError{errors.Join(cause, fmt.Errorf("begin transaction: %w", err))}
	}
	if _, err := sess.End(ctx, kgo.TryAbort); err != nil {
		return &endError{errors.Join(cause, fmt.Errorf("abort: %w", err))}
	}
	return cause
}
