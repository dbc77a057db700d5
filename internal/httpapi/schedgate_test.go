package httpapi

import (
	"context"
	"math"
	rtmetrics "runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
)

// schedBuckets are bounds like the runtime's, in seconds, the last one
// unbounded.
var schedBuckets = []float64{0, .001, .002, .004, .008, .016, math.Inf(1)}

func TestWindowQuantile(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prev, cur []uint64
		q         float64
		want      float64
		wantN     uint64
	}{
		{"empty window", []uint64{5, 5, 0, 0, 0, 0}, []uint64{5, 5, 0, 0, 0, 0}, .99, 0, 0},
		{"all prompt", []uint64{0, 0, 0, 0, 0, 0}, []uint64{100, 0, 0, 0, 0, 0}, .99, .001, 100},
		// 98 prompt, 2 late: the 99th of 100 is late.
		{"the tail counts", []uint64{0, 0, 0, 0, 0, 0}, []uint64{98, 0, 0, 0, 2, 0}, .99, .016, 100},
		// Only the window counts: the late ones were before it.
		{"earlier late ones do not", []uint64{0, 0, 0, 0, 50, 0}, []uint64{100, 0, 0, 0, 50, 0}, .99, .001, 100},
		{"the unbounded bucket gives its lower bound", []uint64{0, 0, 0, 0, 0, 0}, []uint64{0, 0, 0, 0, 0, 3}, .99, .016, 3},
		{"the median", []uint64{0, 0, 0, 0, 0, 0}, []uint64{10, 10, 10, 0, 0, 0}, .5, .002, 30},
		{"shapes that differ", []uint64{0, 0}, []uint64{1, 1, 1, 1, 1, 1}, .99, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n := windowQuantile(tc.prev, tc.cur, schedBuckets, tc.q)
			if got != tc.want || n != tc.wantN {
				t.Errorf("windowQuantile = %v over %d, want %v over %d", got, n, tc.want, tc.wantN)
			}
		})
	}
}

// schedFeed drives a gate with windows of synthetic scheduling latencies.
type schedFeed struct {
	g      *SchedGate
	counts []uint64
}

// window adds prompt wake-ups (under 1 ms) and late ones (8-16 ms) to the
// histogram and shows it to the gate.
func (f *schedFeed) window(prompt, late uint64) {
	f.counts[0] += prompt
	f.counts[4] += late
	f.g.observe(&rtmetrics.Float64Histogram{Counts: append([]uint64(nil), f.counts...), Buckets: schedBuckets})
}

func newSchedFeed(t *testing.T, reg *metrics.Registry) *schedFeed {
	t.Helper()
	f := &schedFeed{g: NewSchedGate(4*time.Millisecond, reg), counts: make([]uint64, len(schedBuckets)-1)}
	f.window(0, 0) // the start
	if got := f.g.Allowed(); got != DefaultMaxCommands {
		t.Fatalf("a gate just started allows %d, want %d", got, DefaultMaxCommands)
	}
	return f
}

