package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// DeadLetters sends records a reader cannot use to the dead-letter topic,
// once each: every replica of every view meets the same poison record, and
// meets it again after each restart, so at start it reads which records the
// topic holds already and skips those, and the followers of one process
// share one DeadLetters. Replicas in separate processes that meet a new
// poison record at the same moment may each write it; the key (origin
// topic/partition/offset) marks such copies as one.
//
// It is safe for concurrent use.
type DeadLetters struct {
	cfg   Config
	cl    *kgo.Client
	topic string
	name  string
	log   *slog.Logger

	mu   sync.Mutex
	seen map[string]bool
}

// NewDeadLetters connects to the dead-letter topic of cfg and reads which
// records it holds; name says who dead-letters, in a header.
func NewDeadLetters(ctx context.Context, cfg Config, name string) (*DeadLetters, error) {
	cl, err := kgo.NewClient(append(cfg.baseOpts(),
		kgo.DefaultProduceTopic(cfg.Topics.DLQ),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	d := &DeadLetters{cfg: cfg, cl: cl, topic: cfg.Topics.DLQ, name: name, log: cfg.logger(), seen: map[string]bool{}}
	if err := d.load(ctx); err != nil {
		// Not fatal: at worst a record is dead-lettered twice.
		d.log.Warn("could not read the dead-letter topic; duplicates possible", "topic", d.topic, "err", err)
	}
	return d, nil
}

// load reads the keys the dead-letter topic holds now.
func (d *DeadLetters) load(ctx context.Context) error {
	start, end, err := offsets(ctx, d.cl, d.topic)
	if err != nil {
		return err
	}
	return readRange(ctx, d.cfg, d.topic, start, end, func(r *kgo.Record) {
		d.mu.Lock()
		d.seen[string(r.Key)] = true
		d.mu.Unlock()
	})
}

func dlqKey(r *kgo.Record) string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
}

// Send dead-letters r because of cause, without waiting: a reader never
// stalls on the dead-letter topic.
func (d *DeadLetters) Send(r *kgo.Record, cause error) {
	key := dlqKey(r)
	d.mu.Lock()
	dup := d.seen[key]
	d.seen[key] = true
	d.mu.Unlock()
	if dup {
		return
	}
	d.log.Warn("dead-lettered a record", "partition", r.Partition, "offset", r.Offset, "err", cause)
	// TryProduce: when the buffer is full (the broker is away) the record
	// is dropped and logged rather than stalling the reader; it stays in
	// the log it came from. Not ctx: a record handed over just before the
	// reader stops must still be written; Close flushes it.
	d.cl.TryProduce(context.Background(), deadLetter(r, cause, d.name, d.topic), func(_ *kgo.Record, err error) {
		if err != nil {
			d.mu.Lock()
			delete(d.seen, key) // a later reader may try again
			d.mu.Unlock()
			d.log.Error("could not write to the dead-letter topic", "topic", d.topic, "origin", key, "err", err)
		}
	})
}

// HeaderOriginalSize names the size of a value cut to MaxRecordSize.
const HeaderOriginalSize = "bookshelf-original-size"

// deadLetter builds the dead-letter record for r. A value over
// shelf.MaxRecordSize is cut to it: the whole of a record near the
// broker's limit, plus headers, may not fit a batch, and a dead letter
// that cannot be written would stop its consumer for good. The original
// stays in its topic.
func deadLetter(r *kgo.Record, cause error, by, topic string) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+6)
	hs = append(hs, r.Headers...)
	value := r.Value
	if len(value) > shelf.MaxRecordSize {
		hs = append(hs, kgo.RecordHeader{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:shelf.MaxRecordSize]
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderOriginTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderOriginPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderOriginOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderDeadLetteredBy, Value: []byte(by)},
	)
	return &kgo.Record{
		Topic:     topic,
		Key:       []byte(dlqKey(r)),
		Value:     value,
		Headers:   hs,
		Timestamp: r.Timestamp,
	}
}

// Close flushes what is pending and closes the client.
func (d *DeadLetters) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.cl.Flush(ctx)
	d.cl.Close()
}
