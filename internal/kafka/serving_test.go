package kafka

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Serving on the embedded broker: it answers nil once the aggregate's
// member is in its group, and names what does not answer while the
// coordinator of its transactions is loading, a partition's leader fails
// or a listed broker does not answer, until they answer again.
func TestServingNamesWhatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	c, cfg := faultCluster(t)
	g := newGroup(t)
	startBooks(t, g, cfg, "served")
	s := NewServing(cfg)
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return s.Check(ctx)
	}
	waitFor(t, "the brokers serving the aggregate", func() bool { return check() == nil })

	var loading atomic.Bool
	loading.Store(true)
	var asked atomic.Int32
	c.ControlKey(int16(kmsg.DescribeTransactions), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !loading.Load() {
			return nil, nil, false
		}
		asked.Add(1)
		req := r.(*kmsg.DescribeTransactionsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
		for _, id := range req.TransactionalIDs {
			st := kmsg.NewDescribeTransactionsResponseTransactionState()
			st.TransactionalID = id
			st.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
		return resp, nil, true
	})
	err := check()
	if err == nil || !strings.Contains(err.Error(), cfg.Topics.BooksGroup+".served") || asked.Load() == 0 {
		t.Fatalf("while the transactions' coordinator loads: %v (asked %d times), want the member's transactional id named", err, asked.Load())
	}
	loading.Store(false)
	waitFor(t, "serving again once the coordinator loaded", func() bool { return check() == nil })

	var failing atomic.Bool
	failing.Store(true)
	c.ControlKey(int16(kmsg.ListOffsets), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		return listOffsetsFailing(r.(*kmsg.ListOffsetsRequest), kerr.NotLeaderForPartition), nil, true
	})
	if err := check(); err == nil || !strings.Contains(err.Error(), "leaders") {
		t.Fatalf("while no leader answers: %v, want the leaders named", err)
	}
	failing.Store(false)
	waitFor(t, "serving again once the leaders answer", func() bool { return check() == nil })

	// A broker that died is still listed until the controller fences it:
	// its connection fails. Only the Check's own ApiVersions, sent on a
	// connection already open (the client's opening one names it), fail.
	var away atomic.Bool
	away.Store(true)
	c.ControlKey(int16(kmsg.ApiVersions), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !away.Load() || r.(*kmsg.ApiVersionsRequest).ClientSoftwareName != "" {
			return nil, nil, false
		}
		return nil, errors.New("the broker is away"), true
	})
	if err := check(); err == nil || !strings.Contains(err.Error(), "is listed and does not answer") {
		t.Fatalf("while a listed broker does not answer: %v, want it named", err)
	}
	away.Store(false)
	waitFor(t, "serving again once every listed broker answers", func() bool { return check() == nil })
}

// A follower that died is still in sync until the controller fences it:
// its partitions' leaders answer, and their writes wait for it.
func TestDeadInSyncNamesThePartition(t *testing.T) {
	part := func(isr ...int32) kadm.PartitionDetails {
		return kadm.PartitionDetails{0: {Topic: "events", Partition: 0, Leader: 1, ISR: isr}}
	}
	m := kadm.Metadata{
		Brokers: kadm.BrokerDetails{{NodeID: 1}, {NodeID: 3}},
		Topics:  kadm.TopicDetails{"events": {Topic: "events", Partitions: part(1, 3)}},
	}
	if err := deadInSync(m); err != nil {
		t.Errorf("every replica in sync alive: %v", err)
	}
	m.Topics["events"] = kadm.TopicDetail{Topic: "events", Partitions: part(1, 2, 3)}
	if err := deadInSync(m); err == nil || !strings.Contains(err.Error(), "events/0: broker 2") {
		t.Errorf("broker 2 in sync, not alive: %v, want it named with its partition", err)
	}
	m.Topics["events"] = kadm.TopicDetail{Topic: "events", Err: kerr.UnknownTopicOrPartition}
	if err := deadInSync(m); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("a topic not loaded: %v, want its error", err)
	}
}
