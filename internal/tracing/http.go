package tracing

import (
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
)

// Handler wraps a service's handler with a server span per request, named
// by the route the handler's ServeMux matched ("POST /books"), child of
// the caller's trace context when the request carries one. Each answer
// carries the W3C traceresponse header (trace context level 2), which
// names the trace and the server span, so a client can find its trace.
//
// The probes (/healthz, /readyz, /metrics) are not traced: they come
// every few seconds and tell nothing of a request's path. Off, Handler
// returns h itself.
func (p *Provider) Handler(h http.Handler) http.Handler {
	if !p.On() {
		return h
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
			w.Header().Set("traceresponse", traceparent(sc))
		}
		h.ServeHTTP(w, r)
	})
	return otelhttp.NewHandler(inner, "",
		otelhttp.WithTracerProvider(p.tp),
		otelhttp.WithPropagators(Propagator()),
		otelhttp.WithSpanNameFormatter(serverSpanName),
		otelhttp.WithFilter(func(r *http.Request) bool { return !probe(r.URL.Path) }),
	)
}

// Transport wraps rt (http.DefaultTransport when nil) with a client span
// per request and the trace context injected into its headers. Off, it
// returns rt itself.
func (p *Provider) Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if !p.On() {
		return rt
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(p.tp),
		otelhttp.WithPropagators(Propagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
}

// serverSpanName is the route the ServeMux matched, once it has (the
// formatter runs again after the handler), else the method alone: a path
// with ids in it would give every book a span name of its own.
func serverSpanName(_ string, r *http.Request) string {
	switch {
	case r.Pattern == "":
		return r.Method
	case strings.HasPrefix(r.Pattern, r.Method+" "):
		return r.Pattern
	}
	return r.Method + " " + r.Pattern
}

func probe(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// traceparent formats sc as a W3C traceparent (and traceresponse) value.
func traceparent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}
