package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// rebuild is one partition's state being read back from the event log in
// the background, and the partition's commands polled meanwhile, held in
// order until it is done. A rebuild can take as long as the transaction
// timeout (it waits out a dead owner's open transaction), and the other
// partitions' commands go on being decided in the meantime.
type rebuild struct {
	cancel context.CancelFunc
	done   chan struct{}
	st     *shelf.Shelf // once done, if err is nil
	err    error
	held   []*kgo.Record
	// resume lets fetching the partition go on, after too many of its
	// commands were held; nil while not paused.
	resume func()
	// deadLetters, when set, says this is no rebuild: the partition's
	// commands wait for their dead letters to be written, for this
	// reason (see holdForDeadLetters); lettered are the command offsets
	// whose dead letters were written meanwhile.
	deadLetters error
	lettered    []int64
}

// defaultMaxHeld bounds the commands held for one partition's rebuild:
// with a full poll's worth more at most, a few MB.
const defaultMaxHeld = 10_000

// release lets go of b: its read, and its pause if any.
func (b *rebuild) release() {
	b.cancel()
	if b.resume != nil {
		b.resume()
		b.resume = nil
	}
}

// finished tells whether b is done, without waiting.
func (b *rebuild) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// ready returns the commands that can be decided now, in order per
// partition: those held for a rebuild that has finished, then the polled
// ones of partitions this instance has the state of. Commands of a
// partition it has not got are held, and its rebuild begins. A failed
// rebuild is an error: the caller rewinds, and the commands come again.
func (p *Processor) ready(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	for part, b := range p.building {
		if !b.finished() {
			continue
		}
		delete(p.building, part)
		b.release()
		p.noteHolds()
		if b.err != nil {
			return nil, b.err
		}
		p.owned[part] = b.st
		for _, off := range b.lettered {
			p.lettered.add(part, off)
		}
		recs = append(recs, b.held...)
	}
	fetches.EachRecord(func(r *kgo.Record) {
		b, ok := p.building[r.Partition]
		if !ok {
			if _, ok := p.owned[r.Partition]; ok {
				recs = append(recs, r)
				return
			}
			p.seeds = knownBrokers(ctx, cl, p.cfg.Brokers)
			b = p.startBuilding(ctx, r.Partition, p.seeds)
		}
		if b.hold(r, p.maxHeld) {
			// Records already fetched may still come; they are held
			// too. Nothing is lost: fetching goes on from the last
			// record handed out.
			tp := map[string][]int32{r.Topic: {r.Partition}}
			cl.PauseFetchPartitions(tp)
			b.resume = func() { cl.ResumeFetchPartitions(tp) }
			p.log.Info("paused a partition being rebuilt", "partition", r.Partition, "held", len(b.held))
		}
	})
	return recs, nil
}

// startBuilding begins rebuilding a partition in the background, its
// client seeded with brokers.
func (p *Processor) startBuilding(ctx context.Context, part int32, brokers []string) *rebuild {
	ctx, cancel := context.WithCancel(ctx)
	b := &rebuild{cancel: cancel, done: make(chan struct{})}
	p.building[part] = b
	p.rebuilding.Add(1)
	cfg := p.cfg
	cfg.Brokers = brokers
	go func() {
		defer close(b.done)
		defer p.rebuilding.Add(-1)
		b.st, b.err = p.build(ctx, cfg, part)
	}()
	return b
}

