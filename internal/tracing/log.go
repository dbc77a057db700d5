package tracing

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// LogHandler adds trace_id and span_id to every record logged with a
// context that carries a span (slog's ...Context methods), so that a log
// line leads to its trace and back. It costs a context lookup per line.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ next slog.Handler }

func (l logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.next.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.next.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.next.WithGroup(name)} }

// LogErrors sends OpenTelemetry's own errors, such as an exporter that
// cannot reach its endpoint, to log instead of the standard library's
// logger: one line, then at most one a minute with the count of those
// left out, since an endpoint that is away fails every export. It is
// process-wide: call it once, with the process's logger.
func LogErrors(log *slog.Logger) {
	var mu sync.Mutex
	var last time.Time
	var left int
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !last.IsZero() && time.Since(last) < errorEvery {
			left++
			return
		}
		log.Warn("tracing failed; spans may be lost", "err", err, "errors_not_logged", left)
		last, left = time.Now(), 0
	}))
}

// errorEvery bounds how often LogErrors logs.
const errorEvery = time.Minute
