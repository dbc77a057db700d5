package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Registry lists the healthy instances of a service by its registry
// name; the gateway's resolver is one.
type Registry interface {
	Instances(ctx context.Context, service string) ([]Instance, error)
}

// Instance is one instance as the registry knows it.
type Instance struct {
	ID      string
	URL     string // its HTTP base URL
	Version string // from the registry's metadata, "" if none
}

// DeadLetterTopic is the dead-letter topic, read and redriven through a
// broker: the gateway's, when it has one.
type DeadLetterTopic interface {
	// List is every dead letter, in order of partition then offset.
	List(ctx context.Context) ([]DeadLetter, error)
	// Redrive sends dead letters back where they came from, as `bookshelf
	// dlq redrive` does: those of ids, or every one from origin not
	// redriven yet; value, when not nil, replaces the value of the one
	// record redriven. ErrNoDeadLetter when nothing matches.
	Redrive(ctx context.Context, ids []string, origin string, value []byte) ([]Redriven, error)
}

// ErrNoDeadLetter is what Redrive returns when no dead letter matches.
var ErrNoDeadLetter = errors.New("no dead letter matches")

// DeadLetter is one record of the dead-letter topic, as the console shows
// it.
type DeadLetter struct {
	ID          string    `json:"id"`     // partition:offset in the dead-letter topic
	Origin      string    `json:"origin"` // topic/partition/offset it came from
	OriginTopic string    `json:"origin_topic"`
	Time        time.Time `json:"time"`
	Error       string    `json:"error"`
	By          string    `json:"by,omitempty"`
	Redriven    int       `json:"redriven"`              // times redriven before it was dead-lettered this time
	RedrivenTo  string    `json:"redriven_to,omitempty"` // where its redrive went, if it has been
	// NotRedrivable says why it cannot be redriven; "" when it can.
	NotRedrivable string `json:"not_redrivable,omitempty"`
	// TraceID is the trace of the original record (its traceparent
	// header), "" if it had none.
	TraceID string            `json:"trace_id,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Value   string            `json:"value"`
	// ValueBase64 says Value is base64: the record was not UTF-8 text.
	ValueBase64 bool `json:"value_base64,omitempty"`
	Size        int  `json:"size"`
}

// Redriven is the result of redriving one dead letter.
type Redriven struct {
	ID    string `json:"id"`
	To    string `json:"to,omitempty"`    // topic/partition/offset of the copy
	Error string `json:"error,omitempty"` // why it was not redriven
}

// Ops is the operations console: GET /ops, and what it reads under
// /ops/api/. Everything comes from the registry, the services' own
// /readyz and /metrics, and the dead-letter topic; nothing else.
//
//   - GET /ops/api/status: every service and instance with its health,
//     version, uptime and address; the partitions each books instance
//     owns and the group's lag on them; each view replica's position and
//     lag, now and over the last five minutes (kept by the console, from
//     its looks: Run's and each status's); commands per second, latency
//     percentiles and what was shed, from the books instances'
//     histograms; the dead letters' count.
//   - GET /ops/api/dead-letters (?origin=topic): the dead letters.
//   - GET /ops/api/dead-letters/{id}: one, with its headers and value.
//   - POST /ops/api/dead-letters/redrive, {"ids":[...]} or
//     {"origin":"topic"}, and "value" to send a mended value for one id.
//
// Errors are application/problem+json.
type Ops struct {
	Registry Registry
	// Services are the registry names to show, in order.
	Services []string
	// DeadLetters is the dead-letter topic; nil when this gateway has no
	// broker to ask: the console says so.
	DeadLetters DeadLetterTopic
	// TracesURL, when set, is a trace viewer's address with {trace} where
	// the trace id goes.
	TracesURL string
	// Client asks the instances; nil means one with a 2 s timeout.
	Client *http.Client

	mu      sync.Mutex
	samples []commandSample // each instance's command totals at each look, oldest first
	lags    map[string][]LagPoint

	// The dead letters as last read, for a second: the console's looks
	// and its viewers' would each read the whole topic otherwise.
	dlMu  sync.Mutex
	dlAt  time.Time
	dlAll []DeadLetter
	// dlGen counts forgetDeadLetters: a read begun before a redrive is
	// not kept after it.
	dlGen int
}

// deadLettersFresh is how long a read of the dead-letter topic is reused.
const deadLettersFresh = time.Second

// deadLetters is the dead-letter topic's records, read at most once a
// second; a failed read is not kept. The lock is not held while the topic
// is read: a viewer with a short deadline does not wait behind another's
// slow read.
func (o *Ops) deadLetters(ctx context.Context) ([]DeadLetter, error) {
	o.dlMu.Lock()
	if !o.dlAt.IsZero() && time.Since(o.dlAt) < deadLettersFresh {
		defer o.dlMu.Unlock()
		return o.dlAll, nil
	}
	gen := o.dlGen
	o.dlMu.Unlock()
	ds, err := o.DeadLetters.List(ctx)
	if err != nil {
		return nil, err
	}
	o.dlMu.Lock()
	if o.dlGen == gen {
		o.dlAll, o.dlAt = ds, time.Now()
	}
	o.dlMu.Unlock()
	return ds, nil
}

// forgetDeadLetters drops the last read, and any read begun before, so
// that the next look reads the topic again (after a redrive).
func (o *Ops) forgetDeadLetters() {
	o.dlMu.Lock()
	o.dlAt = time.Time{}
	o.dlGen++
	o.dlMu.Unlock()
}

// LagPoint is a view replica's position and lag at one look.
type LagPoint struct {
	Time     time.Time `json:"t"`
	Position float64   `json:"position"`
	Records  float64   `json:"records"`
	Seconds  float64   `json:"seconds"`
}

// lagHistory is how far back the views' lag is kept, and lagEvery the
// least time between two of its points.
const (
	lagHistory = 5 * time.Minute
	lagEvery   = time.Second
)

// Run looks at every instance every interval until ctx ends, so that the
// command figures and the views' lag over time are there when a person
// opens the console, not only from then on.
func (o *Ops) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// The instances only: the dead-letter topic is read when
			// someone looks, not every interval with nobody there.
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			o.status(sctx, false)
			cancel()
		}
	}
}

// recordLags adds this look to each view replica's history, forgets the
// points (and the replicas) older than lagHistory, and hands each replica
// its history.
func (o *Ops) recordLags(now time.Time, svcs []opsService) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lags == nil {
		o.lags = map[string][]LagPoint{}
	}
	for i := range svcs {
		for j := range svcs[i].Instances {
			in := &svcs[i].Instances[j]
			if in.LagRecords == nil {
				continue
			}
			key := svcs[i].Service + "/" + in.ID
			h := o.lags[key]
			p := LagPoint{Time: now.UTC(), Records: *in.LagRecords}
			if in.LagSeconds != nil {
				p.Seconds = *in.LagSeconds
			}
			if in.Position != nil {
				p.Position = *in.Position
			}
			if len(h) == 0 || now.Sub(h[len(h)-1].Time) >= lagEvery {
				h = append(h, p)
			}
			o.lags[key] = h
		}
	}
	for key, h := range o.lags {
		n := 0
		for n < len(h) && now.Sub(h[n].Time) > lagHistory {
			n++
		}
		if n == len(h) {
			delete(o.lags, key)
			continue
		}
		o.lags[key] = h[n:]
	}
	for i := range svcs {
		for j := range svcs[i].Instances {
			in := &svcs[i].Instances[j]
			if h, ok := o.lags[svcs[i].Service+"/"+in.ID]; ok && in.LagRecords != nil {
				in.History = append([]LagPoint(nil), h...)
			}
		}
	}
}

// The counters of dead letters the services publish on /metrics.
var deadLetterMetrics = []string{"bookshelf_records_dead_lettered_total", "bookshelf_commands_dead_lettered_total"}

type opsInstance struct {
	ID      string `json:"id"`
	URL     string `json:"url"`
	Address string `json:"address"`
	Version string `json:"version,omitempty"`
	Ready   bool   `json:"ready"`
	Status  string `json:"status"` // what /readyz said, or why it could not be asked
	Millis  int64  `json:"ms"`     // how long /readyz took
	// UptimeSeconds is how long its process has run, from its
	// process_start_time_seconds; nil when it does not say.
	UptimeSeconds *float64 `json:"uptime_seconds,omitempty"`
	// DeadLettered is the service's own count of the records it
	// dead-lettered since it started; nil when it publishes none.
	DeadLettered *int64 `json:"dead_lettered,omitempty"`
	// Partitions, for books, are the command partitions it owns, and
	// GroupLag the commands of each not decided yet.
	Partitions []int          `json:"partitions,omitempty"`
	GroupLag   map[string]int `json:"group_lag,omitempty"`
	// A view's position in the log and lag behind it, as it publishes
	// them; nil for the others.
	Position   *float64 `json:"position,omitempty"`
	LagRecords *float64 `json:"lag_records,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// History is a view's position and lag over the last five minutes.
	History []LagPoint `json:"history,omitempty"`

	samples []sample // its /metrics, for the command figures
}

