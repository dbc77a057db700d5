package kafka

import (
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
