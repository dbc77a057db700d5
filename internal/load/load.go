// Package load drives a service at a steady rate and measures what it
// answers: an open-loop generator (requests go out on schedule, whether or
// not the earlier ones are answered, as real clients do), latency
// percentiles, and how many answers were successes, sheds (503) or
// errors. It knows nothing of the bookshelf; the load subcommand gives it
// the requests.
package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Spec is one stream of requests: Do sent Rate times a second for
// Duration. Do returns the HTTP status it got, or an error.
type Spec struct {
	Name     string
	Rate     int
	Duration time.Duration
	Do       func(ctx context.Context, i int) (status int, err error)
	// MaxInFlight bounds the requests of the stream in flight; one due
	// while that many are out is counted Dropped, not sent. Zero is 4096.
	MaxInFlight int
}

// Result is what a stream measured.
type Result struct {
	Name     string        `json:"name"`
	Target   int           `json:"target_per_second"`
	Sent     int           `json:"sent"`
	Rate     float64       `json:"per_second"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	OK       int           `json:"ok"`
	Shed     int           `json:"shed"`
	Failed   int           `json:"failed"` // other statuses
	Errors   int           `json:"errors"` // no answer
	Dropped  int           `json:"dropped"`
	Duration time.Duration `json:"duration_ns"`
}

// Success is the share of sent requests answered 2xx.
func (r Result) Success() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.OK) / float64(r.Sent)
}

// tick is how often the generator sends the requests due.
const tick = 5 * time.Millisecond

// Run sends s's requests until its duration is over, waits for the last
// answers, and returns what it measured.
func Run(ctx context.Context, s Spec) Result {
	inflight := s.MaxInFlight
	if inflight <= 0 {
		inflight = 4096
	}
	slots := make(chan struct{}, inflight)
	var (
		mu       sync.Mutex
		lat      []time.Duration
		res      = Result{Name: s.Name, Target: s.Rate}
		wg       sync.WaitGroup
		sent     atomic.Int64
		dropped  atomic.Int64
		interval = time.Second / time.Duration(max(s.Rate, 1))
	)
	began := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	due := 0
	for ctx.Err() == nil {
		now := time.Now()
		if now.Sub(began) >= s.Duration {
			break
		}
		// Every request due by now: the schedule does not slip when a
		// tick comes late.
		for want := int(now.Sub(began) / interval); due < want; due++ {
			select {
			case slots <- struct{}{}:
			default:
				dropped.Add(1)
				continue
			}
			i := due
			sent.Add(1)
			wg.Go(func() {
				defer func() { <-slots }()
				start := time.Now()
				status, err := s.Do(ctx, i)
				d := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					res.Errors++
					return
				case status/100 == 2:
					res.OK++
				case status == http.StatusServiceUnavailable:
					res.Shed++
				default:
					res.Failed++
				}
				lat = append(lat, d)
			})
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	wg.Wait()
	res.Duration = time.Since(began)
	res.Sent, res.Dropped = int(sent.Load()), int(dropped.Load())
	res.Rate = float64(res.Sent) / s.Duration.Seconds()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50, res.P99, res.Max = lat[(n-1)/2], lat[(n-1)*99/100], lat[n-1]
	}
	return res
}

// Get returns a Do that GETs url and reads the answer whole.
func Get(cl *http.Client, url func(i int) string) func(ctx context.Context, i int) (int, error) {
	return func(ctx context.Context, i int) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url(i), nil)
		if err != nil {
			return 0, err
		}
		return send(cl, req)
	}
}

// PostJSON returns a Do that POSTs body(i) to url as JSON.
func PostJSON(cl *http.Client, url string, body func(i int) io.Reader) func(ctx context.Context, i int) (int, error) {
	return func(ctx context.Context, i int) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body(i))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		return send(cl, req)
	}
}

func send(cl *http.Client, req *http.Request) (int, error) {
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// Client is an HTTP client for a load: enough idle connections per host
// to keep them, and a timeout past any answer a service should give.
func Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute},
		Timeout:   20 * time.Second,
	}
}

// Table writes results as a table a person reads.
func Table(w io.Writer, rs []Result) {
	fmt.Fprintf(w, "%-34s %8s %8s %9s %9s %9s %7s %6s %6s %6s\n",
		"scenario", "target/s", "sent/s", "p50", "p99", "max", "ok", "shed", "fail", "drop")
	for _, r := range rs {
		fmt.Fprintf(w, "%-34s %8d %8.0f %9s %9s %9s %6.1f%% %6d %6d %6d\n",
			r.Name, r.Target, r.Rate, round(r.P50), round(r.P99), round(r.Max), 100*r.Success(), r.Shed, r.Failed+r.Errors, r.Dropped)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
