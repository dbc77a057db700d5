package kafka

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// finishedHold is a hold whose work is done.
func finishedHold() *rebuild {
	b := &rebuild{cancel: func() {}, done: make(chan struct{})}
	close(b.done)
	return b
}

func TestHoldPausesAtTheLimitOnce(t *testing.T) {
	b := &rebuild{}
	var pauses []int
	for i := range 5 {
		if b.hold(&kgo.Record{Offset: int64(i)}, 3) {
			pauses = append(pauses, i)
			b.resume = func() {}
		}
	}
	if !reflect.DeepEqual(pauses, []int{2}) {
		t.Errorf("with a limit of 3, paused at commands %v, want once at the third (2)", pauses)
	}
	if len(b.held) != 5 || b.held[0].Offset != 0 || b.held[4].Offset != 4 {
		t.Errorf("held %d commands, want all 5 in order, the paused ones too", len(b.held))
	}
}

func TestHoldsAnyFinishedAndDropHeld(t *testing.T) {
	h := holds{0: {done: make(chan struct{})}}
	if h.anyFinished() {
		t.Error("a hold still running counts as finished")
	}
	h[1] = finishedHold()
	if !h.anyFinished() {
		t.Error("a finished hold is not seen")
	}
	h[0].held = []*kgo.Record{{Offset: 1}}
	h[1].held = []*kgo.Record{{Offset: 2}}
	h.dropHeld()
	if len(h) != 2 || h[0].held != nil || h[1].held != nil {
		t.Errorf("after dropHeld: %d holds, held %v and %v; want both holds, nothing held", len(h), h[0].held, h[1].held)
	}
}

func TestHoldsWaitingOnDeadLetters(t *testing.T) {
	errAway := errors.New("the dead-letter topic is away")
	errRefused := errors.New("the dead-letter topic refuses")
	for _, tc := range []struct {
		name      string
		h         holds
		wantParts []int32
		wantCause error
	}{
		{"none", holds{}, nil, nil},
		{"rebuilds only", holds{0: {}, 2: {}}, nil, nil},
		{"in order, the first one's cause", holds{5: {deadLetters: errRefused}, 1: {}, 3: {deadLetters: errAway}},
			[]int32{3, 5}, errAway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, cause := tc.h.waitingOnDeadLetters()
			if !reflect.DeepEqual(parts, tc.wantParts) || cause != tc.wantCause {
				t.Errorf("waitingOnDeadLetters() = %v, %v; want %v, %v", parts, cause, tc.wantParts, tc.wantCause)
			}
		})
	}
}
