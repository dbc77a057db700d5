package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Replica is where a follower puts what it reads: a view's read model and
// how far it has read (shelf.Replica does both).
type Replica interface {
	Apply(e *shelf.Event)
	Advance(partition int32, next int64)
}

// Counts are a follower's running totals, for metrics.
type Counts struct {
	Applied      atomic.Int64 // events applied
	Skipped      atomic.Int64 // well-formed events of unknown types
	DeadLettered atomic.Int64 // records sent to the dead-letter topic
	FetchErrors  atomic.Int64
}

// Follower reads every partition of the event log from its start into a
// replica: a view's consumer. It uses no consumer group: every replica of
// every view reads the whole log.
type Follower struct {
	cfg     Config
	name    string
	replica Replica
	log     *slog.Logger

	// Counts are updated as records are read.
	Counts Counts
	// DeadLetters, when set before Run, is shared with other followers of
	// the process; otherwise Run makes its own.
	DeadLetters *DeadLetters
	// ApplyLag, when set before Run, observes how long after its record
	// was written each event is applied, in seconds, once caught up.
	ApplyLag Observer

	dlq atomic.Pointer[DeadLetters] // the one Run uses, once it runs

	mu       sync.Mutex
	target   map[int32]int64 // the ends seen at start: ready once passed
	start    map[int32]int64
	next     map[int32]int64
	ready    bool
	caughtUp chan struct{}
	lastErr  error // the latest fetch error, nil once fetching works
	// ends are the partitions' last stable offsets, as the latest fetches
	// told; lastAt is the timestamp of the last record applied.
	ends   map[int32]int64
	lastAt time.Time
}

// NewFollower returns a follower feeding replica; name says who reads, in
// logs and dead-letter headers.
func NewFollower(cfg Config, name string, replica Replica) *Follower {
	return &Follower{
		cfg: cfg, name: name, replica: replica,
		log:      cfg.logger().With("topic", cfg.Topics.Events),
		caughtUp: make(chan struct{}),
		ends:     map[int32]int64{},
	}
}

// Progress says how far the follower is: records read of those that were
// in the log when it started, whether it has caught up, and the fetch error
// if the broker cannot be read now.
type Progress struct {
	Done, Total int64
	Ready       bool
	Err         error
}

// Progress reports how far the follower has read.
func (f *Follower) Progress() Progress {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := Progress{Ready: f.ready, Err: f.lastErr}
	for part, end := range f.target {
		p.Total += end - f.start[part]
		p.Done += min(f.next[part], end) - f.start[part]
	}
	return p
}

// DeadLettersFailed is how many dead letters the dead-letter topic did not
// take: the records stay in the log, and are dead-lettered again at the
// next start.
func (f *Follower) DeadLettersFailed() int64 {
	if d := f.dlq.Load(); d != nil {
		return d.Failed.Load()
	}
	return 0
}

// CaughtUp is closed once the follower has read what the log held when it
// started.
func (f *Follower) CaughtUp() <-chan struct{} { return f.caughtUp }

// Run reads until ctx ends. It returns an error only if it cannot start.
func (f *Follower) Run(ctx context.Context) error {
	start, end, err := f.bounds(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the log
		}
		return err
	}
	f.mu.Lock()
	f.start, f.target, f.next = start, end, map[int32]int64{}
	for p, o := range start {
		f.next[p] = o
	}
	f.mu.Unlock()
	f.checkCaughtUp()

	// A client made now, with the partitions known: one made before the
	// topic existed may take minutes to see it.
	from := map[int32]kgo.Offset{}
	for p, o := range start {
		from[p] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(append(append(f.cfg.readerOpts(), f.cfg.metered("follower")...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.cfg.Topics.Events: from}))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	dlq := f.DeadLetters
	if dlq == nil {
		if dlq, err = NewDeadLetters(ctx, f.cfg, f.name); err != nil {
			return err
		}
		defer dlq.Close()
	}
	f.dlq.Store(dlq)

	f.log.Info("reading the event log", "partitions", len(start), "records", f.Progress().Total)
	stopProgress := f.reportProgress(ctx)
	defer stopProgress()

	// Decoding a record costs about what applying it does: one goroutine
	// decodes a fetch while this one applies the one before, in order.
	parts := int32(len(start))
	batches := make(chan fetched, 2)
	decodeCtx, stopDecoding := context.WithCancel(ctx)
	defer stopDecoding()
	go f.decode(decodeCtx, cl, parts, batches)
	for batch := range batches {
		for i := range batch.recs {
			f.handle(&batch.recs[i], dlq)
		}
		f.mu.Lock()
		for p, end := range batch.ends {
			f.ends[p] = max(f.ends[p], end)
		}
		if n := len(batch.recs); n > 0 {
			f.lastAt = batch.recs[n-1].r.Timestamp
		}
		f.mu.Unlock()
		f.checkCaughtUp()
	}
	return nil
}

// fetched is one fetch, decoded: its records, and where each partition's
// stable end was then.
type fetched struct {
	recs []decoded
	ends map[int32]int64
}

// Lag is how far behind the log the follower is: the records it has yet to
// read, and, while there are any, how old the last one it applied is.
func (f *Follower) Lag() (records int64, behind time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, end := range f.ends {
		records += max(end-f.next[p], 0)
	}
	if records > 0 && !f.lastAt.IsZero() {
		behind = time.Since(f.lastAt)
	}
	return records, behind
}

