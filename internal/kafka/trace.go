package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Traces across Kafka. With Config.TracerProvider set, a command carries
// its submitter's trace context in its record's headers (W3C traceparent,
// written by kotel's publish span); the aggregate decides it in a
// "decide" span, child of that context; the events it writes carry the
// context of their own publish spans, children of "decide"; and each view
// applies an event in an "apply" span, child of the event's context.
// Parent-child rather than links: each record is processed on its own,
// which the OpenTelemetry messaging conventions allow, and it keeps one
// command's path in one trace. With no TracerProvider nothing here runs
// but a nil check.

// tracerName names the spans this package starts.
const tracerName = "github.com/bookshelf/bookshelf/internal/kafka"

// publishHooks gives the clients kotel's publish spans, when tracing is
// on: a producer span per record, whose context kotel writes into the
// record's headers.
func (c Config) publishHooks() kgo.Opt {
	if c.TracerProvider == nil {
		return kgo.WithHooks()
	}
	return kgo.WithHooks(publishSpans{kotel.NewTracer(kotel.TracerProvider(c.TracerProvider), kotel.TracerPropagator(otel.GetTextMapPropagator()))})
}

// publishSpans are kotel's produce hooks alone, for records produced
// within a trace: kotel's fetch hooks would start a span for every record
// read, the whole log on every view's start, and a record produced
// outside any trace (an outcome, a dead letter) would start a trace of
// its own that tells nothing.
type publishSpans struct{ t *kotel.Tracer }

func (p publishSpans) OnProduceRecordBuffered(r *kgo.Record) {
	if traced(r) {
		p.t.OnProduceRecordBuffered(r)
	}
}

// OnProduceRecordUnbuffered ends the publish span. A record that was
// traced when buffered has the publish span in its context now; one that
// was not has no span either.
func (p publishSpans) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if traced(r) {
		p.t.OnProduceRecordUnbuffered(r, err)
	}
}

func traced(r *kgo.Record) bool {
	return r.Context != nil && trace.SpanContextFromContext(r.Context).IsValid()
}

// tracedDecide decides cmd, read from r, as st.Decide does. With tracing
// on, it does so in a "decide" span, child of the command's context, and
// returns the context the command's event records are to be produced in
// (their Context), derived from ctx; nil with tracing off.
func (p *Processor) tracedDecide(ctx context.Context, st *shelf.Shelf, cmd shelf.Command, r *kgo.Record) (shelf.Decision, context.Context, error) {
	at := decisionTime(r, p.now)
	if p.cfg.TracerProvider == nil {
		dec, err := st.Decide(cmd, at)
		return dec, nil, err
	}
	parent := otel.GetTextMapPropagator().Extract(ctx, kotel.NewRecordCarrier(r))
	if !trace.SpanContextFromContext(parent).IsValid() {
		// A command sent outside any trace (kcat, a redrive) starts none.
		dec, err := st.Decide(cmd, at)
		return dec, nil, err
	}
	dctx, span := p.cfg.TracerProvider.Tracer(tracerName).Start(parent, "decide",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", r.Topic),
			attribute.Int("messaging.destination.partition.id", int(r.Partition)),
			attribute.Int64("messaging.kafka.offset", r.Offset),
			attribute.String("bookshelf.command.type", cmd.Type),
			attribute.String("bookshelf.book_id", cmd.BookID),
		))
	defer span.End()
	dec, err := st.Decide(cmd, at)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return dec, dctx, err
	}
	span.SetAttributes(attribute.Int("bookshelf.events", len(dec.Events)), attribute.Bool("bookshelf.replay", dec.Replay))
	return dec, dctx, nil
}

// tracedApply applies e, read from r, to the replica. With tracing on and
// the view caught up, an event whose record carries a trace context is
// applied in an "apply" span, child of it. Events read while catching up
// are not traced: they belong to old traces, and a view's start would
// otherwise export a span per event in the log.
func (f *Follower) tracedApply(r *kgo.Record, e *shelf.Event) {
	tp := f.cfg.TracerProvider
	if tp == nil || !f.live() || !hasTraceparent(r) {
		f.replica.Apply(e)
		return
	}
	parent := otel.GetTextMapPropagator().Extract(context.Background(), kotel.NewRecordCarrier(r))
	_, span := tp.Tracer(tracerName).Start(parent, "apply",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", r.Topic),
			attribute.String("messaging.consumer.group.name", f.name),
			attribute.Int("messaging.destination.partition.id", int(r.Partition)),
			attribute.Int64("messaging.kafka.offset", r.Offset),
			attribute.String("bookshelf.event.type", e.Type),
			attribute.String("bookshelf.book_id", e.BookID),
		))
	f.replica.Apply(e)
	span.End()
}

// live tells whether the follower has caught up with the log as it was at
// its start.
func (f *Follower) live() bool {
	select {
	case <-f.caughtUp:
		return true
	default:
		return false
	}
}

func hasTraceparent(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == "traceparent" {
			return true
		}
	}
	return false
}
