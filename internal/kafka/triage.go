package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// triage reads the commands of a batch and sorts out those that go to the
// dead-letter topic instead of being decided: unreadable ones, ones this
// version cannot decide (answered, when they name themselves, so that no
// client waits for ever), ones off their book's home partition (the
// aggregate holds the book elsewhere; deciding it here would write its
// event where no one looks), and ones whose records the broker refused
// for good (see refusals).
func (p *Processor) triage(recs []*kgo.Record) []*pending {
	work := make([]*pending, 0, len(recs))
	by := "books/" + p.instance
	for _, r := range recs {
		w := &pending{rec: r}
		work = append(work, w)
		cmd, err := shelf.DecodeCommand(r.Value)
		switch {
		case errors.Is(err, shelf.ErrUndecidable):
			w.cmd.ID = cmd.ID // named, so it can be answered
			w.outcome = shelf.Rejection(cmd.ID, err)
		case err != nil:
			// No one to answer: the command id is unknown.
		case Home(cmd.BookID, p.parts) != r.Partition:
			w.cmd = cmd
			err = fmt.Errorf("%w: the command for book %q is on partition %d of %s, and the book's home is partition %d (murmur2 of its id, of %d partitions): the aggregate holds the book there. Send commands through the books API, which places them",
				shelf.ErrUndecidable, cmd.BookID, r.Partition, r.Topic, Home(cmd.BookID, p.parts), p.parts)
			w.outcome = shelf.Rejection(cmd.ID, err)
		case p.refusals.of(r.Partition, r.Offset) != nil:
			w.cmd = cmd
			err = fmt.Errorf("%w: %w", shelf.ErrRefused, p.refusals.of(r.Partition, r.Offset))
			w.outcome = shelf.Rejection(cmd.ID, err)
		default:
			w.cmd = cmd
			continue
		}
		w.letter, w.why = deadLetter(r, err, by, p.cfg.Topics.DLQ, p.dlqLimit), err
		w.sent = p.lettered.has(r.Partition, r.Offset)
	}
	return work
}

// sendDeadLetters writes the dead letters of work and returns the work to
// go on with. A partition whose dead letter cannot be written (the topic
// is missing, refuses this instance, or is away) is held, its commands of
// this batch and those polled after, as a rebuild holds one, and its dead
// letters are tried again in the background until they land: nothing is
// lost and nothing skipped, and the other partitions go on. While a partition is held so, DeadLetterTrouble
// says why (the books service shows it in /readyz, and stays ready: its
// other partitions are decided).
func (p *Processor) sendDeadLetters(ctx context.Context, work []*pending) []*pending {
	var letters []*pending
	for _, w := range work {
		if w.letter != nil && !w.sent {
			letters = append(letters, w)
		}
	}
	if len(letters) == 0 {
		return work
	}
	failed := map[int32]error{}
	for i, err := range p.produceLetters(ctx, letters) {
		w := letters[i]
		part := w.rec.Partition
		if err == nil {
			p.log.Warn("dead-lettered a command", "partition", part, "offset", w.rec.Offset,
				"err", w.why)
			p.lettered.add(part, w.rec.Offset)
			w.sent = true
			continue
		}
		if _, ok := failed[part]; !ok {
			failed[part] = err
		}
	}
	if len(failed) == 0 {
		return work
	}
	// All of the partition's commands of this batch are held, those before
	// the one whose dead letter failed too: the partition's state is then
	// the one it had before the batch, which the hold keeps, and none of
	// its commands is decided on a state the hold would not know of.
	held := map[int32][]*pending{}
	work = slices.DeleteFunc(work, func(w *pending) bool {
		part := w.rec.Partition
		if _, ok := failed[part]; ok {
			held[part] = append(held[part], w)
			return true
		}
		return false
	})
	for part, ws := range held {
		p.holdForDeadLetters(ctx, part, ws, failed[part])
	}
	return work
}

// produceLetters writes the dead letters of ws, waiting at most
// dlqWriteTimeout, and returns each one's error.
func (p *Processor) produceLetters(ctx context.Context, ws []*pending) []error {
	ctx, cancel := context.WithTimeout(ctx, dlqWriteTimeout)
	defer cancel()
	errs := make([]error, len(ws))
	done := make(chan struct{}, len(ws))
	for i, w := range ws {
		// A record of its own each try: a produced record keeps the
		// context it was produced with, which is over by the next.
		l := w.letter
		rec := &kgo.Record{Topic: l.Topic, Key: l.Key, Value: l.Value, Headers: l.Headers, Timestamp: l.Timestamp}
		p.dlq.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				errs[i] = fmt.Errorf("write to the dead-letter topic %s: %w", p.cfg.Topics.DLQ, err)
			}
			done <- struct{}{}
		})
	}
	for range ws {
		<-done // each promise is called once ctx ends, if not before
	}
	return errs
}

// dlqWriteTimeout bounds one try at writing dead letters.
const dlqWriteTimeout = 10 * time.Second

// holdForDeadLetters holds the commands ws of part, none of them decided,
// and tries their dead letters again with backoff until they land or the
// partition moves.
func (p *Processor) holdForDeadLetters(ctx context.Context, part int32, ws []*pending, cause error) {
	ctx, cancel := context.WithCancel(ctx)
	b := &rebuild{cancel: cancel, done: make(chan struct{}), st: p.owned[part], deadLetters: cause}
	for _, w := range ws {
		b.held = append(b.held, w.rec)
	}
	var letters []*pending
	for _, w := range ws {
		if w.letter != nil && !w.sent {
			letters = append(letters, w)
		}
	}
	// The state stays as it was: none of the held commands was decided.
	delete(p.owned, part)
	p.building[part] = b
	p.log.Error("cannot write to the dead-letter topic; holding the partition's commands until it can be written",
		"partition", part, "held", len(b.held), "err", cause)
	go func() {
		defer close(b.done)
		for attempt := 3; ; attempt++ {
			sleep(ctx, backoff(attempt))
			if ctx.Err() != nil {
				b.err = ctx.Err()
				return
			}
			var left []*pending
			for i, err := range p.produceLetters(ctx, letters) {
				if err != nil {
					p.log.Debug("the dead-letter topic still cannot be written", "partition", part, "err", err)
					left = append(left, letters[i])
				} else {
					b.lettered = append(b.lettered, letters[i].rec.Offset)
				}
			}
			if letters = left; len(letters) == 0 {
				return
			}
		}
	}()
	p.noteHolds()
}

// DeadLetterTrouble says why some partitions' commands wait for the
// dead-letter topic, or is nil while none do.
func (p *Processor) DeadLetterTrouble() error {
	if msg := p.dlqTrouble.Load(); msg != nil {
		return errors.New(*msg)
	}
	return nil
}

// WaitingOnDeadLetters is how many partitions' commands wait for the
// dead-letter topic.
func (p *Processor) WaitingOnDeadLetters() int { return int(p.dlqHeld.Load()) }

// noteHolds publishes, for other goroutines, which partitions wait for the
// dead-letter topic. Only the Run goroutine calls it.
func (p *Processor) noteHolds() {
	parts, cause := p.building.waitingOnDeadLetters()
	p.dlqHeld.Store(int64(len(parts)))
	if len(parts) == 0 {
		p.dlqTrouble.Store(nil)
		return
	}
	msg := fmt.Sprintf("the dead-letter topic cannot be written, so the commands of partitions %v wait: %v", parts, cause)
	p.dlqTrouble.Store(&msg)
}
