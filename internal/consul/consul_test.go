package consul_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/consul"
	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/registry/registrytest"
)

// These tests need a real Consul agent: BOOKSHELF_TEST_CONSUL names its
// HTTP address (make infra starts one on 127.0.0.1:8500). Without it they
// skip, unless BOOKSHELF_REQUIRE_INFRA is set, as in CI, where they fail.
func agent(t *testing.T) *consul.Registry {
	t.Helper()
	addr := os.Getenv("BOOKSHELF_TEST_CONSUL")
	if addr == "" {
		if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
			t.Fatal("BOOKSHELF_REQUIRE_INFRA is set but BOOKSHELF_TEST_CONSUL is not: run 'make infra' and set it")
		}
		t.Skip("no Consul agent: set BOOKSHELF_TEST_CONSUL (make infra starts one on 127.0.0.1:8500)")
	}
	r, err := consul.New(consul.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestBehaviour(t *testing.T) {
	r := agent(t)
	registrytest.Run(t, r, "bookshelf-suite-"+strconv.FormatInt(time.Now().UnixNano(), 36), 5*time.Second)
}

// An instance whose /readyz fails leaves the healthy list, and comes back
// when it passes again, seen through the blocking query.
func TestCheckFollowsReadyz(t *testing.T) {
	r := agent(t)
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	service := "bookshelf-check-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	in := registry.Instance{ID: service + "-1", Service: service, Address: host, Port: p}
	ctx := context.Background()
	if err := r.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	defer r.Deregister(ctx, in.ID)
	waitFor := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(4*consul.CheckInterval + 5*time.Second)
		for {
			got, err := r.Healthy(ctx, service)
			if err == nil && len(got) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d healthy (%v), want %d", what, len(got), err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("registered and ready", 1)
	ready.Store(false)
	waitFor("readyz failing", 0)
	ready.Store(true)
	waitFor("readyz passing again", 1)
}
