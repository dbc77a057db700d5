package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/web"
)

type opsDeadLetter struct {
	ID            string `json:"id"`
	Origin        string `json:"origin"`
	Redriven      int    `json:"redriven"`
	RedrivenTo    string `json:"redriven_to"`
	NotRedrivable string `json:"not_redrivable"`
	TraceID       string `json:"trace_id"`
	Value         string `json:"value"`
	Error         string `json:"error"`
}

// The console's dead-letter endpoints on the embedded broker: a poison
// event listed and shown with its origin, error and trace; redriven
// back to the log, where it fails again and is a new dead letter that
// says it was redriven once; the first not sent twice.
func TestOpsDeadLetterTopic(t *testing.T) {
	ports := newPorts(t)
	startUpInProcess(t, ports)
	gw := fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"])
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", ports["broker"])))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	rec := &kgo.Record{Topic: "bookshelf", Value: []byte(`{"specversion":`),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + trace + "-00f067aa0ba902b7-01")}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var list struct {
		DeadLetters []opsDeadLetter `json:"dead_letters"`
	}
	eventually(t, "the poison event listed", func() bool {
		getAt(t, gw+"/ops/api/dead-letters", "").json(t, &list)
		return len(list.DeadLetters) == 1
	})
	d := list.DeadLetters[0]
	if want := fmt.Sprintf("bookshelf/%d/%d", rec.Partition, rec.Offset); d.Origin != want || d.Error == "" || d.TraceID != trace || d.NotRedrivable != "" {
		t.Fatalf("listed %+v, want from %s with its trace", d, want)
	}
	var one opsDeadLetter
	getAt(t, gw+"/ops/api/dead-letters/"+d.ID, "").json(t, &one)
	if one.Value != `{"specversion":` {
		t.Fatalf("shown %+v", one)
	}

	var res struct {
		Sent, Refused int
		Redriven      []struct{ ID, To, Error string }
	}
	r := postJSON(t, gw+"/ops/api/dead-letters/redrive", `{"origin":"bookshelf"}`)
	r.json(t, &res)
	if r.status != 200 || res.Sent != 1 || !strings.HasPrefix(res.Redriven[0].To, fmt.Sprintf("bookshelf/%d/", rec.Partition)) {
		t.Fatalf("redrive: %d %s", r.status, r.body)
	}
	// Still poison: dead-lettered again, as redriven once.
	eventually(t, "the redriven copy dead-lettered again", func() bool {
		getAt(t, gw+"/ops/api/dead-letters", "").json(t, &list)
		return len(list.DeadLetters) == 2
	})
	// Listed by their place in the dead-letter topic, not by time.
	first, again := list.DeadLetters[0], list.DeadLetters[1]
	if first.ID != d.ID {
		first, again = again, first
	}
	if first.ID != d.ID || first.RedrivenTo != res.Redriven[0].To || first.NotRedrivable == "" ||
		again.Redriven != 1 || again.RedrivenTo != "" {
		t.Fatalf("after the redrive: %+v", list.DeadLetters)
	}
	r = postJSON(t, gw+"/ops/api/dead-letters/redrive", fmt.Sprintf(`{"ids":[%q]}`, d.ID))
	r.json(t, &res)
	if r.status != 200 || res.Sent != 0 || res.Refused != 1 || !strings.Contains(res.Redriven[0].Error, "redriven already") {
		t.Fatalf("a second redrive of %s: %d %s", d.ID, r.status, r.body)
	}
	var st struct {
		DeadLetters struct{ Total, Waiting int } `json:"dead_letters"`
	}
	getAt(t, gw+"/ops/api/status", "").json(t, &st)
	if st.DeadLetters.Total != 2 || st.DeadLetters.Waiting != 1 {
		t.Errorf("status counts %+v", st.DeadLetters)
	}
	if r := postJSON(t, gw+"/ops/api/dead-letters/redrive", `{"ids":["7:7"]}`); r.status != 404 || !strings.Contains(string(r.body), "no dead letter 7:7") {
		t.Errorf("an unknown id: %d %s", r.status, r.body)
	}
}

// A gateway without --broker finds the dead-letter topic's brokers in
// the registry, at each request; with none there, it says so.
func TestDeadLetterTopicFromTheRegistry(t *testing.T) {
	b, err := kafka.StartBroker(kafka.BrokerConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := kafka.Config{Brokers: []string{b.Addr()}, Topics: kafka.TopicsFor("bookshelf")}
	if err := kafka.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	reg := registry.NewMemory()
	topic := deadLetterTopic{cfg: kafka.Config{Topics: cfg.Topics}, reg: reg}
	if _, err := topic.List(ctx); err == nil || !strings.Contains(err.Error(), "no healthy kafka") {
		t.Fatalf("no kafka in the registry: %v", err)
	}
	host, port, _ := net.SplitHostPort(b.Addr())
	p, _ := strconv.Atoi(port)
	if err := reg.Register(ctx, registry.Instance{ID: "kafka-1", Service: registry.Kafka, Address: host, Port: p}); err != nil {
		t.Fatal(err)
	}
	if ds, err := topic.List(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("an empty dead-letter topic: %v %v", ds, err)
	}
	if _, err := topic.Redrive(ctx, nil, "bookshelf", nil); !errors.Is(err, web.ErrNoDeadLetter) {
		t.Fatalf("nothing to redrive: %v", err)
	}
}
