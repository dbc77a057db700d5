package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type staticRegistry map[string][]string

func (s staticRegistry) Instances(_ context.Context, service string) ([]Instance, error) {
	if service == "broken" {
		return nil, errors.New("registry away")
	}
	var out []Instance
	for i, u := range s[service] {
		out = append(out, Instance{ID: fmt.Sprintf("%s-%d", service, i), URL: u, Version: "v1"})
	}
	return out, nil
}

// instance is a service as the console sees it: /readyz and /metrics,
// the latter changeable.
type instance struct {
	*httptest.Server
	mu      sync.Mutex
	metrics string
}

func (in *instance) set(m string) {
	in.mu.Lock()
	in.metrics = m
	in.mu.Unlock()
}

func newInstance(t *testing.T, ready int, readyBody, metrics string) *instance {
	t.Helper()
	in := &instance{metrics: metrics}
	in.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(ready)
			w.Write([]byte(readyBody))
		case "/metrics":
			in.mu.Lock()
			defer in.mu.Unlock()
			w.Write([]byte(in.metrics))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(in.Close)
	return in
}

// booksMetrics is what a books instance publishes, with n commands so
// far: all decided within 10 ms save a tenth, within 100 ms.
func booksMetrics(n int, shed int) string {
	fast := n * 9 / 10
	return fmt.Sprintf(`# HELP bookshelf_commands_dead_lettered_total x
bookshelf_commands_dead_lettered_total 1
process_start_time_seconds %d
bookshelf_build_info{goversion="go1.26",version="v2"} 1
bookshelf_partition_owner_info{partition="2"} 1
bookshelf_partition_owner_info{partition="0"} 1
bookshelf_group_lag_records{partition="0"} 4
bookshelf_group_lag_records{partition="2"} 0
bookshelf_command_duration_seconds_bucket{command="add-book",outcome="accepted",le="0.001"} 0
bookshelf_command_duration_seconds_bucket{command="add-book",outcome="accepted",le="0.01"} %d
bookshelf_command_duration_seconds_bucket{command="add-book",outcome="accepted",le="0.1"} %d
bookshelf_command_duration_seconds_bucket{command="add-book",outcome="accepted",le="+Inf"} %d
bookshelf_command_duration_seconds_count{command="add-book",outcome="accepted"} %d
bookshelf_http_shed_total{kind="commands",reason="in-flight"} %d
bookshelf_http_shed_total{kind="commands",reason="scheduler"} %d
bookshelf_http_shed_total{kind="queries",reason="in-flight"} 99
`, time.Now().Add(-90*time.Second).Unix(), fast, n, n, n, shed-shed/2, shed/2)
}

