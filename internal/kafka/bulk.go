package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// ImportBooks appends a book-added event for each book straight to the
// event log, as the aggregate writes them (in transactions, each on its
// book's home partition, numbered 1), so that the aggregate and every
// view take them for books the aggregate added: a bulk import, for loading
// a shelf of a million books quickly. The ids must be new: the events are
// not decided, only written. progress, when set, is called with the count
// written after each transaction.
func ImportBooks(ctx context.Context, cfg Config, books []shelf.Book, progress func(done int)) error {
	return importEvents(ctx, cfg, len(books), func(i int, now time.Time) shelf.Event {
		b := books[i]
		return shelf.Event{Type: shelf.TypeBookAdded, BookID: b.ID, Seq: 1, Time: now,
			Title: b.Title, Authors: b.Authors, Year: b.Year, ISBN: b.ISBN}
	}, progress)
}

// ImportReads appends a book-read event for each of the books ImportBooks
// imported (numbered 2: their first read), as ImportBooks does: a reading
// history of every book, for loading the last-read view.
func ImportReads(ctx context.Context, cfg Config, ids []string, progress func(done int)) error {
	return importEvents(ctx, cfg, len(ids), func(i int, now time.Time) shelf.Event {
		return shelf.Event{Type: shelf.TypeBookRead, BookID: ids[i], Seq: 2, Time: now, ReadAt: now.Add(-time.Duration(len(ids)-i) * time.Millisecond)}
	}, progress)
}

// importEvents writes event(i) for i below n, as the aggregate would.
func importEvents(ctx context.Context, cfg Config, n int, event func(i int, now time.Time) shelf.Event, progress func(done int)) error {
	const perTxn = 10_000
	cl, err := kgo.NewClient(append(cfg.baseOpts(),
		kgo.TransactionalID(fmt.Sprintf("%s.import.%d", cfg.Topics.Events, time.Now().UnixNano())),
		kgo.RecordPartitioner(homePartitioner()),
		kgo.DefaultProduceTopic(cfg.Topics.Events),
		kgo.ProducerLinger(5*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	now := time.Now().UTC()
	for from := 0; from < n; from += perTxn {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		var mu sync.Mutex
		var failed error
		for i := from; i < min(from+perTxn, n); i++ {
			e := event(i, now)
			id := fmt.Sprintf("import-%d-%d", now.UnixNano(), i)
			e.ID, e.Source, e.CommandID = fmt.Sprintf("%s-%d", id, e.Seq), shelf.EventSource, id
			value, err := shelf.EncodeEvent(&e)
			if err != nil {
				_ = cl.AbortBufferedRecords(ctx)
				_ = cl.EndTransaction(ctx, kgo.TryAbort)
				return fmt.Errorf("encode the event of book %s: %w", e.BookID, err)
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(e.BookID), Value: value, Headers: eventHeaders},
				func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
				})
		}
		if err := cl.Flush(ctx); err != nil || failed != nil {
			_ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
			return fmt.Errorf("import: %w", errors.Join(err, failed))
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("commit the import: %w", err)
		}
		if progress != nil {
			progress(min(from+perTxn, n))
		}
	}
	return nil
}
