package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// session is one transactional session of a Processor: its place in the
// books group and its transactional producer (franz-go's
// GroupTransactSession), with the dead-letter producer made for it. It
// polls commands and has them decided a batch at a time (batch) until ctx
// ends or an error the transactional producer cannot carry on from (see
// Run, which then starts a fresh one). Only the Run goroutine uses it.
type session struct {
	p   *Processor
	txn *kgo.GroupTransactSession
	// dlq is the dead-letter producer of this session, also the
	// Processor's while it runs; nil until it is made.
	dlq *kgo.Client
	// failures counts the failed polls and batches in a row, to back off
	// by.
	failures int
}

// runSession runs one transactional session until ctx ends or it fails.
func (p *Processor) runSession(ctx context.Context) error {
	s, err := p.openSession(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	p.setHealthy(true, nil)
	return s.run(ctx)
}

// openSession joins the group and learns what a session needs of the
// topics.
func (p *Processor) openSession(ctx context.Context) (*session, error) {
	if err := p.setGroupSession(ctx); err != nil {
		return nil, err
	}
	txn, err := kgo.NewGroupTransactSession(p.sessionOpts()...)
	if err != nil {
		return nil, fmt.Errorf("kafka transact session: %w", err)
	}
	s := &session{p: p, txn: txn}
	if err := p.startSession(ctx, txn.Client()); err != nil {
		s.close()
		return nil, err
	}
	s.dlq = p.dlq
	return s, nil
}

// startSession learns what a session needs of the topics, and makes its
// dead-letter producer.
func (p *Processor) startSession(ctx context.Context, cl *kgo.Client) error {
	parts, err := partitionsOf(ctx, cl, p.cfg.Topics.Commands)
	if err != nil {
		return err
	}
	p.parts = parts
	p.dlqLimit = deadLetterLimit(ctx, p.cfg, cl)
	p.dlq, err = kgo.NewClient(append(p.cfg.baseOpts(),
		kgo.DefaultProduceTopic(p.cfg.Topics.DLQ),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(dlqWriteTimeout),
		// A batch of dead letters must fit the topic as each does.
		kgo.ProducerBatchMaxBytes(int32(max(p.dlqLimit, minBatchBytes))),
	)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	return nil
}

// close ends the session. The dead-letter producer is closed first: a dead
// letter still being tried for a held partition then fails at once, and
// its hold stops without waiting out the write.
func (s *session) close() {
	if s.dlq != nil {
		s.dlq.Close()
	}
	s.p.stopBuilding(nil)
	s.txn.Close()
	s.p.staleMu.Lock()
	clear(s.p.ownedParts)
	s.p.staleMu.Unlock()
}

// commandFetchMaxWait bounds how long the aggregate's fetch of commands
// waits at a broker: the most a partition it is given waits to be read
// (see sessionOpts).
const commandFetchMaxWait = 250 * time.Millisecond

// sessionOpts are the options of a session's client.
func (p *Processor) sessionOpts() []kgo.Opt {
	cfg := p.cfg
	if len(p.seeds) > 0 {
		cfg.Brokers = p.seeds // where the brokers were last seen
	}
	return append(append(append(cfg.baseOpts(), cfg.metered("processor")...),
		kgo.ConsumerGroup(p.cfg.Topics.BooksGroup),
		kgo.ConsumeTopics(p.cfg.Topics.Commands),
		kgo.TransactionalID(p.cfg.Topics.BooksGroup+"."+p.instance),
		// The group's members are known by their transactional id: an
		// instance given a partition ends the open transaction of an
		// owner that is no member any more, never a member's (fence.go).
		kgo.ClientID(p.cfg.Topics.BooksGroup+"."+p.instance),
		kgo.TransactionTimeout(p.txnTimeout),
		// Group offsets are fetched stable (KIP-447, always on in franz-go):
		// a new owner waits out the previous owner's open transaction.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Partitions given in a rebalance join the fetches only once the
		// fetch in flight to their broker returns, and on partitions that
		// are quiet that is after its wait at the broker: franz-go's 5 s
		// by default, which held a dead instance's partitions up to 5 s
		// after the survivor had them.
		kgo.FetchMaxWait(commandFetchMaxWait),
		// The session and heartbeats of a classic group; a consumer
		// group's are the group's configs (setGroupSession).
		kgo.SessionTimeout(p.cfg.sessionTimeout()),
		kgo.HeartbeatInterval(p.cfg.heartbeatInterval()),
		kgo.RebalanceTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.OnPartitionsAssigned(p.assigned),
		kgo.OnPartitionsRevoked(p.forget),
		kgo.OnPartitionsLost(p.forget),
	), p.groupProtocol()...)
}

// groupProtocol are the options of the group's protocol. The group is a
// KIP-848 consumer group where the broker took its session
// (setGroupSession): its member keeps its partitions while the group's
// coordinator moves, and its heartbeat tries the new coordinator again
// until the session runs out, where the classic member ended its session
// when one heartbeat failed, at every death of the coordinator's broker,
// and the whole group joined again. franz-go runs 848 only with the
// sticky or range balancer; the broker then assigns with its uniform
// assignor, incrementally. Elsewhere the group is classic, with franz-go's
// cooperative-sticky balancer.
func (p *Processor) groupProtocol() []kgo.Opt {
	if p.classic != nil {
		return []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}
	}
	return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer())}
}

