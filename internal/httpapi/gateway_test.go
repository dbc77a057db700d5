package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

type resolverFunc func(ctx context.Context, service string) ([]string, error)

func (f resolverFunc) Resolve(ctx context.Context, service string) ([]string, error) {
	return f(ctx, service)
}

func static(urls ...string) Resolver {
	return resolverFunc(func(context.Context, string) ([]string, error) { return urls, nil })
}

// seen is what a backend saw of a request.
type seen struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

// backend is an instance that records what it sees and answers status.
type backend struct {
	*httptest.Server
	hits   atomic.Int64
	status int
	delay  time.Duration
	mu     sync.Mutex
	last   seen
}

func newBackend(t *testing.T, name string, status int) *backend {
	b := &backend{status: status}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last = seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Clone()}
		b.mu.Unlock()
		if b.delay > 0 {
			select {
			case <-time.After(b.delay):
			case <-r.Context().Done():
				return
			}
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Location", "/books/abc")
		h.Set(PositionHeader, "0:42")
		h.Set("Set-Cookie", "session=1")
		h.Set("X-Internal", "secret")
		if b.status == 503 {
			h.Set("Retry-After", "1")
		}
		w.WriteHeader(b.status)
		json.NewEncoder(w).Encode(map[string]string{"instance": name})
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) seen() seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func newGateway(t *testing.T, res Resolver, opts ...Option) http.Handler {
	return Gateway(res, append([]Option{WithLogger(quietLogger(t))}, opts...)...)
}

func TestGatewayRoutes(t *testing.T) {
	backends := map[string]*backend{}
	for _, s := range []string{ServiceBooks, ServiceLastRead, ServiceCatalog, ServiceStats} {
		backends[s] = newBackend(t, s, 200)
	}
	res := resolverFunc(func(_ context.Context, service string) ([]string, error) {
		return []string{backends[service].URL}, nil
	})
	g := newGateway(t, res)
	for _, tc := range []struct{ method, path, service string }{
		{"POST", "/books", ServiceBooks},
		{"DELETE", "/books/b1", ServiceBooks},
		{"POST", "/books/b1/read", ServiceBooks},
		{"POST", "/bookshelf/books", ServiceBooks},
		{"POST", "/bookshelf/books/b1/finished", ServiceBooks},
		{"GET", "/books/last-read", ServiceLastRead},
		{"GET", "/bookshelf/books/last/read", ServiceLastRead},
		{"GET", "/books", ServiceCatalog},
		{"GET", "/books/b1", ServiceCatalog},
		{"GET", "/bookshelf/books", ServiceCatalog},
		{"GET", "/stats", ServiceStats},
	} {
		rec := do(t, g, tc.method, tc.path, "")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"instance":"`+tc.service+`"`) {
			t.Errorf("%s %s went to %s (%d), want %s", tc.method, tc.path, rec.Body, rec.Code, tc.service)
			continue
		}
		if s := backends[tc.service].seen(); s.Method != tc.method || s.Path != tc.path {
			t.Errorf("%s %s arrived as %s %s", tc.method, tc.path, s.Method, s.Path)
		}
	}
}

func TestGatewayForwarding(t *testing.T) {
	b := newBackend(t, "books", 201)
	g := newGateway(t, static(b.URL+"/"))
	req := httptest.NewRequest("POST", "/books?x=1&y=%20", strings.NewReader(`{"title":"Dune"}`))
	req.RemoteAddr = "192.0.2.7:5555"
	for k, v := range map[string]string{
		"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
		IdempotencyKeyHeader: "k-1", PositionHeader: "0:3", "X-Request-Id": "req-9",
		"Cookie": "secret=1", "Authorization": "Bearer x", "X-Forwarded-For": "198.51.100.1",
	} {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != 201 || !strings.Contains(rec.Body.String(), `"instance":"books"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	s := b.seen()
	if s.Method != "POST" || s.Path != "/books" || s.Query != "x=1&y=%20" || s.Body != `{"title":"Dune"}` {
		t.Errorf("backend saw %+v", s)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
		IdempotencyKeyHeader: "k-1", PositionHeader: "0:3", "X-Request-Id": "req-9",
		"X-Forwarded-For": "198.51.100.1, 192.0.2.7", "Cookie": "", "Authorization": "",
	} {
		if got := s.Header.Get(k); got != want {
			t.Errorf("forwarded %s: %q, want %q", k, got, want)
		}
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", "Location": "/books/abc", PositionHeader: "0:42",
		"Set-Cookie": "", "X-Internal": "",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("relayed %s: %q, want %q", k, got, want)
		}
	}
}