// The console shows what each instance says of itself, and what cannot
// be asked, and why.
func TestOpsStatus(t *testing.T) {
	view := newInstance(t, 200, "ready\n", "# HELP x\nbookshelf_records_dead_lettered_total 3\nother 1\n"+
		"bookshelf_view_position_records 120\nbookshelf_view_lag_records 5\nbookshelf_view_lag_seconds 0.25\n").URL
	books := newInstance(t, 200, "ready, but the dead-letter topic is away\n", booksMetrics(0, 0))
	behind := newInstance(t, 503, `{"title":"Not ready","detail":"catching up: 10 of 20 records"}`, "").URL
	// An instance the registry still lists, gone before the console asks.
	gone := newInstance(t, 200, "", "")
	gone.Close()
	dlq := &fakeTopic{letters: []DeadLetter{{ID: "0:1", OriginTopic: "t"}, {ID: "0:2", OriginTopic: "t", RedrivenTo: "t/0/9"}}}
	ops := &Ops{
		Registry:    staticRegistry{"books": {books.URL}, "booklist": {view, behind}, "gateway": {gone.URL}},
		Services:    []string{"books", "booklist", "readingstats", "broken", "gateway"},
		DeadLetters: dlq,
		TracesURL:   "http://127.0.0.1:9411/zipkin/traces/{trace}",
	}
	h := Handler(api, ops)

	st := status(t, h)
	byName := map[string]opsService{}
	for _, s := range st.Services {
		byName[s.Service] = s
	}
	if len(st.Services) != 5 || st.DeadLetters == nil || st.DeadLetters.Total != 2 || st.DeadLetters.Waiting != 1 || st.TracesURL != ops.TracesURL {
		t.Fatalf("status = %+v", st)
	}
	b := byName["books"].Instances[0]
	if !b.Ready || !strings.Contains(b.Status, "dead-letter topic is away") || b.DeadLettered == nil || *b.DeadLettered != 1 ||
		b.Version != "v1" || b.ID != "books-0" || !strings.HasPrefix(b.Address, "127.0.0.1:") ||
		fmt.Sprint(b.Partitions) != "[0 2]" || b.GroupLag["0"] != 4 || b.UptimeSeconds == nil || math.Abs(*b.UptimeSeconds-90) > 5 {
		t.Errorf("books = %+v", b)
	}
	cat := byName["booklist"].Instances
	if !cat[0].Ready || *cat[0].DeadLettered != 3 || *cat[0].Position != 120 || *cat[0].LagRecords != 5 || *cat[0].LagSeconds != 0.25 ||
		cat[1].Ready || cat[1].Status != "Not ready: catching up: 10 of 20 records" {
		t.Errorf("catalog = %+v", cat)
	}
	if len(byName["readingstats"].Instances) != 0 || byName["broken"].Error != "registry away" {
		t.Errorf("a service without instances, one the registry cannot say: %+v %+v", byName["readingstats"], byName["broken"])
	}
	if g := byName["gateway"].Instances[0]; g.Ready || !strings.HasPrefix(g.Status, "unreachable") {
		t.Errorf("gone = %+v", g)
	}

	if rec := get(t, h, "/ops", "Accept", chromeAccept); rec.Code != 200 || !strings.Contains(rec.Body.String(), "/app/ops.js") {
		t.Errorf("GET /ops: %d", rec.Code)
	}
	// Without a broker to ask, the console says so, and its dead-letter
	// endpoints answer a problem.
	ops.DeadLetters = nil
	if st := status(t, h); !strings.Contains(st.DeadLettersError, "bookshelf dlq list") || st.DeadLetters != nil {
		t.Errorf("no broker: %+v", st)
	}
	if rec := get(t, h, "/ops/api/dead-letters"); rec.Code != 503 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("no broker, list: %d %s", rec.Code, rec.Body)
	}
	// Without Ops, /ops is the API's (a 404 there).
	if rec := get(t, Handler(api, nil), "/ops"); rec.Body.String() != "api GET /ops" {
		t.Errorf("no ops: %s", rec.Body)
	}
}

func status(t *testing.T, h http.Handler) opsStatus {
	t.Helper()
	rec := get(t, h, "/ops/api/status")
	var st opsStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v %s", rec.Code, err, rec.Body)
	}
	return st
}

