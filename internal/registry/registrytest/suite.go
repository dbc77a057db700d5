// Package registrytest is the behaviour every registry.Registry must show,
// as a test suite run against each implementation.
package registrytest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/registry"
)

// Run checks reg. service must be a name no other test uses. Registries
// that are eventually consistent get up to wait to show a change.
func Run(t *testing.T, reg registry.Registry, service string, wait time.Duration) {
	ctx := context.Background()
	eventually := func(what string, want int) []registry.Instance {
		t.Helper()
		deadline := time.Now().Add(wait)
		for {
			got, err := reg.Healthy(ctx, service)
			if err != nil {
				t.Fatalf("%s: healthy: %v", what, err)
			}
			if len(got) == want {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d healthy instances, want %d: %+v", what, len(got), want, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got, err := reg.Healthy(ctx, service); err != nil || len(got) != 0 {
		t.Fatalf("unknown service: %v, %v; want none", got, err)
	}
	// Real listeners, answering every check.
	ports := make([]int, 2)
	for i := range ports {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
		t.Cleanup(srv.Close)
		ports[i] = srv.Listener.Addr().(*net.TCPAddr).Port
	}
	a := registry.Instance{ID: service + "-a", Service: service, Address: "127.0.0.1", Port: ports[0], Tags: []string{"books", "last"}}
	b := registry.Instance{ID: service + "-b", Service: service, Address: "127.0.0.1", Port: ports[1]}
	for _, in := range []registry.Instance{a, b} {
		if err := reg.Register(ctx, in); err != nil {
			t.Fatalf("register %s: %v", in.ID, err)
		}
	}
	got := eventually("two registered", 2)
	byID := map[string]registry.Instance{}
	for _, in := range got {
		byID[in.ID] = in
	}
	if in := byID[a.ID]; in.Port != a.Port || in.Address != a.Address || len(in.Tags) != 2 {
		t.Fatalf("instance a came back as %+v", in)
	}
	if err := reg.Register(ctx, registry.Instance{ID: "x", Service: service, Address: "127.0.0.1"}); err == nil {
		t.Fatal("an instance without a port was registered")
	}
	if err := reg.Deregister(ctx, a.ID); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	if got := eventually("one deregistered", 1); got[0].ID != b.ID {
		t.Fatalf("left %+v, want %s", got, b.ID)
	}
	if err := reg.Deregister(ctx, "never-registered"); err != nil {
		t.Fatalf("deregister unknown: %v", err)
	}
	if err := reg.Deregister(ctx, b.ID); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	eventually("all deregistered", 0)
}
