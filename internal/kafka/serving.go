package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Serving asks the brokers whether they serve the aggregate: the part of
// a broker's death that is Kafka's own (its partitions' leadership and
// its coordinators moved to others, and loaded there), told apart from
// what the services take after it. The chaos harness asks it after each
// broker kill.
type Serving struct {
	cfg Config
}

// NewServing asks the brokers of cfg.
func NewServing(cfg Config) *Serving { return &Serving{cfg: cfg} }

// Check returns nil when the brokers serve the aggregate: the books'
// group's coordinator answers with its members, the coordinator of each
// member's transactional id answers for it, every partition of the
// bookshelf's topics is answered for by its leader, every broker listed
// answers, and no partition waits for a dead broker in its in-sync set.
// Otherwise it says what does not answer. The client retries what fails until ctx ends, so
// a Check begun while a dead broker still leads returns once the
// leadership moved, or with ctx's error.
//
// Each Check connects anew. A client kept from one Check to the next
// kept what it had learned before a broker died: its coordinators and
// leaders stayed the dead broker's for seconds after they had moved,
// and the Check said the brokers did not serve when they did.
func (s *Serving) Check(ctx context.Context) error {
	cl, err := kgo.NewClient(s.cfg.baseOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	members, err := groupMembers(ctx, adm, s.cfg.Topics.BooksGroup)
	if err != nil {
		return fmt.Errorf("the group's coordinator: %w", err)
	}
	// A member's client id is its transactional id (see the processor).
	ids := slices.Sorted(maps.Keys(members))
	if len(ids) > 0 {
		described, err := adm.DescribeTransactions(ctx, ids...)
		if err != nil {
			return fmt.Errorf("the transactions' coordinators: %w", err)
		}
		for _, id := range ids {
			d, ok := described[id]
			switch {
			case !ok:
				return fmt.Errorf("the coordinator of transactional id %s: not in the answer", id)
			case errors.Is(d.Err, kerr.TransactionalIDNotFound):
				// Answered: a member that has not begun a transaction
				// yet has none.
			case d.Err != nil:
				return fmt.Errorf("the coordinator of transactional id %s: %w", id, d.Err)
			}
		}
	}
	listed, err := adm.ListEndOffsets(ctx, s.cfg.Topics.All()...)
	if err == nil {
		err = listed.Error()
	}
	if err == nil && len(listed) < len(s.cfg.Topics.All()) {
		err = errors.New("a topic is missing from the answer")
	}
	if err != nil {
		return fmt.Errorf("the partitions' leaders: %w", err)
	}
	return replicasAlive(ctx, cl, adm, s.cfg.Topics.All())
}

// replicasAlive returns nil when every broker the metadata lists answers,
// and every partition of topics has only those in sync (see deadInSync).
// A broker that died is listed until the controller fences it, some
// time after its death, and its followers' partitions wait for it till
// then.
func replicasAlive(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topics []string) error {
	m, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return fmt.Errorf("the partitions' replicas: %w", err)
	}
	for _, id := range m.Brokers.NodeIDs() {
		if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl.Broker(int(id))); err != nil {
			return fmt.Errorf("broker %d is listed and does not answer: %w", id, err)
		}
	}
	return deadInSync(m)
}

// deadInSync names a partition that waits for a dead broker: a write with
// every in-sync replica's acknowledgement waits for each one, so a dead
// follower stalls its partitions' writes though their leaders answer,
// until the controller takes it out of their in-sync sets. A broker the
// controller fenced is not among the metadata's brokers.
func deadInSync(m kadm.Metadata) error {
	alive := map[int32]bool{}
	for _, b := range m.Brokers {
		alive[b.NodeID] = true
	}
	for _, t := range m.Topics.Sorted() {
		if t.Err != nil {
			return fmt.Errorf("the partitions of %s: %w", t.Topic, t.Err)
		}
		for _, p := range t.Partitions.Sorted() {
			for _, r := range p.ISR {
				if !alive[r] {
					return fmt.Errorf("partition %s/%d: broker %d is in sync but not alive", p.Topic, p.Partition, r)
				}
			}
		}
	}
	return nil
}
