package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// ReadEvents reads the event log as it stands, committed records only,
// from its start to its last stable offset, and calls fn with each event
// read (its position set), in order per partition. Records that are not
// events are counted in skipped. It is for checkers that fold the log
// themselves, apart from any view.
func ReadEvents(ctx context.Context, cfg Config, fn func(e shelf.Event)) (skipped int, err error) {
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	start, end, err := offsets(ctx, cl, cfg.Topics.Events)
	cl.Close()
	if err != nil {
		return 0, fmt.Errorf("the ends of %s: %w", cfg.Topics.Events, err)
	}
	err = readRange(ctx, cfg, cfg.Topics.Events, start, end, func(r *kgo.Record) {
		e, err := shelf.DecodeRecord(r.Value, r.Timestamp)
		if err != nil {
			skipped++
			return
		}
		e.At = shelf.LogPos{Partition: r.Partition, Offset: r.Offset}
		fn(e)
	})
	return skipped, err
}

// Partitions is how many partitions the event log has.
func Partitions(ctx context.Context, cfg Config) (int32, error) {
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	return partitionsOf(ctx, cl, cfg.Topics.Events)
}
