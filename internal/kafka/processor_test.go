package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A commit lowers the offset of a partition with commands held for a
// rebuild to the first of them, and leaves every other offset, and other
// topics, as the session would commit them.
func TestKeepHeldLowersTheCommitToTheFirstHeld(t *testing.T) {
	cfg := Config{Topics: TopicsFor("held")}
	p := NewProcessor(cfg, "a")
	p.building[1] = &rebuild{held: []*kgo.Record{{Partition: 1, Offset: 40, LeaderEpoch: 3}, {Partition: 1, Offset: 41, LeaderEpoch: 3}}}
	p.building[2] = &rebuild{} // being rebuilt, nothing held yet
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	for _, topic := range []string{cfg.Topics.Commands, "other"} {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		for part := range int32(3) {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = part, 100+int64(part), 5
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	if err := p.keepHeld(req); err != nil {
		t.Fatal(err)
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			want, epoch := 100+int64(rp.Partition), int32(5)
			if rt.Topic == cfg.Topics.Commands && rp.Partition == 1 {
				want, epoch = 40, 3
			}
			if rp.Offset != want || rp.LeaderEpoch != epoch {
				t.Errorf("%s/%d commits offset %d epoch %d, want %d epoch %d", rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, want, epoch)
			}
		}
	}
}

func TestDecisionTimeIsTheCommandsTimestamp(t *testing.T) {
	own := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return own }
	stamped := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	if got := decisionTime(&kgo.Record{Timestamp: stamped}, now); !got.Equal(stamped) {
		t.Errorf("a stamped command is decided at %v, want its timestamp %v", got, stamped)
	}
	for _, ts := range []time.Time{{}, time.UnixMilli(0)} {
		if got := decisionTime(&kgo.Record{Timestamp: ts}, now); !got.Equal(own) {
			t.Errorf("a command stamped %v is decided at %v, want the instance's clock %v", ts, got, own)
		}
	}
}

func TestRefusedForGood(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{kerr.MessageTooLarge, true},
		{kerr.RecordListTooLarge, true},
		{kerr.InvalidRecord, true},
		{fmt.Errorf("append to events/0: %w", kerr.MessageTooLarge), true},
		// The instance's clock, not the record: another instance may
		// write it.
		{kerr.InvalidTimestamp, false},
		{kerr.NotLeaderForPartition, false},
		{kerr.InvalidProducerEpoch, false},
		{kgo.ErrRecordTimeout, false},
	} {
		if got := refusedForGood(tc.err); got != tc.want {
			t.Errorf("refusedForGood(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestTxnWorkEndsBeforeTheBrokerAborts(t *testing.T) {
	for _, d := range []time.Duration{time.Second, DefaultTxnTimeout, 20 * time.Second} {
		p := NewProcessor(Config{}, "a", TxnTimeout(d))
		if w := p.txnWork(); w <= 0 || w >= d {
			t.Errorf("with a transaction timeout of %v, a transaction works for %v", d, w)
		}
	}
	if got := NewProcessor(Config{}, "a").txnTimeout; got != DefaultTxnTimeout {
		t.Errorf("default transaction timeout %v, want %v", got, DefaultTxnTimeout)
	}
}

// A setting of zero or less keeps the default, and a positive one is
// taken: an unset flag passed on must not stop the processor (a ticker of
// no interval panics, a transaction of no time never commits).
func TestProcessorOptsKeepTheDefaultForNothing(t *testing.T) {
	defaults := NewProcessor(Config{}, "a")
	for _, v := range []time.Duration{0, -time.Second} {
		p := NewProcessor(Config{}, "a", TxnTimeout(v), MaxHeld(int(v)), RebuildProgress(v),
			RebuildStall(v), Quarantine(v), Clock(nil))
		if p.txnTimeout != defaults.txnTimeout || p.maxHeld != defaults.maxHeld ||
			p.progressEvery != defaults.progressEvery || p.rebuildStall != defaults.rebuildStall ||
			p.quarantine != defaults.quarantine || p.now == nil {
			t.Errorf("settings of %v: txn %v, held %d, progress %v, stall %v, quarantine %v, clock set %v; want the defaults",
				v, p.txnTimeout, p.maxHeld, p.progressEvery, p.rebuildStall, p.quarantine, p.now != nil)
		}
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewProcessor(Config{}, "a", TxnTimeout(3*time.Second), MaxHeld(7), RebuildProgress(time.Millisecond),
		RebuildStall(time.Hour), Quarantine(time.Second), Clock(func() time.Time { return at }))
	if p.txnTimeout != 3*time.Second || p.maxHeld != 7 || p.progressEvery != time.Millisecond ||
		p.rebuildStall != time.Hour || p.quarantine != time.Second || !p.now().Equal(at) {
		t.Errorf("settings not taken: txn %v, held %d, progress %v, stall %v, quarantine %v, clock %v",
			p.txnTimeout, p.maxHeld, p.progressEvery, p.rebuildStall, p.quarantine, p.now())
	}
}

// A batch that fails again and again is tried at least every second: the
// first try after a dead broker's partitions moved comes within a second
// of the move.
func TestFailedBackoffIsASecondAtMost(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 3: 800 * time.Millisecond, 4: time.Second, 50: time.Second} {
		if d := failedBackoff(n); d != want {
			t.Errorf("after %d failures: %v, want %v", n, d, want)
		}
	}
}
