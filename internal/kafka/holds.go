package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// holds is the partitions whose commands are held instead of decided,
// each with its commands polled meanwhile, in order: partitions being
// rebuilt from the log (see startBuilding), and partitions waiting for
// their dead letters to be written (see holdForDeadLetters). Only the Run
// goroutine touches it.
type holds map[int32]*rebuild

// hold appends r to the commands b holds, and tells whether that makes
// max of them on a partition not yet paused: fetching it should pause.
func (b *rebuild) hold(r *kgo.Record, max int) (pause bool) {
	b.held = append(b.held, r)
	return len(b.held) >= max && b.resume == nil
}

// anyFinished tells whether a hold is done, so its held commands can be
// decided even if a poll brought nothing new.
func (h holds) anyFinished() bool {
	for _, b := range h {
		if b.finished() {
			return true
		}
	}
	return false
}

// dropHeld forgets the held commands, after the consumer went back to the
// committed offsets: they will be polled again (a paused partition once
// its hold is done). The holds themselves go on; nothing was written to
// their partitions.
func (h holds) dropHeld() {
	for _, b := range h {
		b.held = nil
	}
}

// lowerCommit lowers, in a transaction's offset commit, the offset of
// each partition of topic with commands held to the first of them. The
// session commits all it has polled; without this, a crash before they
// were decided would lose them.
func (h holds) lowerCommit(req *kmsg.TxnOffsetCommitRequest, topic string) {
	for i := range req.Topics {
		t := &req.Topics[i]
		if t.Topic != topic {
			continue
		}
		for j := range t.Partitions {
			tp := &t.Partitions[j]
			if b, ok := h[tp.Partition]; ok && len(b.held) > 0 {
				tp.Offset, tp.LeaderEpoch = b.held[0].Offset, b.held[0].LeaderEpoch
			}
		}
	}
}

// waitingOnDeadLetters is the partitions held for their dead letters, in
// order, and why the first of them waits.
func (h holds) waitingOnDeadLetters() (parts []int32, cause error) {
	for part, b := range h {
		if b.deadLetters != nil {
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	slices.Sort(parts)
	return parts, h[parts[0]].deadLetters
}
