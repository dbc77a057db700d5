package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultMaxRedrives is how many times a record may be sent back from the
// dead-letter topic: a record dead-lettered again after that many tries
// needs mending, not another try.
const DefaultMaxRedrives = 3

// DeadLetter is one record of the dead-letter topic, read back.
type DeadLetter struct {
	// Partition and Offset place it in the dead-letter topic; ID is the
	// two as "partition:offset", how a person names it.
	Partition int32
	Offset    int64
	// Time is when it was dead-lettered.
	Time time.Time
	// Where the original was, and when it was written; OriginPartition
	// and OriginOffset are -1 when the headers do not say.
	OriginTopic     string
	OriginPartition int32
	OriginOffset    int64
	OriginTime      time.Time
	// OriginKey is the original's key, nil if it had none or the dead
	// letter predates the header.
	OriginKey []byte
	// Error is why it was dead-lettered; By, who did.
	Error string
	By    string
	// Redriven is how many times the record had been redriven before it
	// was dead-lettered this time.
	Redriven int
	// RedrivenTo, when not empty, is where a redrive of this dead letter
	// went (topic/partition/offset): it has been redriven already.
	RedrivenTo string
	// Cut says what was left out to fit the dead-letter topic, "" when
	// the record is whole.
	Cut string
	// Headers are all the dead letter's headers; Value is the original's
	// value (cut when Cut says so).
	Headers []kgo.RecordHeader
	Value   []byte
}

// ID is the dead letter's name, "partition:offset" in the dead-letter
// topic.
func (d DeadLetter) ID() string { return fmt.Sprintf("%d:%d", d.Partition, d.Offset) }

// Origin is where the original was, "topic/partition/offset".
func (d DeadLetter) Origin() string {
	return fmt.Sprintf("%s/%d/%d", d.OriginTopic, d.OriginPartition, d.OriginOffset)
}

// ownHeaders are the headers the dead-letter topic adds; the rest are
// the original's.
var ownHeaders = []string{
	HeaderOriginTopic, HeaderOriginPartition, HeaderOriginOffset, HeaderOriginTimestamp, HeaderOriginKey,
	HeaderError, HeaderDeadLetteredBy, HeaderOriginalSize, HeaderCutHeaders,
}

// OriginalHeaders are the headers of the original record, as far as the
// dead letter kept them.
func (d DeadLetter) OriginalHeaders() []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range d.Headers {
		if !slices.Contains(ownHeaders, h.Key) {
			out = append(out, h)
		}
	}
	return out
}

// Redrivable says why the record cannot be redriven, nil if it can:
// maxRedrives bounds the redrives of one record (DefaultMaxRedrives when
// zero or less), and topics are the bookshelf's.
func (d DeadLetter) Redrivable(topics Topics, maxRedrives int) error {
	if maxRedrives <= 0 {
		maxRedrives = DefaultMaxRedrives
	}
	switch {
	case d.RedrivenTo != "":
		return fmt.Errorf("%s was redriven already, to %s: if it failed again, it is a new dead letter; redrive that one", d.ID(), d.RedrivenTo)
	case d.OriginTopic == "" || d.OriginPartition < 0:
		return fmt.Errorf("%s does not say where it came from (no %s or %s header)", d.ID(), HeaderOriginTopic, HeaderOriginPartition)
	case d.OriginTopic == topics.DLQ:
		return fmt.Errorf("%s came from the dead-letter topic itself", d.ID())
	case d.Cut != "":
		return fmt.Errorf("%s was cut to fit the dead-letter topic (%s): the whole record is at %s; produce it again from there", d.ID(), d.Cut, d.Origin())
	case d.Redriven >= maxRedrives:
		return fmt.Errorf("%s was redriven %d times already and failed each time (at most %d): mend the record, or what reads it, first", d.ID(), d.Redriven, maxRedrives)
	case d.OriginTopic == topics.Events && strings.Contains(d.Error, "not admitted"):
		return fmt.Errorf("%s was not admitted by the placement rule: only the aggregate adds and removes books, so it would be dead-lettered again; add the book through the API", d.ID())
	case d.OriginTopic == topics.Replies:
		return fmt.Errorf("%s is the outcome of a command: the client that waited for it has gone", d.ID())
	}
	return nil
}

