package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// readerOpts are the options of a client that reads the log as the
// bookshelf does: committed records only, and transaction markers kept, so
// the reader sees its position move past them and can tell when it has
// reached a partition's end.
func (c Config) readerOpts() []kgo.Opt {
	return append(c.baseOpts(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// A read-committed fetch that waits at the broker while a
		// transaction is open is not always woken when it commits: it
		// then sits out its whole wait (5 s by default) before the
		// reader sees the commit, longer than a view waits for a
		// client's own write. Seen on Kafka and on kfake alike.
		kgo.FetchMaxWait(fetchMaxWait),
		// What a reader holds of the log at once: franz-go's defaults
		// (50 MiB a fetch, 10 MiB a partition) made a view catching up
		// hold a hundred megabytes of records beside its state. A
		// broker still returns a batch larger than these, whole.
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxBytes/4),
	)
}

// fetchMaxBytes is the most a reader asks for in one fetch.
const fetchMaxBytes = 4 << 20

// fetchMaxWait bounds how long a reader's fetch waits at the broker for
// records: the most a missed wake-up delays what it reads.
const fetchMaxWait = 500 * time.Millisecond

// readRange reads topic from the offsets in from up to the offsets in end
// (exclusive), calling fn for each record that is not a transaction marker.
func readRange(ctx context.Context, cfg Config, topic string, from, end map[int32]int64, fn func(*kgo.Record)) error {
	next := map[int32]int64{}
	offs := map[int32]kgo.Offset{}
	for p, e := range end {
		if from[p] < e {
			next[p] = from[p]
			offs[p] = kgo.NewOffset().At(from[p])
		}
	}
	if len(offs) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(cfg.readerOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for len(next) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("read %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if _, ok := next[r.Partition]; !ok {
				return
			}
			if !r.Attrs.IsControl() && r.Offset < end[r.Partition] {
				fn(r)
			}
			if r.Offset+1 >= end[r.Partition] {
				delete(next, r.Partition)
			}
		})
	}
	return nil
}