// decoded is a record read, and its event or why it has none.
type decoded struct {
	r   *kgo.Record
	e   shelf.Event
	err error
}

// decode polls the log and sends each fetch's records, decoded, on out;
// it closes out when ctx ends.
func (f *Follower) decode(ctx context.Context, cl *kgo.Client, parts int32, out chan<- fetched) {
	defer close(out)
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		f.noteErrors(fetches)
		batch := fetched{recs: make([]decoded, 0, fetches.NumRecords()), ends: map[int32]int64{}}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err == nil && p.LastStableOffset >= 0 {
				batch.ends[p.Partition] = p.LastStableOffset
			}
			for _, r := range p.Records {
				d := decoded{r: r}
				if !r.Attrs.IsControl() {
					d.err = decodeAdmitted(&d.e, r, parts)
				}
				batch.recs = append(batch.recs, d)
			}
		})
		select {
		case out <- batch:
		case <-ctx.Done():
			return
		}
	}
}

// bounds waits for the event log to exist and returns where each partition
// starts and ends now. It retries while the broker is away.
func (f *Follower) bounds(ctx context.Context) (start, end map[int32]int64, err error) {
	cl, err := kgo.NewClient(f.cfg.baseOpts()...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for attempt := 0; ; attempt++ {
		start, end, err = offsets(ctx, cl, f.cfg.Topics.Events)
		if err == nil && len(end) > 0 {
			return start, end, nil
		}
		if err == nil {
			err = errors.New("topic has no partitions")
		}
		if attempt == 0 {
			f.log.Warn("event log not readable yet, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(backoff(attempt)):
		}
	}
}

// handle folds one record of a log of parts partitions into the replica,
// or skips or dead-letters it.
func (f *Follower) handle(d *decoded, dlq *DeadLetters) {
	r, e, err := d.r, &d.e, d.err
	if r.Attrs.IsControl() {
		// A transaction marker: nothing to apply, but the reader is past it.
		f.advance(r.Partition, r.Offset+1)
		return
	}
	switch {
	case err == nil:
		e.At = shelf.LogPos{Partition: r.Partition, Offset: r.Offset}
		f.tracedApply(r, e)
		f.Counts.Applied.Add(1)
		f.noteApplied(r)
	case errors.Is(err, shelf.ErrUnknownType):
		f.Counts.Skipped.Add(1)
		f.log.Debug("skipped an event of an unknown type", "partition", r.Partition, "offset", r.Offset, "err", err)
	default:
		f.Counts.DeadLettered.Add(1)
		dlq.Send(r, err)
	}
	f.advance(r.Partition, r.Offset+1)
}

func (f *Follower) advance(partition int32, next int64) {
	f.replica.Advance(partition, next)
	f.mu.Lock()
	if next > f.next[partition] {
		f.next[partition] = next
	}
	f.mu.Unlock()
}

func (f *Follower) checkCaughtUp() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ready {
		return
	}
	for p, end := range f.target {
		if f.next[p] < end {
			return
		}
	}
	f.ready = true
	close(f.caughtUp)
}

func (f *Follower) noteErrors(fetches kgo.Fetches) {
	var err error
	fetches.EachError(func(t string, p int32, e error) {
		if !errors.Is(e, context.Canceled) {
			err = fmt.Errorf("fetch %s/%d: %w", t, p, e)
		}
	})
	f.mu.Lock()
	changed := (err == nil) != (f.lastErr == nil)
	f.lastErr = err
	f.mu.Unlock()
	if err != nil {
		f.Counts.FetchErrors.Add(1)
	}
	if changed && err != nil {
		f.log.Warn("cannot read the event log; serving what is read so far", "err", err)
	} else if changed {
		f.log.Info("reading the event log again")
	}
}

// reportProgress logs, every two seconds until caught up, the records done,
// the total and the rate: a view rebuilding from a long log shows that it
// moves.
func (f *Follower) reportProgress(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		began := time.Now()
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-f.caughtUp:
				p := f.Progress()
				secs := time.Since(began).Seconds()
				f.log.Info("caught up", "records", p.Total, "seconds", fmt.Sprintf("%.2f", secs),
					"per_second", int64(float64(p.Total)/max(secs, 0.001)))
				return
			case <-tick.C:
				p := f.Progress()
				secs := time.Since(began).Seconds()
				f.log.Info("catching up", "done", p.Done, "total", p.Total,
					"per_second", int64(float64(p.Done)/max(secs, 0.001)))
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// decodeAdmitted decodes an event record of a log of parts partitions and
// applies the placement rule (shelf.Admit) to it, as every reader of the
// log must, so that the aggregate and the views agree on what it says.
func decodeAdmitted(e *shelf.Event, r *kgo.Record, parts int32) error {
	if err := shelf.DecodeRecordInto(e, r.Value, r.Timestamp); err != nil {
		return err
	}
	home := e.BookID == "" || Home(e.BookID, parts) == r.Partition
	return shelf.Admit(e, r.Attrs.IsTransactional(), home)
}

// backoff is the pause before retry number attempt: 100 ms doubling to 5 s.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 6)
	return min(d, 5*time.Second)
}