// parseDeadLetter reads a dead letter's headers; ok is false for the
// topic's marker records (see Redrive), which are not dead letters.
func parseDeadLetter(r *kgo.Record) (d DeadLetter, ok bool) {
	d = DeadLetter{Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp, OriginPartition: -1, OriginOffset: -1,
		Headers: r.Headers, Value: r.Value}
	var cut []string
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderRedriveOf:
			return d, false
		case HeaderOriginTopic:
			d.OriginTopic = v
		case HeaderOriginPartition:
			if p, err := strconv.ParseInt(v, 10, 32); err == nil && p >= 0 {
				d.OriginPartition = int32(p)
			}
		case HeaderOriginOffset:
			if o, err := strconv.ParseInt(v, 10, 64); err == nil && o >= 0 {
				d.OriginOffset = o
			}
		case HeaderOriginTimestamp:
			d.OriginTime, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderOriginKey:
			d.OriginKey = h.Value
		case HeaderError:
			d.Error = v
		case HeaderDeadLetteredBy:
			d.By = v
		case HeaderRedriven:
			d.Redriven, _ = strconv.Atoi(v)
		case HeaderOriginalSize:
			cut = append(cut, "value of "+v+" bytes cut to "+strconv.Itoa(len(r.Value)))
		case HeaderCutHeaders:
			cut = append(cut, v+" headers left out")
		}
	}
	d.Cut = strings.Join(cut, ", ")
	return d, true
}