// knownBrokers is where the brokers are now, as the session's client knows
// them, or fallback if it cannot tell: the brokers a service was seeded
// with at start may be gone since (it found one broker in the registry, and
// that one stopped), and a rebuild's client of its own starts from these.
func knownBrokers(ctx context.Context, cl *kgo.Client, fallback []string) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil || len(m.Brokers) == 0 {
		return fallback
	}
	out := make([]string, 0, len(m.Brokers))
	for _, b := range m.Brokers {
		out = append(out, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	return out
}

// stopBuilding stops the rebuilds of parts (of all, for nil) and waits for
// them: their partitions moved, or the session ends.
func (p *Processor) stopBuilding(parts map[int32]bool) {
	for part, b := range p.building {
		if parts == nil || parts[part] {
			b.cancel()
			<-b.done
			b.release()
			delete(p.building, part)
		}
	}
	p.noteHolds()
}

// keepHeld keeps, in the commit of a transaction, the commands held
// uncommitted (see holds.lowerCommit).
func (p *Processor) keepHeld(req *kmsg.TxnOffsetCommitRequest) error {
	p.building.lowerCommit(req, p.cfg.Topics.Commands)
	return nil
}

// poll polls the session for commands. While partitions are being
// rebuilt it returns at least every pollWhileBuilding, so that a finished
// rebuild's held commands are decided even when no new ones come.
func (p *Processor) poll(ctx context.Context, sess *kgo.GroupTransactSession) kgo.Fetches {
	if len(p.building) == 0 {
		return sess.PollRecords(ctx, 1000)
	}
	// Cancelled, not timed out: a poll cut short is no fetch error.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := time.AfterFunc(pollWhileBuilding, cancel)
	defer t.Stop()
	return sess.PollRecords(pctx, 1000)
}

// pollWhileBuilding bounds how long a finished rebuild's commands wait.
const pollWhileBuilding = 50 * time.Millisecond

// defaultRebuildStall is how long a rebuild may read nothing before it is
// given up (and, the commands being polled again, begun anew). There is
// no limit on a rebuild that makes progress: a long partition takes as
// long as it takes. It is well above the longest wait a rebuild has
// reason for, a dead owner's open transaction timing out.
const defaultRebuildStall = 2 * time.Minute

// build reads the state of a partition from the event log. The group
// fetched this partition's commands with stable offsets (KIP-447), so a
// transaction of its previous owner that committed their offsets has
// ended; one that had only appended events is waited out below.
func (p *Processor) build(ctx context.Context, cfg Config, part int32) (*shelf.Shelf, error) {
	began := time.Now()
	st := shelf.NewShelf()
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	// A previous owner's transaction still open on the partition is ended
	// first, rather than waited out (seconds, see fenceOpenTransactions).
	p.fenceOpenTransactions(ctx, cl, part)
	// Up to the high watermark, not the last stable offset: a read-
	// committed reader then waits out any transaction still open on the
	// partition, such as the previous owner's whose markers are not all
	// written yet.
	var start, end map[int32]int64
	err = retryFor(ctx, listRetryFor, func() (err error) {
		start, end, err = highWatermarks(ctx, cl, p.cfg.Topics.Events)
		return err
	})
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("rebuild partition %d: %w", part, err)
	}
	parts := int32(len(end))
	var done atomic.Int64
	ctx, stopWatch := p.watchRebuild(ctx, part, end[part]-start[part], &done)
	defer stopWatch()
	var e shelf.Event
	n := 0
	err = readRange(ctx, cfg, cfg.Topics.Events,
		map[int32]int64{part: start[part]}, map[int32]int64{part: end[part]},
		func(r *kgo.Record) {
			done.Store(r.Offset + 1 - start[part])
			if decodeAdmitted(&e, r, parts) != nil || !e.FromAggregate() {
				// The views dead-letter what is unreadable or not
				// admitted; outside reads change nothing the
				// aggregate decides on.
				return
			}
			e.At = shelf.LogPos{Partition: r.Partition, Offset: r.Offset}
			st.Apply(&e)
			n++
		})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		return nil, fmt.Errorf("rebuild partition %d: %w", part, err)
	}
	p.log.Info("rebuilt partition state", "partition", part, "events", n, "books", st.Len(),
		"ms", time.Since(began).Milliseconds())
	return st, nil
}

// listRetryFor is how long a rebuild lists the event log's offsets again
// when the listing fails. A broker that died still leads its partitions
// until the controller fences it (a second or two, or more when it was
// the controller): the listing asks every partition's leader, and failed
// at once for the dead one. The batch that started the rebuild then
// failed, and the next tries came later and later (see session.failed),
// up to two seconds after the leaders had moved.
const listRetryFor = 10 * time.Second

// errRebuildStalled ends a rebuild that has read nothing for too long.
var errRebuildStalled = errors.New("read nothing for too long")

// watchRebuild watches the rebuild of a partition by done, the offsets
// read of total, until stopped: it logs how far it is every
// progressEvery (a partition with a long log shows that it moves), and
// cancels the returned context once done has not moved for rebuildStall.
func (p *Processor) watchRebuild(ctx context.Context, part int32, total int64, done *atomic.Int64) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		began := time.Now()
		progress := time.NewTicker(p.progressEvery)
		defer progress.Stop()
		stall := time.NewTicker(max(p.rebuildStall/8, time.Millisecond))
		defer stall.Stop()
		last, since := done.Load(), time.Now()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-progress.C:
				d := done.Load()
				p.log.Info("rebuilding partition state", "partition", part, "done", d, "total", total,
					"per_second", int64(float64(d)/max(time.Since(began).Seconds(), 0.001)))
			case now := <-stall.C:
				if d := done.Load(); d != last {
					last, since = d, now
				} else if now.Sub(since) >= p.rebuildStall {
					p.log.Warn("giving up a rebuild that reads nothing", "partition", part, "done", d, "for", p.rebuildStall)
					cancel(fmt.Errorf("%w (%v)", errRebuildStalled, p.rebuildStall))
					return
				}
			}
		}
	})
	return ctx, func() { close(quit); wg.Wait(); cancel(nil) }
}