// Late windows halve the commands allowed, down to the floor; prompt ones
// give them back a step at a time; an idle window is a prompt one.
func TestSchedGateHalvesWhenLateAndGrowsWhenPrompt(t *testing.T) {
	reg := metrics.NewRegistry()
	f := newSchedFeed(t, reg)
	var got []int
	f.window(980, 20) // p99 late: 20 late in 1000
	got = append(got, f.g.Allowed())
	f.window(950, 50)
	got = append(got, f.g.Allowed())
	f.window(990, 10) // p99 prompt: 10 late in 1000 are past the 99th
	got = append(got, f.g.Allowed())
	if want := []int{128, 64, 72}; !slices.Equal(got, want) {
		t.Fatalf("allowed after late, late, prompt: %v, want %v", got, want)
	}
	for range 10 {
		f.window(0, 100)
	}
	if got := f.g.Allowed(); got != schedFloor {
		t.Errorf("after many late windows: %d, want the floor %d", got, schedFloor)
	}
	f.window(0, 0)
	if got := f.g.Allowed(); got != schedFloor+schedStep {
		t.Errorf("after an idle window: %d, want %d", got, schedFloor+schedStep)
	}
	for range 100 {
		f.window(1000, 0)
	}
	if got := f.g.Allowed(); got != DefaultMaxCommands {
		t.Errorf("after long prompt: %d, want %d", got, DefaultMaxCommands)
	}
	m := do(t, Books(nil, WithMetrics(reg), WithLogger(quietLogger(t))), "GET", "/metrics", "").Body.String()
	for _, want := range []string{"bookshelf_sched_cuts_total 12", "bookshelf_sched_commands_allowed 256", "bookshelf_sched_latency_seconds 0.001"} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// The gate reads the runtime's own histogram: the metric is there, and a
// process at rest is prompt.
func TestSchedGateReadsTheRuntime(t *testing.T) {
	g := NewSchedGate(time.Second, metrics.NewRegistry())
	g.read()
	g.read()
	if g.prev == nil {
		t.Fatalf("the runtime has no %s", schedMetric)
	}
	if got := g.Allowed(); got != DefaultMaxCommands {
		t.Errorf("allowed %d at rest with a 1 s limit, want %d", got, DefaultMaxCommands)
	}
	var nilGate *SchedGate
	if nilGate.Allowed() != math.MaxInt {
		t.Error("no gate must allow any number")
	}
}

// With the scheduler late, books takes no more commands than the gate
// allows, answering the next 503 busy at once and counting it by reason.
func TestBooksShedsCommandsWhileTheSchedulerIsLate(t *testing.T) {
	reg := metrics.NewRegistry()
	f := newSchedFeed(t, reg)
	for range 10 {
		f.window(0, 100)
	}
	sub := heldSubmitter{in: make(chan struct{}, 8), release: make(chan struct{})}
	h := Books(sub, WithSchedGate(f.g), WithMetrics(reg), WithLogger(quietLogger(t)))
	var wg sync.WaitGroup
	codes := make([]int, schedFloor)
	for i := range codes {
		wg.Go(func() { codes[i] = do(t, h, "POST", "/books", `{"title":"Dune"}`).Code })
	}
	for range schedFloor {
		<-sub.in
	}
	rec := do(t, h, "POST", "/books", `{"title":"Dune"}`)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("a command past what the gate allows: %d (Retry-After %q), want 503", rec.Code, rec.Header().Get("Retry-After"))
	}
	if p := problemOf(t, rec); !strings.HasSuffix(p.Type, "/busy") || !strings.Contains(p.Detail, "processors") {
		t.Errorf("problem %+v, want busy, saying why", p)
	}
	m := do(t, h, "GET", "/metrics", "").Body.String()
	if !strings.Contains(m, `bookshelf_http_shed_total{kind="commands",reason="scheduler"} 1`) ||
		!strings.Contains(m, `bookshelf_http_shed_total{kind="commands",reason="in-flight"} 0`) {
		t.Errorf("the shed command is not counted by its reason:\n%s", m)
	}
	close(sub.release)
	wg.Wait()
	for _, c := range codes {
		if c != 201 {
			t.Errorf("the commands in flight: %v, want 201 each", codes)
			break
		}
	}
	// Prompt again, the gate lets commands in.
	f.window(1000, 0)
	if rec := do(t, h, "POST", "/books", `{"title":"Dune"}`); rec.Code != 201 {
		t.Errorf("a command once prompt: %d", rec.Code)
	}
}

// The gateway's gate sheds commands only: at the floor, twice as many
// queries as the floor in flight at once are all answered.
func TestGatewaySchedulerGateNeverShedsQueries(t *testing.T) {
	books := newBackend(t, "books", 201)
	views := newBackend(t, "catalog", 200)
	views.delay = 200 * time.Millisecond
	res := resolverFunc(func(_ context.Context, service string) ([]string, error) {
		if service == ServiceBooks {
			return []string{books.URL}, nil
		}
		return []string{views.URL}, nil
	})
	reg := metrics.NewRegistry()
	f := newSchedFeed(t, reg)
	for range 10 {
		f.window(0, 100)
	}
	h := Gateway(res, WithSchedGate(f.g), WithMetrics(reg), WithLogger(quietLogger(t)))
	codes := make([]int, 2*schedFloor)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = do(t, h, "GET", "/books?limit=1", "").Code })
	}
	wg.Wait()
	for _, c := range codes {
		if c != 200 {
			t.Fatalf("queries in flight with the scheduler late: %v, want 200 each", codes)
		}
	}
	if views.hits.Load() != int64(len(codes)) {
		t.Errorf("the view saw %d queries, want %d", views.hits.Load(), len(codes))
	}
	if rec := do(t, h, "POST", "/books", `{"title":"Dune"}`); rec.Code != 201 {
		t.Errorf("a command within the floor: %d, want 201", rec.Code)
	}
}
