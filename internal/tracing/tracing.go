// Package tracing is the bookshelf's adapter to OpenTelemetry traces: a
// service's TracerProvider set up from the standard OTEL_* variables, the
// HTTP server and client instrumentation, and the trace ids in the log.
//
// Tracing is off unless the environment asks for it: with no exporter
// named and no OTLP endpoint set, Start returns a Provider whose
// TracerProvider is nil, and the services then install no hooks and
// start no spans at all.
//
// A trace follows one command across the services: the gateway's server
// span, its proxy client span, the books service's server span, the
// command record's publish span, the aggregate's "decide" span, the event
// records' publish spans, and one "apply" span per view. The trace
// context crosses Kafka in the W3C traceparent header of each record.
//
// Parent-child, not links: each record is processed on its own (the
// aggregate decides one command at a time, a view applies one event at a
// time), and the OpenTelemetry messaging conventions let a consumer take
// the context a single message was created in as its parent. That keeps
// a command's whole path in one trace, which viewers that draw no links
// (Zipkin) show on one screen. Links are what a span covering a batch
// would need; none here does.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	//lint:ignore SA1019 the only exporter to the one trace viewer with a UI that runs here (Zipkin takes no OTLP); OTLP stays the default elsewhere
	"go.opentelemetry.io/otel/exporters/zipkin"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Settings say which service a Provider traces, and where it reads the
// environment.
type Settings struct {
	// Service is the service's name: service.name unless
	// OTEL_SERVICE_NAME is set and Fixed is not.
	Service string
	// Fixed keeps Service as the name whatever OTEL_SERVICE_NAME says:
	// for one process that runs several services (bookshelf up), each
	// traced under its own name.
	Fixed bool
	// Instance is service.instance.id.
	Instance string
	// Version is service.version, when known.
	Version string
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Console is where OTEL_TRACES_EXPORTER=console writes (default
	// os.Stdout).
	Console io.Writer
}

// Provider is one service's tracing: on, with an exporter behind it, or
// off.
type Provider struct {
	tp *sdktrace.TracerProvider // nil when off
}

// Start sets up the tracing of one service from the standard variables:
//
//   - OTEL_TRACES_EXPORTER: otlp, zipkin, console or none (default otlp
//     when an OTLP endpoint is set, else none: tracing off).
//   - OTEL_EXPORTER_OTLP_ENDPOINT (the base URL, /v1/traces is added
//     for http/protobuf) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full
//     URL); OTEL_EXPORTER_OTLP_PROTOCOL or
//     OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: http/protobuf (default) or grpc.
//     The exporter reads the other OTLP variables (headers, timeout,
//     certificates) itself.
//   - OTEL_EXPORTER_ZIPKIN_ENDPOINT (default
//     http://localhost:9411/api/v2/spans).
//   - OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG,
//     OTEL_SDK_DISABLED.
//
// It also sets the global propagator to W3C trace context and baggage. A
// setting it cannot use is an error naming the variable.
func Start(s Settings) (*Provider, error) {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	otel.SetTextMapPropagator(Propagator())
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return &Provider{}, nil
	}
	exp, err := exporter(getenv, s.Console)
	if err != nil || exp == nil {
		return &Provider{}, err
	}
	sampler, err := samplerFrom(getenv)
	if err != nil {
		return nil, err
	}
	name := s.Service
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" && !s.Fixed {
		name = v
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if s.Instance != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(s.Instance))
	}
	if s.Version != "" {
		attrs = append(attrs, semconv.ServiceVersion(s.Version))
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, attrs...)
	return &Provider{tp: sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
	)}, nil
}

// Propagator is the W3C trace context and baggage, the propagator of every
// service.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// On tells whether the provider records and exports spans.
func (p *Provider) On() bool { return p != nil && p.tp != nil }

// TracerProvider is the provider to start spans with, or nil when tracing
// is off: the caller then starts none.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if !p.On() {
		return nil
	}
	return p.tp
}

// Shutdown exports the spans still held and stops the exporter. It waits
// as long as ctx allows.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.On() {
		return nil
	}
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// exporter builds the exporter the variables name, or nil for none.
func exporter(getenv func(string) string, console io.Writer) (sdktrace.SpanExporter, error) {
	base := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	full := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
	kind := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	if kind == "" {
		kind = "none"
		if base != "" || full != "" {
			kind = "otlp"
		}
	}
	switch kind {
	case "none":
		return nil, nil
	case "otlp":
		return otlpExporter(getenv, base, full)
	case "zipkin":
		endpoint := strings.TrimSpace(getenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT"))
		if endpoint == "" {
			endpoint = "http://localhost:9411/api/v2/spans"
		}
		if err := checkURL(endpoint); err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_ZIPKIN_ENDPOINT=%q: %w", endpoint, err)
		}
		exp, err := zipkin.New(endpoint)
		if err != nil {
			return nil, fmt.Errorf("zipkin exporter: %w", err)
		}
		return exp, nil
	case "console":
		if console == nil {
			console = os.Stdout
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(console))
		if err != nil {
			return nil, fmt.Errorf("console exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp, zipkin, console or none (one exporter)", kind)
}

// otlpExporter builds the OTLP exporter. The endpoint URL is passed on
// explicitly, so that the exporter sends where these variables say even
// when the process's environment says otherwise (tests).
func otlpExporter(getenv func(string) string, base, full string) (sdktrace.SpanExporter, error) {
	proto, protoVar := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if proto == "" {
		proto, protoVar = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL")), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	if proto == "" {
		proto = "http/protobuf"
	}
	endpoint, endpointVar := full, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	switch {
	case full != "":
	case base != "" && proto == "http/protobuf":
		endpoint, endpointVar = strings.TrimSuffix(base, "/")+"/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"
	case base != "":
		endpoint, endpointVar = base, "OTEL_EXPORTER_OTLP_ENDPOINT"
	}
	if endpoint != "" {
		if err := checkURL(endpoint); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", endpointVar, endpoint, err)
		}
	}
	ctx := context.Background() // the exporters connect lazily: nothing blocks here
	switch proto {
	case "http/protobuf":
		var opts []otlptracehttp.Option
		if endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		return exp, nil
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("%s=%q: want http/protobuf or grpc (http/json is not supported)", protoVar, proto)
}

// checkURL refuses an endpoint that is not an absolute http(s) URL, which
// the exporters would otherwise take and fail on at every export.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL with a host")
	}
	return nil
}

// samplerFrom reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (default parentbased_always_on).
func samplerFrom(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// ShutdownWait is how long a service waits for its spans to be exported
// at exit.
const ShutdownWait = 5 * time.Second