type opsService struct {
	Service   string        `json:"service"`
	Instances []opsInstance `json:"instances"`
	Error     string        `json:"error,omitempty"`
}

// opsCommands are the command figures, summed over the books instances.
type opsCommands struct {
	// Window is the span the rates and percentiles are over, seconds; 0
	// before two looks at the instances.
	Window    float64 `json:"window_seconds"`
	PerSecond float64 `json:"per_second"`
	// Latency percentiles over the window, seconds, from the histogram
	// bookshelf_command_duration_seconds; nil without commands in it.
	P50 *float64 `json:"p50,omitempty"`
	P95 *float64 `json:"p95,omitempty"`
	P99 *float64 `json:"p99,omitempty"`
	// Total commands answered, and shed (answered 503 at once), since the
	// instances started; ShedWindow, shed in the window.
	Total      float64 `json:"total"`
	Shed       float64 `json:"shed"`
	ShedWindow float64 `json:"shed_window"`
	// Outcomes counts the window's commands by outcome.
	Outcomes map[string]float64 `json:"outcomes,omitempty"`
}

type opsStatus struct {
	Time        time.Time    `json:"time"`
	Services    []opsService `json:"services"`
	Commands    opsCommands  `json:"commands"`
	DeadLetters *struct {
		Total   int `json:"total"`
		Waiting int `json:"waiting"`
	} `json:"dead_letters,omitempty"`
	DeadLettersError string `json:"dead_letters_error,omitempty"`
	TracesURL        string `json:"traces_url,omitempty"`
}

