package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// The command path beside a bare one, on the embedded broker, in the same
// run. Ours: a command appended, decided by the aggregate in a transaction
// with its event, its outcome and its offset, and the outcome read back.
// Bare: a request appended with franz-go, echoed onto a reply topic by a
// bare consumer-producer, and the reply read back: the least a command
// answered through Kafka costs, with no decision, no state and no
// transaction.

// roundTrip answers one command (or request) of id.
type roundTrip func(ctx context.Context, id string) error

// benchTopics creates topics of their own for one path.
func benchTopics(b *testing.B, brokers []string, prefix string) Config {
	cfg := Config{Brokers: brokers, Topics: TopicsFor(prefix + randHex(4)), Partitions: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// oursPath starts the aggregate and a submitter on their own topics.
func oursPath(b *testing.B, brokers []string) roundTrip {
	cfg := benchTopics(b, brokers, "bench-")
	sub, err := NewSubmitter(cfg)
	if err != nil {
		b.Fatal(err)
	}
	proc := NewProcessor(cfg, "bench")
	run, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sub.Run(run) })
	wg.Go(func() { _ = proc.Run(run) })
	b.Cleanup(func() { stop(); wg.Wait(); sub.Close() })
	return func(ctx context.Context, id string) error {
		o, err := sub.Submit(ctx, addCmd(id, "Bench "+id))
		if err == nil && o.Status != shelf.StatusAccepted {
			err = fmt.Errorf("outcome %+v", o)
		}
		return err
	}
}

// barePath starts an echo from a request topic to a reply topic, and a
// requester that waits for each reply by key, all with bare franz-go.
func barePath(b *testing.B, brokers []string) roundTrip {
	cfg := benchTopics(b, brokers, "bare-")
	client := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cl.Close)
		return cl
	}
	// The topics are new: both read them from the start.
	echo := client(kgo.ConsumeTopics(cfg.Topics.Commands))
	replies := client(kgo.ConsumeTopics(cfg.Topics.Replies))
	requests := client(kgo.DefaultProduceTopic(cfg.Topics.Commands))
	var mu sync.Mutex
	waiting := map[string]chan struct{}{}
	run, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for run.Err() == nil {
			echo.PollFetches(run).EachRecord(func(r *kgo.Record) {
				echo.Produce(run, &kgo.Record{Topic: cfg.Topics.Replies, Key: r.Key, Value: r.Value}, nil)
			})
		}
	})
	wg.Go(func() {
		for run.Err() == nil {
			replies.PollFetches(run).EachRecord(func(r *kgo.Record) {
				mu.Lock()
				if ch, ok := waiting[string(r.Key)]; ok {
					close(ch)
					delete(waiting, string(r.Key))
				}
				mu.Unlock()
			})
		}
	})
	b.Cleanup(func() { stop(); wg.Wait() })
	return func(ctx context.Context, id string) error {
		ch := make(chan struct{})
		mu.Lock()
		waiting[id] = ch
		mu.Unlock()
		if err := requests.ProduceSync(ctx, &kgo.Record{Key: []byte(id), Value: []byte(id)}).FirstErr(); err != nil {
			return err
		}
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// BenchmarkCommandRatio answers commands in rounds of concurrent ones,
// ours and bare in turn, and reports the time per command of each and
// bare over ours (1 would mean the aggregate costs nothing over a bare
// round trip through Kafka).
func BenchmarkCommandRatio(b *testing.B) {
	broker, err := StartBroker(BrokerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(broker.Close)
	brokers := []string{broker.Addr()}
	ours, bare := oursPath(b, brokers), barePath(b, brokers)
	const concurrent = 32
	round := func(path roundTrip) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				if err := path(ctx, "b-"+randHex(8)); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	// Warm both: the first transaction, the first fetches.
	round(ours)
	round(bare)
	var tOurs, tBare time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tOurs += round(ours)
			tBare += round(bare)
		} else {
			tBare += round(bare)
			tOurs += round(ours)
		}
		n += concurrent
	}
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(n), "ns/cmd-ours")
	b.ReportMetric(float64(tBare.Nanoseconds())/float64(n), "ns/cmd-bare")
	b.ReportMetric(float64(tBare)/float64(tOurs), "ratio")
}
