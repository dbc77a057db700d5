package shelf

import (
	"errors"
	"testing"
)

func TestAdmit(t *testing.T) {
	ours := func(typ string) *Event {
		return &Event{ID: "c1-1", Type: typ, Source: EventSource, BookID: "b1", Seq: 2, CommandID: "c1", RequestHash: "h"}
	}
	outside := func(typ, id string) *Event {
		return &Event{ID: "x", Type: typ, Source: "kcat", BookID: id, Title: "Dune", Seq: 7, CommandID: "x1", RequestHash: "h"}
	}
	tests := []struct {
		name          string
		e             *Event
		txn, home     bool
		admit         bool
		wantSeq       int64
		wantCommandID string
	}{
		{"the aggregate's add", ours(TypeBookAdded), true, true, true, 2, "c1"},
		{"the aggregate's read", ours(TypeBookRead), true, true, true, 2, "c1"},
		{"the aggregate's remove", ours(TypeBookRemoved), true, true, true, 2, "c1"},
		{"an aggregate event off its home", ours(TypeBookAdded), true, false, false, 0, ""},
		{"an aggregate-looking event written outside a transaction", ours(TypeBookRead), false, true, false, 0, ""},
		{"an aggregate-looking event without bookseq", &Event{Type: TypeBookAdded, Source: EventSource, BookID: "b1"}, true, true, false, 0, ""},
		{"an outside add", outside(TypeBookAdded, "b1"), false, true, false, 0, ""},
		{"an outside add, even in a transaction", outside(TypeBookAdded, "b1"), true, true, false, 0, ""},
		{"an outside remove", outside(TypeBookRemoved, "b1"), false, true, false, 0, ""},
		{"an outside read by id, off its home", outside(TypeBookRead, "b1"), false, false, true, 0, ""},
		{"a text line", &Event{Type: TypeBookRead, Title: "Dune"}, false, true, true, 0, ""},
	}
	for _, tc := range tests {
		err := Admit(tc.e, tc.txn, tc.home)
		if tc.admit != (err == nil) {
			t.Errorf("%s: Admit = %v, want admitted %v", tc.name, err, tc.admit)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrNotAdmitted) {
				t.Errorf("%s: Admit = %v, want ErrNotAdmitted", tc.name, err)
			}
			continue
		}
		// An outside read keeps nothing of its writer's numbering, so a
		// bookseq the aggregate did not assign cannot shadow its events.
		if tc.e.Seq != tc.wantSeq || tc.e.CommandID != tc.wantCommandID || (tc.wantSeq == 0 && tc.e.RequestHash != "") {
			t.Errorf("%s: admitted as seq %d command %q hash %q, want seq %d command %q",
				tc.name, tc.e.Seq, tc.e.CommandID, tc.e.RequestHash, tc.wantSeq, tc.wantCommandID)
		}
		if got := tc.e.FromAggregate(); got != (tc.wantSeq > 0) {
			t.Errorf("%s: FromAggregate = %v", tc.name, got)
		}
	}
}
