package kafka

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A failed request is tried again within 100 ms at first, and never more
// than 600 ms later however often it failed: a client hears of a dead
// broker's new leaders and coordinators within a heartbeat of their move.
func TestRetryBackoffStaysWithinAHeartbeat(t *testing.T) {
	for fails, want := range map[int][2]time.Duration{
		0:   {80 * time.Millisecond, 120 * time.Millisecond},
		1:   {80 * time.Millisecond, 120 * time.Millisecond},
		2:   {160 * time.Millisecond, 240 * time.Millisecond},
		4:   {400 * time.Millisecond, 600 * time.Millisecond},
		100: {400 * time.Millisecond, 600 * time.Millisecond},
	} {
		for range 50 {
			if d := retryBackoff(fails); d < want[0] || d > want[1] {
				t.Fatalf("after %d failures: %v, want %v to %v", fails, d, want[0], want[1])
			}
		}
	}
}

// The tries of a failed request, at their shortest, still last the 30 s
// a request is retried for (RetryTimeout): the count does not end them
// sooner.
func TestRequestRetriesOutlastTheRetryTimeout(t *testing.T) {
	var least time.Duration // every wait at the low end of its jitter
	for fails := 1; fails <= requestRetries; fails++ {
		least += retryStep(fails) * 4 / 5
	}
	if least < 30*time.Second {
		t.Errorf("%d tries last %v at least, less than the 30 s retry timeout", requestRetries, least)
	}
}

// A listing that fails while a dead broker's partitions move is tried
// again until it succeeds, within the half second of retryBackoff; one
// that keeps failing returns its last error once its time is up, and one
// whose context ends returns at once.
func TestRetryForTriesUntilItSucceedsOrItsTimeIsUp(t *testing.T) {
	down := errors.New("unable to dial: connection refused")
	tries := 0
	began := time.Now()
	err := retryFor(context.Background(), 5*time.Second, func() error {
		if tries++; tries < 4 {
			return down
		}
		return nil
	})
	if err != nil || tries != 4 {
		t.Fatalf("got %v after %d tries, want success on the 4th", err, tries)
	}
	if took := time.Since(began); took > 1500*time.Millisecond {
		t.Errorf("4 tries took %v: the pauses between them are too long", took)
	}

	tries, began = 0, time.Now()
	err = retryFor(context.Background(), 700*time.Millisecond, func() error { tries++; return down })
	if !errors.Is(err, down) || tries < 3 {
		t.Fatalf("got %v after %d tries, want the last error after 3 tries at least", err, tries)
	}
	if took := time.Since(began); took > 700*time.Millisecond {
		t.Errorf("retried %v, past its 700 ms", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tries = 0
	if err := retryFor(ctx, time.Minute, func() error { tries++; return down }); !errors.Is(err, down) || tries != 1 {
		t.Errorf("cancelled: got %v after %d tries, want the error after one", err, tries)
	}
}
