package chaos

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
)

// bookState is the model's state of one book.
type bookState struct {
	exists, removed bool
	reads           int
}

// bookModel is the specification of one book, for porcupine: a book is
// added once, read any number of times while on the shelf, removed once;
// a get answers what the book is. An operation whose outcome the client
// never learned may have taken effect or not: the model allows both.
var bookModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byBook := map[string][]porcupine.Operation{}
		var order []string
		for _, o := range h {
			b := o.Input.(Op).Book
			if _, ok := byBook[b]; !ok {
				order = append(order, b)
			}
			byBook[b] = append(byBook[b], o)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, b := range order {
			out = append(out, byBook[b])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{bookState{}} },
	Step: func(state, input, _ interface{}) []interface{} {
		return step(state.(bookState), input.(Op))
	},
	DescribeOperation: func(input, _ interface{}) string {
		o := input.(Op)
		s := fmt.Sprintf("%s %s -> %s", o.Kind, o.Book[:min(8, len(o.Book))], o.Result)
		switch {
		case o.Problem != "":
			s += " (" + o.Problem + ")"
		case o.Kind == OpGet && o.Result == Ok:
			s += fmt.Sprintf(" (%d reads)", o.Reads)
		}
		return s
	},
	DescribeState: func(state interface{}) string {
		s := state.(bookState)
		switch {
		case !s.exists:
			return "absent"
		case s.removed:
			return fmt.Sprintf("removed, %d reads", s.reads)
		}
		return fmt.Sprintf("on the shelf, %d reads", s.reads)
	},
}

// step returns the states s may move to by o, none if o's answer is
// impossible in s.
func step(s bookState, o Op) []interface{} {
	onShelf := s.exists && !s.removed
	// refusedAs tells whether a refusal's kind fits s.
	refusedAs := func() bool {
		switch o.Problem {
		case "not-found":
			return !s.exists
		case "removed":
			return s.removed
		case "conflict":
			return o.Kind == OpAdd && s.exists
		}
		return false // a refusal the model does not expect
	}
	var next bookState
	var can bool
	switch o.Kind {
	case OpAdd:
		next, can = bookState{exists: true}, !s.exists
	case OpRead:
		next, can = bookState{exists: true, reads: s.reads + 1}, onShelf
	case OpRemove:
		next, can = bookState{exists: true, removed: true, reads: s.reads}, onShelf
	case OpGet:
		switch o.Result {
		case Ok:
			if onShelf && s.reads == o.Reads {
				return []interface{}{s}
			}
		case Refused:
			if refusedAs() {
				return []interface{}{s}
			}
		case Unknown:
			return []interface{}{s}
		}
		return nil
	}
	switch o.Result {
	case Ok:
		if can {
			return []interface{}{next}
		}
	case Refused:
		if refusedAs() {
			return []interface{}{s}
		}
	case Unknown:
		if can {
			return []interface{}{s, next}
		}
		return []interface{}{s}
	}
	return nil
}

// operations turns a history into porcupine's: an operation whose outcome
// is unknown may take effect any time after its call, so it never
// returns.
func operations(ops []Op, origin time.Time) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		ret := o.Return.Sub(origin).Nanoseconds()
		if o.Result == Unknown && o.Command() {
			ret = math.MaxInt64
		}
		out = append(out, porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call.Sub(origin).Nanoseconds(), Output: o.Result, Return: ret})
	}
	return out
}
