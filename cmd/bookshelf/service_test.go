package main

import (
	"context"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/kafka"
)

// A component built but never run (up gave up on a later one) leaves
// nothing behind once discarded: no client of the broker, no listener.
func TestDiscardReleasesAComponentNeverRun(t *testing.T) {
	b, err := kafka.StartBroker(kafka.BrokerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := kafka.Config{Brokers: []string{b.Addr()}, Topics: kafka.TopicsFor("shelf"), Partitions: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	settled := func(limit int) int {
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); n > limit && time.Now().Before(deadline); n = runtime.NumGoroutine() {
			time.Sleep(50 * time.Millisecond)
		}
		return n
	}
	// Before: once the count holds still, the topics' client gone.
	before := runtime.NumGoroutine()
	for n := -1; n != before; {
		n = before
		time.Sleep(200 * time.Millisecond)
		before = runtime.NumGoroutine()
	}
	ln, err := listen("127.0.0.1", 0, "port")
	if err != nil {
		t.Fatal(err)
	}
	c, err := newBooks(cfg, ln, serviceFlags{name: "books"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.ready(); ok {
		t.Fatal("a books instance not run says it is ready")
	}
	c.discard()
	if n := settled(before); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after discard, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	again, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the port is still held after discard: %v", err)
	}
	again.Close()
}