// ReadDeadLetters reads the whole dead-letter topic of cfg, in order of
// partition then offset, with what has been redriven marked.
func ReadDeadLetters(ctx context.Context, cfg Config) ([]DeadLetter, error) {
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	start, end, err := offsets(ctx, cl, cfg.Topics.DLQ)
	cl.Close()
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	redriven := map[string]string{} // dead letter id → where it went
	err = readRange(ctx, cfg, cfg.Topics.DLQ, start, end, func(r *kgo.Record) {
		if d, ok := parseDeadLetter(r); ok {
			out = append(out, d)
			return
		}
		var of, to string
		for _, h := range r.Headers {
			switch h.Key {
			case HeaderRedriveOf:
				of = string(h.Value)
			case HeaderRedrivenTo:
				to = string(h.Value)
			}
		}
		redriven[of] = to
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", cfg.Topics.DLQ, err)
	}
	slices.SortFunc(out, func(a, b DeadLetter) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	for i := range out {
		out[i].RedrivenTo = redriven[out[i].ID()]
	}
	return out, nil
}

// Redriven is the result of one redrive: the dead letter, and where its
// copy went or why it was not sent.
type Redriven struct {
	DeadLetter DeadLetter
	// To is topic/partition/offset of the copy; empty when Err is set.
	To  string
	Err error
}

// RedriveOpts shapes a redrive.
type RedriveOpts struct {
	// MaxRedrives bounds the redrives of one record; DefaultMaxRedrives
	// when zero.
	MaxRedrives int
	// Value, when not nil, replaces the value of the one record redriven:
	// a dead letter mended by hand.
	Value []byte
	// DryRun says what would be done and sends nothing.
	DryRun bool
}

// ErrNothingToRedrive: no dead letter matched.
var ErrNothingToRedrive = errors.New("no dead letter matches")

// Redrive sends dead letters back to the topic and partition they came
// from, each with its original key, value, headers and timestamp, and
// HeaderRedriven one more than before. The dead letters are the ones
// match picks out of the topic. Each one sent is recorded by a marker
// record in the dead-letter topic, so that it is not sent twice, and
// listed as redriven; one that cannot be redriven is returned with the
// reason (DeadLetter.Redrivable), and the others go on.
//
// A copy is written before its marker: if Redrive is stopped between
// the two, running it again sends that one record a second time. Views
// apply the aggregate's events once whatever their copies; a plain text
// line sent twice counts as two reads.
func Redrive(ctx context.Context, cfg Config, match func(DeadLetter) bool, o RedriveOpts) ([]Redriven, error) {
	all, err := ReadDeadLetters(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var picked []DeadLetter
	for _, d := range all {
		if match(d) {
			picked = append(picked, d)
		}
	}
	if len(picked) == 0 {
		return nil, ErrNothingToRedrive
	}
	if o.Value != nil && len(picked) != 1 {
		return nil, fmt.Errorf("a new value is for one record; %d match", len(picked))
	}
	cl, err := kgo.NewClient(append(cfg.baseOpts(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	partitions, err := partitionCounts(ctx, cl, picked)
	if err != nil {
		return nil, err
	}
	out := make([]Redriven, 0, len(picked))
	for _, d := range picked {
		res := Redriven{DeadLetter: d, Err: d.Redrivable(cfg.Topics, o.MaxRedrives)}
		if res.Err == nil && d.OriginPartition >= partitions[d.OriginTopic] {
			res.Err = fmt.Errorf("%s came from %s, which has %d partitions now", d.ID(), d.Origin(), partitions[d.OriginTopic])
		}
		if res.Err != nil || o.DryRun {
			out = append(out, res)
			continue
		}
		rec := redriveRecord(d, o.Value)
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return out, fmt.Errorf("redrive %s to %s/%d: %w", d.ID(), d.OriginTopic, d.OriginPartition, err)
		}
		res.To = fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)
		marker := &kgo.Record{
			Topic: cfg.Topics.DLQ, Partition: d.Partition,
			Key: []byte("redriven/" + d.ID()),
			Headers: []kgo.RecordHeader{
				{Key: HeaderRedriveOf, Value: []byte(d.ID())},
				{Key: HeaderRedrivenTo, Value: []byte(res.To)},
			},
		}
		if err := cl.ProduceSync(ctx, marker).FirstErr(); err != nil {
			return append(out, res), fmt.Errorf("%s went to %s, but its marker was not written (a second redrive would send it again): %w", d.ID(), res.To, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// redriveRecord is the copy of d to send back, with value instead of
// d's own when not nil.
func redriveRecord(d DeadLetter, value []byte) *kgo.Record {
	hs := slices.DeleteFunc(d.OriginalHeaders(), func(h kgo.RecordHeader) bool { return h.Key == HeaderRedriven })
	hs = append(hs, kgo.RecordHeader{Key: HeaderRedriven, Value: []byte(strconv.Itoa(d.Redriven + 1))})
	if value == nil {
		value = d.Value
	}
	ts := d.OriginTime
	if ts.IsZero() {
		ts = time.Now()
	}
	return &kgo.Record{
		Topic: d.OriginTopic, Partition: d.OriginPartition,
		Key: d.OriginKey, Value: value, Headers: hs,
		// The original's time: a text line's time is when the book was
		// read. A topic stamped by the broker (LogAppendTime) sets its own.
		Timestamp: ts,
	}
}

// partitionCounts reads how many partitions each origin topic of ds has
// now; a topic that is gone has none.
func partitionCounts(ctx context.Context, cl *kgo.Client, ds []DeadLetter) (map[string]int32, error) {
	counts := map[string]int32{}
	for _, d := range ds {
		if _, done := counts[d.OriginTopic]; done || d.OriginTopic == "" {
			continue
		}
		start, _, err := offsets(ctx, cl, d.OriginTopic)
		if err != nil && !strings.Contains(err.Error(), "UNKNOWN_TOPIC") {
			return nil, err
		}
		counts[d.OriginTopic] = int32(len(start))
	}
	return counts, nil
}

// CountDeadLetters counts the dead letters of cfg's topic: all of them,
// and those not redriven yet. It reads the whole topic, which is meant to
// stay small.
func CountDeadLetters(ctx context.Context, cfg Config) (total, waiting int, err error) {
	ds, err := ReadDeadLetters(ctx, cfg)
	if err != nil {
		return 0, 0, err
	}
	for _, d := range ds {
		if d.RedrivenTo == "" {
			waiting++
		}
	}
	return len(ds), waiting, nil
}