func TestGatewayFailover(t *testing.T) {
	up := newBackend(t, "up", 200)
	down := newBackend(t, "down", 200)
	down.Close()

	g := newGateway(t, static(down.URL, up.URL))
	for i := range 6 {
		// A POST without a key is retried too: the closed instance never
		// saw it.
		method, body := "GET", ""
		if i%2 == 1 {
			method, body = "POST", `{"title":"Dune"}`
		}
		if rec := do(t, g, method, "/books", body); rec.Code != 200 {
			t.Fatalf("%s with one instance down: %d %s", method, rec.Code, rec.Body)
		}
	}
	if up.hits.Load() != 6 {
		t.Errorf("live instance saw %d requests, want 6", up.hits.Load())
	}

	up.Close()
	for _, method := range []string{"GET", "POST"} {
		rec := do(t, g, method, "/books", "")
		if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("all down: %d %v", rec.Code, rec.Header())
		}
		if p := problemOf(t, rec); !strings.Contains(p.Detail, "no healthy instance of booklist") && !strings.Contains(p.Detail, "no healthy instance of books") {
			t.Errorf("detail %q", p.Detail)
		}
	}

	for name, res := range map[string]Resolver{
		"none registered": static(),
		"registry error": resolverFunc(func(context.Context, string) ([]string, error) {
			return nil, errors.New("consul: connection refused")
		}),
	} {
		rec := do(t, newGateway(t, res), "GET", "/books/last-read", "")
		if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("%s: %d", name, rec.Code)
			continue
		}
		if p := problemOf(t, rec); p.Detail != "no healthy instance of lastreadbooks; retry in a moment" {
			t.Errorf("%s: detail %q", name, p.Detail)
		}
	}
}

func TestGatewayRetries(t *testing.T) {
	for _, tc := range []struct {
		name        string
		method      string
		key         string
		statuses    [2]int // of the two instances
		delay       time.Duration
		wantStatus  int
		wantHits    int64
		wantProblem string // a piece of the gateway's own problem, if it answers
	}{
		{"GET retried after a 503", "GET", "", [2]int{503, 200}, 0, 200, 2, ""},
		{"GET retried after a 502", "GET", "", [2]int{502, 200}, 0, 200, 2, ""},
		{"GET, both 503: the instance's answer", "GET", "", [2]int{503, 503}, 0, 503, 2, ""},
		{"POST without key: the gateway's own key, retried", "POST", "", [2]int{503, 200}, 0, 200, 2, ""},
		{"POST with key retried", "POST", "k", [2]int{503, 200}, 0, 200, 2, ""},
		{"DELETE retried", "DELETE", "", [2]int{503, 200}, 0, 200, 2, ""},
		{"POST 4xx not retried", "POST", "k", [2]int{409, 200}, 0, 409, 1, ""},
		{"POST without key timing out: retried round the instances with the gateway's key", "POST", "", [2]int{200, 200}, time.Second, 503, 4, "no healthy instance"},
		{"POST with key timing out: retried round the instances", "POST", "k", [2]int{200, 200}, time.Second, 503, 4, "no healthy instance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newBackend(t, "a", tc.statuses[0]), newBackend(t, "b", tc.statuses[1])
			a.delay, b.delay = tc.delay, tc.delay
			// Round robin starts at the second instance of the list for
			// the first request.
			g := newGateway(t, static(b.URL, a.URL), WithAttemptTimeouts(100*time.Millisecond, 100*time.Millisecond))
			path := "/books"
			if tc.method == "DELETE" {
				path = "/books/x"
			}
			hdr := []string{}
			if tc.key != "" {
				hdr = []string{IdempotencyKeyHeader, tc.key}
			}
			rec := do(t, g, tc.method, path, "", hdr...)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if hits := a.hits.Load() + b.hits.Load(); hits != tc.wantHits {
				t.Errorf("%d attempts, want %d", hits, tc.wantHits)
			}
			// Every try of one command carries the same key: the client's,
			// or the one the gateway made for it.
			if tc.method != "GET" && tc.wantHits >= 2 {
				ka, kb := a.seen().Header.Get(IdempotencyKeyHeader), b.seen().Header.Get(IdempotencyKeyHeader)
				if ka == "" || ka != kb || (tc.key != "" && ka != tc.key) {
					t.Errorf("keys of the two tries: %q and %q", ka, kb)
				}
			}
			if tc.wantStatus == 503 {
				if rec.Header().Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
				if tc.wantProblem != "" {
					if p := problemOf(t, rec); !strings.Contains(p.Detail, tc.wantProblem) {
						t.Errorf("detail %q", p.Detail)
					}
				}
			}
		})
	}
}

