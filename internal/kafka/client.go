package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"
)

// Config is what every client of the bookshelf needs.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	Topics  Topics
	// Partitions is the partition count topics are created with; zero
	// means DefaultPartitions.
	Partitions int32
	// SessionTimeout is how long the aggregate's group waits for a silent
	// instance before giving its partitions to another; zero means
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	Logger         *slog.Logger
	// TracerProvider, when set, traces the commands and events across
	// Kafka (see trace.go), carrying the context in the records' headers
	// with the global propagator (otel.SetTextMapPropagator, which
	// internal/tracing sets); nil leaves tracing off, at no cost.
	TracerProvider trace.TracerProvider
	// ClientMetrics, when set, meters the service's long-lived clients
	// (franz-go's kprom).
	ClientMetrics *ClientMetrics
}

// DefaultPartitions is how many partitions topics are created with unless
// told otherwise.
const DefaultPartitions int32 = 3

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

// heartbeatInterval is how often the aggregate's group members heartbeat.
// A member hears of a rebalance at its next heartbeat: the survivor of a
// dead instance takes its partitions that much later, so heartbeats come
// six times a session, not three.
func (c Config) heartbeatInterval() time.Duration {
	return min(time.Second, c.sessionTimeout()/6).Truncate(time.Millisecond)
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// metadataMinAge is the least time between two metadata refreshes of a
// client.
const metadataMinAge = 250 * time.Millisecond

// retryBackoff is the wait before the next try of a failed request: 100 ms
// doubling to 500 ms, with a fifth either way of jitter so that clients
// do not try in step.
func retryBackoff(fails int) time.Duration {
	return time.Duration(float64(retryStep(fails)) * (0.8 + 0.4*rand.Float64()))
}

// retryStep is retryBackoff without its jitter.
func retryStep(fails int) time.Duration {
	return min(100*time.Millisecond<<min(max(fails-1, 0), 3), 500*time.Millisecond)
}

// retryFor calls try until it succeeds, ctx ends, or it has failed for d,
// pausing retryBackoff between tries (100 ms to half a second: a moved
// leader is found within a try of its move). It returns the last error.
// Every error is tried again: one that waiting cannot mend (a topic that
// does not exist) is returned d later than a single try would.
func retryFor(ctx context.Context, d time.Duration, try func() error) error {
	deadline := time.Now().Add(d)
	for fails := 1; ; fails++ {
		err := try()
		if err == nil || ctx.Err() != nil {
			return err
		}
		wait := retryBackoff(fails)
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		sleep(ctx, wait)
	}
}

// requestRetries is how often a failed request is tried: enough that
// retryBackoff's tries last the 30 s of RetryTimeout.
const requestRetries = 80

// baseOpts are the options every client shares.
func (c Config) baseOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.WithLogger(kgoLogger{c.logger()}),
		kgo.ClientID("bookshelf"),
		// A broker that went away is retried for a while rather than
		// failing requests at once; callers bound the wait with ctx.
		kgo.RetryTimeout(30 * time.Second),
		// A broker that dies takes its partitions' leadership with it,
		// and the client learns the new leaders from its next metadata
		// refresh. franz-go waits 5 s between refreshes by default, which
		// left writes stalled for up to 5 s after the leaders had moved;
		// a refresh is a small request, made only when something failed.
		kgo.MetadataMinAge(metadataMinAge),
		// A request to a broker that died is tried again, and the answer
		// that counts comes once its partitions and coordinators moved (a
		// few seconds): franz-go's default backoff doubles to 5 s, so its
		// tries land up to 2 s after that, and by then the new group
		// coordinator has dropped the members it did not hear from. Tries
		// every half second at most stay within a heartbeat of the move.
		kgo.RetryBackoffFn(retryBackoff),
		// franz-go gives up a request after 20 tries: at half a second
		// apart that is 10 s, and RetryTimeout's 30 s above would no
		// longer be the bound (with franz-go's own backoff the tries
		// outlasted it). A broker roll takes longer than 10 s.
		kgo.RequestRetries(requestRetries),
		// franz-go takes an end of file on a connection's first read for
		// a TLS or SASL mismatch and gives up at once; our clients use
		// neither. What closes a new connection at once here is a TCP
		// proxy in front of a broker that is down or going down (it
		// accepts, then cannot reach the broker), and a heartbeat given
		// up lost the group session, with every partition of the
		// replica. (A proxy that keeps accepting for long still misleads
		// the client: see compose.Target.follow.)
		kgo.AlwaysRetryEOF(),
		c.publishHooks(),
	}
}

