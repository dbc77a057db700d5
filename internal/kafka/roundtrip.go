package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RoundTrip is the floor of a command's path through Kafka, for the load
// scenarios to measure beside it: a record produced (idempotent, every
// replica acknowledging, as the aggregate's transactions are) and read
// back by a consumer in the same process, on a topic of its own. It knows
// nothing of the bookshelf.
type RoundTrip struct {
	cfg        Config
	topic      string
	prod, cons *kgo.Client
	next       atomic.Int64
	mu         sync.Mutex
	waiting    map[string]chan struct{}
	done       chan struct{}
}

// NewRoundTrip creates its topic, named after the event log, and starts
// reading it.
func NewRoundTrip(ctx context.Context, cfg Config) (*RoundTrip, error) {
	rt := &RoundTrip{cfg: cfg, topic: fmt.Sprintf("%s.roundtrip.%d", cfg.Topics.Events, time.Now().UnixNano()),
		waiting: map[string]chan struct{}{}, done: make(chan struct{})}
	admin, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer admin.Close()
	parts := cfg.Partitions
	if parts <= 0 {
		parts = DefaultPartitions
	}
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, parts, -1, nil, rt.topic); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", rt.topic, err)
	}
	if rt.prod, err = kgo.NewClient(append(cfg.baseOpts(), kgo.DefaultProduceTopic(rt.topic))...); err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if rt.cons, err = kgo.NewClient(append(cfg.readerOpts(), kgo.ConsumeTopics(rt.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...); err != nil {
		rt.prod.Close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	go rt.read()
	return rt, nil
}

func (rt *RoundTrip) read() {
	defer close(rt.done)
	for {
		fetches := rt.cons.PollFetches(context.Background())
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			rt.mu.Lock()
			if ch, ok := rt.waiting[string(r.Key)]; ok {
				close(ch)
				delete(rt.waiting, string(r.Key))
			}
			rt.mu.Unlock()
		})
	}
}

// Do produces one record of size bytes and returns once the consumer has
// read it back, or ctx ends.
func (rt *RoundTrip) Do(ctx context.Context, size int) error {
	key := strconv.FormatInt(rt.next.Add(1), 10)
	seen := make(chan struct{})
	rt.mu.Lock()
	rt.waiting[key] = seen
	rt.mu.Unlock()
	forget := func() {
		rt.mu.Lock()
		delete(rt.waiting, key)
		rt.mu.Unlock()
	}
	if err := rt.prod.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: make([]byte, size)}).FirstErr(); err != nil {
		forget()
		return err
	}
	select {
	case <-seen:
		return nil
	case <-ctx.Done():
		forget()
		return ctx.Err()
	}
}

// Close stops reading and deletes the topic.
func (rt *RoundTrip) Close(ctx context.Context) error {
	rt.prod.Close()
	rt.cons.Close()
	<-rt.done
	admin, err := kgo.NewClient(rt.cfg.baseOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admin.Close()
	resp, err := kadm.NewClient(admin).DeleteTopics(ctx, rt.topic)
	if err == nil {
		for _, r := range resp {
			err = errors.Join(err, r.Err)
		}
	}
	return err
}
