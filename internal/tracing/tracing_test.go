package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestStartIsOffUnlessAnExporterIsAskedFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(string) string
		on   bool
	}{
		{"nothing set", env(), false},
		{"exporter none", env("OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), false},
		{"sdk disabled", env("OTEL_SDK_DISABLED", "true", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), false},
		{"only the service name", env("OTEL_SERVICE_NAME", "x"), false},
		{"otlp endpoint", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), true},
		{"otlp traces endpoint", env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces"), true},
		{"otlp grpc", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), true},
		{"otlp named, default endpoint", env("OTEL_TRACES_EXPORTER", "otlp"), true},
		{"zipkin", env("OTEL_TRACES_EXPORTER", "zipkin"), true},
		{"console", env("OTEL_TRACES_EXPORTER", "console"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(Settings{Service: "books", Getenv: tc.env, Console: &bytes.Buffer{}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if p.On() != tc.on || (p.TracerProvider() != nil) != tc.on {
				t.Fatalf("on %v, tracer provider %v; want on %v", p.On(), p.TracerProvider(), tc.on)
			}
			// Off, the wrappers hand back what they were given.
			h := http.NotFoundHandler()
			if !tc.on {
				if got := p.Handler(h); got == nil || !sameHandler(got, h) {
					t.Errorf("off, Handler wraps the handler")
				}
				if p.Transport(http.DefaultTransport) != http.DefaultTransport {
					t.Errorf("off, Transport wraps the transport")
				}
			}
		})
	}
}

func sameHandler(a, b http.Handler) bool {
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	return rec.Header().Get("traceresponse") == "" && rec.Code == http.StatusNotFound
}

func TestStartRefusesWhatItCannotUseNamingTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  func(string) string
		want string
	}{
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\""},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "carrier-pigeon"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{env("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"), "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x/v1/traces"), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{env("OTEL_TRACES_EXPORTER", "jaeger"), "OTEL_TRACES_EXPORTER=\"jaeger\""},
		{env("OTEL_TRACES_EXPORTER", "otlp,console"), "one exporter"},
		{env("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_EXPORTER_ZIPKIN_ENDPOINT", "localhost:9411"), "OTEL_EXPORTER_ZIPKIN_ENDPOINT"},
		{env("OTEL_TRACES_EXPORTER", "console", "OTEL_TRACES_SAMPLER", "sometimes"), "OTEL_TRACES_SAMPLER=\"sometimes\""},
		{env("OTEL_TRACES_EXPORTER", "console", "OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "2"), "OTEL_TRACES_SAMPLER_ARG"},
	} {
		p, err := Start(Settings{Service: "books", Getenv: tc.env, Console: &bytes.Buffer{}})
		if err == nil {
			p.Shutdown(context.Background())
			t.Errorf("want an error naming %s, got none", tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q does not name %s", err, tc.want)
		}
	}
}

// The console exporter shows what a service exports: the service name
// (OTEL_SERVICE_NAME unless fixed), the instance, the sampler's choice.
func TestStartNamesTheServiceAndSamples(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     Settings
		env     func(string) string
		service string // "" : no span exported
	}{
		{"default name", Settings{Service: "books"}, env("OTEL_TRACES_EXPORTER", "console"), "books"},
		{"OTEL_SERVICE_NAME", Settings{Service: "books"}, env("OTEL_TRACES_EXPORTER", "console", "OTEL_SERVICE_NAME", "shelf-a"), "shelf-a"},
		{"fixed name", Settings{Service: "books", Fixed: true}, env("OTEL_TRACES_EXPORTER", "console", "OTEL_SERVICE_NAME", "shelf-a"), "books"},
		{"always_off", Settings{Service: "books"}, env("OTEL_TRACES_EXPORTER", "console", "OTEL_TRACES_SAMPLER", "always_off"), ""},
		{"ratio 0", Settings{Service: "books"}, env("OTEL_TRACES_EXPORTER", "console", "OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := tc.set
			s.Getenv, s.Console, s.Instance = tc.env, &out, "books-1"
			p, err := Start(s)
			if err != nil {
				t.Fatal(err)
			}
			_, span := p.TracerProvider().Tracer("test").Start(context.Background(), "x")
			span.End()
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tc.service == "" {
				if out.Len() > 0 {
					t.Fatalf("sampled out, yet exported: %s", out.String())
				}
				return
			}
			var got struct {
				Name     string
				Resource []struct {
					Key   string
					Value struct{ Value any }
				}
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("console output %q: %v", out.String(), err)
			}
			attrs := map[string]any{}
			for _, kv := range got.Resource {
				attrs[kv.Key] = kv.Value.Value
			}
			if got.Name != "x" || attrs["service.name"] != tc.service || attrs["service.instance.id"] != "books-1" {
				t.Fatalf("exported %q with resource %v; want service.name %q, service.instance.id books-1", got.Name, attrs, tc.service)
			}
		})
	}
}

// A request gets a server span named by its route, child of the caller's
// traceparent, and its answer the traceresponse naming that span; the
// transport sends the context on.
func TestHandlerAndTransportCarryTheTrace(t *testing.T) {
	var out bytes.Buffer
	p, err := Start(Settings{Service: "gateway", Getenv: env("OTEL_TRACES_EXPORTER", "console"), Console: &out})
	if err != nil {
		t.Fatal(err)
	}
	var sent string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = r.Header.Get("traceparent")
	}))
	defer backend.Close()
	client := &http.Client{Transport: p.Transport(nil)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /books/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", backend.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})
	srv := httptest.NewServer(p.Handler(mux))
	defer srv.Close()

	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req, _ := http.NewRequest("POST", srv.URL+"/books/b1/read", nil)
	req.Header.Set("traceparent", caller)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr := resp.Header.Get("traceresponse")
	if !strings.HasPrefix(tr, "00-0af7651916cd43dd8448eb211c80319c-") || strings.Contains(tr, "b7ad6b7169203331") {
		t.Errorf("traceresponse %q: want the caller's trace and the server's own span", tr)
	}
	if !strings.HasPrefix(sent, "00-0af7651916cd43dd8448eb211c80319c-") {
		t.Errorf("the backend got traceparent %q: want the caller's trace", sent)
	}
	// The probes are not traced.
	probeResp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	probeResp.Body.Close()
	if probeResp.Header.Get("traceresponse") != "" {
		t.Errorf("/readyz traced")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // name -> parent
	dec := json.NewDecoder(&out)
	for dec.More() {
		var s struct {
			Name   string
			Parent struct{ SpanID string }
		}
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		names[s.Name] = s.Parent.SpanID
	}
	if parent, ok := names["POST /books/{id}/read"]; !ok || parent != "b7ad6b7169203331" {
		t.Errorf("spans %v: want a server span POST /books/{id}/read, child of the caller's span", names)
	}
	if _, ok := names["GET"]; !ok {
		t.Errorf("spans %v: want a client span GET", names)
	}
}

func TestLogHandlerAddsTheTraceIDs(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&out, nil))).With("service", "books")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 0xf7, 1}, SpanID: trace.SpanID{0xb7, 2}, TraceFlags: trace.FlagsSampled,
	})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced")
	log.Info("not traced")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log: %q", out.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["trace_id"] != sc.TraceID().String() || first["span_id"] != sc.SpanID().String() || first["service"] != "books" {
		t.Errorf("traced line %v: want trace_id %s span_id %s", first, sc.TraceID(), sc.SpanID())
	}
	if _, ok := second["trace_id"]; ok {
		t.Errorf("untraced line has a trace id: %v", second)
	}
}

// OpenTelemetry's own errors go to the service's log, not once per failed
// export.
func TestLogErrorsLogsOnceAMinute(t *testing.T) {
	var out bytes.Buffer
	LogErrors(slog.New(slog.NewTextHandler(&out, nil)))
	t.Cleanup(func() { LogErrors(slog.New(slog.DiscardHandler)) })
	for range 3 {
		otel.Handle(errors.New("export: connection refused"))
	}
	if n := strings.Count(out.String(), "tracing failed"); n != 1 || !strings.Contains(out.String(), "connection refused") {
		t.Fatalf("logged %d lines for 3 errors in a row: %q", n, out.String())
	}
}