// kgoLogger passes franz-go's log to slog: its warnings and errors, and its
// debug lines when the service logs at debug (--log-level debug). Its info
// level is a running commentary of connections and group state, kept out of
// the service's log unless debugging.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

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

// Topic settings the bookshelf needs. The event log is the source of
// truth: it never deletes, and it is not compacted (compaction keeps one
// record per key, the last event of each book). The commands wait in
// their topic until they are decided, so it keeps them far longer than
// any stall, and stamps them with the broker's clock (the decision time,
// see Processor). The dead letters are kept for a person to look at; the
// replies matter only for the seconds a client waits.
const (
	retentionForever  = "-1"
	commandsRetention = "2592000000" // 30 days
	repliesRetention  = "3600000"    // 1 hour
)

// topicConfigs is what EnsureTopics creates each topic with.
func (t Topics) topicConfigs() map[string]map[string]string {
	return map[string]map[string]string{
		t.Events:   {"cleanup.policy": "delete", "retention.ms": retentionForever, "retention.bytes": retentionForever},
		t.Commands: {"retention.ms": commandsRetention, "retention.bytes": retentionForever, "message.timestamp.type": "LogAppendTime"},
		t.Replies:  {"retention.ms": repliesRetention},
		t.DLQ:      {"retention.ms": retentionForever, "retention.bytes": retentionForever},
	}
}

