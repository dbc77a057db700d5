package metrics

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrape is what a scraper gets from r.
func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != ContentType {
		t.Fatalf("scrape: %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	return rec.Body.String()
}

func TestExposition(t *testing.T) {
	r := NewRegistry()
	recs := r.CounterVec("bookshelf_records_total", "Records read.", "service", "outcome")
	recs.With("lastread", "dead-lettered").Add(2)
	recs.With("lastread", "applied").Inc()
	recs.With("catalog", "applied").Add(3)
	r.Counter("bookshelf_commands_total", "Commands.").Inc()
	g := r.Gauge("bookshelf_lag", "Records behind.")
	g.Set(12.5)
	g.Dec()
	r.GaugeFunc("bookshelf_books", "Books on the shelf.", func() float64 { return 42 })
	r.GaugeVec("bookshelf_quoted", "Label escaping.", "v").With("a\"b\\c\nd").Set(1)
	r.HistogramVec("bookshelf_wait_seconds", "Waits.", []float64{0.1, 1}, "kind").With("x").Observe(0.5)
	got := scrape(t, r)
	for _, want := range []string{
		"# HELP bookshelf_books Books on the shelf.\n# TYPE bookshelf_books gauge\nbookshelf_books 42\n",
		"# TYPE bookshelf_commands_total counter\nbookshelf_commands_total 1\n",
		"bookshelf_lag 11.5\n",
		`bookshelf_quoted{v="a\"b\\c\nd"} 1` + "\n",
		`bookshelf_records_total{outcome="applied",service="catalog"} 3` + "\n",
		`bookshelf_records_total{outcome="dead-lettered",service="lastread"} 2` + "\n",
		"# TYPE bookshelf_wait_seconds histogram\n",
		`bookshelf_wait_seconds_bucket{kind="x",le="0.1"} 0` + "\n",
		`bookshelf_wait_seconds_bucket{kind="x",le="1"} 1` + "\n",
		`bookshelf_wait_seconds_count{kind="x"} 1` + "\n",
		// The runtime's and the process's own.
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_resident_memory_bytes gauge\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the scrape lacks %q:\n%s", want, got)
		}
	}
	var sb strings.Builder
	if _, err := r.WriteTo(&sb); err != nil || !strings.Contains(sb.String(), "bookshelf_lag 11.5\n") {
		t.Errorf("WriteTo: %v\n%s", err, sb.String())
	}
}

func TestCounterAddFraction(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("x_seconds_total", "x")
	c.Inc()
	c.Add(0.25)
	c.Add(2)
	if v := c.Value(); v != 3.25 {
		t.Fatalf("value %v, want 3.25", v)
	}
	var sb strings.Builder
	r.WriteTo(&sb)
	if !strings.Contains(sb.String(), "x_seconds_total 3.25\n") {
		t.Fatalf("got %q", sb.String())
	}
}

func TestRegisterTwice(t *testing.T) {
	r := NewRegistry()
	a := r.CounterVec("a_total", "a", "l")
	b := r.CounterVec("a_total", "a", "l")
	a.With("x").Inc()
	if b.With("x").Value() != 1 {
		t.Fatal("same shape registered twice should share series")
	}
	for name, fn := range map[string]func(){
		"other kind":   func() { r.Gauge("a_total", "a") },
		"other labels": func() { r.CounterVec("a_total", "a", "m") },
		"bad label":    func() { r.CounterVec("b_total", "x", "__x") },
		"arity":        func() { a.With("x", "y") },
		"negative":     func() { r.Counter("c_total", "c").Add(-1) },
		"taken":        func() { r.Counter("go_goroutines", "the runtime's") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			fn()
		})
	}
}

