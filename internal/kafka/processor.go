package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Processor is the aggregate: the instances share one consumer group on the
// commands topic; each owns some partitions and holds the state of the books
// in them, rebuilt from the same partitions of the event log. For a batch
// of commands it decides each, and in one Kafka transaction appends the
// events, the outcomes, and the commands' offsets. Killed at any point, it
// loses and duplicates nothing: the transaction either happened whole or
// not at all, and the partitions move to another instance that rebuilds
// and carries on.
type Processor struct {
	cfg Config
	// instance makes the transactional id unique per instance; two
	// instances with one id would fence each other.
	instance string
	log      *slog.Logger
	// The settings of the ProcessorOpts.
	now           func() time.Time
	txnTimeout    time.Duration
	maxHeld       int
	progressEvery time.Duration
	quarantine    time.Duration
	rebuildStall  time.Duration

	// owned is the state per partition. Only the Run goroutine touches it.
	owned map[int32]*shelf.Shelf
	// building holds the partitions being rebuilt in the background, with
	// their commands polled meanwhile. Only the Run goroutine touches it.
	building map[int32]*rebuild
	// seeds are the brokers the last session's client knew, when it was
	// asked (see knownBrokers): a new session starts from them.
	seeds []string
	// rebuilding counts them, for anyone to read.
	rebuilding atomic.Int32
	// stale holds partitions revoked or lost since the last batch; the
	// group's callbacks add to it, Run drops their state before the next
	// batch.
	staleMu sync.Mutex
	stale   map[int32]bool

	// refused holds, per partition and command offset, why the broker
	// refused for good a record the command wrote: decided again, the
	// command is dead-lettered and answered with that reason instead.
	// suspect holds partitions whose last batch had such a refusal not
	// yet blamed on one command (records of several commands share a
	// produce batch, and a refusal met once may not come again): their
	// commands are written one at a time until a batch of theirs commits.
	// Only the Run goroutine touches either.
	refused map[int32]map[int64]error
	suspect map[int32]bool
	// lettered holds, per partition, the command offsets whose dead
	// letters are written, so that a command decided again after an
	// abort is not dead-lettered twice. Only the Run goroutine touches it.
	lettered map[int32]map[int64]bool

	// Set at the start of each session, used by the Run goroutine: the
	// commands topic's partition count (for Home), the dead-letter
	// producer, and the dead-letter topic's max.message.bytes.
	parts    int32
	dlq      *kgo.Client
	dlqLimit int
	// dlqTrouble and dlqHeld say which partitions wait for the
	// dead-letter topic (see noteHolds).
	dlqTrouble atomic.Pointer[string]
	dlqHeld    atomic.Int64

	// Counts, for metrics.
	Decided      atomic.Int64
	Rejected     atomic.Int64
	DeadLettered atomic.Int64
	Aborted      atomic.Int64

	// ownedParts is the partitions the group gave this instance, by the
	// callbacks; guarded by staleMu.
	ownedParts map[int32]bool
	healthy    atomic.Bool

	decisionLatency Observer // see DecisionLatency
}

// A ProcessorOpt changes a setting of a Processor from its default.
type ProcessorOpt func(*Processor)

// TxnTimeout is how long the broker lets the instance's transaction stay
// open: the longest a killed instance can hold back its partitions
// (default 10 s).
func TxnTimeout(d time.Duration) ProcessorOpt { return func(p *Processor) { p.txnTimeout = d } }

// MaxHeld is how many commands of a partition being rebuilt are held
// before fetching it pauses until the rebuild is done (default 10 000).
func MaxHeld(n int) ProcessorOpt { return func(p *Processor) { p.maxHeld = n } }

// RebuildProgress is how often a rebuild logs how far it is (default 2 s).
func RebuildProgress(every time.Duration) ProcessorOpt {
	return func(p *Processor) { p.progressEvery = every }
}

// RebuildStall is how long a rebuild may read nothing before it is given
// up (default 2 minutes).
func RebuildStall(d time.Duration) ProcessorOpt { return func(p *Processor) { p.rebuildStall = d } }

// Quarantine is how long an instance whose record timestamps the broker
// refuses stays out of the group (default a minute).
func Quarantine(d time.Duration) ProcessorOpt { return func(p *Processor) { p.quarantine = d } }

// Clock is the instance's clock, which stamps the records it writes
// (default time.Now).
func Clock(now func() time.Time) ProcessorOpt { return func(p *Processor) { p.now = now } }

