package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bookshelf/bookshelf/internal/metrics"
	"github.com/bookshelf/bookshelf/internal/shelf"
)

// routesOf is the routes behind a view's handler.
func routesOf(t *testing.T, h http.Handler) *routes {
	t.Helper()
	m, ok := h.(*middleware)
	if !ok {
		t.Fatalf("%T is not the middleware", h)
	}
	rs, ok := m.next.(*routes)
	if !ok {
		t.Fatalf("the middleware wraps %T, not routes", m.next)
	}
	return rs
}

// The shortcut picks the route the mux would, and labels it alike.
func TestRoutesAgreeWithMux(t *testing.T) {
	opts := []Option{WithLogger(quietLogger(t))}
	for _, tc := range []struct {
		h     http.Handler
		paths []string
	}{
		{LastRead(lastReadFixture(), nil, opts...), []string{"/books/last-read", "/bookshelf/books/last/read", "/"}},
		{Catalog(shelf.NewReplica(shelf.NewCatalog()), nil, opts...), []string{"/books", "/bookshelf/books"}},
		{Stats(shelf.NewReplica(shelf.NewStats()), nil, opts...), []string{"/stats"}},
	} {
		rs := routesOf(t, tc.h)
		var got []string
		for _, e := range rs.exact {
			got = append(got, e.path)
			_, want := rs.mux.Handler(httptest.NewRequest("GET", e.path+"?limit=1", nil))
			if e.pattern != want {
				t.Errorf("GET %s: shortcut route %q, the mux's %q", e.path, e.pattern, want)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.paths, " ") {
			t.Errorf("shortcuts %v, want %v", got, tc.paths)
		}
	}
}

// Requests the shortcut takes and those it leaves to the mux are answered
// and counted as the mux alone would.
func TestRoutesThroughMiddleware(t *testing.T) {
	reg := metrics.NewRegistry()
	h := LastRead(lastReadFixture(), nil, WithLogger(quietLogger(t)), WithMetrics(reg))
	for _, tc := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/books/last-read?limit=1", 200},
		{"GET", "/books/last-read", 200},
		{"GET", "/bookshelf/books/last/read", 200},
		{"GET", "/", 200},
		{"HEAD", "/books/last-read", 200},            // the mux's
		{"GET", "/books%2Flast-read", 404},           // the mux matches escaped paths
		{"GET", "/books/last-read/", 404},            // not the same path
		{"GET", "//books/last-read", 307},            // the mux cleans it
		{"POST", "/books/last-read", 405},            // the mux's problem
		{"GET", "/books/last-read?limit=0", 400},     // the handler's problem
		{"GET", "/books/last-read?limit=%zz", 400},   // the handler's problem
		{"GET", "/nothing/books/last-read", 404},     // only exact paths
		{"GET", "/books/last-read?offset=1", 200},    // past the cache
		{"GET", "/books/last-read?limit=2&x=y", 200}, // other parameters ignored
	} {
		rec := do(t, h, tc.method, tc.target, "")
		if rec.Code != tc.status {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.target, rec.Code, tc.status, rec.Body)
			continue
		}
		if tc.status >= 400 {
			problemOf(t, rec)
		}
	}
	body := do(t, h, "GET", "/metrics", "").Body.String()
	for _, line := range []string{
		// 2 GETs, 1 HEAD, offset and other parameters: 5
		`bookshelf_http_requests_total{code="2xx",route="GET /books/last-read"} 5`,
		`bookshelf_http_requests_total{code="4xx",route="GET /books/last-read"} 2`,
		`bookshelf_http_requests_total{code="2xx",route="GET /bookshelf/books/last/read"} 1`,
		`bookshelf_http_requests_total{code="2xx",route="GET /{$}"} 1`,
		`bookshelf_http_requests_total{code="4xx",route=""} 4`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics lack %s:\n%s", line, body)
		}
	}
}

// A shortcut handler that panics is recovered and counted like any other.
func TestRoutesPanic(t *testing.T) {
	reg := metrics.NewRegistry()
	rs := newRoutes()
	rs.get("/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	Common(rs.mux, nil, reg)
	h := wrap(rs, newConfig([]Option{WithLogger(quietLogger(t)), WithMetrics(reg)}))
	rec := do(t, h, "GET", "/boom", "")
	if rec.Code != 500 {
		t.Fatalf("panic: %d", rec.Code)
	}
	problemOf(t, rec)
	if body := do(t, h, "GET", "/metrics", "").Body.String(); !strings.Contains(body, `bookshelf_http_requests_total{code="5xx",route="GET /boom"} 1`+"\n") {
		t.Errorf("the panic is not counted under its route:\n%s", body)
	}
}

func TestRoutesNoWildcards(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a shortcut with a wildcard was accepted")
		}
	}()
	newRoutes().get("/books/{id}", func(http.ResponseWriter, *http.Request) {})
}
