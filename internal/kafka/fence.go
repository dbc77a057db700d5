package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// anyPartition asks fenceOpenTransactions for the open transactions of
// every instance that is no longer a member, whatever they wrote to.
const anyPartition = -1

// fenceTimeout bounds ending a previous owner's transaction: past it, the
// rebuild waits for the broker to time that transaction out, as it would
// without fencing.
const fenceTimeout = 5 * time.Second

// fenceOpenTransactions ends at once the open transactions of the group's
// other instances that wrote to partition part of the event log, and
// returns their transactional ids.
//
// Such a transaction is a previous owner's that never ended: the owner was
// killed, frozen or cut off from the brokers while it was open. Left
// alone, it holds back every read-committed reader of the partition, this
// rebuild first, until the broker times it out (the owner's transaction
// timeout plus the broker's cleanup interval): seconds in which the
// partition takes no command. Initialising a producer with the owner's
// transactional id makes the transaction coordinator abort that
// transaction and fence the owner's producer now, as Kafka's own tools for
// hanging transactions do (KIP-664). Nothing is lost by it: the owner has
// lost the partition, so nothing it wrote there may land, and its
// commands, whose offsets that transaction would have committed, are
// polled again and decided here. A transaction that already ends
// (PrepareAbort, PrepareCommit) is left to end.
//
// Only the transactions of instances that are no longer members of the
// group are ended (each member's client id is its transactional id): a
// member that just gave the partition up in a rebalance may still have its
// transaction open (a transact session lets a revoke through before its
// transaction ends, which then aborts), and fencing it would stop all of
// that member's partitions, not just this one, while it starts again.
//
// Best effort: where the brokers cannot list or describe transactions
// (before Kafka 3.0, or not authorised), the rebuild waits as before.
//
// It runs twice for a partition given to this instance: at once, for
// whatever the non-members left open (fenceStrangers), and when its
// rebuild starts, for what is open on its partition of the event log.
// The first matters most: the consumer fetches the partition's committed
// offset stable (KIP-447), so while the previous owner's transaction,
// which sent an offset commit, is open, no command of the partition is
// fetched, and the rebuild, which begins at the first, does not begin.
func (p *Processor) fenceOpenTransactions(ctx context.Context, cl *kgo.Client, part int32) []string {
	if !p.fence {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	var where any = part
	if part == anyPartition {
		where = "any"
	}
	adm := kadm.NewClient(cl)
	members, err := groupMembers(ctx, adm, p.cfg.Topics.BooksGroup)
	if err != nil {
		p.log.Debug("cannot tell the group's members; a previous owner's open transaction is waited out", "partition", where, "err", err)
		return nil
	}
	members[p.cfg.Topics.BooksGroup+"."+p.instance] = true
	ids, err := openTransactionsOn(ctx, adm, p.cfg.Topics.BooksGroup+".", members, p.cfg.Topics.Events, part)
	if err != nil {
		p.log.Debug("cannot tell the open transactions of a partition; a previous owner's is waited out", "partition", where, "err", err)
		return nil
	}
	var fenced []string
	for _, id := range ids {
		began := time.Now()
		if err := initProducer(ctx, cl, id, p.txnTimeout); err != nil {
			p.log.Warn("could not end a previous owner's open transaction; it is waited out", "partition", where,
				"transactional_id", id, "err", err)
			continue
		}
		p.log.Info("ended a previous owner's open transaction", "partition", where, "transactional_id", id,
			"ms", time.Since(began).Milliseconds())
		fenced = append(fenced, id)
	}
	return fenced
}

// groupMembers is the set of client ids of group's members now: of a
// consumer group (KIP-848) or, where the group is classic or the broker
// has no consumer groups, of a classic one.
func groupMembers(ctx context.Context, adm *kadm.Client, group string) (map[string]bool, error) {
	members := map[string]bool{}
	cgs, err := adm.DescribeConsumerGroups(ctx, group)
	if err == nil {
		if g, ok := cgs[group]; ok && g.Err == nil {
			for _, m := range g.Members {
				members[m.ClientID] = true
			}
			return members, nil
		}
	}
	// A classic group is not found as a consumer group, and a broker
	// before Kafka 4.0 does not know the request.
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group: %w", err)
	}
	g, ok := gs[group]
	if !ok {
		return nil, fmt.Errorf("describe group: %s not in the answer", group)
	}
	if g.Err != nil {
		return nil, fmt.Errorf("describe group: %w", g.Err)
	}
	for _, m := range g.Members {
		members[m.ClientID] = true
	}
	return members, nil
}

// openTransactionsOn lists the transactional ids that begin with prefix,
// other than those of members, whose ongoing transaction includes
// partition part of topic; with part anyPartition, whatever it includes.
func openTransactionsOn(ctx context.Context, adm *kadm.Client, prefix string, members map[string]bool, topic string, part int32) ([]string, error) {
	listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	var candidates []string
	for id, l := range listed {
		if strings.HasPrefix(id, prefix) && !members[id] && l.State == "Ongoing" {
			candidates = append(candidates, id)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	described, err := adm.DescribeTransactions(ctx, candidates...)
	if err != nil {
		return nil, fmt.Errorf("describe transactions: %w", err)
	}
	var ids []string
	for _, d := range described.Sorted() {
		if d.Err != nil || d.State != "Ongoing" {
			continue
		}
		if _, ok := d.Topics[topic][part]; ok || part == anyPartition {
			ids = append(ids, d.TxnID)
		}
	}
	return ids, nil
}

// initProducer initialises a producer for transactional id, with no
// producer id of its own: the coordinator then aborts the id's ongoing
// transaction and bumps its epoch, so that its previous producer is
// fenced. It answers CONCURRENT_TRANSACTIONS until the abort is done.
func initProducer(ctx context.Context, cl *kgo.Client, id string, timeout time.Duration) error {
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = int32(timeout.Milliseconds())
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) && !kerr.IsRetriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// fenceStrangers ends the open transactions of every instance of the group
// that is no longer a member (see fenceOpenTransactions). The group calls
// it as it gives this instance partitions, and fetches their committed
// offsets only once it returns: so it waits for the fence, for
// assignFenceTimeout at most, and leaves it to finish in the background
// after that (a rebuild fences again). Run beside that fetch, it lost a
// second each time: a stranger's pending offset commit holds a stable
// fetch (KIP-447), and the client asks again only a second later. The
// group's callback never waits longer than that, whatever the brokers do.
func (p *Processor) fenceStrangers(ctx context.Context, cl *kgo.Client) {
	if !p.fence {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.fenceOpenTransactions(ctx, cl, anyPartition)
	}()
	wait := time.NewTimer(assignFenceTimeout)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
		p.log.Debug("the fence of a new assignment goes on in the background", "after", assignFenceTimeout)
	case <-ctx.Done():
	}
}

// assignFenceTimeout bounds the wait for the fence that holds a new
// assignment's offset fetch: brokers that take longer are in trouble the
// fetch would meet too, and the partitions' rebuilds fence again.
const assignFenceTimeout = 2 * time.Second