// NewProcessor returns the command processor of one books instance.
func NewProcessor(cfg Config, instance string, opts ...ProcessorOpt) *Processor {
	p := &Processor{
		cfg: cfg, instance: instance,
		log:           cfg.logger().With("topic", cfg.Topics.Commands),
		now:           time.Now,
		txnTimeout:    DefaultTxnTimeout,
		maxHeld:       defaultMaxHeld,
		progressEvery: 2 * time.Second,
		owned:         map[int32]*shelf.Shelf{},
		building:      map[int32]*rebuild{},
		stale:         map[int32]bool{},
		ownedParts:    map[int32]bool{},
		refused:       map[int32]map[int64]error{},
		suspect:       map[int32]bool{},
		lettered:      map[int32]map[int64]bool{},
		quarantine:    defaultQuarantine,
		rebuildStall:  defaultRebuildStall,
	}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// Assigned is how many command partitions this instance owns now.
func (p *Processor) Assigned() int {
	p.staleMu.Lock()
	defer p.staleMu.Unlock()
	return len(p.ownedParts)
}

// Rebuilding is how many owned partitions are being rebuilt from the log:
// their commands wait until it is done.
func (p *Processor) Rebuilding() int { return int(p.rebuilding.Load()) }

// Healthy is false while the broker cannot be reached or a transaction
// fails.
func (p *Processor) Healthy() bool { return p.healthy.Load() }

// Run processes commands until ctx ends.
func (p *Processor) Run(ctx context.Context) error {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		began := time.Now()
		err := p.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, kerr.InvalidSessionTimeout) {
			// Trying again cannot help: the setting is wrong.
			return fmt.Errorf("the broker refuses the session timeout %v (group.min.session.timeout.ms and group.max.session.timeout.ms bound it): %w",
				p.cfg.sessionTimeout(), err)
		}
		if time.Since(began) > time.Minute {
			attempt = 0 // a session that ran a while: back off from the start
		}
		var clock *clockError
		if errors.As(err, &clock) {
			// Another instance, whose clock the broker takes, can
			// decide these commands: leave them to it for a while.
			p.setHealthy(false, fmt.Errorf("the broker refuses the timestamps of this instance's records, so its clock is off; it gives up its partitions for %v: %w", p.quarantine, err))
			clear(p.owned)
			sleep(ctx, p.quarantine)
			continue
		}
		// A session ends on an error the transactional producer cannot
		// carry on from (fenced, or failed past its retries): start a
		// fresh one, owning nothing until the group says otherwise.
		p.setHealthy(false, err)
		clear(p.owned)
		sleep(ctx, backoff(attempt))
	}
	return nil
}

