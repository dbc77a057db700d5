// Package metrics is a small registry of counters and gauges that it writes
// in the Prometheus text exposition format, version 0.0.4.
//
// It has no dependencies beyond the standard library and covers what the
// services need: counters and gauges, with or without label values, gauges
// read from a function at scrape time, and HTTP request counts by route and
// status class. Incrementing is an atomic add; a label lookup is a lock-free
// map read once the series exists. A series, once created, lives as long as
// its registry, so label values must come from a small, known set (route
// patterns, outcomes), never from user input.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the exposition format written.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds metric families by name. The zero value is not usable;
// call NewRegistry.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{families: map[string]*family{}}
}

type kind string

const (
	kindCounter kind = "counter"
	kindGauge   kind = "gauge"
)

// family is one metric name with its help text and its series.
type family struct {
	name   string
	help   string
	kind   kind
	labels []string
	fn     atomic.Pointer[func() float64] // set for a func-backed gauge

	// series maps the label values, joined by labelSep, to *series.
	// sync.Map keeps the hot path (an existing series) free of locks.
	series sync.Map
	mu     sync.Mutex // serialises creating a series
}

type series struct {
	values  []string
	counter *Counter
	gauge   *Gauge
}

// labelSep joins label values into a map key. It cannot occur in valid
// UTF-8, so two different value lists never make the same key.
const labelSep = "\xff"

func (r *Registry) register(name, help string, k kind, labels []string) *family {
	if !validName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for _, l := range labels {
		if !validName(l) || strings.Contains(l, ":") || strings.HasPrefix(l, "__") {
			panic(fmt.Sprintf("metrics: invalid label name %q for %s", l, name))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		// Registering the same shape twice returns the same family, so two
		// parts of a service can share a metric without passing it around.
		if f.kind != k || !slices.Equal(f.labels, labels) {
			panic(fmt.Sprintf("metrics: %s registered twice with different kinds or labels", name))
		}
		return f
	}
	f := &family{name: name, help: help, kind: k, labels: slices.Clone(labels)}
	r.families[name] = f
	return f
}

// with returns the series for values, creating it on first use.
func (f *family) with(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	var key string
	switch len(values) {
	case 0:
	case 1:
		key = values[0]
	default:
		key = strings.Join(values, labelSep)
	}
	if s, ok := f.series.Load(key); ok {
		return s.(*series)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.series.Load(key); ok {
		return s.(*series)
	}
	s := &series{values: slices.Clone(values)}
	switch f.kind {
	case kindCounter:
		s.counter = &Counter{}
	case kindGauge:
		s.gauge = &Gauge{}
	}
	f.series.Store(key, s)
	return s
}

// Counter registers a counter without labels, or returns the one already
// registered under name.
func (r *Registry) Counter(name, help string) *Counter {
	return r.register(name, help, kindCounter, nil).with(nil).counter
}

// CounterVec registers a counter with the given label names.
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	if len(labels) == 0 {
		panic("metrics: CounterVec needs at least one label; use Counter")
	}
	return &CounterVec{f: r.register(name, help, kindCounter, labels)}
}

// Gauge registers a gauge without labels.
func (r *Registry) Gauge(name, help string) *Gauge {
	return r.register(name, help, kindGauge, nil).with(nil).gauge
}

// GaugeVec registers a gauge with the given label names.
func (r *Registry) GaugeVec(name, help string, labels ...string) *GaugeVec {
	if len(labels) == 0 {
		panic("metrics: GaugeVec needs at least one label; use Gauge")
	}
	return &GaugeVec{f: r.register(name, help, kindGauge, labels)}
}

// GaugeFunc registers a gauge whose value fn returns at scrape time. fn
// must be safe to call from any goroutine and quick. Registering the same
// name again replaces fn.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	f := r.register(name, help, kindGauge, nil)
	f.fn.Store(&fn)
}

// CounterFunc registers a counter whose value fn reads at scrape time,
// from a count kept elsewhere (it must only grow).
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	f := r.register(name, help, kindCounter, nil)
	f.fn.Store(&fn)
}

// CounterVec is a counter family with labels.
type CounterVec struct{ f *family }

