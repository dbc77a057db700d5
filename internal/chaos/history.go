// Package chaos is the fault-tolerance demonstration: clients that use the
// bookshelf as a careful user would (an Idempotency-Key on every command,
// retrying what the system could not answer with the same key), faults
// injected on a seeded schedule, and a checker, independent of the
// services, that reads the committed log and the clients' history after
// the run and proves what it can: every acknowledged command's events are
// in the log exactly once, the outcomes are linearizable per book, the
// replicas of every view converge to an independent fold of the log.
package chaos

import (
	"sync"
	"time"
)

// Kinds of operations the clients perform.
const (
	OpAdd    = "add"
	OpRead   = "read"
	OpRemove = "remove"
	OpGet    = "get" // GET /books/{id}, reading its own writes
)

// Results of an operation.
const (
	// Ok: the system said it was done (2xx; for a get, an answer).
	Ok = "ok"
	// Refused: the system said no, for good (a 4xx): the command left
	// nothing.
	Refused = "refused"
	// Unknown: no definite answer before the client gave up (timeouts,
	// 503s past the retries, lost connections): the command may or may
	// not have taken effect, once at most.
	Unknown = "unknown"
)

// Op is one operation as a client saw it: from its first call to its
// final answer, retries included.
type Op struct {
	Client int       `json:"client"`
	Kind   string    `json:"kind"`
	Book   string    `json:"book"`
	Key    string    `json:"key,omitempty"` // the Idempotency-Key of a command
	Call   time.Time `json:"call"`
	Return time.Time `json:"return"`
	Result string    `json:"result"`
	// Status is the last HTTP status (0: none); Problem the problem
	// type's last part of a refusal ("not-found", "removed", ...).
	Status  int    `json:"status,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Tries counts the requests sent for the operation.
	Tries int `json:"tries"`
	// Position is what an acknowledged command answered in
	// Bookshelf-Position; a get asked for it.
	Position string `json:"position,omitempty"`
	// Reads is what a get answered of the book's reads.
	Reads int `json:"reads,omitempty"`
}

// Latency is the operation's time from first call to final answer.
func (o Op) Latency() time.Duration { return o.Return.Sub(o.Call) }

// Command tells whether the operation is a command (it has a key).
func (o Op) Command() bool { return o.Kind != OpGet }

// History is the operations of every client, in the order they ended.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records an operation.
func (h *History) Add(o Op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// Ops returns a copy of the operations recorded.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}