// Commands per second and latency percentiles come from the books
// instances' histograms, between two looks.
func TestOpsCommandFigures(t *testing.T) {
	a := newInstance(t, 200, "ready\n", booksMetrics(100, 1))
	b := newInstance(t, 200, "ready\n", booksMetrics(0, 0))
	ops := &Ops{Registry: staticRegistry{"books": {a.URL, b.URL}}, Services: []string{"books"}}
	h := Handler(api, ops)
	first := status(t, h).Commands
	if first.Window != 0 || first.Total != 100 || first.Shed != 1 || first.P50 != nil {
		t.Fatalf("first look: %+v", first)
	}
	time.Sleep(1100 * time.Millisecond)
	a.set(booksMetrics(200, 3))
	b.set(booksMetrics(100, 0))
	c := status(t, h).Commands
	// 200 more commands, 180 of them within 10 ms, 20 within 100 ms.
	// 200 commands over the window between the looks, however long the
	// machine took (the sleep is its least).
	if c.Total != 300 || c.Window < 1 || math.Abs(c.PerSecond-200/c.Window) > 1 || c.ShedWindow != 2 || c.Outcomes["accepted"] != 200 {
		t.Fatalf("second look: %+v", c)
	}
	if c.P50 == nil || *c.P50 < 0.001 || *c.P50 > 0.01 || c.P99 == nil || *c.P99 < 0.01 || *c.P99 > 0.1 {
		t.Errorf("percentiles: p50 %v p99 %v", deref(c.P50), deref(c.P99))
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		q       float64
		buckets map[float64]float64
		want    any
	}{
		{0.5, map[float64]float64{}, nil},
		{0.5, map[float64]float64{1: 0, math.Inf(1): 0}, nil},
		{0.5, map[float64]float64{1: 10, 2: 20, math.Inf(1): 20}, 1.0},
		{0.75, map[float64]float64{1: 10, 2: 20, math.Inf(1): 20}, 1.5},
		{0.99, map[float64]float64{1: 10, math.Inf(1): 20}, 1.0}, // past the last bound
	} {
		if got := deref(quantile(c.q, c.buckets)); got != c.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.q, c.buckets, got, c.want)
		}
	}
}

func TestParseSample(t *testing.T) {
	for _, c := range []struct {
		line   string
		ok     bool
		name   string
		labels string
		value  float64
	}{
		{`x 1`, true, "x", "map[]", 1},
		{`x{a="b",c="d \"e\" \\ f\ng"} 2.5 1700000000`, true, "x", "map[a:b c:d \"e\" \\ f\ng]", 2.5},
		{`x{le="+Inf"} 3`, true, "x", "map[le:+Inf]", 3},
		{`x{a="b"`, false, "", "", 0},
		{`x{a=b} 1`, false, "", "", 0},
		{`x nope`, false, "", "", 0},
		{`{a="b"} 1`, false, "", "", 0},
	} {
		s, ok := parseSample(c.line)
		if ok != c.ok || ok && (s.name != c.name || fmt.Sprint(s.labels) != c.labels && !(c.labels == "map[]" && s.labels == nil) || s.value != c.value) {
			t.Errorf("parseSample(%q) = %+v %v", c.line, s, ok)
		}
	}
}

// fakeTopic stands for the dead-letter topic: the console's side of it
// is what is tested here; the topic's own is tested with a broker.
type fakeTopic struct {
	mu      sync.Mutex
	letters []DeadLetter
	asked   []string // the redrives asked for
	err     error
}

func (f *fakeTopic) List(context.Context) ([]DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]DeadLetter(nil), f.letters...), f.err
}

func (f *fakeTopic) Redrive(_ context.Context, ids []string, origin string, value []byte) ([]Redriven, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, fmt.Sprintf("%v %q %q", ids, origin, value))
	if f.err != nil {
		return nil, f.err
	}
	if len(ids) == 1 && ids[0] == "9:9" {
		return nil, fmt.Errorf("%w: no dead letter 9:9", ErrNoDeadLetter)
	}
	return []Redriven{{ID: "0:1", To: "t/0/5"}, {ID: "0:2", Error: "0:2 was redriven already"}}, nil
}