// setGroupSession sets the session timeout and heartbeat interval of the
// books' consumer group, as group configs (KIP-848: the broker, not the
// member, holds them). Where the broker refuses them (stock Kafka bounds a
// consumer group's session by 45 s at least, a classic group's by 6 s),
// or has no group configs (before Kafka 4.0), the group runs classic
// (groupProtocol), with the member's settings, and says why once; a
// session the broker refuses there too ends Run with both reasons.
func (p *Processor) setGroupSession(ctx context.Context) error {
	cl, err := kgo.NewClient(p.cfg.baseOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, groupConfigTimeout)
	defer cancel()
	err = groupSession(ctx, cl, p.cfg.Topics.BooksGroup, p.cfg.sessionTimeout(), p.cfg.heartbeatInterval())
	var refused *refusedSessionError
	was := p.classic
	switch {
	case err == nil:
		p.classic = nil
		p.log.Debug("group session set", "session", p.cfg.sessionTimeout(), "heartbeat", p.cfg.heartbeatInterval())
		return nil
	case errors.As(err, &refused), errors.Is(err, kerr.InvalidRequest), errors.Is(err, kerr.UnsupportedVersion):
		p.classic = err
		if was == nil {
			p.log.Warn("the group runs the classic protocol: its members lose their partitions when its coordinator's broker dies", "reason", err)
		}
		return nil
	default:
		return fmt.Errorf("set the group's session: %w", err)
	}
}

// groupConfigTimeout bounds setting the group's session.
const groupConfigTimeout = 10 * time.Second

// groupSession sets group's consumer.session.timeout.ms and
// consumer.heartbeat.interval.ms.
func groupSession(ctx context.Context, cl *kgo.Client, group string, session, heartbeat time.Duration) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	for name, d := range map[string]time.Duration{
		"consumer.session.timeout.ms":    session,
		"consumer.heartbeat.interval.ms": heartbeat,
	} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name = name
		c.Op = kmsg.IncrementalAlterConfigOpSet
		c.Value = kmsg.StringPtr(strconv.FormatInt(d.Milliseconds(), 10))
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, r := range resp.Resources {
		err := kerr.ErrorForCode(r.ErrorCode)
		if err == nil {
			continue
		}
		if errors.Is(err, kerr.InvalidConfig) {
			refused := &refusedSessionError{session: session, heartbeat: heartbeat, err: err}
			if r.ErrorMessage != nil {
				refused.detail = *r.ErrorMessage
			}
			return refused
		}
		return err
	}
	return nil
}

// refusedSessionError is a session the broker refuses: a setting to fix,
// not trouble to wait out.
type refusedSessionError struct {
	session, heartbeat time.Duration
	detail             string
	err                error
}

