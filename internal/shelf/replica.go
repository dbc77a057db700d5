package shelf

import (
	"context"
	"sync"
	"sync/atomic"
)

// Projection is a read model folded from events.
type Projection interface {
	Apply(e *Event)
}

// Replica holds a projection together with how far into the log it has
// read, and lets readers wait until it has passed a position
// (read-your-writes). One goroutine applies; any number read.
type Replica[P Projection] struct {
	mu   sync.RWMutex
	p    P
	next map[int32]int64 // per partition, the next offset to read
	// moved is closed and replaced when the replica advances, but only
	// when someone waits, so applying costs nothing extra otherwise.
	moved chan struct{}
	// version counts the changes, so readers can cache what they built
	// from one state of the projection.
	version atomic.Uint64
}

// NewReplica wraps p, which must not be used directly afterwards.
func NewReplica[P Projection](p P) *Replica[P] {
	return &Replica[P]{p: p, next: map[int32]int64{}}
}

// Apply folds e, read at e.At, into the projection and moves past it.
func (r *Replica[P]) Apply(e *Event) {
	r.mu.Lock()
	r.p.Apply(e)
	r.advance(e.At.Partition, e.At.Offset+1)
	r.mu.Unlock()
}

// Advance moves past records that carried no event for the projection
// (skipped, dead-lettered, transaction markers): next is the next offset to
// read in partition.
func (r *Replica[P]) Advance(partition int32, next int64) {
	r.mu.Lock()
	r.advance(partition, next)
	r.mu.Unlock()
}

func (r *Replica[P]) advance(partition int32, next int64) {
	r.version.Add(1)
	if next > r.next[partition] {
		r.next[partition] = next
	}
	if r.moved != nil {
		close(r.moved)
		r.moved = nil
	}
}

// Version changes whenever the projection or the position may have: a
// cache keyed on it is never stale.
func (r *Replica[P]) Version() uint64 { return r.version.Load() }

// Read calls fn with the projection, which must not be kept past fn.
func (r *Replica[P]) Read(fn func(p P)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn(r.p)
}

// Next returns, per partition, the next offset to read.
func (r *Replica[P]) Next() map[int32]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[int32]int64, len(r.next))
	for p, o := range r.next {
		out[p] = o
	}
	return out
}

// Reached tells whether the replica has applied every record pos names.
func (r *Replica[P]) Reached(pos Position) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return pos.Reached(r.next)
}

// WaitFor blocks until the replica has passed pos or ctx ends.
func (r *Replica[P]) WaitFor(ctx context.Context, pos Position) error {
	for {
		r.mu.Lock()
		if pos.Reached(r.next) {
			r.mu.Unlock()
			return nil
		}
		if r.moved == nil {
			r.moved = make(chan struct{})
		}
		moved := r.moved
		r.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
