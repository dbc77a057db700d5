package compose

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The target offers every kind of fault unless told otherwise, holds a
// freeze and a cut past the session timeout, and refuses a kind it does
// not know without touching the stack.
func TestTargetKinds(t *testing.T) {
	all := (&Target{}).Kinds()
	if len(all) != 9 || !slices.Contains(all, CutBooks) {
		t.Errorf("%d kinds: %v", len(all), all)
	}
	tg := &Target{Session: 2 * time.Second, Only: []string{KillBooks}}
	if k := tg.Kinds(); len(k) != 1 || k[0] != KillBooks {
		t.Errorf("only kill books: %v", k)
	}
	for _, kind := range []string{FreezeBooks, CutBooks} {
		if h := tg.Hold(kind); h <= tg.Session {
			t.Errorf("%s for %s does not outlast a session of %s", kind, h, tg.Session)
		}
	}
	if _, _, err := tg.Inject(context.Background(), "flood", rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("an unknown kind of fault was injected")
	}
}

// links records what the target asks of the proxies: true for a cut,
// false for a reconnection; and, apart, the proxies closed and opened.
type links struct {
	calls []bool
	set   []string
	fail  error
}

func (l *links) Disable(_ context.Context, broker string) error {
	l.set = append(l.set, "close "+broker)
	return nil
}

func (l *links) Enable(_ context.Context, broker string) error {
	l.set = append(l.set, "open "+broker)
	return nil
}

func (l *links) Cut(context.Context) ([]string, error) {
	l.calls = append(l.calls, true)
	if l.fail != nil {
		return []string{"kafka-1"}, l.fail
	}
	return []string{"kafka-1", "kafka-2", "kafka-3"}, nil
}

func (l *links) Reconnect(context.Context) ([]string, error) {
	l.calls = append(l.calls, false)
	return []string{"kafka-1", "kafka-2", "kafka-3"}, nil
}

// A cut needs the proxies, and a books-cut replica to cut off: without
// either (here no stack runs) it is refused and nothing is cut. A cut
// that fails halfway reconnects every proxy.
func TestCutBooks(t *testing.T) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	none := &Target{Project: Project{Name: "bookshelf-no-such-project"}}
	if _, _, err := none.Inject(ctx, CutBooks, rng); err == nil {
		t.Error("a cut without proxies was injected")
	}
	l := &links{}
	tg := &Target{Project: Project{Name: "bookshelf-no-such-project"}, Links: l}
	if _, _, err := tg.Inject(ctx, CutBooks, rng); err == nil || len(l.calls) != 0 {
		t.Errorf("a cut with no books-cut running: %v, proxies set %v", err, l.calls)
	}

	// The halfway cut, on the cut itself (no container needed).
	l = &links{fail: errors.New("kafka-2: refused")}
	tg.Links = l
	if _, err := tg.disconnect(ctx); err == nil || !slices.Equal(l.calls, []bool{true, false}) {
		t.Errorf("a failed cut: %v, proxies set %v, want cut then reconnected", err, l.calls)
	}
}

// A broker kill closes the proxy in front of the broker it killed, and
// only then: with no stack, nothing is killed and no proxy is touched.
func TestKillBrokerWithoutAStackLeavesTheProxies(t *testing.T) {
	l := &links{}
	tg := &Target{Project: Project{Name: "bookshelf-no-such-project"}, Links: l}
	if _, _, err := tg.Inject(t.Context(), KillBroker, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("a broker of no stack was killed")
	}
	if len(l.set) != 0 {
		t.Errorf("proxies set %v with no broker killed", l.set)
	}
	if err := tg.follow(t.Context(), "kafka-2", false); err != nil || !slices.Equal(l.set, []string{"close kafka-2"}) {
		t.Errorf("follow kafka-2 down: %v, proxies set %v", err, l.set)
	}
}