// noBroker is what the console says without a dead-letter topic.
const noBroker = "this gateway has no broker to ask (start it with --broker); bookshelf dlq list does"

// status asks every instance of every service, all at once, and the
// dead-letter topic with deadLetters.
func (o *Ops) status(ctx context.Context, deadLetters bool) opsStatus {
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	now := time.Now()
	st := opsStatus{Time: now.UTC(), Services: make([]opsService, len(o.Services)), TracesURL: o.TracesURL}
	var wg sync.WaitGroup
	for i, name := range o.Services {
		svc := &st.Services[i]
		svc.Service = name
		ins, err := o.Registry.Instances(ctx, name)
		if err != nil {
			svc.Error = err.Error()
		}
		svc.Instances = make([]opsInstance, len(ins))
		for j, in := range ins {
			oi := &svc.Instances[j]
			oi.ID, oi.URL, oi.Version = in.ID, in.URL, in.Version
			if u, err := url.Parse(in.URL); err == nil {
				oi.Address = u.Host
			}
			wg.Go(func() { probe(ctx, client, oi, now) })
		}
	}
	var total, waiting int
	var dlErr error
	if o.DeadLetters != nil && deadLetters {
		wg.Go(func() {
			var ds []DeadLetter
			if ds, dlErr = o.deadLetters(ctx); dlErr == nil {
				total = len(ds)
				for _, d := range ds {
					if d.RedrivenTo == "" {
						waiting++
					}
				}
			}
		})
	}
	wg.Wait()
	switch {
	case o.DeadLetters == nil:
		st.DeadLettersError = noBroker
	case dlErr != nil:
		st.DeadLettersError = dlErr.Error()
	default:
		st.DeadLetters = &struct {
			Total   int `json:"total"`
			Waiting int `json:"waiting"`
		}{total, waiting}
	}
	st.Commands = o.commands(now, st.Services)
	o.recordLags(now, st.Services)
	return st
}

