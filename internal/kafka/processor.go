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
	// fence ends a previous owner's open transaction when a partition is
	// given (see fenceOpenTransactions); off, it is waited out.
	fence bool

	// owned is the state per partition. Only the Run goroutine touches it.
	owned map[int32]*shelf.Shelf
	// building holds the partitions being rebuilt in the background, or
	// waiting for their dead letters, with their commands polled
	// meanwhile. Only the Run goroutine touches it.
	building holds
	// seeds are the brokers the last session's client knew, when it was
	// asked (see knownBrokers): a new session starts from them.
	seeds []string
	// classic is why the group runs franz-go's classic protocol, not
	// KIP-848's (see setGroupSession); nil while it runs 848. Only the
	// Run goroutine touches it.
	classic error
	// rebuilding counts them, for anyone to read.
	rebuilding atomic.Int32
	// stale holds partitions revoked or lost since the last batch; the
	// group's callbacks add to it, Run drops their state before the next
	// batch.
	staleMu sync.Mutex
	stale   map[int32]bool

	// refusals holds the records the broker refused for good, and the
	// partitions suspected of them, while their commands are decided
	// again. Only the Run goroutine touches it.
	refusals refusals
	// lettered holds, per partition, the command offsets whose dead
	// letters are written, so that a command decided again after an
	// abort is not dead-lettered twice. Only the Run goroutine touches it.
	lettered offsetSet

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

// A ProcessorOpt changes a setting of a Processor from its default. A
// duration or count of zero or less keeps the default, as a zero field of
// Config does (a ticker of no interval would panic, a transaction of no
// time could never commit).
type ProcessorOpt func(*Processor)

// TxnTimeout is how long the broker lets the instance's transaction stay
// open: the longest a killed instance can hold back its partitions
// (default 10 s).
func TxnTimeout(d time.Duration) ProcessorOpt {
	return func(p *Processor) { setPositive(&p.txnTimeout, d) }
}

// WaitOutOpenTransactions makes the instance wait, when it is given a
// partition, for a previous owner's open transaction to time out, instead
// of ending it at once (see fenceOpenTransactions): what happens where the
// brokers cannot tell the open transactions.
func WaitOutOpenTransactions() ProcessorOpt { return func(p *Processor) { p.fence = false } }

// MaxHeld is how many commands of a partition being rebuilt are held
// before fetching it pauses until the rebuild is done (default 10 000).
func MaxHeld(n int) ProcessorOpt { return func(p *Processor) { setPositive(&p.maxHeld, n) } }

// RebuildProgress is how often a rebuild logs how far it is (default 2 s).
func RebuildProgress(every time.Duration) ProcessorOpt {
	return func(p *Processor) { setPositive(&p.progressEvery, every) }
}

// RebuildStall is how long a rebuild may read nothing before it is given
// up (default 2 minutes).
func RebuildStall(d time.Duration) ProcessorOpt {
	return func(p *Processor) { setPositive(&p.rebuildStall, d) }
}

// Quarantine is how long an instance whose record timestamps the broker
// refuses stays out of the group (default a minute).
func Quarantine(d time.Duration) ProcessorOpt {
	return func(p *Processor) { setPositive(&p.quarantine, d) }
}

// Clock is the instance's clock, which stamps the records it writes
// (default time.Now; nil keeps it).
func Clock(now func() time.Time) ProcessorOpt {
	return func(p *Processor) {
		if now != nil {
			p.now = now
		}
	}
}

// setPositive sets *setting to v, unless v is zero or less.
func setPositive[T ~int | ~int64](setting *T, v T) {
	if v > 0 {
		*setting = v
	}
}

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
		building:      holds{},
		stale:         map[int32]bool{},
		ownedParts:    map[int32]bool{},
		lettered:      offsetSet{},
		quarantine:    defaultQuarantine,
		rebuildStall:  defaultRebuildStall,
		fence:         true,
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
		err := p.runSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var refused *refusedSessionError
		if errors.Is(err, kerr.InvalidSessionTimeout) {
			// Trying again cannot help: the setting is wrong. Only a
			// classic group's join is refused so; where the group runs
			// classic because the consumer group's bounds refused it too,
			// both are named.
			err = fmt.Errorf("the broker refuses the session timeout %v (group.min.session.timeout.ms and group.max.session.timeout.ms bound it): %w",
				p.cfg.sessionTimeout(), err)
			if errors.As(p.classic, &refused) {
				err = fmt.Errorf("%w; and as a consumer group's: %w", err, p.classic)
			}
			return err
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

// dropStale forgets the state of partitions this instance no longer owns
// for sure; if they come back, they are rebuilt.
func (p *Processor) dropStale() {
	p.staleMu.Lock()
	stale := maps.Clone(p.stale)
	clear(p.stale)
	p.staleMu.Unlock()
	for part := range stale {
		delete(p.owned, part)
		p.refusals.forget(part)
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