// EnsureTopics creates the bookshelf's topics if they do not exist, each
// with cfg.Partitions partitions, the broker's default replication and the
// settings of topicConfigs. A topic that exists is left as it is, but it
// is checked:
//   - the event log must keep every event: one that would delete some
//     (retention.ms or retention.bytes other than -1, or compaction) is
//     refused, with the setting to change and how;
//   - the event log, the commands and the replies must have as many
//     partitions as each other (partition p of one maps to partition p of
//     the others), and the log's partition count must be the one its
//     events were placed with (Home depends on it): a count changed since
//     is refused.
//
// Errors that retrying cannot mend wrap ErrPermanent.
func EnsureTopics(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return fmt.Errorf("%w: kafka client: %w", ErrPermanent, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	parts := cfg.Partitions
	if parts <= 0 {
		parts = DefaultPartitions
	}
	var errs []error
	for topic, configs := range cfg.Topics.topicConfigs() {
		cs := map[string]*string{}
		for k, v := range configs {
			cs[k] = kadm.StringPtr(v)
		}
		r, err := adm.CreateTopic(ctx, parts, -1, cs, topic)
		if err == nil {
			err = r.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			err := fmt.Errorf("create topic %s on %s: %w", topic, strings.Join(cfg.Brokers, ","), err)
			if code := (*kerr.Error)(nil); errors.As(err, &code) && !code.Retriable {
				err = fmt.Errorf("%w: %w", ErrPermanent, err)
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := checkLayout(ctx, cl, cfg.Topics); err != nil {
		return err
	}
	if err := checkRetention(ctx, adm, cfg); err != nil {
		return err
	}
	return checkPlacement(ctx, cl, cfg)
}

// deletesEvents lists the settings, of a topic's configs, under which it
// would delete events.
func deletesEvents(configs map[string]string) []string {
	var wrong []string
	if strings.Contains(configs["cleanup.policy"], "compact") {
		wrong = append(wrong, "cleanup.policy="+configs["cleanup.policy"])
	}
	for _, k := range []string{"retention.ms", "retention.bytes"} {
		if v, ok := configs[k]; ok && v != retentionForever {
			wrong = append(wrong, k+"="+v)
		}
	}
	return wrong
}

// KeepEvents sets an existing event log to keep every event, and returns
// the settings it had that would have deleted some. It is for the embedded
// broker alone, whose logs earlier versions made with its defaults: that
// broker enforced no retention on them, so nothing was lost, and the
// settings now say so. On any other broker a log that deletes is refused
// (EnsureTopics), for its operator to decide.
func KeepEvents(ctx context.Context, cfg Config) ([]string, error) {
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	got, err := topicConfigs(ctx, adm, cfg.Topics.Events)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, nil // made with the right settings when created
	}
	if err != nil {
		return nil, err
	}
	wrong := deletesEvents(got[cfg.Topics.Events])
	if len(wrong) == 0 {
		return nil, nil
	}
	var alter []kadm.AlterConfig
	for k, v := range cfg.Topics.topicConfigs()[cfg.Topics.Events] {
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
	}
	resp, err := adm.AlterTopicConfigs(ctx, alter, cfg.Topics.Events)
	if err == nil {
		_, err = resp.On(cfg.Topics.Events, nil)
		if err == nil {
			for _, r := range resp {
				err = errors.Join(err, r.Err)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("set %s to keep every event: %w", cfg.Topics.Events, err)
	}
	return wrong, nil
}

// DeleteTopics deletes the topics of cfg: the event log and those named
// after it. It is for logs made to be thrown away, as a load run's.
func DeleteTopics(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(cfg.baseOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, cfg.Topics.All()...)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			err = errors.Join(err, fmt.Errorf("delete %s: %w", r.Topic, r.Err))
		}
	}
	return err
}

// checkRetention refuses an event log that would delete events, and
// warns of a commands topic that keeps its commands less than a week.
func checkRetention(ctx context.Context, adm *kadm.Client, cfg Config) error {
	t := cfg.Topics
	permanent := func(err error) error {
		if code := (*kerr.Error)(nil); errors.As(err, &code) && !code.Retriable {
			return fmt.Errorf("%w: %w (checking that the event log keeps every event needs DESCRIBE_CONFIGS on it)", ErrPermanent, err)
		}
		return err
	}
	got, err := topicConfigs(ctx, adm, t.Events, t.Commands)
	if err != nil {
		return permanent(err)
	}
	if ms, err := strconv.ParseInt(got[t.Commands]["retention.ms"], 10, 64); err == nil && ms >= 0 && ms < (7*24*time.Hour).Milliseconds() {
		cfg.logger().Warn("the commands topic deletes commands within a week; a command held back longer (a partition stalled) would be lost",
			"topic", t.Commands, "retention.ms", ms)
	}
	if wrong := deletesEvents(got[t.Events]); len(wrong) > 0 {
		return fmt.Errorf("%w: the event log %s would delete events (%s): it is the source of truth, and a book whose events are gone is forgotten at the next rebuild. Set it to keep every event: kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config cleanup.policy=delete,retention.ms=-1,retention.bytes=-1",
			ErrPermanent, t.Events, strings.Join(wrong, ", "), strings.Join(cfg.Brokers, ","), t.Events)
	}
	return nil
}

// topicConfigs reads the configs of topics, defaults included: per topic,
// each config's value by name. A topic the broker cannot describe is an
// error, wrapping the broker's.
func topicConfigs(ctx context.Context, adm *kadm.Client, topics ...string) (map[string]map[string]string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe the configs of %s: %w", strings.Join(topics, ", "), err)
	}
	out := map[string]map[string]string{}
	for _, topic := range topics {
		rc, err := rcs.On(topic, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return nil, fmt.Errorf("describe the configs of %s: %w", topic, err)
		}
		out[topic] = map[string]string{}
		for _, c := range rc.Configs {
			out[topic][c.Key] = c.MaybeValue()
		}
	}
	return out, nil
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
			return fmt.Errorf("%w: %s has %d partitions and %s %d; they must be equal, as partition p of the commands maps to partition p of the others. The count is fixed once the event log holds events (a book's partition depends on it): create the missing topics with %d partitions, or start a new bookshelf under another --topic",
				ErrPermanent, topic, n, t.Commands, want, want)
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