// probe asks one instance for /readyz and /metrics.
func probe(ctx context.Context, client *http.Client, in *opsInstance, now time.Time) {
	began := time.Now()
	body, code, err := fetch(ctx, client, in.URL+"/readyz", 4096)
	in.Millis = time.Since(began).Milliseconds()
	switch {
	case err != nil:
		in.Status = "unreachable: " + err.Error()
		return
	case code == http.StatusOK:
		in.Ready = true
		in.Status = strings.TrimSpace(string(body))
	default:
		// A problem+json: its detail says why.
		var p struct{ Detail, Title string }
		if json.Unmarshal(body, &p) == nil && (p.Detail != "" || p.Title != "") {
			in.Status = strings.TrimSpace(p.Title + ": " + p.Detail)
		} else {
			in.Status = strconv.Itoa(code) + " " + strings.TrimSpace(string(body))
		}
	}
	text, code, err := fetch(ctx, client, in.URL+"/metrics", 4<<20)
	if err != nil || code != http.StatusOK {
		return
	}
	ss := parseSamples(string(text))
	in.samples = ss
	var dead int64
	found := false
	for _, s := range ss {
		switch {
		case s.name == deadLetterMetrics[0] || s.name == deadLetterMetrics[1]:
			dead += int64(s.value)
			found = true
		case s.name == "process_start_time_seconds" && s.value > 0:
			up := max(now.Sub(time.Unix(0, int64(s.value*1e9))).Seconds(), 0)
			in.UptimeSeconds = &up
		case s.name == "bookshelf_build_info" && in.Version == "":
			in.Version = s.labels["version"]
		case s.name == "bookshelf_partition_owner_info":
			if p, err := strconv.Atoi(s.labels["partition"]); err == nil {
				in.Partitions = append(in.Partitions, p)
			}
		case s.name == "bookshelf_group_lag_records":
			if in.GroupLag == nil {
				in.GroupLag = map[string]int{}
			}
			in.GroupLag[s.labels["partition"]] = int(s.value)
		case s.name == "bookshelf_view_position_records":
			in.Position = ptr(s.value)
		case s.name == "bookshelf_view_lag_records":
			in.LagRecords = ptr(s.value)
		case s.name == "bookshelf_view_lag_seconds":
			in.LagSeconds = ptr(s.value)
		}
	}
	if found {
		in.DeadLettered = &dead
	}
	sort.Ints(in.Partitions)
}

func ptr(f float64) *float64 { return &f }

func fetch(ctx context.Context, client *http.Client, url string, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	return b, resp.StatusCode, err
}

// commandSample is the books instances' totals at one look: commands
// answered, by outcome, the latency histogram's buckets (upper bound →
// cumulative count), and the requests shed.
type commandSample struct {
	at time.Time
	// by is each instance's totals at that look, by instance id.
	by map[string]*commandTotals
}

// commandTotals are one instance's command metrics, as its /metrics said.
type commandTotals struct {
	count    float64
	outcomes map[string]float64
	buckets  map[float64]float64
	shed     float64
}

// since is what t counted since old, as Prometheus's rate() reads a
// counter: a total that went down is a restarted process, counting from
// zero again.
func (t *commandTotals) since(old *commandTotals) *commandTotals {
	if t.count < old.count || t.shed < old.shed {
		return t
	}
	d := &commandTotals{count: t.count - old.count, shed: t.shed - old.shed,
		outcomes: map[string]float64{}, buckets: map[float64]float64{}}
	for k, v := range t.outcomes {
		if n := v - old.outcomes[k]; n > 0 {
			d.outcomes[k] = n
		}
	}
	for le, v := range t.buckets {
		d.buckets[le] = max(v-old.buckets[le], 0)
	}
	return d
}

// commandWindow is the span the command figures are measured over: the
// oldest look kept is at most this old.
const commandWindow = 30 * time.Second

