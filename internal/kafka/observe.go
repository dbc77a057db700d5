package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// What the services observe of their Kafka clients and of the work done
// on records, for their metrics. The metrics themselves are the metrics
// package's; this side only measures.

// Observer takes one measurement; a Prometheus histogram is one.
type Observer interface{ Observe(float64) }

// ClientMetrics gives a service's long-lived Kafka clients franz-go's own
// metrics (kprom): connections, bytes, records and batches produced and
// fetched, request latencies, buffered records. All the clients of one
// service register in the service's registry; each under the label
// client=<role> (processor, submitter, replies, follower, probe,
// dead_letters), so that the clients of one process, under `up`, do not
// collide.
//
// A kprom collector belongs to one client: it registers when the client
// is made and unregisters when it closes. So one role is metered by one
// client at a time; a client made while another of its role is open (a
// session ending as the next begins) goes unmetered rather than clash.
// (A client that fails to be made keeps its role taken: it never closes.
// franz-go fails only on bad options, which no role here has.)
type ClientMetrics struct {
	reg  prometheus.Registerer
	mu   sync.Mutex
	live map[string]bool
}

// NewClientMetrics meters clients into reg.
func NewClientMetrics(reg prometheus.Registerer) *ClientMetrics {
	return &ClientMetrics{reg: reg, live: map[string]bool{}}
}

// ClientNamespace and ClientSubsystem prefix the Kafka clients' families:
// bookshelf_kafka_*.
const (
	ClientNamespace = "bookshelf"
	ClientSubsystem = "kafka"
)

// opts are the options that meter a client of role, none when the role
// is metered already (or there are no metrics).
func (m *ClientMetrics) opts(role string) []kgo.Opt {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[role] {
		return nil
	}
	m.live[role] = true
	k := kprom.NewMetrics(ClientNamespace,
		kprom.Subsystem(ClientSubsystem),
		kprom.Registerer(prometheus.WrapRegistererWith(prometheus.Labels{"client": role}, m.reg)),
		kprom.FetchAndProduceDetail(kprom.ByTopic, kprom.Batches, kprom.Records, kprom.UncompressedBytes),
		// The time of a request from writing it to reading its answer,
		// by broker: bookshelf_kafka_request_duration_e2e_seconds.
		kprom.Histograms(kprom.RequestDurationE2E),
	)
	return []kgo.Opt{kgo.WithHooks(k, released(func() {
		m.mu.Lock()
		delete(m.live, role)
		m.mu.Unlock()
	}))}
}

// released is a hook that runs its function once its client is closed,
// after kprom (hooks run in order) has unregistered.
type released func()

func (r released) OnClientClosed(*kgo.Client) { r() }

// metered is the options that give a client of role the config's client
// metrics.
func (c Config) metered(role string) []kgo.Opt { return c.ClientMetrics.opts(role) }

// DecisionLatency observes, for each command of a committed batch
// (decided, refused or dead-lettered), the time from the poll that
// brought the batch to its commit, in seconds. A command held while its
// partition was being rebuilt counts from the poll of the batch that
// decided it.
func DecisionLatency(o Observer) ProcessorOpt { return func(p *Processor) { p.decisionLatency = o } }

// noteDecided observes the batch of n commands polled at began, now
// committed.
func (p *Processor) noteDecided(began time.Time, n int) {
	if p.decisionLatency == nil {
		return
	}
	d := time.Since(began).Seconds()
	for range n {
		p.decisionLatency.Observe(d)
	}
}

// Owned is the command partitions this instance owns now, in order.
func (p *Processor) Owned() []int32 {
	p.staleMu.Lock()
	out := make([]int32, 0, len(p.ownedParts))
	for part := range p.ownedParts {
		out = append(out, part)
	}
	p.staleMu.Unlock()
	slices.Sort(out)
	return out
}

// noteApplied observes how long after its record was written an event
// was applied, once the follower has caught up: the replay of the log at
// start would count the age of every old event.
func (f *Follower) noteApplied(r *kgo.Record) {
	if f.ApplyLag == nil {
		return
	}
	select {
	case <-f.caughtUp:
		f.ApplyLag.Observe(max(time.Since(r.Timestamp), 0).Seconds())
	default:
	}
}

// GroupLag reads how far the aggregate's consumer group is behind on
// each partition of the commands topic: the end offset less the committed
// one. It keeps one admin client, and the last answer for a second, so
// that scrapes stay cheap.
type GroupLag struct {
	cfg Config
	mu  sync.Mutex
	cl  *kgo.Client
	at  time.Time
	lag map[int32]int64
	err error
}

// NewGroupLag returns a reader of the group's lag; Close releases it.
func NewGroupLag(cfg Config) *GroupLag { return &GroupLag{cfg: cfg} }

// groupLagFresh is how long an answer is reused.
const groupLagFresh = time.Second

// Lag is the group's lag by partition, records: the end offset less the
// committed one, or less the start offset where the group has committed
// none yet. Errors are kept as long as answers.
//
// The lock is not held while the broker is asked: a scrape with a short
// deadline, or Close, does not wait behind another's slow answer.
func (g *GroupLag) Lag(ctx context.Context) (map[int32]int64, error) {
	g.mu.Lock()
	if !g.at.IsZero() && time.Since(g.at) < groupLagFresh {
		defer g.mu.Unlock()
		return g.lag, g.err
	}
	if g.cl == nil {
		cl, err := kgo.NewClient(g.cfg.baseOpts()...)
		if err != nil {
			g.mu.Unlock()
			return nil, fmt.Errorf("kafka client: %w", err)
		}
		g.cl = cl
	}
	cl := g.cl
	g.mu.Unlock()
	lag, err := groupLag(ctx, kadm.NewClient(cl), g.cfg.Topics.BooksGroup, g.cfg.Topics.Commands)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lag, g.err, g.at = lag, err, time.Now()
	return lag, err
}

// groupLag is the lag of group on each partition of topic: its end offset
// less the group's committed one, or less its start offset where the
// group has committed none. It reads offsets only, which a classic group
// and a consumer group (KIP-848) answer alike.
func groupLag(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("lag of group %s: offsets: %w", group, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("lag of group %s: end offsets: %w", group, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("lag of group %s: start offsets: %w", group, err)
	}
	out := map[int32]int64{}
	for part, end := range ends[topic] {
		from := starts[topic][part].Offset
		if c, ok := committed.Lookup(topic, part); ok && c.At >= 0 {
			from = c.At
		}
		out[part] = max(end.Offset-from, 0)
	}
	return out, nil
}

// Close closes the admin client.
func (g *GroupLag) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cl != nil {
		g.cl.Close()
		g.cl = nil
	}
}

// Position is how far the follower has read the log: the sum over its
// partitions of the next offset to read. Two replicas at one position
// have read the same records.
func (f *Follower) Position() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, o := range f.next {
		n += o
	}
	return n
}
