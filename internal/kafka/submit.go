package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// ErrUnavailable wraps failures to hand a command to Kafka or to hear its
// outcome in time: the caller may retry (with the same idempotency key).
// It is the domain's shelf.ErrUnavailable, which the HTTP side maps to 503.
var ErrUnavailable = shelf.ErrUnavailable

// Submitter appends commands to the commands topic and waits for their
// outcomes on the replies topic. Any books instance may submit; the
// instance that owns the command's partition decides it and writes the
// outcome, which every instance reads.
type Submitter struct {
	cfg Config
	log *slog.Logger
	cl  *kgo.Client

	mu      sync.Mutex
	waiting map[string][]waiter // by command id; a retry may wait beside the first try

	ready atomic.Bool
	// readyCh is closed once the replies are being read from their end.
	readyCh chan struct{}

	// Probe, when set before use, makes Submit refuse at once while the
	// broker does not answer.
	Probe *Probe
}

// NewSubmitter connects a submitter; Run must run for it to hear outcomes.
func NewSubmitter(cfg Config) (*Submitter, error) {
	cl, err := kgo.NewClient(append(append(cfg.baseOpts(), cfg.metered("submitter")...),
		kgo.DefaultProduceTopic(cfg.Topics.Commands),
		kgo.ProducerLinger(0),
		// Writes: acknowledged by every in-sync replica, idempotent
		// (both franz-go defaults, stated here because they matter).
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(8*time.Second),
		// The placement rule, stated rather than left to the client's
		// default: the processor refuses a command off its book's home.
		kgo.RecordPartitioner(homePartitioner()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Submitter{
		cfg: cfg, cl: cl, log: cfg.logger().With("topic", cfg.Topics.Commands),
		waiting: map[string][]waiter{}, readyCh: make(chan struct{}),
	}, nil
}

// Ready tells whether the submitter hears outcomes.
func (s *Submitter) Ready() bool { return s.ready.Load() }

// Close releases the client. Call it after Run has returned.
func (s *Submitter) Close() { s.cl.Close() }

// Run reads outcomes until ctx ends. It starts at the end of the replies
// topic as it is now: an instance waits only for commands it submits after
// it started.
func (s *Submitter) Run(ctx context.Context) error {
	var end map[int32]int64
	for attempt := 0; ; attempt++ {
		var err error
		if _, end, err = offsets(ctx, s.cl, s.cfg.Topics.Replies); err == nil && len(end) > 0 {
			break
		}
		if attempt == 0 {
			s.log.Warn("replies topic not readable yet, retrying", "err", err)
		}
		sleep(ctx, backoff(attempt))
		if ctx.Err() != nil {
			return nil
		}
	}
	from := map[int32]kgo.Offset{}
	for p, o := range end {
		from[p] = kgo.NewOffset().At(o)
	}
	// A reader of its own, made with the partitions known (see Follower.Run).
	rd, err := kgo.NewClient(append(append(s.cfg.readerOpts(), s.cfg.metered("replies")...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.Topics.Replies: from}))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer rd.Close()
	s.ready.Store(true)
	close(s.readyCh)
	for {
		fetches := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Attrs.IsControl() {
				return
			}
			o, err := shelf.DecodeOutcome(r.Value)
			if err != nil {
				s.log.Warn("unreadable outcome", "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			s.deliver(o)
		})
	}
}

// Submit appends c and waits for its outcome, as long as ctx allows. An
// error wraps ErrUnavailable: Kafka did not take the command, or its
// outcome did not come in time.
func (s *Submitter) Submit(ctx context.Context, c shelf.Command) (shelf.Outcome, error) {
	select {
	case <-s.readyCh:
	case <-ctx.Done():
		return shelf.Outcome{}, fmt.Errorf("%w: not reading outcomes yet: %w", ErrUnavailable, ctx.Err())
	}
	if s.Probe != nil {
		if err := s.Probe.Err(); err != nil {
			return shelf.Outcome{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	value, err := shelf.EncodeCommand(&c)
	if err != nil {
		return shelf.Outcome{}, fmt.Errorf("encode command: %w", err)
	}
	ch := make(chan shelf.Outcome, 1)
	s.mu.Lock()
	// The same command submitted twice at once (an idempotent retry racing
	// the first try) waits for the same outcome; appending it again is
	// harmless, as the aggregate recognises a keyed command it decided.
	s.waiting[c.ID] = append(s.waiting[c.ID], waiter{ch, c.RequestHash})
	s.mu.Unlock()
	// Not ProduceSync: an idempotent producer cannot fail a record whose
	// request was sent when the broker went away, so the append would
	// outlast ctx until the broker came back. The caller is told at
	// ctx's end instead; the command may still be appended later. A retry
	// with the same id (the HTTP API derives it from the Idempotency-Key,
	// which the gateway always sets) is then answered as a replay; one
	// without a key is a new command.
	appended := make(chan error, 1)
	s.cl.Produce(ctx, &kgo.Record{Key: []byte(c.BookID), Value: value}, func(_ *kgo.Record, err error) { appended <- err })
	select {
	case err = <-appended:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.forget(c.ID, ch)
		return shelf.Outcome{}, fmt.Errorf("%w: append command: %w", ErrUnavailable, err)
	}
	select {
	case o := <-ch:
		return o, nil
	case <-ctx.Done():
		s.forget(c.ID, ch)
		return shelf.Outcome{}, fmt.Errorf("%w: no outcome for command %s yet: %w", ErrUnavailable, c.ID, ctx.Err())
	}
}

// waiter is one Submit waiting for the outcome of its command.
type waiter struct {
	ch          chan shelf.Outcome // buffered, one outcome: never blocks
	requestHash string
}

// deliver hands o to the waiters of its command that sent the same
// request; a waiter with another body under the same key waits on for the
// outcome of its own (a conflict).
func (s *Submitter) deliver(o shelf.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := slices.DeleteFunc(s.waiting[o.CommandID], func(w waiter) bool {
		if w.requestHash != o.RequestHash {
			return false
		}
		w.ch <- o
		return true
	})
	if len(ws) == 0 {
		delete(s.waiting, o.CommandID)
	} else {
		s.waiting[o.CommandID] = ws
	}
}

// forget stops waiting on ch, leaving any other waiter of id in place.
func (s *Submitter) forget(id string, ch chan shelf.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := slices.DeleteFunc(s.waiting[id], func(w waiter) bool { return w.ch == ch })
	if len(ws) == 0 {
		delete(s.waiting, id)
	} else {
		s.waiting[id] = ws
	}
}