// commands reads each instance's command metrics (the books instances')
// and shed requests (the gateway's too), keeps them, and measures against
// the oldest look of the window, instance by instance: an instance that
// one of the two looks missed (its scrape failed, it left, it is new)
// counts in neither, and one that restarted counts from zero, so that
// neither makes the rate or the percentiles jump.
func (o *Ops) commands(now time.Time, svcs []opsService) opsCommands {
	cur := commandSample{at: now, by: map[string]*commandTotals{}}
	var out opsCommands
	for _, svc := range svcs {
		for _, in := range svc.Instances {
			if len(in.samples) == 0 {
				continue // not scraped this time
			}
			t := &commandTotals{outcomes: map[string]float64{}, buckets: map[float64]float64{}}
			for _, s := range in.samples {
				switch s.name {
				case "bookshelf_command_duration_seconds_count":
					t.count += s.value
					t.outcomes[s.labels["outcome"]] += s.value
				case "bookshelf_command_duration_seconds_bucket":
					if le, err := strconv.ParseFloat(s.labels["le"], 64); err == nil {
						t.buckets[le] += s.value
					}
				case "bookshelf_http_shed_total":
					if s.labels["kind"] == "commands" {
						t.shed += s.value
					}
				}
			}
			cur.by[svc.Service+"/"+in.ID] = t
			out.Total += t.count
			out.Shed += t.shed
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.samples) > 0 && now.Sub(o.samples[0].at) > commandWindow {
		o.samples = o.samples[1:]
	}
	if len(o.samples) > 0 {
		old := o.samples[0]
		out.Window = now.Sub(old.at).Seconds()
		var n float64
		out.Outcomes = map[string]float64{}
		delta := map[float64]float64{}
		for id, t := range cur.by {
			was, ok := old.by[id]
			if !ok {
				continue
			}
			d := t.since(was)
			n += d.count
			out.ShedWindow += d.shed
			for k, v := range d.outcomes {
				out.Outcomes[k] += v
			}
			for le, v := range d.buckets {
				delta[le] += v
			}
		}
		if out.Window > 0 {
			out.PerSecond = n / out.Window
		}
		out.P50, out.P95, out.P99 = quantile(0.5, delta), quantile(0.95, delta), quantile(0.99, delta)
	}
	if len(o.samples) == 0 || now.Sub(o.samples[len(o.samples)-1].at) >= time.Second {
		o.samples = append(o.samples, cur)
	}
	return out
}

// quantile estimates the q-quantile of a histogram given as cumulative
// counts by upper bound, interpolating within the bucket it falls in, as
// Prometheus's histogram_quantile does; nil when the histogram is empty.
func quantile(q float64, buckets map[float64]float64) *float64 {
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 {
		return nil
	}
	total := buckets[les[len(les)-1]] // the +Inf bucket holds every observation
	if total <= 0 {
		return nil
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, le := range les {
		n := buckets[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return ptr(lower) // past the last bound: its bound is the best said
			}
			v := lower
			if n > below {
				v += (le - lower) * (rank - below) / (n - below)
			}
			return ptr(v)
		}
		lower, below = le, n
	}
	return ptr(lower)
}

// sample is one line of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseSamples reads the samples of a Prometheus text exposition; lines
// it cannot read are left out.
func parseSamples(text string) []sample {
	var out []sample
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	return out
}

// parseSample reads one sample line: a name, labels in braces or none, a
// value and perhaps a timestamp, blanks allowed between the parts as the
// Prometheus text format allows them.
func parseSample(line string) (sample, bool) {
	var s sample
	i := 0
	for i < len(line) && isNameByte(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return s, false
	}
	s.name = line[:i]
	rest := trimBlanks(line[i:])
	if rest != "" && rest[0] == '{' {
		s.labels = map[string]string{}
		var ok bool
		if rest, ok = parseLabels(rest[1:], s.labels); !ok {
			return s, false
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, false
	}
	s.value = v
	return s, true
}

// parseLabels reads `name="value", ...}` into labels, and returns what
// follows the closing brace.
func parseLabels(rest string, labels map[string]string) (string, bool) {
	for {
		rest = trimBlanks(rest)
		if rest == "" {
			return "", false
		}
		if rest[0] == '}' {
			return rest[1:], true
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return "", false
		}
		key := strings.TrimRight(trimBlanks(rest[:eq]), " \t")
		rest = trimBlanks(rest[eq+1:])
		if key == "" || rest == "" || rest[0] != '"' {
			return "", false
		}
		var val strings.Builder
		closed := false
		for j := 1; j < len(rest); j++ {
			c := rest[j]
			if c == '\\' && j+1 < len(rest) {
				j++
				if rest[j] == 'n' {
					val.WriteByte('\n')
				} else {
					val.WriteByte(rest[j])
				}
				continue
			}
			if c == '"' {
				rest, closed = rest[j+1:], true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return "", false
		}
		labels[key] = val.String()
		rest = trimBlanks(rest)
		if rest != "" && rest[0] == ',' {
			rest = rest[1:]
		}
	}
}

// isNameByte tells whether c may stand in a metric name, first or not:
// [a-zA-Z_:][a-zA-Z0-9_:]*.
func isNameByte(c byte, first bool) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || !first && '0' <= c && c <= '9'
}

// trimBlanks drops the spaces and tabs the text format allows between
// the parts of a line.
func trimBlanks(s string) string { return strings.TrimLeft(s, " \t") }

// serveAPI answers under /ops/api/.
func (o *Ops) serveAPI(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/ops/api/")
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case path == "status" && get:
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		writeJSON(w, http.StatusOK, o.status(ctx, true))
	case path == "status":
		methodNotAllowed(w, "GET, HEAD")
	case path == "targets" && get:
		o.targets(w, r)
	case path == "targets":
		methodNotAllowed(w, "GET, HEAD")
	case path == "dead-letters" && get:
		o.listDeadLetters(w, r)
	case path == "dead-letters/redrive" && r.Method == http.MethodPost:
		o.redrive(w, r)
	case path == "dead-letters/redrive":
		methodNotAllowed(w, "POST")
	case strings.HasPrefix(path, "dead-letters/") && get:
		o.showDeadLetter(w, r, strings.TrimPrefix(path, "dead-letters/"))
	case path == "dead-letters" || strings.HasPrefix(path, "dead-letters/"):
		methodNotAllowed(w, "GET, HEAD")
	default:
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", "no such operations endpoint: "+r.URL.Path+
			"; there are /ops/api/status, /ops/api/targets, /ops/api/dead-letters, /ops/api/dead-letters/{id} and POST /ops/api/dead-letters/redrive")
	}
}

