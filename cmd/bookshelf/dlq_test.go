package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/kafka"
)

// `bookshelf dlq` against an embedded broker: a dead letter is listed,
// shown, redriven once, and refused the second time with the reason; a
// redrive by origin passes over what was redriven.
func TestDLQCommand(t *testing.T) {
	b, err := kafka.StartBroker(kafka.BrokerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := kafka.Config{Brokers: []string{b.Addr()}, Topics: kafka.TopicsFor("shelf"), Partitions: 1}
	if err := kafka.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	dlq, err := kafka.NewDeadLetters(ctx, cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	// What a view meets: a broken record at offset 0 of the event log.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: "shelf", Key: []byte("book-1"), Value: []byte("{\"broken\x1b[2J")}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dlq.Send(rec, errors.New("malformed record: unexpected end of JSON input"))
	dlq.Close()

	dlqRun := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"dlq", args[0], "--broker", b.Addr(), "--topic", "shelf"}, args[1:]...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := dlqRun("list")
	if err != nil || !strings.Contains(out, "0:0  shelf/0/0") || !strings.Contains(out, "unexpected end of JSON") || !strings.Contains(out, "1 dead letter in shelf.dlq") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = dlqRun("show", "0:0")
	if err != nil || !strings.Contains(out, "origin      shelf/0/0") || !strings.Contains(out, kafka.HeaderOriginKey+": book-1") ||
		!strings.Contains(out, `"{\"broken\x1b[2J"`) || !strings.Contains(out, "redrive     yes") {
		t.Fatalf("show (the value quoted: it holds a terminal escape): %v\n%s", err, out)
	}
	out, err = dlqRun("redrive", "0:0")
	if err != nil || !strings.Contains(out, "redriven 0:0 to shelf/0/1 (redrive 1)") {
		t.Fatalf("redrive: %v\n%s", err, out)
	}
	out, err = dlqRun("redrive", "0:0")
	if err == nil || !strings.Contains(out, "redriven already, to shelf/0/1") {
		t.Fatalf("second redrive: %v\n%s; want refused with the reason", err, out)
	}
	out, err = dlqRun("redrive", "--origin", "shelf")
	if err != nil || !strings.Contains(out, "redriven already; nothing left") {
		t.Fatalf("redrive by origin: %v\n%s", err, out)
	}
	out, err = dlqRun("list", "--json")
	if err != nil || !strings.Contains(out, `"redriven_to":"shelf/0/1"`) {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	for _, bad := range [][]string{{"show"}, {"show", "x"}, {"redrive"}, {"redrive", "0:0", "--origin", "shelf"}, {"show", "5:5"}} {
		if out, err := dlqRun(bad...); err == nil {
			t.Errorf("dlq %v: no error\n%s", bad, out)
		}
	}
}