// session runs one transactional session until ctx ends or it fails.
func (p *Processor) session(ctx context.Context) error {
	forget := func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
		p.staleMu.Lock()
		for _, parts := range lost {
			for _, part := range parts {
				p.stale[part] = true
				delete(p.ownedParts, part)
			}
		}
		p.staleMu.Unlock()
		p.log.Info("partitions revoked or lost", "partitions", lost)
	}
	cfg := p.cfg
	if len(p.seeds) > 0 {
		cfg.Brokers = p.seeds // where the brokers were last seen
	}
	sess, err := kgo.NewGroupTransactSession(append(append(cfg.baseOpts(), cfg.metered("processor")...),
		kgo.ConsumerGroup(p.cfg.Topics.BooksGroup),
		kgo.ConsumeTopics(p.cfg.Topics.Commands),
		kgo.TransactionalID(p.cfg.Topics.BooksGroup+"."+p.instance),
		kgo.TransactionTimeout(p.txnTimeout),
		// Group offsets are fetched stable (KIP-447, always on in franz-go):
		// a new owner waits out the previous owner's open transaction.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(p.cfg.sessionTimeout()),
		kgo.HeartbeatInterval(min(time.Second, p.cfg.sessionTimeout()/3)),
		kgo.RebalanceTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) {
			// Whatever this instance holds of a partition it is given now
			// is from an earlier turn of owning it: drop it, to be rebuilt.
			// The revoke callback cannot be relied on for this: the
			// transact session passes on only the first revoke between
			// two ends of a transaction.
			p.staleMu.Lock()
			for _, parts := range added {
				for _, part := range parts {
					p.stale[part] = true
					p.ownedParts[part] = true
				}
			}
			p.staleMu.Unlock()
			p.log.Info("partitions assigned", "partitions", added)
			// Joining the group took a working broker: whatever failed
			// before is behind us (a poll that finds nothing never says so).
			p.setHealthy(true, nil)
		}),
		kgo.OnPartitionsRevoked(forget),
		kgo.OnPartitionsLost(forget),
	)...)
	if err != nil {
		return fmt.Errorf("kafka transact session: %w", err)
	}
	defer func() {
		p.stopBuilding(nil)
		sess.Close()
		p.staleMu.Lock()
		clear(p.ownedParts)
		p.staleMu.Unlock()
	}()
	if err := p.startSession(ctx, sess.Client()); err != nil {
		return err
	}
	defer p.dlq.Close()
	p.setHealthy(true, nil)

	for failures := 0; ; {
		fetches := p.poll(ctx, sess)
		if ctx.Err() != nil {
			return nil
		}
		// A fetch may carry records of some partitions and an error for
		// another: the records are good and the session has moved past
		// them, so they are decided all the same.
		ferr := fetchError(fetches)
		if errors.Is(ferr, kerr.InvalidSessionTimeout) {
			return ferr
		}
		if ferr != nil {
			p.setHealthy(false, ferr)
		}
		if fetches.NumRecords() == 0 && !p.rebuilt() {
			if ferr != nil {
				failures++
				sleep(ctx, backoff(failures))
			} else {
				p.setHealthy(true, nil)
			}
			continue
		}
		if err := p.batch(ctx, sess, fetches); err != nil {
			// The transaction aborted, or the session is over: either
			// way the consumer goes back to the committed offsets, and
			// the commands held for rebuilds will be polled again.
			p.dropHeld()
			if ctx.Err() != nil {
				return nil
			}
			var fatal *endError
			var clock *clockError
			if errors.As(err, &fatal) || errors.As(err, &clock) {
				return err
			}
			p.setHealthy(false, err)
			failures++
			sleep(ctx, backoff(failures))
			continue
		}
		failures = 0
		if ferr == nil {
			p.setHealthy(true, nil)
		}
	}
}