// targetGroup is one group of Prometheus's HTTP service discovery: the
// instances of one service, scraped at /metrics on their own address.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// targets answers Prometheus's HTTP service discovery (http_sd_configs)
// with every healthy instance of every service the registry knows: a
// Prometheus needs no discovery of its own (Debian's is built without
// Consul's). A service the registry cannot list is left out this time, and
// the answer says so in a header; Prometheus keeps its last answer only
// on an error, so a partial list is better than none.
func (o *Ops) targets(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	groups := []targetGroup{}
	var missing []string
	for _, svc := range o.Services {
		ins, err := o.Registry.Instances(ctx, svc)
		if err != nil {
			missing = append(missing, svc)
			continue
		}
		for _, in := range ins {
			u, err := url.Parse(in.URL)
			if err != nil || u.Host == "" {
				continue
			}
			groups = append(groups, targetGroup{Targets: []string{u.Host},
				Labels: map[string]string{"service": svc, "instance": in.ID, "version": in.Version}})
		}
	}
	if len(missing) > 0 && len(groups) == 0 {
		writeProblem(w, http.StatusServiceUnavailable, "registry-unavailable", "Registry unavailable",
			"the registry listed none of the services: "+strings.Join(missing, ", "))
		return
	}
	if len(missing) > 0 {
		w.Header().Set("Bookshelf-Unlisted", strings.Join(missing, ","))
	}
	writeJSON(w, http.StatusOK, groups)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "this endpoint answers "+allow)
}

// topic is the dead-letter topic, or a 503 saying there is none.
func (o *Ops) topic(w http.ResponseWriter) DeadLetterTopic {
	if o.DeadLetters == nil {
		writeProblem(w, http.StatusServiceUnavailable, "no-broker", "No broker", noBroker)
	}
	return o.DeadLetters
}

// readDeadLetters is the dead-letter topic's records for a request, or
// false once it answered why there are none to give (no broker, or the
// broker in trouble).
func (o *Ops) readDeadLetters(w http.ResponseWriter, r *http.Request) ([]DeadLetter, bool) {
	if o.topic(w) == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	ds, err := o.deadLetters(ctx)
	if err != nil {
		brokerTrouble(w, err)
		return nil, false
	}
	return ds, true
}

func (o *Ops) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	ds, ok := o.readDeadLetters(w, r)
	if !ok {
		return
	}
	origin := r.URL.Query().Get("origin")
	out := make([]DeadLetter, 0, len(ds))
	for _, d := range ds {
		if origin != "" && d.OriginTopic != origin {
			continue
		}
		// The list names them; one is shown whole at its own address.
		d.Headers = nil
		d.Value = preview(d.Value, 120)
		out = append(out, d)
	}
	writeJSON(w, http.StatusOK, struct {
		DeadLetters []DeadLetter `json:"dead_letters"`
	}{out})
}