func post(h http.Handler, path, ctype, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The dead-letter endpoints: the list, one record, a redrive; bad input
// is a problem saying what to send, never a crash.
func TestOpsDeadLetters(t *testing.T) {
	long := strings.Repeat("x", 500)
	topic := &fakeTopic{letters: []DeadLetter{
		{ID: "0:1", OriginTopic: "bookshelf", Origin: "bookshelf/0/3", Error: "bad JSON", Value: long, Headers: map[string]string{"a": "b"}},
		{ID: "1:4", OriginTopic: "bookshelf.commands", Origin: "bookshelf.commands/1/7", Error: "no such command", Value: "{}"},
	}}
	h := Handler(api, &Ops{Registry: staticRegistry{}, DeadLetters: topic})

	rec := get(t, h, "/ops/api/dead-letters")
	var list struct {
		DeadLetters []DeadLetter `json:"dead_letters"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 || len(list.DeadLetters) != 2 ||
		len(list.DeadLetters[0].Value) >= len(long) || list.DeadLetters[0].Headers != nil {
		t.Fatalf("list: %d %v %.300s", rec.Code, err, rec.Body)
	}
	rec = get(t, h, "/ops/api/dead-letters?origin=bookshelf.commands")
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.DeadLetters) != 1 || list.DeadLetters[0].ID != "1:4" {
		t.Fatalf("by origin: %v %s", err, rec.Body)
	}
	rec = get(t, h, "/ops/api/dead-letters/0:1")
	var one DeadLetter
	if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil || rec.Code != 200 || one.Value != long || one.Headers["a"] != "b" {
		t.Fatalf("one: %d %v %.200s", rec.Code, err, rec.Body)
	}
	for path, code := range map[string]int{
		"/ops/api/dead-letters/0:9":     404,
		"/ops/api/dead-letters/x":       400,
		"/ops/api/dead-letters/0:-1":    400,
		"/ops/api/dead-letters/:":       400,
		"/ops/api/nothing":              404,
		"/ops/api/dead-letters/redrive": 405,
	} {
		if rec := get(t, h, path); rec.Code != code || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want a %d problem", path, rec.Code, rec.Body, code)
		}
	}

	const redrive = "/ops/api/dead-letters/redrive"
	rec = post(h, redrive, "application/json", `{"ids":["0:1","0:2"]}`)
	var res struct {
		Redriven      []Redriven
		Sent, Refused int
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 || res.Sent != 1 || res.Refused != 1 ||
		res.Redriven[1].Error == "" {
		t.Fatalf("redrive: %d %v %s", rec.Code, err, rec.Body)
	}
	if rec := post(h, redrive, "application/json", `{"ids":["0:1"],"value":"mended"}`); rec.Code != 200 {
		t.Errorf("mended: %d %s", rec.Code, rec.Body)
	}
	if rec := post(h, redrive, "application/json; charset=utf-8", `{"origin":"bookshelf"}`); rec.Code != 200 {
		t.Errorf("by origin: %d %s", rec.Code, rec.Body)
	}
	if want := `[[0:1 0:2] "" "" [0:1] "" "mended" [] "bookshelf" ""]`; fmt.Sprint(topic.asked) != want {
		t.Errorf("asked %v, want %s", topic.asked, want)
	}
	for _, c := range []struct {
		ctype, body string
		code        int
	}{
		{"", `{"ids":["0:1"]}`, 415},
		{"text/plain", `{"ids":["0:1"]}`, 415},
		{"application/x-www-form-urlencoded", `ids=0:1`, 415},
		{"application/json", `{`, 400},
		{"application/json", `[]`, 400},
		{"application/json", `{"ids":["0:1"],"extra":1}`, 400},
		{"application/json", `{}`, 400},
		{"application/json", `{"ids":["0:1"],"origin":"t"}`, 400},
		{"application/json", `{"ids":["0:1","0:2"],"value":"x"}`, 400},
		{"application/json", `{"origin":"t","value":"x"}`, 400},
		{"application/json", `{"ids":["zero"]}`, 400},
		{"application/json", `{"ids":["9:9"]}`, 404},
		{"application/json", `{"value":"` + strings.Repeat("x", maxRedriveBody) + `","ids":["0:1"]}`, 413},
	} {
		rec := post(h, redrive, c.ctype, c.body)
		var p struct{ Type, Detail string }
		if rec.Code != c.code || rec.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Detail == "" {
			t.Errorf("POST %.60s (%s): %d %.200s, want a %d problem", c.body, c.ctype, rec.Code, rec.Body, c.code)
		}
	}
	// The broker away: a 503 to retry.
	topic.err = errors.New("broker away")
	for _, rec := range []*httptest.ResponseRecorder{get(t, h, "/ops/api/dead-letters"), post(h, redrive, "application/json", `{"ids":["0:1"]}`)} {
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "broker away") {
			t.Errorf("broker away: %d %s", rec.Code, rec.Body)
		}
	}
}

// The app's settings say where traces are, when a viewer is set.
func TestTracesURL(t *testing.T) {
	const u = "http://127.0.0.1:9411/zipkin/traces/{trace}"
	rec := get(t, Handler(api, nil, TracesURL(u)), "/app/config.json")
	var c struct {
		TracesURL string `json:"traces_url"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || rec.Code != 200 || c.TracesURL != u {
		t.Fatalf("config: %d %v %s", rec.Code, err, rec.Body)
	}
	if rec := get(t, Handler(api, nil), "/app/config.json"); strings.TrimSpace(rec.Body.String()) != "{}" {
		t.Errorf("no viewer: %s", rec.Body)
	}
	for raw, ok := range map[string]bool{
		u: true, "https://jaeger.example/trace/{trace}": true,
		"http://127.0.0.1:9411/zipkin/": false, "ftp://x/{trace}": false, "/traces/{trace}": false, "http://%zz/{trace}": false,
	} {
		if err := CheckTracesURL(raw); (err == nil) != ok {
			t.Errorf("CheckTracesURL(%q) = %v", raw, err)
		}
	}
}

// The console keeps each view replica's lag from look to look, and the
// status hands it back as the replica's history.
func TestOpsLagHistory(t *testing.T) {
	view := newInstance(t, 200, "ready\n", "bookshelf_view_position_records 10\nbookshelf_view_lag_records 5\nbookshelf_view_lag_seconds 0.5\n")
	ops := &Ops{Registry: staticRegistry{"booklist": {view.URL}}, Services: []string{"booklist"}}
	h := Handler(api, ops)
	if h := status(t, h).Services[0].Instances[0].History; len(h) != 1 || h[0].Records != 5 || h[0].Seconds != 0.5 || h[0].Position != 10 {
		t.Fatalf("first look: %+v", h)
	}
	// A look within a second of the last adds nothing; one after does.
	if h := status(t, h).Services[0].Instances[0].History; len(h) != 1 {
		t.Fatalf("a look at once: %+v", h)
	}
	view.set("bookshelf_view_position_records 15\nbookshelf_view_lag_records 0\nbookshelf_view_lag_seconds 0\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ops.Run(ctx, 1100*time.Millisecond) }()
	// Until Run's own look is in, however slow the machine.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ops.mu.Lock()
		n := 0
		for _, points := range ops.lags {
			n = max(n, len(points))
		}
		ops.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run made no look in 20 s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	hist := status(t, h).Services[0].Instances[0].History
	if len(hist) < 2 || hist[1].Records != 0 || hist[1].Position != 15 || !hist[1].Time.After(hist[0].Time) {
		t.Fatalf("after Run's look: %+v", hist)
	}
}

// The targets answer Prometheus's HTTP service discovery: one group per
// instance, on its own address, labelled by service; a service the
// registry cannot list is named in a header, and none listed is a 503.
func TestOpsTargets(t *testing.T) {
	ops := &Ops{Registry: staticRegistry{"books": {"http://127.0.0.1:1001", "http://127.0.0.1:1002"}, "gateway": {"http://127.0.0.1:8080"}},
		Services: []string{"books", "gateway", "broken"}}
	h := Handler(api, ops)
	rec := get(t, h, "/ops/api/targets")
	var groups []targetGroup
	if err := json.Unmarshal(rec.Body.Bytes(), &groups); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v %s", rec.Code, err, rec.Body)
	}
	var got []string
	for _, g := range groups {
		got = append(got, g.Labels["service"]+"="+strings.Join(g.Targets, ",")+"/"+g.Labels["instance"])
	}
	want := []string{"books=127.0.0.1:1001/books-0", "books=127.0.0.1:1002/books-1", "gateway=127.0.0.1:8080/gateway-0"}
	if !slices.Equal(got, want) {
		t.Errorf("targets: %v, want %v", got, want)
	}
	if u := rec.Header().Get("Bookshelf-Unlisted"); u != "broken" {
		t.Errorf("unlisted header %q, want broken", u)
	}
	rec = get(t, Handler(api, &Ops{Registry: staticRegistry{}, Services: []string{"broken"}}), "/ops/api/targets")
	if rec.Code != 503 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("nothing listed: %d %s", rec.Code, rec.Body)
	}
	// An empty registry is an empty list, not an error: Prometheus then
	// drops the targets it had.
	rec = get(t, Handler(api, &Ops{Registry: staticRegistry{}, Services: []string{"books"}}), "/ops/api/targets")
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("empty registry: %d %s", rec.Code, rec.Body)
	}
}

// The command figures are measured instance by instance: a look that
// missed an instance (its scrape failed) counts it in neither look, and
// an instance that restarted counts from zero, so neither makes the rate
// jump, as summing the totals of all instances did.
func TestOpsCommandFiguresPerInstance(t *testing.T) {
	a := newInstance(t, 200, "ready\n", booksMetrics(100, 0))
	b := newInstance(t, 200, "ready\n", booksMetrics(50, 0))
	ops := &Ops{Registry: staticRegistry{"books": {a.URL, b.URL}}, Services: []string{"books"}}
	h := Handler(api, ops)
	status(t, h)
	time.Sleep(1100 * time.Millisecond)
	a.set("not metrics\n") // its scrape gives nothing this time
	b.set(booksMetrics(60, 0))
	c := status(t, h).Commands
	if math.Abs(c.PerSecond-10/c.Window) > 0.01 || c.Outcomes["accepted"] != 10 {
		t.Fatalf("a missed: %+v, want b's 10 commands over the window", c)
	}
	a.set(booksMetrics(5, 0)) // a restarted
	b.set(booksMetrics(70, 0))
	c = status(t, h).Commands
	if math.Abs(c.PerSecond-25/c.Window) > 0.01 || c.Total != 75 {
		t.Fatalf("a restarted: %+v, want its 5 and b's 20 over the window, of 75 in all", c)
	}
}

// slowTopic's first List waits until release is closed; the others answer
// at once.
type slowTopic struct {
	DeadLetterTopic
	calls   atomic.Int32
	release chan struct{}
}

func (s *slowTopic) List(ctx context.Context) ([]DeadLetter, error) {
	if s.calls.Add(1) == 1 {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []DeadLetter{{ID: "0:1"}}, nil
}

// A look at the dead letters does not wait behind another's slow read of
// the topic; and a read begun before a redrive is not kept after it.
func TestOpsDeadLetterReadsDoNotQueue(t *testing.T) {
	topic := &slowTopic{release: make(chan struct{})}
	o := &Ops{DeadLetters: topic}
	first := make(chan error, 1)
	go func() { _, err := o.deadLetters(context.Background()); first <- err }()
	for topic.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	type look struct {
		ds  []DeadLetter
		err error
	}
	second := make(chan look, 1)
	go func() { ds, err := o.deadLetters(context.Background()); second <- look{ds, err} }()
	select {
	case l := <-second:
		if l.err != nil || len(l.ds) != 1 {
			t.Fatalf("second look: %v, %v", l.ds, l.err)
		}
	case <-time.After(time.Second):
		close(topic.release)
		t.Fatal("the second look waited behind the first's read")
	}
	o.forgetDeadLetters()
	close(topic.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	o.dlMu.Lock()
	kept := !o.dlAt.IsZero()
	o.dlMu.Unlock()
	if kept {
		t.Errorf("the read begun before the forget was kept")
	}
}
