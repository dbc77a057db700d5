package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
)

// Server limits. The write timeout leaves room for the longest handler: a
// command waits up to DefaultSubmitTimeout for its outcome, and the
// gateway's proxy budget stays under it too.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 20 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// NewServer returns a server for h on addr with the timeouts and limits
// every bookshelf service uses, logging its own errors (TLS handshakes,
// broken connections) through the logger of WithLogger.
func NewServer(addr string, h http.Handler, opts ...Option) *http.Server {
	c := newConfig(opts)
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
}

// Common adds what every service answers to mux: GET /healthz (alive),
// GET /readyz (ready, by ready, with its reason if it gives one while
// ready; 503 with the reason otherwise) and GET /metrics (reg).
func Common(mux *http.ServeMux, ready ReadyFunc, reg *metrics.Registry) {
	if ready == nil {
		ready = alwaysReady
	}
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, reason := ready()
		switch {
		case !ok:
			writeError(w, r, notReady(reason), "")
		case reason != "":
			// Ready, with something a person should know.
			writeText(w, http.StatusOK, "ready, but "+reason+"\n")
		default:
			writeText(w, http.StatusOK, "ready\n")
		}
	})
	mux.Handle("GET /metrics", reg)
}

func notReady(reason string) error {
	if reason == "" {
		reason = "starting"
	}
	return unavailable("not-ready", "Not ready", "this service is not ready yet: %s", reason)
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

// Middleware wraps a ServeMux: it recovers a panicking handler into a 500
// problem (and logs it), answers the mux's own 404 and 405 as problems
// instead of plain text, counts requests by route pattern and status class
// into the registry of WithMetrics, and logs each request at debug level.
//
// next must be the *http.ServeMux itself (not wrapped), because the route
// pattern is read from the request after the mux has matched it.
func Middleware(next http.Handler, opts ...Option) http.Handler {
	c := newConfig(opts)
	return wrap(next, c)
}

// wrap is Middleware with its config built. next is a ServeMux or the
// routes of a view: each sets r.Pattern before the handler runs.
func wrap(next http.Handler, c *config) http.Handler {
	return &middleware{next: next, log: c.log, reqs: metrics.NewHTTPRequests(c.metrics)}
}

type middleware struct {
	next http.Handler
	log  *slog.Logger
	reqs *metrics.HTTPRequests
}

// writers recycles statusWriters: one per request is most of what the
// middleware would allocate. A writer goes back only once its handler has
// returned, and no handler here keeps its writer past that.
var writers = sync.Pool{New: func() any { return new(statusWriter) }}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := writers.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w, r: r}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				m.done(sw, r, start)
				panic(p)
			}
			m.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status != 0 {
				// Part of an answer is out: the only honest thing left is
				// to break the connection.
				sw.status = http.StatusInternalServerError
				m.done(sw, r, start)
				panic(http.ErrAbortHandler)
			}
			writeProblem(sw, r, problemFor(statusError(http.StatusInternalServerError, "the server failed on this request; it has been logged"), ""))
		}
		m.done(sw, r, start)
		*sw = statusWriter{}
		writers.Put(sw)
	}()
	m.next.ServeHTTP(sw, r)
}

func (m *middleware) done(sw *statusWriter, r *http.Request, start time.Time) {
	d := time.Since(start)
	status := sw.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http sends 200
	}
	m.reqs.Observe(r.Pattern, status, d)
	if sw.err != nil {
		m.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.String("err", sw.err.Error()))
	}
	if m.log.Enabled(r.Context(), slog.LevelDebug) {
		m.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", r.Pattern), slog.Int("status", status),
			slog.Int64("bytes", sw.bytes), slog.Duration("duration", d))
	}
}

// statusWriter notes the status and size of an answer, and replaces the
// mux's plain-text 404 and 405 (no route matched: empty pattern) by
// problems.
type statusWriter struct {
	http.ResponseWriter
	r       *http.Request
	status  int
	bytes   int64
	swallow bool  // the mux's own body is dropped: a problem went instead
	err     error // the error of a 500, for the log
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return // superfluous; net/http would log it
	}
	if code < 200 {
		w.ResponseWriter.WriteHeader(code) // informational: more follows
		return
	}
	if w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.swallow = true
		h := w.Header()
		h.Del("Content-Type")
		h.Del("X-Content-Type-Options")
		var p Problem
		if code == http.StatusNotFound {
			p = problemFor(statusError(code, "there is nothing at %s; GET / lists the API", w.r.URL.Path), "")
		} else {
			p = problemFor(statusError(code, "%s is not allowed on %s; allowed: %s", w.r.Method, w.r.URL.Path, h.Get("Allow")), "")
		}
		w.status = code
		p.Instance = w.r.URL.Path
		writeProblem(rawWriter{w}, w.r, p)
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rawWriter writes a problem in place of the mux's answer, past the
// statusWriter's own bookkeeping.
type rawWriter struct{ w *statusWriter }

func (rw rawWriter) Header() http.Header { return rw.w.ResponseWriter.Header() }
func (rw rawWriter) WriteHeader(code int) {
	rw.w.ResponseWriter.WriteHeader(code)
}
func (rw rawWriter) Write(b []byte) (int, error) {
	n, err := rw.w.ResponseWriter.Write(b)
	rw.w.bytes += int64(n)
	return n, err
}