// With returns the counter for the label values, in the order of the label
// names. Callers on a hot path can keep the result.
func (v *CounterVec) With(values ...string) *Counter { return v.f.with(values).counter }

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ f *family }

// With returns the gauge for the label values.
func (v *GaugeVec) With(values ...string) *Gauge { return v.f.with(values).gauge }

// Counter is a value that only goes up.
type Counter struct {
	n    atomic.Uint64 // whole increments: the common case, one atomic add
	frac atomic.Uint64 // float64 bits of the fractional additions
}

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds v, which must not be negative.
func (c *Counter) Add(v float64) {
	switch {
	case v < 0 || math.IsNaN(v):
		panic("metrics: a counter cannot go down")
	case v == math.Trunc(v) && v < 1<<53:
		c.n.Add(uint64(v))
	default:
		addFloat(&c.frac, v)
	}
}

// Value returns the current value.
func (c *Counter) Value() float64 {
	return float64(c.n.Load()) + math.Float64frombits(c.frac.Load())
}

// Gauge is a value that goes up and down.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds v (negative to subtract).
func (g *Gauge) Add(v float64) { addFloat(&g.bits, v) }

// Inc adds one.
func (g *Gauge) Inc() { g.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.Add(-1) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func addFloat(bits *atomic.Uint64, v float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ServeHTTP writes every metric in the text exposition format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	r.write(&buf)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// WriteTo writes every metric in the text exposition format to w.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	r.write(&buf)
	return buf.WriteTo(w)
}

// write renders the families sorted by name and their series sorted by
// label values, so two scrapes of the same state are byte for byte equal.
func (r *Registry) write(buf *bytes.Buffer) {
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })

	for _, f := range fams {
		var list []*series
		f.series.Range(func(_, v any) bool {
			list = append(list, v.(*series))
			return true
		})
		fn := f.fn.Load()
		if len(list) == 0 && fn == nil {
			continue // a labelled family nobody has used yet
		}
		slices.SortFunc(list, func(a, b *series) int { return slices.Compare(a.values, b.values) })

		buf.WriteString("# HELP ")
		buf.WriteString(f.name)
		buf.WriteByte(' ')
		writeEscaped(buf, f.help, false)
		buf.WriteString("\n# TYPE ")
		buf.WriteString(f.name)
		buf.WriteByte(' ')
		buf.WriteString(string(f.kind))
		buf.WriteByte('\n')

		if fn != nil {
			buf.WriteString(f.name)
			buf.WriteByte(' ')
			writeFloat(buf, (*fn)())
			buf.WriteByte('\n')
			continue
		}
		for _, s := range list {
			buf.WriteString(f.name)
			if len(s.values) > 0 {
				buf.WriteByte('{')
				for i, v := range s.values {
					if i > 0 {
						buf.WriteByte(',')
					}
					buf.WriteString(f.labels[i])
					buf.WriteString(`="`)
					writeEscaped(buf, v, true)
					buf.WriteByte('"')
				}
				buf.WriteByte('}')
			}
			buf.WriteByte(' ')
			if s.counter != nil {
				if frac := math.Float64frombits(s.counter.frac.Load()); frac == 0 {
					buf.WriteString(strconv.FormatUint(s.counter.n.Load(), 10))
				} else {
					writeFloat(buf, s.counter.Value())
				}
			} else {
				writeFloat(buf, s.gauge.Value())
			}
			buf.WriteByte('\n')
		}
	}
}

func writeFloat(buf *bytes.Buffer, v float64) {
	switch {
	case math.IsInf(v, 1):
		buf.WriteString("+Inf")
	case math.IsInf(v, -1):
		buf.WriteString("-Inf")
	case math.IsNaN(v):
		buf.WriteString("NaN")
	default:
		buf.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
}

// writeEscaped escapes a help text (backslash, line feed) or a label value
// (also the double quote), as the format requires.
func writeEscaped(buf *bytes.Buffer, s string, quote bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			buf.WriteString(`\\`)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '"' && quote:
			buf.WriteString(`\"`)
		default:
			buf.WriteByte(c)
		}
	}
}

// validName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