// startSession learns what a session needs of the topics, and makes its
// dead-letter producer.
func (p *Processor) startSession(ctx context.Context, cl *kgo.Client) error {
	parts, err := partitionsOf(ctx, cl, p.cfg.Topics.Commands)
	if err != nil {
		return err
	}
	p.parts = parts
	p.dlqLimit = deadLetterLimit(ctx, p.cfg, cl)
	p.dlq, err = kgo.NewClient(append(p.cfg.baseOpts(),
		kgo.DefaultProduceTopic(p.cfg.Topics.DLQ),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(dlqWriteTimeout),
		// A batch of dead letters must fit the topic as each does.
		kgo.ProducerBatchMaxBytes(int32(max(p.dlqLimit, minBatchBytes))),
	)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	return nil
}

// defaultQuarantine is how long an instance whose clock the broker refuses
// stays out of the group before it tries again.
const defaultQuarantine = time.Minute

// endError is a failure to end a transaction: franz-go says none of those
// is retryable on the same session.
type endError struct{ err error }

func (e *endError) Error() string { return e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

func (p *Processor) setHealthy(ok bool, err error) {
	if p.healthy.Swap(ok) != ok {
		if ok {
			p.log.Info("processing commands again")
		} else {
			p.log.Warn("cannot process commands", "err", err)
		}
	}
}

// pending is one command's work in the open transaction.
type pending struct {
	rec     *kgo.Record
	cmd     shelf.Command
	dec     shelf.Decision
	outcome shelf.Outcome
	events  []*kgo.Record
	// refusal is why the broker refused one of this command's records
	// for good, if it did; guarded by the batch's failedMu.
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
func (p *Processor) batch(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) (err error) {
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
	touched := map[int32]bool{}
	defer func() {
		if err != nil {
			for part := range touched {
				delete(p.owned, part)
			}
		}
	}()
	// Every record of the transaction must land: franz-go fails a record
	// the broker refuses for good without failing the transaction, so a
	// commit would otherwise go through without it.
	var failedMu sync.Mutex
	var failed error
	landed := func(w *pending) func(*kgo.Record, error) {
		return func(r *kgo.Record, err error) {
			if err == nil {
				return
			}
			failedMu.Lock()
			defer failedMu.Unlock()
			failed = errors.Join(failed, fmt.Errorf("append to %s/%d: %w", r.Topic, r.Partition, err))
			if w.refusal == nil && refusedForGood(err) {
				w.refusal = err
			}
		}
	}
	flush := func(what string) error {
		if err := sess.Client().Flush(ctx); err != nil {
			return fmt.Errorf("flush %s: %w", what, err)
		}
		failedMu.Lock()
		defer failedMu.Unlock()
		return failed
	}
	abort := func(cause error) error {
		p.Aborted.Add(1)
		if _, err := sess.End(ctx, kgo.TryAbort); err != nil {
			return &endError{errors.Join(cause, fmt.Errorf("abort: %w", err))}
		}
		return cause
	}

	// Counted once the transaction commits: an aborted batch is decided
	// again, and would count twice.
	var decided, rejected, deadLettered int64
	for _, w := range work {
		r := w.rec
		touched[r.Partition] = true
		if w.letter != nil {
			deadLettered++
			if w.cmd.ID != "" {
				rejected++
			}
			continue // its outcome, if it can have one, is set
		}
		st := p.owned[r.Partition]
		// The decision's clock is the command's timestamp, which the
		// broker sets on the commands topic (LogAppendTime): the times in
		// events, and the idempotency window measured by them, do not
		// depend on the clock of the instance that decides.
		dec, err := st.Decide(w.cmd, decisionTime(r, p.now))
		if err != nil {
			rejected++
			w.outcome = shelf.Rejection(w.cmd.ID, err)
			continue
		}
		decided++
		w.dec = dec
		for i := range dec.Events {
			e := &dec.Events[i]
			st.Apply(e)
			value, err := shelf.EncodeEvent(e)
			if err != nil {
				return abort(fmt.Errorf("encode event: %w", err))
			}
			w.events = append(w.events, &kgo.Record{
				Topic: p.cfg.Topics.Events, Partition: r.Partition,
				Key: []byte(e.BookID), Value: value,
				// The record's timestamp is this instance's clock: a
				// broker that refuses it (message.timestamp.*.max.ms)
				// refuses this instance, not the command.
				Timestamp: p.now(),
				Headers:   eventHeaders,
			})
		}
	}

	// The commands' records go out together, but those of a suspect
	// partition one command at a time, so that a refusal names its
	// command.
	var together []*pending
	var rounds [][]*pending
	for _, w := range work {
		if p.suspect[w.rec.Partition] {
			rounds = append(rounds, []*pending{w})
		} else {
			together = append(together, w)
		}
	}
	if len(together) > 0 {
		rounds = append([][]*pending{together}, rounds...)
	}
	for _, round := range rounds {
		if err := p.write(ctx, sess, round, landed, flush); err != nil {
			failedMu.Lock() // a flush cut short may leave answers coming
			p.blame(round)
			failedMu.Unlock()
			if errors.Is(err, kerr.InvalidTimestamp) {
				return &clockError{abort(err)}
			}
			return abort(err)
		}
	}
	committed, err := sess.End(kgo.PreTxnCommitFnContext(ctx, p.keepHeld), kgo.TryCommit)
	if err != nil {
		p.Aborted.Add(1)
		return &endError{fmt.Errorf("commit transaction: %w", err)}
	}
	if !committed {
		p.Aborted.Add(1)
		return errors.New("transaction aborted (the group rebalanced or the broker refused); the commands will be decided again")
	}
	p.Decided.Add(decided)
	p.Rejected.Add(rejected)
	p.DeadLettered.Add(deadLettered)
	p.noteDecided(began, len(work))
	for _, w := range work {
		delete(p.refused[w.rec.Partition], w.rec.Offset)
		delete(p.lettered[w.rec.Partition], w.rec.Offset)
		delete(p.suspect, w.rec.Partition)
	}
	return nil
}

// eventHeaders are the headers of every event record: the content type
// of a CloudEvent in structured mode. Shared by the records, which only
// read them.
var eventHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json")}}

// decisionTime is the time a command is decided at: its record's
// timestamp, else (a record without one) the instance's clock.
func decisionTime(r *kgo.Record, now func() time.Time) time.Time {
	if r.Timestamp.After(time.UnixMilli(0)) {
		return r.Timestamp
	}
	return now()
}

// clockError is a broker's refusal of the timestamps this instance
// writes: its clock is off. Another instance can decide the same
// commands, so this one gives up its partitions for a while (see Run).
type clockError struct{ err error }

func (e *clockError) Error() string { return e.err.Error() }
func (e *clockError) Unwrap() error { return e.err }

// write appends the events of work, then, as they carry the events'
// positions, their outcomes.
func (p *Processor) write(ctx context.Context, sess *kgo.GroupTransactSession, work []*pending,
	landed func(*pending) func(*kgo.Record, error), flush func(string) error) error {
	for _, w := range work {
		for _, rec := range w.events {
			sess.Produce(ctx, rec, landed(w))
		}
	}
	if err := flush("events"); err != nil {
		return err
	}
	for _, w := range work {
		if w.cmd.ID == "" {
			continue
		}
		if w.outcome.Status == "" {
			w.outcome = p.accepted(w)
		}
		w.outcome.RequestHash = w.cmd.RequestHash
		value, err := shelf.EncodeOutcome(&w.outcome)
		if err != nil {
			return fmt.Errorf("encode outcome: %w", err)
		}
		sess.Produce(ctx, &kgo.Record{
			Topic: p.cfg.Topics.Replies, Partition: w.rec.Partition,
			Key: []byte(w.cmd.ID), Value: value,
		}, landed(w))
	}
	return flush("outcomes")
}

// blame notes, after a failed write of work, which commands' records the
// broker refused for good. A first refusal makes the partition suspect;
// a refusal met again by a command of a suspect partition, written alone,
// is that command's for good.
func (p *Processor) blame(work []*pending) {
	alone := len(work) == 1 && p.suspect[work[0].rec.Partition]
	for _, w := range work {
		if w.refusal == nil {
			continue
		}
		part := w.rec.Partition
		if !alone {
			p.suspect[part] = true
			continue
		}
		if p.refused[part] == nil {
			p.refused[part] = map[int64]error{}
		}
		p.refused[part][w.rec.Offset] = w.refusal
	}
}

// refusedForGood tells a refusal of one record, which sending it again
// cannot change, from trouble of the broker or the transaction.
// INVALID_TIMESTAMP is not one: the timestamp is the deciding instance's
// clock, which another instance would not share (see clockError).
func refusedForGood(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord)
}

// DefaultTxnTimeout is how long the broker lets a transaction stay open
// before it aborts it: the longest a killed instance can hold back its
// partitions.
const DefaultTxnTimeout = 10 * time.Second

// txnWork bounds the work of one transaction once begun: four fifths of
// the transaction timeout, so the processor gives up before the broker
// aborts it.
func (p *Processor) txnWork() time.Duration { return p.txnTimeout * 4 / 5 }

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

// accepted builds the outcome of a command decided into events (or
// replayed), after its events were produced and placed.
func (p *Processor) accepted(w *pending) shelf.Outcome {
	o := shelf.Outcome{CommandID: w.cmd.ID, Status: shelf.StatusAccepted}
	b := w.dec.Book
	o.Book = &b
	var at []shelf.LogPos
	for i, rec := range w.events {
		e := &w.dec.Events[i]
		e.At = shelf.LogPos{Partition: rec.Partition, Offset: rec.Offset}
		p.owned[rec.Partition].Place(e)
		at = append(at, e.At)
		if e.Type == shelf.TypeBookRead {
			t := e.ReadAt
			o.ReadAt = &t
		}
	}
	if w.dec.Replay {
		o.Status = shelf.StatusReplayed
		// Ask the shelf, not the decision: the first try may have been
		// decided in this very batch and placed only now.
		if pos, ok := p.owned[w.rec.Partition].KeyedAt(w.cmd.BookID, w.cmd.ID); ok {
			w.dec.At = pos
		}
		at = append(at, w.dec.At)
		if !w.dec.ReadAt.IsZero() {
			t := w.dec.ReadAt
			o.ReadAt = &t
		}
	}
	if len(at) > 0 {
		o.Position = shelf.PositionOf(at...).String()
	}
	return o
}

// dropStale forgets the state of partitions this instance no longer owns
// for sure; if they come back, they are rebuilt.
func (p *Processor) dropStale() {
	p.staleMu.Lock()
	stale := maps.Clone(p.stale)
	clear(p.stale)
	p.staleMu.Unlock()
	for part := range stale {
		delete(p.owned, part)
		delete(p.refused, part)
		delete(p.suspect, part)
		delete(p.lettered, part)
	}
	p.stopBuilding(stale) // outside the lock, which the group's callbacks take
}

func fetchError(fetches kgo.Fetches) error {
	var err error
	fetches.EachError(func(t string, part int32, e error) {
		if !errors.Is(e, context.Canceled) {
			err = fmt.Errorf("fetch %s/%d: %w", t, part, e)
		}
	})
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