// preview is s cut to n runes, marked when cut.
func preview(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func (o *Ops) showDeadLetter(w http.ResponseWriter, r *http.Request, id string) {
	if !validID(id) {
		writeProblem(w, http.StatusBadRequest, "bad-id", "Bad dead letter id",
			fmt.Sprintf("%q is not a dead letter id: it is partition:offset, as the list shows it (0:12)", id))
		return
	}
	ds, ok := o.readDeadLetters(w, r)
	if !ok {
		return
	}
	for _, d := range ds {
		if d.ID == id {
			writeJSON(w, http.StatusOK, d)
			return
		}
	}
	writeProblem(w, http.StatusNotFound, "no-dead-letter", "No such dead letter", "no dead letter "+id+" in the dead-letter topic")
}

// validID tells whether id reads as partition:offset.
func validID(id string) bool {
	p, off, ok := strings.Cut(id, ":")
	_, err1 := strconv.ParseUint(p, 10, 31)
	_, err2 := strconv.ParseUint(off, 10, 63)
	return ok && err1 == nil && err2 == nil
}

// redriveBody is the body of POST /ops/api/dead-letters/redrive.
type redriveBody struct {
	IDs    []string `json:"ids"`
	Origin string   `json:"origin"`
	// Value, when set, is sent instead of the record's own (one id only).
	Value *string `json:"value"`
}

// maxRedriveBody bounds the body: a mended value is one record's.
const maxRedriveBody = 1 << 20

func (o *Ops) redrive(w http.ResponseWriter, r *http.Request) {
	// JSON only: a form from another site cannot send it without the
	// browser asking first, so a page elsewhere cannot redrive.
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		writeProblem(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("send the redrive as application/json, not %q", ct))
		return
	}
	var b redriveBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRedriveBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "too-large", "Body too large", fmt.Sprintf("the body is over %d bytes", maxRedriveBody))
			return
		}
		writeProblem(w, http.StatusBadRequest, "malformed-json", "Malformed JSON",
			`the body is not a redrive: send {"ids":["0:3"]} or {"origin":"bookshelf.commands"}, and "value" to mend one record (`+err.Error()+")")
		return
	}
	switch {
	case (len(b.IDs) == 0) == (b.Origin == ""):
		writeProblem(w, http.StatusBadRequest, "bad-redrive", "Bad redrive", `name the dead letters by "ids" or by "origin", one of the two`)
		return
	case b.Value != nil && len(b.IDs) != 1:
		writeProblem(w, http.StatusBadRequest, "bad-redrive", "Bad redrive", `a mended "value" is for one dead letter: name one id`)
		return
	}
	for _, id := range b.IDs {
		if !validID(id) {
			writeProblem(w, http.StatusBadRequest, "bad-id", "Bad dead letter id",
				fmt.Sprintf("%q is not a dead letter id: it is partition:offset, as the list shows it (0:12)", id))
			return
		}
	}
	t := o.topic(w)
	if t == nil {
		return
	}
	var value []byte
	if b.Value != nil {
		value = []byte(*b.Value)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res, err := t.Redrive(ctx, b.IDs, b.Origin, value)
	o.forgetDeadLetters() // what was redriven is marked now
	switch {
	case errors.Is(err, ErrNoDeadLetter):
		writeProblem(w, http.StatusNotFound, "no-dead-letter", "Nothing to redrive", err.Error())
		return
	case err != nil && len(res) == 0:
		brokerTrouble(w, err)
		return
	}
	out := struct {
		Redriven []Redriven `json:"redriven"`
		Sent     int        `json:"sent"`
		Refused  int        `json:"refused"`
		Error    string     `json:"error,omitempty"` // a failure part way through
	}{Redriven: res}
	for _, x := range res {
		if x.Error == "" {
			out.Sent++
		} else {
			out.Refused++
		}
	}
	if err != nil {
		out.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// brokerTrouble is the answer when the dead-letter topic cannot be read
// or written now.
func brokerTrouble(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "2")
	writeProblem(w, http.StatusServiceUnavailable, "broker-unavailable", "Dead-letter topic unavailable",
		"the dead-letter topic cannot be reached now: "+err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "internal", "Internal error", err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// problemBase is where the API's problem types live too.
const problemBase = "https://bookshelf.dev/problems/"

// writeProblem answers an RFC 9457 problem.
func writeProblem(w http.ResponseWriter, status int, typ, title, detail string) {
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{problemBase + typ, title, status, detail})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
