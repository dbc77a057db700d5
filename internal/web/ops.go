package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resolver finds the healthy instances of a service by its registry
// name, as base URLs; the gateway's resolver is one.
type Resolver interface {
	Resolve(ctx context.Context, service string) ([]string, error)
}

// Ops is the operations page, GET /ops, and what it reads, GET
// /ops/status: every service the registry knows with its instances, each
// asked for its own /readyz and /metrics, and the dead letters.
// Everything comes from the registry and the services' own endpoints.
type Ops struct {
	Resolver Resolver
	// Services are the registry names to show, in order.
	Services []string
	// DeadLetters counts the dead-letter topic's records: all of them,
	// and those not redriven yet. Nil when this process has no broker to
	// ask (a gateway on its own): the page says so.
	DeadLetters func(ctx context.Context) (total, waiting int, err error)
	// Client asks the instances; nil means one with a 2 s timeout.
	Client *http.Client
}

// The counters of dead letters the services publish on /metrics.
var deadLetterMetrics = []string{"bookshelf_records_dead_lettered_total", "bookshelf_commands_dead_lettered_total"}

type opsInstance struct {
	URL    string `json:"url"`
	Ready  bool   `json:"ready"`
	Status string `json:"status"` // what /readyz said, or why it could not be asked
	Millis int64  `json:"ms"`     // how long /readyz took
	// DeadLettered is the service's own count of the records it
	// dead-lettered since it started; nil when it publishes none.
	DeadLettered *int64 `json:"dead_lettered,omitempty"`
	// LagRecords and LagSeconds are a view's lag behind the event log, as
	// it publishes it; nil for the others.
	LagRecords *float64 `json:"lag_records,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
}

type opsService struct {
	Service   string        `json:"service"`
	Instances []opsInstance `json:"instances"`
	Error     string        `json:"error,omitempty"`
}

type opsStatus struct {
	Time        time.Time    `json:"time"`
	Services    []opsService `json:"services"`
	DeadLetters *struct {
		Total   int `json:"total"`
		Waiting int `json:"waiting"`
	} `json:"dead_letters,omitempty"`
	DeadLettersError string `json:"dead_letters_error,omitempty"`
}

// status asks every instance of every service, all at once.
func (o *Ops) status(ctx context.Context) opsStatus {
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	st := opsStatus{Time: time.Now().UTC(), Services: make([]opsService, len(o.Services))}
	var wg sync.WaitGroup
	for i, name := range o.Services {
		svc := &st.Services[i]
		svc.Service = name
		urls, err := o.Resolver.Resolve(ctx, name)
		if err != nil {
			svc.Error = err.Error()
		}
		svc.Instances = make([]opsInstance, len(urls))
		for j, u := range urls {
			in := &svc.Instances[j]
			in.URL = u
			wg.Go(func() { probe(ctx, client, in) })
		}
	}
	if o.DeadLetters != nil {
		wg.Go(func() {
			total, waiting, err := o.DeadLetters(ctx)
			if err != nil {
				st.DeadLettersError = err.Error()
				return
			}
			st.DeadLetters = &struct {
				Total   int `json:"total"`
				Waiting int `json:"waiting"`
			}{total, waiting}
		})
	} else {
		st.DeadLettersError = "this gateway has no broker to ask; bookshelf dlq list does"
	}
	wg.Wait()
	return st
}

// probe asks one instance for /readyz and /metrics.
func probe(ctx context.Context, client *http.Client, in *opsInstance) {
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
	metrics, code, err := fetch(ctx, client, in.URL+"/metrics", 1<<20)
	if err == nil && code == http.StatusOK {
		in.DeadLettered = deadLettered(string(metrics))
		in.LagRecords = gauge(string(metrics), "bookshelf_view_lag_records")
		in.LagSeconds = gauge(string(metrics), "bookshelf_view_lag_seconds")
	}
}

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

// deadLettered sums the dead-letter counters of a Prometheus text
// exposition, nil when it has none.
func deadLettered(text string) *int64 {
	var sum int64
	found := false
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, m := range deadLetterMetrics {
			if name == m {
				if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					sum += int64(f)
					found = true
				}
			}
		}
	}
	if !found {
		return nil
	}
	return &sum
}

// gauge is the value of an unlabelled metric in a Prometheus text
// exposition, nil when it has none.
func gauge(text, name string) *float64 {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return &f
			}
		}
	}
	return nil
}

func (o *Ops) serveStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	b, err := json.Marshal(o.status(ctx))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(append(b, '\n'))
}
