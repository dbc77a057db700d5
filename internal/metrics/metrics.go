// Package metrics is the services' metrics, on the Prometheus client
// library (github.com/prometheus/client_golang): a registry per service,
// with the Go runtime's and the process's collectors, counters and gauges
// with or without label values, gauges and counters read from a function at
// scrape time, histograms, and HTTP requests by route and status class
// (see HTTPRequests). A series, once created, lives as long as its
// registry, so label values must come from a small, known set (route
// patterns, outcomes), never from user input.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// ContentType is the media type of the text exposition format, which a
// scrape without an Accept header gets (names escaped to the classic
// character set).
const ContentType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

// Registry holds one service's metric families. The zero value is not
// usable; call NewRegistry.
type Registry struct {
	reg *prometheus.Registry
	h   http.Handler
	mu  sync.Mutex
	// byName are the collectors registered through this package, so that
	// asking again for the same family returns it.
	byName map[string]registered
}

type registered struct {
	kind   string
	labels []string
	c      prometheus.Collector
}

// NewRegistry returns a registry holding the Go runtime's and the
// process's metrics (go_*, process_*), with, beside the usual ones, the
// histograms that tell why a request was slow under load: how long
// goroutines waited runnable (go_sched_latencies_seconds) and the
// stop-the-world pauses (go_sched_pauses_total_gc_seconds).
func NewRegistry() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: runtimeHistograms})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg, byName: map[string]registered{}, h: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
}

// runtimeHistograms are the runtime/metrics names NewRegistry adds.
var runtimeHistograms = regexp.MustCompile(`^/sched/(latencies|pauses/total/gc):seconds$`)

// Prometheus is the underlying registry, for collectors of other libraries
// (the Kafka client's, say).
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }

// get returns the collector registered as name, making it with mk the first
// time; asking for a name with another kind or other labels panics, as a
// programming error.
func (r *Registry) get(name, kind string, labels []string, mk func() prometheus.Collector) prometheus.Collector {
	r.mu.Lock()
	defer r.mu.Unlock()
	if got, ok := r.byName[name]; ok {
		if got.kind != kind || fmt.Sprint(got.labels) != fmt.Sprint(labels) {
			panic(fmt.Sprintf("metrics: %s registered as a %s%v, asked for as a %s%v", name, got.kind, got.labels, kind, labels))
		}
		return got.c
	}
	c := mk()
	r.reg.MustRegister(c)
	r.byName[name] = registered{kind: kind, labels: labels, c: c}
	return c
}

// Counter registers (or returns) a counter without labels.
func (r *Registry) Counter(name, help string) *Counter {
	return &Counter{r.get(name, "counter", nil, func() prometheus.Collector {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}).(prometheus.Counter)}
}

// CounterVec registers (or returns) a counter with label names.
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r.get(name, "counter", labels, func() prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}).(*prometheus.CounterVec)}
}

// Gauge registers (or returns) a gauge without labels.
func (r *Registry) Gauge(name, help string) *Gauge {
	return &Gauge{r.get(name, "gauge", nil, func() prometheus.Collector {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}).(prometheus.Gauge)}
}

// GaugeVec registers (or returns) a gauge with label names.
func (r *Registry) GaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r.get(name, "gauge", labels, func() prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}).(*prometheus.GaugeVec)}
}

// HistogramVec registers (or returns) a histogram with label names and
// the given bucket bounds (nil: the library's defaults, 5 ms to 10 s).
func (r *Registry) HistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	return &HistogramVec{r.get(name, "histogram", labels, func() prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	}).(*prometheus.HistogramVec)}
}

// GaugeFunc registers a gauge whose value fn gives at scrape time.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.get(name, "gauge func", nil, func() prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn)
	})
}

// CounterFunc registers a counter whose value fn gives at scrape time (a
// total kept elsewhere); fn must never decrease.
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	r.get(name, "counter func", nil, func() prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn)
	})
}

// CounterVec is a counter family with labels.
type CounterVec struct{ v *prometheus.CounterVec }

// With returns the counter of the label values, making it if needed.
func (v *CounterVec) With(values ...string) *Counter { return &Counter{v.v.WithLabelValues(values...)} }

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ v *prometheus.GaugeVec }

// With returns the gauge of the label values, making it if needed.
func (v *GaugeVec) With(values ...string) *Gauge { return &Gauge{v.v.WithLabelValues(values...)} }

// HistogramVec is a histogram family with labels.
type HistogramVec struct{ v *prometheus.HistogramVec }

// With returns the histogram of the label values, making it if needed.
func (v *HistogramVec) With(values ...string) prometheus.Observer {
	return v.v.WithLabelValues(values...)
}

// Counter only goes up.
type Counter struct{ c prometheus.Counter }

// Inc adds one.
func (c *Counter) Inc() { c.c.Inc() }

// Add adds v, which must not be negative.
func (c *Counter) Add(v float64) { c.c.Add(v) }

// Value is the count now.
func (c *Counter) Value() float64 { return value(c.c).GetCounter().GetValue() }

// Gauge goes up and down.
type Gauge struct{ g prometheus.Gauge }

// Set sets the gauge.
func (g *Gauge) Set(v float64) { g.g.Set(v) }

// Add adds v (negative to take away).
func (g *Gauge) Add(v float64) { g.g.Add(v) }

// Inc adds one.
func (g *Gauge) Inc() { g.g.Inc() }

// Dec takes one away.
func (g *Gauge) Dec() { g.g.Dec() }

// Value is the gauge now.
func (g *Gauge) Value() float64 { return value(g.g).GetGauge().GetValue() }

func value(m prometheus.Metric) *dto.Metric {
	var out dto.Metric
	_ = m.Write(&out)
	return &out
}

// ServeHTTP answers a scrape (promhttp: the format the scraper asks for,
// the text format by default).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.h.ServeHTTP(w, req) }

// WriteTo writes every family in the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	families, err := r.reg.Gather()
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: w}
	enc := expfmt.NewEncoder(cw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// GaugeVecFunc registers a gauge family whose series fn gives at scrape
// time: fn calls emit once per series, with its value and label values
// (as many as labels). A series fn does not emit is not there, so the
// family follows something that comes and goes (the partitions an
// instance owns) without leaving stale series behind.
func (r *Registry) GaugeVecFunc(name, help string, labels []string, fn func(emit func(value float64, labelValues ...string))) {
	r.get(name, "gauge vec func", labels, func() prometheus.Collector {
		return &funcCollector{desc: prometheus.NewDesc(name, help, labels, nil), fn: fn}
	})
}

// funcCollector is a gauge family read from a function at each scrape.
type funcCollector struct {
	desc *prometheus.Desc
	fn   func(emit func(float64, ...string))
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	c.fn(func(v float64, values ...string) {
		// A wrong count of label values is the caller's bug; it shows as
		// a scrape error rather than a crash.
		m, err := prometheus.NewConstMetric(c.desc, prometheus.GaugeValue, v, values...)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.desc, err)
		}
		ch <- m
	})
}
