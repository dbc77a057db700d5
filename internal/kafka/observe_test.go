package kafka

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// observations counts what an Observer was given.
type observations struct {
	mu sync.Mutex
	n  int
	at []float64
}

func (o *observations) Observe(v float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	o.at = append(o.at, v)
}

func (o *observations) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}

// families is the names of what reg holds, with how many series each.
func families(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	fs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range fs {
		out[f.GetName()] = len(f.GetMetric())
	}
	return out
}

// What the aggregate and a view measure: the decision latency of each
// command, the apply lag of each event once caught up, the partitions
// owned, the group's lag on them, the clients' own metrics by role.
func TestObservations(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		reg := prometheus.NewRegistry()
		cfg.ClientMetrics = NewClientMetrics(reg)
		decided := &observations{}
		g := newGroup(t)
		sub, proc := startBooks(t, g, cfg, "a", DecisionLatency(decided))
		applied := &observations{}
		f := NewFollower(cfg, "lastread", shelf.NewReplica(shelf.NewLastRead()))
		f.ApplyLag = applied
		g.run(t, "follower", f.Run)
		select {
		case <-f.CaughtUp():
		case <-time.After(20 * time.Second):
			t.Fatal("the follower never caught up")
		}

		var last shelf.Outcome
		for _, id := range []string{"o1", "o2", "o3"} {
			if last = submit(t, sub, addCmd(id, "Title "+id)); last.Status != shelf.StatusAccepted {
				t.Fatalf("add %s: %+v", id, last)
			}
		}
		// Observed once committed: the outcome may reach its submitter first.
		waitCount(decided, 3)
		if n := decided.count(); n != 3 {
			t.Errorf("decision latency of %d commands, want 3", n)
		}
		for _, d := range decided.at {
			if d <= 0 || d > 20 {
				t.Errorf("a decision took %v s", d)
			}
		}
		waitCount(applied, 3)
		if n := applied.count(); n != 3 {
			t.Errorf("apply lag of %d events, want 3", n)
		}
		if got := proc.Owned(); len(got) != int(cfg.Partitions) {
			t.Errorf("owned %v, want all %d partitions", got, cfg.Partitions)
		}
		if f.Position() < 3 {
			t.Errorf("position %d after 3 events", f.Position())
		}

		lag := NewGroupLag(cfg)
		defer lag.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var lags map[int32]int64
		var err error
		// The group commits with each transaction: once the commands are
		// decided, nothing is left.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			lag.at = time.Time{}
			if lags, err = lag.Lag(ctx); err == nil && len(lags) == int(cfg.Partitions) && sum(lags) == 0 {
				break
			}
		}
		if err != nil || len(lags) != int(cfg.Partitions) || sum(lags) != 0 {
			t.Errorf("group lag %v, %v; want 0 on each of %d partitions", lags, err, cfg.Partitions)
		}

		fams := families(t, reg)
		for _, name := range []string{"bookshelf_kafka_connects_total", "bookshelf_kafka_produce_records_total", "bookshelf_kafka_fetch_records_total"} {
			if fams[name] == 0 {
				t.Errorf("no %s in %v", name, fams)
			}
		}
	})
}

// waitCount waits, a while, for o to have n observations.
func waitCount(o *observations, n int) {
	for deadline := time.Now().Add(10 * time.Second); o.count() < n && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

func sum(m map[int32]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// One role is metered by one client at a time: a second client of the
// role, while the first is open, goes unmetered rather than clash, and
// the role is free again once the first closes.
func TestClientMetricsOneClientPerRole(t *testing.T) {
	b, err := StartBroker(BrokerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := prometheus.NewRegistry()
	cfg := Config{Brokers: []string{b.Addr()}, ClientMetrics: NewClientMetrics(reg)}
	first, err := kgo.NewClient(append(cfg.baseOpts(), cfg.metered("probe")...)...)
	if err != nil {
		t.Fatal(err)
	}
	if opts := cfg.metered("probe"); opts != nil {
		t.Errorf("a second client of the role is metered too")
	}
	second, err := kgo.NewClient(append(cfg.baseOpts(), cfg.metered("submitter")...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cl := range []*kgo.Client{first, second} {
		if err := cl.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := families(t, reg)["bookshelf_kafka_connects_total"]; n != 2 {
		t.Errorf("%d series of connects, want one per role", n)
	}
	first.Close()
	if n := families(t, reg)["bookshelf_kafka_connects_total"]; n != 1 {
		t.Errorf("%d series of connects after one client closed, want 1", n)
	}
	again, err := kgo.NewClient(append(cfg.baseOpts(), cfg.metered("probe")...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	defer second.Close()
	if err := again.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := families(t, reg)["bookshelf_kafka_connects_total"]; n != 2 {
		t.Errorf("%d series of connects once the role was free again, want 2", n)
	}
	// Without metrics, no options.
	if (Config{}).metered("probe") != nil {
		t.Error("a config without client metrics meters")
	}
}
