package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
)

func TestMiddlewarePanicAndMetrics(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	reg := metrics.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	mux.HandleFunc("GET /ok/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("fine")) })
	Common(mux, nil, reg)
	h := Middleware(mux, WithLogger(log), WithMetrics(reg))

	rec := do(t, h, "GET", "/boom", "")
	if rec.Code != 500 {
		t.Fatalf("panic: %d", rec.Code)
	}
	if p := problemOf(t, rec); strings.Contains(p.Detail, "kaboom") {
		t.Errorf("the panic leaked to the client: %q", p.Detail)
	}
	if !strings.Contains(logs.String(), "kaboom") || !strings.Contains(logs.String(), "stack=") {
		t.Errorf("panic not logged: %s", logs.String())
	}

	for range 2 {
		do(t, h, "GET", "/ok/1", "")
	}
	do(t, h, "GET", "/ok/2", "")
	do(t, h, "GET", "/nothing", "")
	if rec := do(t, h, "GET", "/healthz", ""); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("healthz %d %q", rec.Code, rec.Body)
	}
	if rec := do(t, h, "GET", "/readyz", ""); rec.Code != 200 {
		t.Errorf("readyz %d", rec.Code)
	}
	rec = do(t, h, "GET", "/metrics", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != metrics.ContentType {
		t.Fatalf("metrics %d %v", rec.Code, rec.Header())
	}
	for _, line := range []string{
		`bookshelf_http_requests_total{code="2xx",route="GET /ok/{id}"} 3`,
		`bookshelf_http_requests_total{code="5xx",route="GET /boom"} 1`,
		`bookshelf_http_requests_total{code="4xx",route=""} 1`,
		`bookshelf_http_requests_total{code="2xx",route="GET /healthz"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("metrics lack %s:\n%s", line, rec.Body)
		}
	}
}

func TestNewServer(t *testing.T) {
	var logs bytes.Buffer
	srv := NewServer(":0", http.NotFoundHandler(), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 15*time.Second || srv.WriteTimeout != 20*time.Second ||
		srv.IdleTimeout != 60*time.Second || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("limits %+v", srv)
	}
	srv.ErrorLog.Print("http: TLS handshake error")
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "TLS handshake") {
		t.Errorf("server errors are not logged through slog: %q", logs.String())
	}
}

// /readyz: ready, ready with a warning a person should see, or 503 with
// the reason.
func TestReadyzSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		ok     bool
		reason string
		status int
		body   string
	}{
		{true, "", 200, "ready\n"},
		{true, "the dead-letter topic cannot be written", 200, "ready, but the dead-letter topic cannot be written\n"},
		{false, "catching up: 1 of 2 records", 503, "catching up: 1 of 2 records"},
	} {
		mux := http.NewServeMux()
		Common(mux, func() (bool, string) { return tc.ok, tc.reason }, nil)
		rec := do(t, mux, "GET", "/readyz", "")
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("ready %v %q: %d %q, want %d with %q", tc.ok, tc.reason, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
}
