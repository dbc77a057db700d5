package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes what the
// services export, as a collector would.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []span
	bad   []string
}

// span is one received span with the service that sent it.
type span struct {
	service, name string
	kind          tracepb.Span_SpanKind
	trace, id, up string // hex ids; up is the parent's, "" for a root
	attrs         map[string]string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		o.mu.Lock()
		o.bad = append(o.bad, fmt.Sprintf("%s %s %s: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err))
		o.mu.Unlock()
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				got := span{service: service, name: sp.Name, kind: sp.Kind,
					trace: hex.EncodeToString(sp.TraceId), id: hex.EncodeToString(sp.SpanId),
					up: hex.EncodeToString(sp.ParentSpanId), attrs: map[string]string{}}
				for _, kv := range sp.Attributes {
					got.attrs[kv.Key] = kv.GetValue().GetStringValue()
				}
				o.spans = append(o.spans, got)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// of returns the spans of one trace.
func (o *otlpReceiver) of(traceID string) []span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []span
	for _, s := range o.spans {
		if s.trace == traceID {
			out = append(out, s)
		}
	}
	return out
}

// One command's spans reach an OTLP receiver, in one trace, each the
// child of the one before: the gateway's server span, its proxy client
// span, the books service's server span, the command's publish span, the
// aggregate's decide span, the event's publish span, and an apply span in
// each of the three views.
func TestUpTracesACommandAcrossTheServices(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		rcv := &otlpReceiver{}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		s := startUpEnv(t, t.TempDir(), newPorts(t), tg, []string{
			"OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL,
			"OTEL_BSP_SCHEDULE_DELAY=100", // export within a tenth of a second
			"OTEL_SERVICE_NAME=ignored-in-up",
			"BOOKSHELF_LOG_FORMAT=json", "BOOKSHELF_LOG_LEVEL=debug", // a line per request
		})

		add := postJSON(t, s.gateway+"/books", `{"title":"Solaris","authors":["Stanisław Lem"],"year":1961}`)
		if add.status != 201 {
			t.Fatalf("add: %d %s", add.status, add.body)
		}
		// traceresponse: 00-<trace id>-<the gateway's server span>-<flags>
		parts := strings.Split(add.header.Get("traceresponse"), "-")
		if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
			t.Fatalf("traceresponse %q: want 00-<trace id>-<span id>-<flags>", add.header.Get("traceresponse"))
		}
		traceID, rootID := parts[1], parts[2]

		var views []string // the services' registered names, which name their traces
		for _, kind := range []string{"lastread", "catalog", "stats"} {
			views = append(views, specOf(kind).service)
		}
		var spans []span
		deadline := time.Now().Add(30 * time.Second)
		for {
			spans = rcv.of(traceID)
			applied := map[string]bool{}
			for _, sp := range spans {
				if sp.name == "apply" {
					applied[sp.service] = true
				}
			}
			if len(applied) == len(views) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30 s the trace has %d spans, applies in %v:\n%s", len(spans), applied, describe(spans))
			}
			time.Sleep(100 * time.Millisecond)
		}
		rcv.mu.Lock()
		if len(rcv.bad) > 0 {
			t.Errorf("exports refused: %v", rcv.bad)
		}
		rcv.mu.Unlock()

		byID := map[string]span{}
		for _, sp := range spans {
			byID[sp.id] = sp
		}
		// want finds the one span of the trace with that service, name
		// and kind, and checks its parent is up.
		want := func(service, name string, kind tracepb.Span_SpanKind, up span) span {
			t.Helper()
			var found []span
			for _, sp := range spans {
				if sp.service == service && sp.name == name && sp.kind == kind && sp.up == up.id {
					found = append(found, sp)
				}
			}
			if len(found) != 1 {
				t.Fatalf("want one %s span %q (%v) child of %q %s, found %d in:\n%s", service, name, kind, up.name, up.id, len(found), describe(spans))
			}
			return found[0]
		}
		gw := byID[rootID]
		if gw.service != "gateway" || gw.name != "POST /books" || gw.kind != tracepb.Span_SPAN_KIND_SERVER || gw.up != "" {
			t.Fatalf("the traceresponse names %+v, want the gateway's root server span POST /books:\n%s", gw, describe(spans))
		}
		proxy := want("gateway", "POST", tracepb.Span_SPAN_KIND_CLIENT, gw)
		books := want("books", "POST /books", tracepb.Span_SPAN_KIND_SERVER, proxy)
		command := want("books", tg.topic+".commands publish", tracepb.Span_SPAN_KIND_PRODUCER, books)
		decide := want("books", "decide", tracepb.Span_SPAN_KIND_CONSUMER, command)
		if decide.attrs["bookshelf.command.type"] == "" {
			t.Errorf("decide span without its command type: %v", decide.attrs)
		}
		event := want("books", tg.topic+" publish", tracepb.Span_SPAN_KIND_PRODUCER, decide)
		for _, v := range views {
			want(v, "apply", tracepb.Span_SPAN_KIND_CONSUMER, event)
		}

		// The log line of each request names its trace and span.
		logged := map[string]string{} // service -> span id
		for line := range strings.Lines(s.stderr.String()) {
			var l struct{ Msg, Service, Path string }
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			var ids map[string]string
			_ = json.Unmarshal([]byte(line), &ids)
			if l.Msg == "http request" && l.Path == "/books" && ids["trace_id"] == traceID {
				logged[l.Service] = ids["span_id"]
			}
		}
		if logged["gateway"] != gw.id || logged["books"] != books.id {
			t.Errorf("the JSON log names spans %v for the request; want gateway %s, books %s", logged, gw.id, books.id)
		}
	})
}

func TestLogFormatIsTextOrJSON(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		if _, err := newLogger(io.Discard, "info", format); err != nil {
			t.Errorf("--log-format %s: %v", format, err)
		}
	}
	if _, err := newLogger(io.Discard, "info", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("--log-format xml: %v, want an error naming the flag", err)
	}
}

func describe(spans []span) string {
	var b strings.Builder
	for _, sp := range spans {
		fmt.Fprintf(&b, "  %-13s %-28q %-22v id %s parent %s\n", sp.service, sp.name, sp.kind, sp.id, sp.up)
	}
	return b.String()
}
