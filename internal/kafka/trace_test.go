package kafka

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// The propagator the services set globally (internal/tracing does, in
// each service's start).
func init() { otel.SetTextMapPropagator(propagation.TraceContext{}) }

// A command submitted within a trace is decided and applied within it:
// the command's publish span is the child of the submitter's span, the
// decide span of that, each event's publish span of decide, and the
// view's apply span of the event's. Records written outside a trace (the
// outcomes) start none, and a view catching up traces nothing.
func TestTracesFollowACommandAcrossKafka(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		cfg.TracerProvider = tp
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		lr := shelf.NewReplica(shelf.NewLastRead())
		f := NewFollower(cfg, "lastread", lr)
		g.run(t, "follower", f.Run)
		select {
		case <-f.CaughtUp():
		case <-time.After(20 * time.Second):
			t.Fatal("the view never caught up")
		}

		ctx, request := tp.Tracer("test").Start(context.Background(), "request")
		o := submitIn(ctx, t, sub, addCmd("b1", "The Dispossessed"))
		request.End()
		if o.Status != shelf.StatusAccepted {
			t.Fatalf("outcome %+v", o)
		}
		var spans []sdktrace.ReadOnlySpan
		deadline := time.Now().Add(10 * time.Second)
		for {
			spans = rec.Ended()
			applied := false
			for _, s := range spans {
				applied = applied || s.Name() == "apply"
			}
			if applied {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no apply span in %d spans", len(spans))
			}
			time.Sleep(20 * time.Millisecond)
		}
		one := func(name string) sdktrace.ReadOnlySpan {
			t.Helper()
			var found []sdktrace.ReadOnlySpan
			for _, s := range spans {
				if s.Name() == name {
					found = append(found, s)
				}
			}
			if len(found) != 1 {
				t.Fatalf("%d spans %q, want one, in %v", len(found), name, names(spans))
			}
			return found[0]
		}
		chain := []sdktrace.ReadOnlySpan{one("request"), one(cfg.Topics.Commands + " publish"), one("decide"),
			one(cfg.Topics.Events + " publish"), one("apply")}
		for i := 1; i < len(chain); i++ {
			up, s := chain[i-1], chain[i]
			if s.Parent().SpanID() != up.SpanContext().SpanID() || s.SpanContext().TraceID() != up.SpanContext().TraceID() {
				t.Errorf("%q: parent %s of trace %s, want %q %s of trace %s", s.Name(), s.Parent().SpanID(), s.SpanContext().TraceID(),
					up.Name(), up.SpanContext().SpanID(), up.SpanContext().TraceID())
			}
		}
		if len(spans) != len(chain) {
			t.Errorf("spans %v: want only the chain (the outcome's record starts no trace)", names(spans))
		}

		// A view that starts now reads the event while catching up: old
		// news, not traced.
		late := NewFollower(cfg, "late", shelf.NewReplica(shelf.NewLastRead()))
		g.run(t, "late follower", late.Run)
		select {
		case <-late.CaughtUp():
		case <-time.After(20 * time.Second):
			t.Fatal("the late view never caught up")
		}
		if n := len(rec.Ended()); n != len(chain) {
			t.Errorf("spans %v after a view caught up: want no more", names(rec.Ended()))
		}
	})
}

// Tracing off, nothing of a caller's trace reaches the records.
func TestNoTraceHeadersWhenTracingIsOff(t *testing.T) {
	each(t, func(t *testing.T, cfg Config) {
		tp := sdktrace.NewTracerProvider()
		g := newGroup(t)
		sub, _ := startBooks(t, g, cfg, "a")
		ctx, span := tp.Tracer("test").Start(context.Background(), "request")
		defer span.End()
		if o := submitIn(ctx, t, sub, addCmd("b1", "The Dispossessed")); o.Status != shelf.StatusAccepted {
			t.Fatalf("outcome %+v", o)
		}
		for _, topic := range []string{cfg.Topics.Commands, cfg.Topics.Events} {
			recs := readAll(t, cfg, topic)
			if len(recs) == 0 {
				t.Fatalf("nothing in %s", topic)
			}
			for _, r := range recs {
				if _, ok := headersOf(r)["traceparent"]; ok {
					t.Errorf("%s/%d@%d carries a traceparent with tracing off", topic, r.Partition, r.Offset)
				}
			}
		}
	})
}

// submitIn is submit within ctx's trace.
func submitIn(ctx context.Context, t *testing.T, sub *Submitter, c shelf.Command) shelf.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	o, err := sub.Submit(ctx, c)
	if err != nil {
		t.Fatalf("submit %s %s: %v", c.Type, c.BookID, err)
	}
	return o
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}
