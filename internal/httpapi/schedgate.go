package httpapi

import (
	"context"
	"math"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
)

// Scheduler admission. Go's scheduler has no priorities: once a process's
// processors are saturated, a query's goroutine waits in the run queue
// behind every runnable command goroutine, and the bounds on requests in
// flight do not help, since 256 commands in flight are plenty to saturate
// two cores. The process knows when that happens: the runtime measures how
// long each goroutine waited runnable before it ran
// (/sched/latencies:seconds). A SchedGate reads that histogram every
// SchedEvery and sets how many commands may be in flight, as TCP sets its
// window: halved after a window whose SchedQuantile passed the limit,
// grown by a step after one within it. Past that number new commands are
// answered 503 at once, so the processors left are the queries'; queries
// are never shed by it.
const (
	// DefaultSchedLimit is the scheduling latency past which fewer
	// commands are let in. A query crosses a handful of goroutine
	// wake-ups (the gateway's server and proxy, the view's server); a few
	// milliseconds each keep it within tens.
	DefaultSchedLimit = 4 * time.Millisecond
	// DefaultUpSchedLimit is the limit where one process holds the
	// broker, the aggregate, every view and the gateway (bookshelf up):
	// there every command's work is taken from the views' processors, not
	// only shared with them by the kernel. With commands pushed at twice
	// capacity beside last-read queries at 500/s on 2 cores, the queries'
	// p99 was 20-72 ms at 4 ms (4 runs) and 14.5-16.7 ms at 1 ms (3 runs),
	// for about half the commands decided (19-28 % of those sent, against
	// 33-44 %).
	DefaultUpSchedLimit = time.Millisecond
	// SchedQuantile is the quantile of the window held to the limit.
	SchedQuantile = 0.99
	// SchedEvery is the window: short enough that a burst of commands is
	// cut before the queries behind it have waited long, long enough to
	// hold thousands of wake-ups under load.
	SchedEvery = 20 * time.Millisecond
	// schedFloor is the fewest commands in flight the gate allows: the
	// command path slows, it never stops, and its latency keeps being
	// measured.
	schedFloor = 4
	// schedStep is how many more commands each prompt window allows: from
	// the floor to DefaultMaxCommands in about half a second.
	schedStep = 8
)

// schedMetric is the runtime's histogram of the time goroutines spent
// runnable before running.
const schedMetric = "/sched/latencies:seconds"

// SchedGate tells how many commands may be in flight now (Allowed). Run
// keeps it up to date; a gate never run allows DefaultMaxCommands. One gate
// per handler is fine: the runtime's histogram is the process's, and
// reading it costs microseconds.
type SchedGate struct {
	limit   float64 // seconds
	allowed atomic.Int64
	late    atomic.Uint64 // the last window's quantile, math.Float64bits
	cuts    *metrics.Counter
	sample  []rtmetrics.Sample
	prev    []uint64 // the counts read at the start of the window
}

// NewSchedGate returns a gate that lets fewer commands in while the
// scheduling latency's SchedQuantile passes limit (DefaultSchedLimit if
// limit is zero), with its figures in reg: bookshelf_sched_latency_seconds
// (the last window's quantile), bookshelf_sched_commands_allowed and
// bookshelf_sched_cuts_total.
func NewSchedGate(limit time.Duration, reg *metrics.Registry) *SchedGate {
	if limit <= 0 {
		limit = DefaultSchedLimit
	}
	g := &SchedGate{
		limit:  limit.Seconds(),
		sample: []rtmetrics.Sample{{Name: schedMetric}},
		cuts:   reg.Counter("bookshelf_sched_cuts_total", "Windows in which the Go scheduler's latency passed its limit, so that fewer commands were let in."),
	}
	g.allowed.Store(DefaultMaxCommands)
	reg.GaugeFunc("bookshelf_sched_latency_seconds", "The Go scheduler's latency (time runnable before running) over the last window, at the gate's quantile.",
		func() float64 { return math.Float64frombits(g.late.Load()) })
	reg.GaugeFunc("bookshelf_sched_commands_allowed", "Commands the scheduler gate lets be in flight now.",
		func() float64 { return float64(g.allowed.Load()) })
	return g
}

// Allowed is how many commands may be in flight now; no gate allows any
// number.
func (g *SchedGate) Allowed() int {
	if g == nil {
		return math.MaxInt
	}
	return int(g.allowed.Load())
}

// Run reads the runtime's histogram every SchedEvery until ctx is done,
// and allows DefaultMaxCommands again when it returns.
func (g *SchedGate) Run(ctx context.Context) error {
	t := time.NewTicker(SchedEvery)
	defer t.Stop()
	g.read()
	for {
		select {
		case <-ctx.Done():
			g.allowed.Store(DefaultMaxCommands)
			return nil
		case <-t.C:
			g.read()
		}
	}
}

func (g *SchedGate) read() {
	rtmetrics.Read(g.sample)
	if g.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return // a runtime without the metric: the gate stays open
	}
	g.observe(g.sample[0].Value.Float64Histogram())
}

// observe sets Allowed on the window since the last observation; the
// first only marks the start.
func (g *SchedGate) observe(h *rtmetrics.Float64Histogram) {
	if g.prev != nil {
		q, _ := windowQuantile(g.prev, h.Counts, h.Buckets, SchedQuantile)
		g.late.Store(math.Float64bits(q))
		n := g.allowed.Load()
		if q > g.limit {
			n = max(n/2, schedFloor)
			g.cuts.Inc()
		} else {
			n = min(n+schedStep, DefaultMaxCommands)
		}
		g.allowed.Store(n)
	}
	g.prev = append(g.prev[:0], h.Counts...)
}

// windowQuantile is quantile q of the observations between two readings
// of a cumulative histogram (counts[i] in [buckets[i], buckets[i+1])), as
// the upper bound of the bucket it falls in (the lower one for the last,
// unbounded bucket), and how many observations the window holds. An empty
// window, or readings of different shapes, give 0.
func windowQuantile(prev, cur []uint64, buckets []float64, q float64) (float64, uint64) {
	if len(prev) != len(cur) || len(buckets) != len(cur)+1 {
		return 0, 0
	}
	var total uint64
	for i := range cur {
		total += cur[i] - prev[i]
	}
	if total == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := range cur {
		seen += cur[i] - prev[i]
		if seen >= rank {
			if up := buckets[i+1]; !math.IsInf(up, 1) {
				return up, total
			}
			return buckets[i], total
		}
	}
	return buckets[len(buckets)-2], total
}