func (e *refusedSessionError) Error() string {
	msg := fmt.Sprintf("the broker refuses the session timeout %v with heartbeats every %v (group.consumer.min.session.timeout.ms, group.consumer.max.session.timeout.ms and group.consumer.min.heartbeat.interval.ms bound them): %v",
		e.session, e.heartbeat, e.err)
	if e.detail != "" {
		msg += ": " + e.detail
	}
	return msg
}
func (e *refusedSessionError) Unwrap() error { return e.err }

// assigned is called by the group, on a goroutine of its own, with the
// partitions given to this instance.
func (p *Processor) assigned(ctx context.Context, cl *kgo.Client, added map[string][]int32) {
	// Whatever this instance holds of a partition it is given now is from
	// an earlier turn of owning it: drop it, to be rebuilt. The revoke
	// callback cannot be relied on for this: the transact session passes
	// on only the first revoke between two ends of a transaction.
	p.staleMu.Lock()
	for _, parts := range added {
		for _, part := range parts {
			p.stale[part] = true
			p.ownedParts[part] = true
		}
	}
	p.staleMu.Unlock()
	p.log.Info("partitions assigned", "partitions", added)
	if len(added[p.cfg.Topics.Commands]) > 0 {
		p.fenceStrangers(ctx, cl)
	}
	// Joining the group took a working broker: whatever failed before is
	// behind us (a poll that finds nothing never says so).
	p.setHealthy(true, nil)
}

// forget is called by the group, on a goroutine of its own, with the
// partitions revoked from or lost by this instance.
func (p *Processor) forget(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	p.staleMu.Lock()
	for _, parts := range lost {
		for _, part := range parts {
			p.stale[part] = true
			delete(p.ownedParts, part)
		}
	}
	p.staleMu.Unlock()
	p.log.Info("partitions revoked or lost", "partitions", lost)
}

// run polls commands and has them decided until ctx ends or the session
// fails.
func (s *session) run(ctx context.Context) error {
	for {
		fetches := s.p.poll(ctx, s.txn)
		if ctx.Err() != nil {
			return nil
		}
		if err := s.step(ctx, fetches); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// step has the commands of one poll decided. Its error ends the session.
func (s *session) step(ctx context.Context, fetches kgo.Fetches) error {
	// A fetch may carry records of some partitions and an error for
	// another: the records are good and the session has moved past them,
	// so they are decided all the same.
	ferr := fetchError(fetches)
	if errors.Is(ferr, kerr.InvalidSessionTimeout) {
		return ferr
	}
	if ferr != nil {
		s.p.setHealthy(false, ferr)
	}
	if fetches.NumRecords() == 0 && !s.p.building.anyFinished() {
		s.idle(ctx, ferr)
		return nil
	}
	if err := s.p.batch(ctx, s.txn, fetches); err != nil {
		return s.failed(ctx, err)
	}
	s.failures = 0
	if ferr == nil {
		s.p.setHealthy(true, nil)
	}
	return nil
}

// idle follows a poll that brought nothing to decide: after a failed
// fetch it backs off; after a good one the broker is known to answer.
func (s *session) idle(ctx context.Context, ferr error) {
	if ferr != nil {
		s.failures++
		sleep(ctx, backoff(s.failures))
		return
	}
	s.p.setHealthy(true, nil)
}

// failed follows a failed batch, and returns err if it ends the session.
func (s *session) failed(ctx context.Context, err error) error {
	// The transaction aborted, or the session is over: either way the
	// consumer goes back to the committed offsets, and the commands held
	// for rebuilds will be polled again.
	s.p.building.dropHeld()
	if ctx.Err() != nil {
		return nil
	}
	var fatal *endError
	var clock *clockError
	if errors.As(err, &fatal) || errors.As(err, &clock) {
		return err
	}
	s.p.setHealthy(false, err)
	s.failures++
	sleep(ctx, failedBackoff(s.failures))
	return nil
}

// failedBackoff is the pause after failed batch number n in a row: 200 ms
// doubling to a second. A batch fails while a broker's partitions move,
// and the first try after they moved succeeds; backoff's 5 s ceiling put
// that try up to seconds after the move. A failed batch costs an abort.
func failedBackoff(n int) time.Duration {
	return min(backoff(n), time.Second)
}