func TestGatewaySpreads(t *testing.T) {
	a, b := newBackend(t, "a", 200), newBackend(t, "b", 200)
	g := newGateway(t, static(a.URL, b.URL))
	for range 10 {
		do(t, g, "GET", "/stats", "")
	}
	if a.hits.Load() != 5 || b.hits.Load() != 5 {
		t.Errorf("hits %d and %d, want 5 each", a.hits.Load(), b.hits.Load())
	}
}

func TestGatewayOwnAnswers(t *testing.T) {
	b := newBackend(t, "b", 200)
	g := newGateway(t, static(b.URL))

	rec := do(t, g, "GET", "/", "")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Body.String(), "<code>/books/{id}/read</code>") {
		t.Errorf("index: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, g, "GET", "/api", "")
	var api struct{ Endpoints []Endpoint }
	if err := json.Unmarshal(rec.Body.Bytes(), &api); err != nil || len(api.Endpoints) != len(API) {
		t.Errorf("api: %v %s", err, rec.Body)
	}

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nothing", 404},
		{"GET", "/books/b1/read", 405},
		{"PUT", "/books", 405},
		{"PATCH", "/books/b1", 405},
	} {
		rec := do(t, g, tc.method, tc.path, "")
		if rec.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.status)
			continue
		}
		problemOf(t, rec)
		if tc.status == 405 && rec.Header().Get("Allow") == "" {
			t.Errorf("%s %s: no Allow", tc.method, tc.path)
		}
	}
	rec = do(t, g, "POST", "/books", `{"title":"`+strings.Repeat("x", MaxBodyBytes)+`"}`)
	if rec.Code != 413 {
		t.Errorf("large body: %d", rec.Code)
	}
	problemOf(t, rec)
	if b.hits.Load() != 0 {
		t.Errorf("the gateway forwarded what it should have answered itself")
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if rec := do(t, g, "GET", p, ""); rec.Code != 200 {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
}

// TestGatewayEndToEnd runs the gateway in front of the real books and
// catalog handlers: add a book, read it back with its position.
func TestGatewayEndToEnd(t *testing.T) {
	cat := shelf.NewReplica(shelf.NewCatalog())
	sub := newFakeSubmitter(t)
	sub.onEvent = cat.Apply
	books := httptest.NewServer(Books(sub, WithClock(testClock), WithLogger(quietLogger(t))))
	defer books.Close()
	catalog := httptest.NewServer(Catalog(cat, nil, WithLogger(quietLogger(t))))
	defer catalog.Close()
	gw := httptest.NewServer(newGateway(t, resolverFunc(func(_ context.Context, s string) ([]string, error) {
		switch s {
		case ServiceBooks:
			return []string{books.URL}, nil
		case ServiceCatalog:
			return []string{catalog.URL}, nil
		}
		return nil, nil
	})))
	defer gw.Close()

	resp, err := http.Post(gw.URL+"/books", "application/json", strings.NewReader(`{"title":"Dune","authors":["Frank Herbert"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, pos := resp.Header.Get("Location"), resp.Header.Get(PositionHeader)
	if resp.StatusCode != 201 || loc == "" || pos == "" {
		t.Fatalf("add: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest("GET", gw.URL+loc, nil)
	req.Header.Set(PositionHeader, pos)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b shelf.CatalogBook
	json.NewDecoder(resp.Body).Decode(&b)
	resp.Body.Close()
	if resp.StatusCode != 200 || b.Title != "Dune" {
		t.Errorf("get: %d %+v", resp.StatusCode, b)
	}
	// Through the gateway, a bad request is still the service's problem.
	resp, err = http.Post(gw.URL+"/books", "text/plain", strings.NewReader(`Dune`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 || resp.Header.Get("Content-Type") != ProblemContentType {
		t.Errorf("text/plain through the gateway: %d %v", resp.StatusCode, resp.Header)
	}
}

// roundTripperFunc is an http.RoundTripper of a function.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// WithProxyTransport's wrapper sees every proxied request, and what it
// adds to one (a trace context, say) reaches the instance.
func TestGatewayProxyTransportWrapsItsClient(t *testing.T) {
	b := newBackend(t, "books", 201)
	var sent []string
	g := newGateway(t, static(b.URL), WithProxyTransport(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			sent = append(sent, r.Method+" "+r.URL.Path)
			r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			return rt.RoundTrip(r)
		})
	}))
	rec := do(t, g, "POST", "/books", `{"title":"Dune"}`)
	if rec.Code != 201 || len(sent) != 1 || sent[0] != "POST /books" {
		t.Fatalf("%d %s; the wrapper saw %v", rec.Code, rec.Body, sent)
	}
	if got := b.seen().Header.Get("Traceparent"); got == "" {
		t.Errorf("the instance did not get the header the wrapper set")
	}
}

// A keyed command whose instance holds it (frozen, or cut off from the
// brokers) goes to a second instance as well after hedgeAfter, and that
// one's answer is the command's; a query is not sent twice at once, only
// again once its attempt ran out.
func TestGatewayHedgesHeldCommands(t *testing.T) {
	for _, tc := range []struct {
		method, path     string
		minTook, maxTook time.Duration
	}{
		{"POST", "/books", hedgeAfter, hedgeAfter + 2*time.Second},
		{"GET", "/books/x", 3 * time.Second, 5 * time.Second},
	} {
		t.Run(tc.method, func(t *testing.T) {
			held, good := newBackend(t, "held", 200), newBackend(t, "good", 201)
			held.delay = time.Minute
			// Round robin tries the held instance first.
			g := newGateway(t, static(good.URL, held.URL), WithAttemptTimeouts(5*time.Second, 3*time.Second))
			began := time.Now()
			rec := do(t, g, tc.method, tc.path, "", IdempotencyKeyHeader, "k")
			took := time.Since(began)
			if rec.Code != 201 {
				t.Fatalf("status %d, want the good instance's 201: %s", rec.Code, rec.Body)
			}
			if took < tc.minTook || took > tc.maxTook {
				t.Errorf("answered after %v, want %v to %v", took, tc.minTook, tc.maxTook)
			}
			if h, gd := held.hits.Load(), good.hits.Load(); h != 1 || gd != 1 {
				t.Errorf("held %d, good %d tries, want 1 each", h, gd)
			}
			if tc.method == "POST" {
				if kh, kg := held.seen().Header.Get(IdempotencyKeyHeader), good.seen().Header.Get(IdempotencyKeyHeader); kh != "k" || kg != "k" {
					t.Errorf("keys %q and %q", kh, kg)
				}
			}
		})
	}
}
