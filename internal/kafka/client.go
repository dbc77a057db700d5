package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config is what every client of the bookshelf needs.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	Topics  Topics
	// Partitions is the partition count topics are created with.
	Partitions int32
	// SessionTimeout is how long the aggregate's group waits for a silent
	// instance before giving its partitions to another; zero means
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	Logger         *slog.Logger
}

// DefaultSessionTimeout is the least session timeout a broker allows by
// default (group.min.session.timeout.ms): a dead instance is noticed as
// soon as it can be.
const DefaultSessionTimeout = 6 * time.Second

func (c Config) sessionTimeout() time.Duration {
	if c.SessionTimeout <= 0 {
		return DefaultSessionTimeout
	}
	return c.SessionTimeout
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// baseOpts are the options every client shares.
func (c Config) baseOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.WithLogger(kgoLogger{c.logger()}),
		kgo.ClientID("bookshelf"),
		// A broker that went away is retried for a while rather than
		// failing requests at once; callers bound the wait with ctx.
		kgo.RetryTimeout(30 * time.Second),
	}
}

// kgoLogger passes franz-go's warnings and errors to slog. Its info level
// is a running commentary, kept out of the service's log.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelInfo
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	case kgo.LogLevelDebug:
		lvl = slog.LevelDebug
	}
	k.l.Log(context.Background(), lvl, "kafka: "+msg, keyvals...)
}

// ErrPermanent marks an error that waiting will not mend: the broker
// refused a request for good, or the topics are laid out wrongly.
var ErrPermanent = errors.New("will not succeed by retrying")

// EnsureTopics creates the bookshelf's topics if they do not exist, each
// with cfg.Partitions partitions and the broker's default replication. A
// topic that exists is left as it is, but the event log, the commands and
// the replies must have as many partitions as each other: partition p of
// one maps to partition p of the others. Errors that retrying cannot mend
// wrap ErrPermanent.
func EnsureTopics(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrPermanent, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	parts := cfg.Partitions
	if parts <= 0 {
		parts = 3
	}
	resp, err := adm.CreateTopics(ctx, parts, -1, nil, cfg.Topics.All()...)
	if err != nil {
		return fmt.Errorf("create topics on %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	var errs []error
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			err := fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
			if !kerr.IsRetriable(r.Err) {
				err = fmt.Errorf("%w: %w", ErrPermanent, err)
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return checkLayout(ctx, cl, cfg.Topics)
}

// checkLayout checks the event log, the commands and the replies have the
// same number of partitions.
func checkLayout(ctx context.Context, cl *kgo.Client, t Topics) error {
	want, err := partitionsOf(ctx, cl, t.Commands)
	if err != nil {
		return err
	}
	for _, topic := range []string{t.Events, t.Replies} {
		n, err := partitionsOf(ctx, cl, topic)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%w: %s has %d partitions and %s %d; they must be equal, as partition p of the commands maps to partition p of the others (recreate or add partitions)",
				ErrPermanent, topic, n, t.Commands, want)
		}
	}
	return nil
}

// partitionsOf returns how many partitions topic has, once each has a
// leader. A topic created a moment ago may not be known yet to the broker
// that answers (a Kafka broker learns of a new topic from the controller
// a little after the create returns), so a retriable answer is asked
// again, with backoff, until ctx ends. Each ask is a metadata request of
// its own: kadm's describe would answer from the client's metadata cache,
// which keeps an "unknown topic" answer for MetadataMinAge.
func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	backoff := 20 * time.Millisecond
	for {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = false
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return 0, fmt.Errorf("describe %s: %w", topic, err)
		}
		err = errors.New("not in the broker's answer")
		for _, t := range resp.Topics {
			if t.Topic != nil && *t.Topic == topic {
				err = usable(t)
				if err == nil {
					return int32(len(t.Partitions)), nil
				}
			}
		}
		if code := (*kerr.Error)(nil); errors.As(err, &code) && !code.Retriable {
			return 0, fmt.Errorf("%w: describe %s: %w", ErrPermanent, topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("describe %s: not usable yet: %w (gave up waiting: %w)", topic, err, context.Cause(ctx))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// usable says why a described topic cannot be used yet, or nil: it must
// have partitions, each with a leader. A partition's other errors (a
// follower replica down) do not stop reads and writes.
func usable(t kmsg.MetadataResponseTopic) error {
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return err
	}
	if len(t.Partitions) == 0 {
		return kerr.LeaderNotAvailable
	}
	for _, p := range t.Partitions {
		if p.Leader < 0 || p.ErrorCode == kerr.LeaderNotAvailable.Code {
			return fmt.Errorf("partition %d: %w", p.Partition, kerr.LeaderNotAvailable)
		}
	}
	return nil
}

// offsets lists per-partition offsets of one topic: its start offsets and
// its last stable offsets (the end a read-committed reader can reach now).
func offsets(ctx context.Context, cl *kgo.Client, topic string) (start, end map[int32]int64, err error) {
	return listOffsets(ctx, cl, topic, true)
}

// highWatermarks lists per-partition start offsets and high watermarks
// (the end of the log, open transactions included).
func highWatermarks(ctx context.Context, cl *kgo.Client, topic string) (start, end map[int32]int64, err error) {
	return listOffsets(ctx, cl, topic, false)
}

func listOffsets(ctx context.Context, cl *kgo.Client, topic string, stable bool) (start, end map[int32]int64, err error) {
	adm := kadm.NewClient(cl)
	so, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = so.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	list := adm.ListEndOffsets
	if stable {
		list = adm.ListCommittedOffsets
	}
	eo, err := list(ctx, topic)
	if err == nil {
		err = eo.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	start, end = map[int32]int64{}, map[int32]int64{}
	so.Each(func(o kadm.ListedOffset) { start[o.Partition] = o.Offset })
	eo.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	return start, end, nil
}
