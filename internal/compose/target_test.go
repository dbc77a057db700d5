package compose

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// The target offers every kind of fault unless told otherwise, holds a
// freeze past the session timeout, and refuses a kind it does not know
// without touching the stack.
func TestTargetKinds(t *testing.T) {
	all := (&Target{}).Kinds()
	if len(all) != 8 {
		t.Errorf("%d kinds: %v", len(all), all)
	}
	tg := &Target{Session: 2 * time.Second, Only: []string{KillBooks}}
	if k := tg.Kinds(); len(k) != 1 || k[0] != KillBooks {
		t.Errorf("only kill books: %v", k)
	}
	if h := tg.Hold(FreezeBooks); h <= tg.Session {
		t.Errorf("a freeze of %s does not outlast a session of %s", h, tg.Session)
	}
	if _, _, err := tg.Inject(context.Background(), "flood", rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("an unknown kind of fault was injected")
	}
}
