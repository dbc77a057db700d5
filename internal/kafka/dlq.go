package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	limit int // the dead-letter topic's max.message.bytes

	mu   sync.Mutex
	seen map[string]bool

	// Failed counts the dead letters the topic did not take (missing,
	// refusing, away): their records stay in the log they came from, and
	// are dead-lettered again at the next start.
	Failed atomic.Int64
}

// NewDeadLetters connects to the dead-letter topic of cfg and reads which
// records it holds; name says who dead-letters, in a header.
func NewDeadLetters(ctx context.Context, cfg Config, name string) (*DeadLetters, error) {
	look, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	limit := deadLetterLimit(ctx, cfg, look)
	look.Close()
	cl, err := kgo.NewClient(append(append(cfg.baseOpts(), cfg.metered("dead_letters")...),
		kgo.DefaultProduceTopic(cfg.Topics.DLQ),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second),
		// A batch of dead letters must fit the topic as each does.
		kgo.ProducerBatchMaxBytes(int32(max(limit, minBatchBytes))),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	d := &DeadLetters{cfg: cfg, cl: cl, topic: cfg.Topics.DLQ, name: name, log: cfg.logger(), seen: map[string]bool{}, limit: limit}
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
	d.cl.TryProduce(context.Background(), deadLetter(r, cause, d.name, d.topic, d.limit), func(_ *kgo.Record, err error) {
		if err != nil {
			d.Failed.Add(1)
			d.mu.Lock()
			delete(d.seen, key) // a later reader may try again
			d.mu.Unlock()
			d.log.Error("could not write to the dead-letter topic", "topic", d.topic, "origin", key, "err", err)
		}
	})
}

// Headers of a dead letter that had to be cut to fit the dead-letter
// topic: the size of the original value, and how many of the original's
// headers were left out.
const (
	HeaderOriginalSize = "bookshelf-original-size"
	HeaderCutHeaders   = "bookshelf-cut-headers"
)

// DefaultMaxMessageBytes is Kafka's default max.message.bytes, used when
// the dead-letter topic's own cannot be read.
const DefaultMaxMessageBytes = 1048588

// maxErrorText bounds the error header of a dead letter.
const maxErrorText = 1024

// deadLetter builds the dead-letter record for r, cut to fit a topic whose
// max.message.bytes is limit, headers included: a dead letter that cannot
// be written would hold back its consumer, and a record that fitted its
// own topic may not fit the dead-letter topic once the origin and error
// headers are added. The value is cut to shelf.MaxRecordSize at most, or
// less if the topic takes less (the original stays in its topic), and the
// original's headers are kept, in order, as far as they fit; each cut is
// marked in a header. The value is kept before the headers: it is what a
// person needs to see what went wrong.
func deadLetter(r *kgo.Record, cause error, by, topic string, limit int) *kgo.Record {
	msg := cause.Error()
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "…"
	}
	ours := []kgo.RecordHeader{
		{Key: HeaderOriginTopic, Value: []byte(r.Topic)},
		{Key: HeaderOriginPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		{Key: HeaderOriginOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		{Key: HeaderOriginTimestamp, Value: []byte(r.Timestamp.UTC().Format(time.RFC3339Nano))},
		{Key: HeaderError, Value: []byte(msg)},
		{Key: HeaderDeadLetteredBy, Value: []byte(by)},
	}
	if r.Key != nil {
		// Kept so that a redrive puts the record back as it was.
		ours = append(ours, kgo.RecordHeader{Key: HeaderOriginKey, Value: r.Key})
	}
	key := []byte(dlqKey(r))
	// The marks a cut may add, counted from the start so that adding
	// them cannot push the record over.
	marks := 2 * (headerOverhead + len(HeaderOriginalSize) + 20)
	room := limit - batchOverhead - recordOverhead - len(key) - marks
	for _, h := range ours {
		room -= headerSize(h)
	}
	value := r.Value[:min(len(r.Value), shelf.MaxRecordSize, max(room, 0))]
	room -= len(value)
	orig := r.Headers
	kept := 0
	for kept < len(orig) && headerSize(orig[kept]) <= room {
		room -= headerSize(orig[kept])
		kept++
	}
	hs := make([]kgo.RecordHeader, 0, kept+len(ours)+2)
	hs = append(hs, orig[:kept]...)
	if kept < len(orig) {
		hs = append(hs, kgo.RecordHeader{Key: HeaderCutHeaders, Value: []byte(strconv.Itoa(len(orig) - kept))})
	}
	if len(value) < len(r.Value) {
		hs = append(hs, kgo.RecordHeader{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(r.Value)))})
	}
	hs = append(hs, ours...)
	// Stamped when dead-lettered: a command held back for days keeps its
	// own time in a header, and a topic that refuses old timestamps
	// (message.timestamp.before.max.ms) still takes it.
	return &kgo.Record{
		Topic:   topic,
		Key:     key,
		Value:   value,
		Headers: hs,
	}
}

// Sizes in a record batch, rounded up: Kafka counts a batch's bytes
// against max.message.bytes. A record spends at most 5 bytes on each
// varint: length, attributes, timestamp and offset deltas, key and value
// lengths, header count; a header its two lengths.
const (
	batchOverhead  = 61
	recordOverhead = 5*7 + 1
	headerOverhead = 10
)

func headerSize(h kgo.RecordHeader) int { return headerOverhead + len(h.Key) + len(h.Value) }

// maxMessageBytes reads the max.message.bytes of topic.
func maxMessageBytes(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	got, err := topicConfigs(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return 0, err
	}
	v, ok := got[topic]["max.message.bytes"]
	if !ok {
		return DefaultMaxMessageBytes, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: max.message.bytes %q", topic, v)
	}
	return n, nil
}

// deadLetterLimit is what one dead letter, and one batch of them, may
// weigh: the dead-letter topic's max.message.bytes (Kafka's default when
// it cannot be read, logged), and no more than franz-go puts in a batch.
func deadLetterLimit(ctx context.Context, cfg Config, cl *kgo.Client) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := maxMessageBytes(ctx, cl, cfg.Topics.DLQ)
	if err != nil {
		cfg.logger().Warn("cannot read the dead-letter topic's max.message.bytes; assuming Kafka's default",
			"topic", cfg.Topics.DLQ, "default", DefaultMaxMessageBytes, "err", err)
		n = DefaultMaxMessageBytes
	}
	return min(n, maxBatchBytes)
}

// maxBatchBytes is franz-go's largest record batch by default: a record
// above it is refused before it is sent. minBatchBytes is the least it
// takes as a bound.
const (
	maxBatchBytes = 1_000_012
	minBatchBytes = 512
)

// Close flushes what is pending and closes the client.
func (d *DeadLetters) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.cl.Flush(ctx)
	d.cl.Close()
}
