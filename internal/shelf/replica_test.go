package shelf

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// counter is the smallest projection: it counts what it is given.
type counter struct{ n int }

func (c *counter) Apply(*Event) { c.n++ }

func TestReplicaApply(t *testing.T) {
	r := NewReplica(&counter{})
	r.Apply(&Event{Type: TypeBookRead, At: LogPos{Partition: 0, Offset: 5}})
	r.Apply(&Event{Type: TypeBookRead, At: LogPos{Partition: 1, Offset: 0}})
	if want := map[int32]int64{0: 6, 1: 1}; !maps.Equal(r.Next(), want) {
		t.Errorf("Next = %v, want %v", r.Next(), want)
	}
	r.Read(func(c *counter) {
		if c.n != 2 {
			t.Errorf("applied %d events, want 2", c.n)
		}
	})
	for _, tt := range []struct {
		pos  Position
		want bool
	}{
		{Position{0: 5}, true},
		{Position{0: 6}, false},
		{Position{1: 0}, true},
		{Position{0: 5, 1: 0}, true},
		{Position{0: 5, 1: 1}, false},
		{Position{2: 0}, false},
	} {
		if got := r.Reached(tt.pos); got != tt.want {
			t.Errorf("Reached(%v) = %v, want %v", tt.pos, got, tt.want)
		}
	}
}

func TestReplicaAdvance(t *testing.T) {
	r := NewReplica(&counter{})
	r.Advance(0, 10)
	r.Advance(0, 4) // never backwards
	r.Apply(&Event{At: LogPos{Partition: 0, Offset: 2}})
	if want := map[int32]int64{0: 10}; !maps.Equal(r.Next(), want) {
		t.Errorf("Next = %v, want %v", r.Next(), want)
	}
	if !r.Reached(Position{0: 9}) || r.Reached(Position{0: 10}) {
		t.Error("Reached disagrees with Advance")
	}
	r.Read(func(c *counter) {
		if c.n != 1 {
			t.Errorf("applied %d events, want 1: Advance applies nothing", c.n)
		}
	})
	// Next is a copy.
	next := r.Next()
	next[0] = 100
	if r.Reached(Position{0: 50}) {
		t.Error("changing the result of Next moved the replica")
	}
}

// waitFor runs WaitFor in a goroutine and returns a channel for its
// result.
func waitFor(ctx context.Context, r *Replica[*counter], pos Position) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.WaitFor(ctx, pos) }()
	return done
}

// blocked tells, once every goroutine of the bubble is blocked, whether
// the waiter is still waiting.
func blocked(done <-chan error) bool {
	synctest.Wait()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

func TestReplicaWaitFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewReplica(&counter{})
		done := waitFor(t.Context(), r, Position{0: 3, 1: 7})
		if !blocked(done) {
			t.Fatal("WaitFor returned before anything was applied")
		}
		r.Apply(&Event{At: LogPos{Partition: 0, Offset: 3}})
		if !blocked(done) {
			t.Fatal("WaitFor returned with partition 1 behind")
		}
		r.Advance(1, 7) // offset 7 not applied yet
		if !blocked(done) {
			t.Fatal("WaitFor returned one record early")
		}
		r.Apply(&Event{At: LogPos{Partition: 1, Offset: 7}})
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("WaitFor = %v", err)
			}
		default:
			t.Fatal("WaitFor still waits after the position was reached")
		}
	})
}

func TestReplicaWaitForReachedAlready(t *testing.T) {
	r := NewReplica(&counter{})
	r.Advance(0, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Reached wins over a context that has ended: the answer is there.
	if err := r.WaitFor(ctx, Position{0: 9}); err != nil {
		t.Errorf("WaitFor = %v, want nil", err)
	}
}

func TestReplicaWaitForCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewReplica(&counter{})
		ctx, cancel := context.WithCancel(t.Context())
		done := waitFor(ctx, r, Position{0: 0})
		r.Advance(1, 100) // elsewhere: wakes the waiter, which waits on
		if !blocked(done) {
			t.Fatal("WaitFor returned before the position was reached")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WaitFor = %v, want context.Canceled", err)
		}
	})
}

func TestReplicaWaitForDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewReplica(&counter{})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		err := r.WaitFor(ctx, Position{0: 0})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("WaitFor took %v, want the 2s deadline", d)
		}
	})
}

// Many waiters, one applier and readers all at once: for the race
// detector, and to check every waiter is woken.
func TestReplicaConcurrent(t *testing.T) {
	const (
		partitions = 4
		perPart    = 250
		waiters    = 32
	)
	r := NewReplica(NewLastRead())
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := range waiters {
		pos := Position{int32(i % partitions): int64(i * perPart / waiters)}
		if i%3 == 0 {
			pos[int32((i+1)%partitions)] = perPart - 1
		}
		wg.Go(func() { errs <- r.WaitFor(t.Context(), pos) })
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.Read(func(v *LastRead) { _ = v.Latest(DefaultLastReadLimit) })
				_ = r.Next()
			}
		})
	}
	for o := range int64(perPart) {
		for p := range int32(partitions) {
			id := string(rune('a' + p))
			// Each partition's first record adds its book; the others
			// read it.
			e := &Event{Type: TypeBookRead, Source: EventSource, BookID: id, Seq: o + 1,
				ReadAt: t0.Add(time.Duration(o) * time.Second), At: LogPos{Partition: p, Offset: o}}
			if o == 0 {
				e.Type, e.Title = TypeBookAdded, "Book "+id
			}
			r.Apply(e)
		}
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("WaitFor = %v", err)
		}
	}
	r.Read(func(v *LastRead) {
		if got := v.Latest(MaxLimit); len(got) != partitions {
			t.Errorf("Latest = %v", got)
		}
	})
}