func TestHTTPRequests(t *testing.T) {
	r := NewRegistry()
	h := NewHTTPRequests(r)
	h.Observe("GET /books/{id}", 200, 250*time.Millisecond)
	h.Observe("GET /books/{id}", 404, 250*time.Millisecond)
	h.Observe("GET /books/{id}", 304, 0)
	h.Observe("", 999, 0)
	var sb strings.Builder
	r.WriteTo(&sb)
	got := sb.String()
	for _, line := range []string{
		`bookshelf_http_requests_total{code="2xx",route="GET /books/{id}"} 1`,
		`bookshelf_http_requests_total{code="3xx",route="GET /books/{id}"} 1`,
		`bookshelf_http_requests_total{code="4xx",route="GET /books/{id}"} 1`,
		`bookshelf_http_requests_total{code="5xx",route="GET /books/{id}"} 0`,
		`bookshelf_http_requests_total{code="other",route=""} 1`,
		`bookshelf_http_request_duration_seconds_bucket{code="200",route="GET /books/{id}",le="0.25"} 1`,
		`bookshelf_http_request_duration_seconds_bucket{code="404",route="GET /books/{id}",le="0.1"} 0`,
		`bookshelf_http_request_duration_seconds_sum{code="200",route="GET /books/{id}"} 0.25`,
		`bookshelf_http_request_duration_seconds_count{code="other",route=""} 1`,
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("missing %s in\n%s", line, got)
		}
	}
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	v := r.CounterVec("c_total", "c", "k")
	g := r.Gauge("g", "g")
	h := NewHTTPRequests(r)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 1000 {
				v.With([]string{"a", "b"}[j%2]).Inc()
				g.Add(1)
				h.Observe([]string{"GET /a", "GET /b"}[i%2], 200, time.Millisecond)
				if j%100 == 0 {
					r.WriteTo(&strings.Builder{})
				}
			}
		})
	}
	wg.Wait()
	if a, b := v.With("a").Value(), v.With("b").Value(); a != 4000 || b != 4000 {
		t.Errorf("counts %v %v, want 4000 each", a, b)
	}
	if g.Value() != 8000 {
		t.Errorf("gauge %v", g.Value())
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().CounterVec("c_total", "c", "k").With("x")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkHTTPObserve(b *testing.B) {
	h := NewHTTPRequests(NewRegistry())
	for b.Loop() {
		h.Observe("GET /books/last-read", 200, time.Millisecond)
	}
}

func TestCounterFunc(t *testing.T) {
	r := NewRegistry()
	n := 0.0
	r.CounterFunc("bookshelf_things_total", "Things counted elsewhere.", func() float64 { return n })
	n = 3
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# TYPE bookshelf_things_total counter", "bookshelf_things_total 3"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("exposition lacks %q:\n%s", want, b.String())
		}
	}
}

// A family read at scrape time has the series its function gives then,
// and none of the ones it gave before.
func TestGaugeVecFunc(t *testing.T) {
	r := NewRegistry()
	var mu sync.Mutex
	owned := []string{"0", "2"}
	r.GaugeVecFunc("bookshelf_owned", "Partitions owned.", []string{"partition"}, func(emit func(float64, ...string)) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range owned {
			emit(1, p)
		}
	})
	got := scrape(t, r)
	for _, want := range []string{"# TYPE bookshelf_owned gauge\n", `bookshelf_owned{partition="0"} 1` + "\n", `bookshelf_owned{partition="2"} 1` + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the scrape lacks %q:\n%s", want, got)
		}
	}
	mu.Lock()
	owned = []string{"1"}
	mu.Unlock()
	got = scrape(t, r)
	if strings.Contains(got, `partition="0"`) || !strings.Contains(got, `bookshelf_owned{partition="1"} 1`) {
		t.Errorf("after the partitions moved:\n%s", got)
	}
	// A series with the wrong count of labels fails the scrape, it does
	// not crash the process.
	r.GaugeVecFunc("bookshelf_broken", "Wrong labels.", []string{"a"}, func(emit func(float64, ...string)) { emit(1) })
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 {
		t.Errorf("a broken family: %d", rec.Code)
	}
}
