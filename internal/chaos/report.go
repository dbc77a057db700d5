package chaos

import (
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is the figures of a run.
type Report struct {
	Seed     uint64                 `json:"seed"`
	Cycles   int                    `json:"cycles"`
	Began    time.Time              `json:"began"`
	Ended    time.Time              `json:"ended"`
	Faults   []Fault                `json:"faults"`
	ByKind   map[string]*KindReport `json:"by_kind"`
	Overall  Latency                `json:"latency"`
	Verdict  Verdict                `json:"verdict"`
	Sent     int                    `json:"operations"`
	Timeline []Second               `json:"timeline"`
}

// Latency is percentiles of the operations' latencies.
type Latency struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// KindReport is the figures of one kind of fault.
type KindReport struct {
	Faults int `json:"faults"`
	// Latency of the commands in flight while a fault of the kind was on.
	Latency Latency `json:"latency"`
	// ReadBack is the latency of the reads of one's own writes in flight
	// then: how soon a view had caught up with each write.
	ReadBack Latency `json:"read_back"`
	// Unavailable is, per fault, the longest an acknowledged command
	// waited from the fault on (from its call, when later): how long a
	// partition could not take writes.
	Unavailable []time.Duration `json:"unavailable_ns"`
	WorstWindow time.Duration   `json:"worst_unavailable_ns"`
	// Recovered is, per fault, from the fault until every part of the
	// system was healthy again.
	Recovered []time.Duration `json:"recovered_ns"`
	// Served is, per fault the brokers were asked after, from the fault
	// until they served the system again; Beyond how much longer the
	// commands waiting then waited (0 when none was waiting). Commands
	// sent after that may wait longer still, in the window: the broker's
	// restart, for one, which the brokers are not asked about.
	Served []time.Duration `json:"served_ns,omitempty"`
	Beyond []time.Duration `json:"beyond_served_ns,omitempty"`
}

// Second is one second of the run: commands acknowledged, and their p99.
type Second struct {
	Acked int           `json:"acked"`
	P99   time.Duration `json:"p99_ns"`
}

// latencyOf is the latency of the acknowledged commands, or of the
// answered gets.
func latencyOf(ops []Op, commands bool) Latency {
	var ds []time.Duration
	for _, o := range ops {
		if o.Command() == commands && o.Result == Ok {
			ds = append(ds, o.Latency())
		}
	}
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	return Latency{N: len(ds), P50: ds[len(ds)/2], P99: ds[len(ds)*99/100], Max: ds[len(ds)-1]}
}

// Figures computes a run's figures.
func Figures(seed uint64, cycles int, ops []Op, faults []Fault, v Verdict) Report {
	r := Report{Seed: seed, Cycles: cycles, Faults: faults, ByKind: map[string]*KindReport{}, Overall: latencyOf(ops, true), Verdict: v, Sent: len(ops)}
	if len(ops) == 0 {
		return r
	}
	r.Began, r.Ended = ops[0].Call, ops[0].Return
	for _, o := range ops {
		if o.Call.Before(r.Began) {
			r.Began = o.Call
		}
		if o.Return.After(r.Ended) {
			r.Ended = o.Return
		}
	}
	acked := slices.DeleteFunc(slices.Clone(ops), func(o Op) bool { return !o.Command() || o.Result != Ok })
	slices.SortFunc(acked, func(a, b Op) int { return a.Return.Compare(b.Return) })
	for _, f := range faults {
		k := r.ByKind[f.Kind]
		if k == nil {
			k = &KindReport{}
			r.ByKind[f.Kind] = k
		}
		k.Faults++
		k.Recovered = append(k.Recovered, f.Ready.Sub(f.At))
		// How long a command in flight on the fault, or sent during
		// it, waited from the fault on, until it was acknowledged; the
		// longest, over the partitions.
		// And, once the brokers served again, how much longer the
		// commands waiting then waited.
		var window, beyond time.Duration
		for _, o := range acked {
			if o.Call.Before(f.Ready) && o.Return.After(f.At) {
				from := o.Call
				if from.Before(f.At) {
					from = f.At
				}
				window = max(window, o.Return.Sub(from))
				if !f.Served.IsZero() && o.Call.Before(f.Served) && o.Return.After(f.Served) {
					beyond = max(beyond, o.Return.Sub(f.Served))
				}
			}
		}
		k.Unavailable = append(k.Unavailable, window)
		k.WorstWindow = max(k.WorstWindow, window)
		if !f.Served.IsZero() {
			k.Served = append(k.Served, f.Served.Sub(f.At))
			k.Beyond = append(k.Beyond, beyond)
		}
	}
	for kind, k := range r.ByKind {
		var during []Op
		for _, o := range ops {
			for _, f := range faults {
				if f.Kind == kind && o.Call.Before(f.Ready) && o.Return.After(f.At) { // in flight during the fault
					during = append(during, o)
					break
				}
			}
		}
		k.Latency, k.ReadBack = latencyOf(during, true), latencyOf(during, false)
	}
	secs := int(r.Ended.Sub(r.Began)/time.Second) + 1
	buckets := make([][]time.Duration, secs)
	for _, o := range acked {
		i := int(o.Return.Sub(r.Began) / time.Second)
		buckets[i] = append(buckets[i], o.Latency())
	}
	r.Timeline = make([]Second, secs)
	for i, b := range buckets {
		slices.Sort(b)
		r.Timeline[i].Acked = len(b)
		if len(b) > 0 {
			r.Timeline[i].P99 = b[len(b)*99/100]
		}
	}
	return r
}

// Summary is the run's last line.
func (r Report) Summary() string {
	v := r.Verdict
	return fmt.Sprintf("chaos: %d cycles, %d faults, %d acknowledged, %d lost, %d doubled, %d anomalies",
		r.Cycles, len(r.Faults), v.Acknowledged, v.Lost, v.Doubled, v.Anomalies)
}

// WriteText prints the figures as a person reads them.
func (r Report) WriteText(w io.Writer) {
	v := r.Verdict
	fmt.Fprintf(w, "seed %d, %d cycles in %s\n", r.Seed, r.Cycles, r.Ended.Sub(r.Began).Round(time.Second))
	fmt.Fprintf(w, "commands: %d sent, %d acknowledged, %d refused, %d unknown; %d lost, %d doubled\n",
		v.Commands, v.Acknowledged, v.Refused, v.Unknown, v.Lost, v.Doubled)
	fmt.Fprintf(w, "linearizable per book: %s; views: ", v.Linearizable)
	for i, vw := range v.Views {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		state := "agrees"
		if !vw.Converged {
			state = "DISAGREES"
		}
		fmt.Fprintf(w, "%s %s %s after %s", vw.Service, vw.Address, state, vw.After.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "\nlatency of acknowledged commands: p50 %s, p99 %s, max %s\n\n", r.Overall.P50.Round(time.Millisecond), r.Overall.P99.Round(time.Millisecond), r.Overall.Max.Round(time.Millisecond))
	fmt.Fprintf(w, "%-16s %6s %9s %9s %9s %14s %14s %12s %13s\n", "fault", "count", "p50", "p99", "max", "unavail. p50", "unavail. max", "healthy p50", "read-back p99")
	for _, kind := range r.kinds() {
		k := r.ByKind[kind]
		fmt.Fprintf(w, "%-16s %6d %9s %9s %9s %14s %14s %12s %13s\n", kind, k.Faults,
			k.Latency.P50.Round(time.Millisecond), k.Latency.P99.Round(time.Millisecond), k.Latency.Max.Round(time.Millisecond),
			median(k.Unavailable).Round(time.Millisecond), k.WorstWindow.Round(time.Millisecond), median(k.Recovered).Round(time.Millisecond),
			k.ReadBack.P99.Round(time.Millisecond))
	}
	fmt.Fprintln(w, "(p50/p99/max: acknowledged commands in flight during the faults; unavailable: the longest an")
	fmt.Fprintln(w, " acknowledged command waited from the fault on; read-back: reads of one's own writes, how soon a view had them)")
	r.writeServed(w)
	for _, p := range v.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
}

// writeServed prints, for the faults the brokers were asked after, how long
// they took to serve the system again and how much longer the commands
// waiting then waited.
func (r Report) writeServed(w io.Writer) {
	var kinds []string
	for _, kind := range r.kinds() {
		if len(r.ByKind[kind].Served) > 0 {
			kinds = append(kinds, kind)
		}
	}
	if len(kinds) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-16s %12s %12s %12s %12s\n", "fault", "brokers p50", "brokers max", "beyond p50", "beyond max")
	for _, kind := range kinds {
		k := r.ByKind[kind]
		fmt.Fprintf(w, "%-16s %12s %12s %12s %12s\n", kind, median(k.Served).Round(time.Millisecond), slices.Max(k.Served).Round(time.Millisecond),
			median(k.Beyond).Round(time.Millisecond), slices.Max(k.Beyond).Round(time.Millisecond))
	}
	fmt.Fprintln(w, "(brokers: from the fault until every broker listed, every partition's leader, the group's coordinator")
	fmt.Fprintln(w, " and the members' transaction coordinators answered, and no partition waited for a dead broker in sync;")
	fmt.Fprintln(w, " beyond: how much longer the commands waiting then waited)")
}

func (r Report) kinds() []string {
	var ks []string
	for k := range r.ByKind {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// WriteHTML writes the run as a page: the timeline of acknowledged
// commands per second and their p99, the faults marked on it, and the
// figures.
func (r Report) WriteHTML(w io.Writer, visual string) {
	const width, height, pad = 1100.0, 260.0, 40.0
	secs := max(len(r.Timeline), 1)
	maxAcked, maxP99 := 1, time.Millisecond
	for _, s := range r.Timeline {
		maxAcked, maxP99 = max(maxAcked, s.Acked), max(maxP99, s.P99)
	}
	x := func(t time.Time) float64 { return pad + (width-2*pad)*t.Sub(r.Began).Seconds()/float64(secs) }
	var svg strings.Builder
	fmt.Fprintf(&svg, `<svg viewBox="0 0 %.0f %.0f" role="img" aria-label="commands acknowledged per second, their p99 latency, and the faults">`, width, height+40)
	colours := map[string]string{}
	palette := []string{"#e4572e", "#17bebb", "#ffc914", "#76b041", "#9c6ade", "#f08cae", "#2e86ab", "#8d6a9f"}
	for i, k := range r.kinds() {
		colours[k] = palette[i%len(palette)]
	}
	for _, f := range r.Faults {
		fmt.Fprintf(&svg, `<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s" opacity="0.25"><title>%s on %s: healed after %s, healthy after %s</title></rect>`,
			x(f.At), pad/2, max(x(f.Ready)-x(f.At), 1), height-pad/2, colours[f.Kind], html.EscapeString(f.Kind), html.EscapeString(f.Target),
			f.Healed.Sub(f.At).Round(time.Millisecond), f.Ready.Sub(f.At).Round(time.Millisecond))
	}
	bw := (width - 2*pad) / float64(secs)
	var line strings.Builder
	for i, s := range r.Timeline {
		h := (height - pad) * float64(s.Acked) / float64(maxAcked)
		fmt.Fprintf(&svg, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#333"><title>second %d: %d acknowledged, p99 %s</title></rect>`,
			pad+float64(i)*bw, height-h, max(bw-0.5, 0.5), h, i, s.Acked, s.P99.Round(time.Millisecond))
		y := height - (height-pad)*float64(s.P99)/float64(maxP99)
		fmt.Fprintf(&line, "%.1f,%.1f ", pad+(float64(i)+0.5)*bw, y)
	}
	fmt.Fprintf(&svg, `<polyline points="%s" fill="none" stroke="#c00" stroke-width="1.5"/>`, line.String())
	fmt.Fprintf(&svg, `<text x="%.0f" y="%.0f" font-size="12">acknowledged/s (bars, max %d) · p99 latency (red, max %s) · faults (bands) · %d s</text></svg>`,
		pad, height+25, maxAcked, maxP99.Round(time.Millisecond), secs)
	var legend strings.Builder
	for _, k := range r.kinds() {
		fmt.Fprintf(&legend, `<span style="background:%s;opacity:.6;padding:0 .5em">&nbsp;</span> %s &nbsp; `, colours[k], html.EscapeString(k))
	}
	var text strings.Builder
	r.WriteText(&text)
	link := ""
	if visual != "" && r.Verdict.Linearizable == "Illegal" {
		link = fmt.Sprintf(`<p><a href="%s">The history that is not linearizable, drawn by porcupine</a></p>`, html.EscapeString(visual))
	}
	fmt.Fprintf(w, `<!doctype html><html lang="en"><meta charset="utf-8"><title>Bookshelf chaos: %s</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#111}pre{background:#f4f4f4;padding:1em;overflow:auto}svg{width:100%%;max-width:1100px;border:1px solid #ddd}</style>
<h1>%s</h1><p>%s</p>%s%s<pre>%s</pre></html>
`, html.EscapeString(r.Summary()), html.EscapeString(r.Summary()), legend.String(), svg.String(), link, html.EscapeString(text.String()))
}
