package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Home is the partition, of n, where the commands and the events of the
// book bookID live: the murmur2 hash of the id, as Kafka's Java client and
// franz-go place a keyed record. It is the one placement rule of the
// bookshelf. The aggregate rebuilds a book from its home partition only,
// so a record found elsewhere (kcat places keys by CRC32, the original
// Python writers sent none) is not the aggregate's; shelf.Admit says what
// then becomes of it.
//
// The rule depends on n: that is why a log's partition count is fixed
// once it holds events (see EnsureTopics).
func Home(bookID string, n int32) int32 {
	if n <= 0 {
		return 0
	}
	return int32(murmur2([]byte(bookID))&0x7fffffff) % n
}

// homePartitioner places each record by Home of its key.
func homePartitioner() kgo.Partitioner {
	return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		return func(r *kgo.Record, n int) int { return int(Home(string(r.Key), int32(n))) }
	})
}

// murmur2 is the 32-bit MurmurHash2 with Kafka's seed, the hash of Kafka's
// default partitioner.
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
	)
	h := uint32(seed) ^ uint32(len(data))
	for ; len(data) >= 4; data = data[4:] {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> 24
		k *= m
		h = h*m ^ k
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// checkPlacement refuses an event log whose partition count changed after
// its events were written: Home would then look for every book on another
// partition than the one that holds its events. It reads the first
// records of each partition and checks where the aggregate's events among
// them are (its source and bookseq, in a transaction, keyed by their
// subject). Most of them off their home says the count changed; one or
// two may be off it for other reasons (a command sent by hand to another
// partition, decided there by an earlier version), which the views then
// dead-letter. Kafka cannot take partitions away again, so the message
// says what can be done.
func checkPlacement(ctx context.Context, cl *kgo.Client, cfg Config) error {
	start, end, err := highWatermarks(ctx, cl, cfg.Topics.Events)
	if err != nil {
		return err
	}
	n := int32(len(end))
	from := map[int32]kgo.Offset{}
	for p, e := range end {
		if start[p] < e {
			from[p] = kgo.NewOffset().At(start[p])
		}
	}
	if len(from) == 0 {
		return nil
	}
	// Read uncommitted, markers kept: a sample need not wait out an open
	// transaction (the aggregate placed an aborted record as it placed
	// any other), and a partition of markers alone still answers.
	rd, err := kgo.NewClient(append(cfg.baseOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topics.Events: from}),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(fetchMaxWait))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var sample []*kgo.Record
	var e shelf.Event
	for len(from) > 0 {
		fetches := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("sample the event log %s to check its partition count: %w", cfg.Topics.Events, ctx.Err())
		}
		if err := fetchError(fetches); err != nil {
			return fmt.Errorf("sample the event log %s to check its partition count: %w", cfg.Topics.Events, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			delete(from, r.Partition)
			if r.Attrs.IsControl() || !r.Attrs.IsTransactional() || len(r.Key) == 0 {
				return
			}
			if shelf.DecodeRecordInto(&e, r.Value, r.Timestamp) == nil && e.FromAggregate() && e.BookID == string(r.Key) {
				sample = append(sample, r)
			}
		})
	}
	var off []*kgo.Record
	for _, r := range sample {
		if Home(string(r.Key), n) != r.Partition {
			off = append(off, r)
		}
	}
	if len(off) == 0 || 2*len(off) <= len(sample) {
		return nil
	}
	r := off[0]
	was := ""
	if c := placedWith(sample, n); c > 0 {
		was = fmt.Sprintf(" (its events fit %d partitions)", c)
	}
	return fmt.Errorf("%w: the event log %s has %d partitions, but its events were written with another count%s: %d of the %d sampled are off their book's partition, such as book %q on partition %d, which with %d partitions would be looked for on %d. A book's partition depends on the count, so it is fixed once the log holds events; Kafka cannot take partitions away, so start a new bookshelf under another --topic, or copy the log into one created with the old count",
		ErrPermanent, cfg.Topics.Events, n, was, len(off), len(sample), r.Key, r.Partition, n, Home(string(r.Key), n))
}

// placedWith finds a partition count, below n, that places every sampled
// record where it is; 0 if none does.
func placedWith(sample []*kgo.Record, n int32) int32 {
next:
	for c := n - 1; c > 0; c-- {
		for _, r := range sample {
			if Home(string(r.Key), c) != r.Partition {
				continue next
			}
		}
		return c
	}
	return 0
}
