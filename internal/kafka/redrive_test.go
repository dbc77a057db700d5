package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// waitDeadLetters polls the dead-letter topic until it holds n dead
// letters (markers aside).
func waitDeadLetters(t *testing.T, cfg Config, n int) []DeadLetter {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ds, err := ReadDeadLetters(ctx, cfg)
		cancel()
		if errors.Is(err, kerr.UnknownTopicOrPartition) && time.Now().Before(deadline) {
			// The follower has just created the topic, and the broker
			// answering may not know it yet.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == n {
			return ds
		}
		if len(ds) > n || time.Now().After(deadline) {
			t.Fatalf("the dead-letter topic holds %d dead letters, want %d: %+v", len(ds), n, ds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A poison record, dead-lettered, redriven, dead-lettered again with its
// mark, refused once it has been tried as often as allowed, and finally
// redriven mended: the view reads it.
func TestRedriveMarksAndBoundsItsCopies(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		poison := []byte(`{"specversion":"1.0","id":`)
		produce(t, cfg, cfg.Topics.Events, []byte("Dune"), poison)

		g := newGroup(t)
		lr := shelf.NewReplica(shelf.NewLastRead())
		f := NewFollower(cfg, "lastread", lr)
		g.run(t, "follower", f.Run)

		ds := waitDeadLetters(t, cfg, 1)
		d := ds[0]
		if d.OriginTopic != cfg.Topics.Events || d.OriginOffset < 0 || d.Error == "" || d.Redriven != 0 ||
			string(d.OriginKey) != "k" || string(d.Value) != string(poison) || d.Cut != "" {
			t.Fatalf("dead letter = %+v", d)
		}
		if err := d.Redrivable(cfg.Topics, 0); err != nil {
			t.Fatalf("not redrivable: %v", err)
		}

		opts := RedriveOpts{MaxRedrives: 2}
		byID := func(id string) func(DeadLetter) bool { return func(d DeadLetter) bool { return d.ID() == id } }
		// A dry run sends nothing.
		if res, err := Redrive(ctx, cfg, byID(d.ID()), RedriveOpts{DryRun: true}); err != nil || len(res) != 1 || res[0].Err != nil || res[0].To != "" {
			t.Fatalf("dry run = %+v, %v", res, err)
		}
		res, err := Redrive(ctx, cfg, byID(d.ID()), opts)
		if err != nil || len(res) != 1 || res[0].Err != nil || !strings.HasPrefix(res[0].To, cfg.Topics.Events+"/") {
			t.Fatalf("redrive = %+v, %v", res, err)
		}
		// The copy went back where the original was, as it was, marked.
		var copied *kgo.Record
		for _, r := range readAll(t, cfg, cfg.Topics.Events) {
			if r.Offset > d.OriginOffset && r.Partition == d.OriginPartition {
				copied = r
			}
		}
		if copied == nil || string(copied.Value) != string(poison) || string(copied.Key) != "k" ||
			headersOf(copied)[HeaderRedriven] != "1" || headersOf(copied)[HeaderError] != "" {
			t.Fatalf("the copy = %+v", copied)
		}
		// Once is enough: a second redrive of the same dead letter is refused.
		res, err = Redrive(ctx, cfg, byID(d.ID()), opts)
		if err != nil || len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "redriven already") {
			t.Fatalf("second redrive of %s = %+v, %v; want refused", d.ID(), res, err)
		}

		// The view fails on the copy too: a new dead letter, carrying the mark.
		ds = waitDeadLetters(t, cfg, 2)
		again := ds[0]
		if again.ID() == d.ID() {
			again = ds[1]
		}
		if again.Redriven != 1 || again.OriginOffset == d.OriginOffset {
			t.Fatalf("dead-lettered again = %+v, want the mark 1", again)
		}
		if res, err := Redrive(ctx, cfg, byID(again.ID()), opts); err != nil || len(res) != 1 || res[0].Err != nil {
			t.Fatalf("redrive of %s = %+v, %v", again.ID(), res, err)
		}
		ds = waitDeadLetters(t, cfg, 3)
		var third DeadLetter
		for _, x := range ds {
			if x.Redriven == 2 {
				third = x
			}
		}
		if third.Redriven != 2 {
			t.Fatalf("no dead letter redriven twice: %+v", ds)
		}
		res, err = Redrive(ctx, cfg, byID(third.ID()), opts)
		if err != nil || len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "redriven 2 times already") {
			t.Fatalf("redrive past the bound = %+v, %v; want refused with the reason", res, err)
		}

		// Mended by hand, it goes back and the view takes it.
		res, err = Redrive(ctx, cfg, byID(third.ID()), RedriveOpts{MaxRedrives: 3, Value: []byte("Solaris")})
		if err != nil || len(res) != 1 || res[0].Err != nil {
			t.Fatalf("mended redrive = %+v, %v", res, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got []shelf.ReadEntry
			lr.Read(func(v *shelf.LastRead) { got = v.Latest(5) })
			if len(got) == 2 && got[0].Title == "Solaris" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the view never read the mended record: %+v", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
		g.stop()
		waitDeadLetters(t, cfg, 3) // the mended one was not dead-lettered

		if _, err := Redrive(ctx, cfg, func(DeadLetter) bool { return false }, opts); !errors.Is(err, ErrNothingToRedrive) {
			t.Errorf("nothing matched: %v", err)
		}
	})
}

// What cannot be redriven says why.
func TestRedrivableSaysWhy(t *testing.T) {
	ts := TopicsFor("bookshelf")
	header := func(hs ...string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for i := 0; i+1 < len(hs); i += 2 {
			out = append(out, kgo.RecordHeader{Key: hs[i], Value: []byte(hs[i+1])})
		}
		return out
	}
	origin := []string{HeaderOriginTopic, ts.Events, HeaderOriginPartition, "1", HeaderOriginOffset, "7", HeaderError, "bad json"}
	for _, tc := range []struct {
		name    string
		headers []kgo.RecordHeader
		want    string // in the reason; "" for redrivable
	}{
		{"whole", header(origin...), ""},
		{"no origin", header(HeaderError, "bad"), "does not say where it came from"},
		{"cut", header(append(origin, HeaderOriginalSize, "2000000")...), "was cut to fit"},
		{"headers cut", header(append(origin, HeaderCutHeaders, "3")...), "3 headers left out"},
		{"tried enough", header(append(origin, HeaderRedriven, "3")...), "redriven 3 times already"},
		{"not admitted", header(HeaderOriginTopic, ts.Events, HeaderOriginPartition, "0", HeaderError, "not admitted by the placement rule: an outside add"), "through the API"},
		{"a reply", header(HeaderOriginTopic, ts.Replies, HeaderOriginPartition, "0"), "client that waited"},
		{"from the dead-letter topic", header(HeaderOriginTopic, ts.DLQ, HeaderOriginPartition, "0"), "dead-letter topic itself"},
	} {
		d, ok := parseDeadLetter(&kgo.Record{Partition: 2, Offset: 5, Headers: tc.headers, Value: []byte("x")})
		if !ok {
			t.Fatalf("%s: read as a marker", tc.name)
		}
		err := d.Redrivable(ts, 0)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want redrivable", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "2:5 ")):
			t.Errorf("%s: %v, want a reason with %q naming 2:5", tc.name, err, tc.want)
		}
	}
	if _, ok := parseDeadLetter(&kgo.Record{Headers: header(HeaderRedriveOf, "0:1", HeaderRedrivenTo, "bookshelf/0/9")}); ok {
		t.Error("a marker read as a dead letter")
	}
	d, _ := parseDeadLetter(&kgo.Record{Headers: header(append(origin, "traceparent", "00-x", HeaderRedriven, "1")...)})
	if hs := d.OriginalHeaders(); len(hs) != 2 || hs[0].Key != "traceparent" {
		t.Errorf("original headers = %v", hs)
	}
}
