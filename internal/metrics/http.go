package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the HTTP request metrics.
const (
	HTTPRequestsName = "bookshelf_http_requests_total"
	HTTPDurationName = "bookshelf_http_request_duration_seconds"
)

// httpBuckets are the bounds of the request-duration histogram, in
// seconds: from a cached answer (a fraction of a millisecond) to a
// command waiting out a failover.
var httpBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// HTTPRequests counts HTTP requests by route pattern and status class
// ("2xx", "4xx"...) and times them in a histogram by route and status
// code: rates, error ratios and latency percentiles per route.
type HTTPRequests struct {
	total    *CounterVec
	duration *HistogramVec
	routes   sync.Map // route -> *routeCounters
}

type routeCounters struct {
	byClass [6]*Counter // index: status / 100; 0 holds anything out of range
	byCode  sync.Map    // status code -> prometheus.Observer
}

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// NewHTTPRequests registers the request metrics in r (or returns the ones
// already there).
func NewHTTPRequests(r *Registry) *HTTPRequests {
	return &HTTPRequests{
		total:    r.CounterVec(HTTPRequestsName, "HTTP requests served, by route pattern and status class.", "route", "code"),
		duration: r.HistogramVec(HTTPDurationName, "How long HTTP requests took to answer, by route pattern and status code.", httpBuckets, "route", "code"),
	}
}

// Observe counts one request to route answered with status after d. Route
// is the mux pattern (such as "GET /books/{id}"), never the raw path, so the
// number of series stays bounded.
func (h *HTTPRequests) Observe(route string, status int, d time.Duration) {
	rc := h.route(route)
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	c := rc.byClass[class]
	if c == nil {
		c = h.total.With(route, classNames[class])
	}
	c.Inc()
	obs, ok := rc.byCode.Load(status)
	if !ok {
		code := strconv.Itoa(status)
		if class == 0 {
			code = classNames[0]
		}
		obs, _ = rc.byCode.LoadOrStore(status, h.duration.With(route, code))
	}
	obs.(prometheus.Observer).Observe(d.Seconds())
}

func (h *HTTPRequests) route(route string) *routeCounters {
	if rc, ok := h.routes.Load(route); ok {
		return rc.(*routeCounters)
	}
	rc := &routeCounters{}
	// The common classes exist from the first request on; others appear
	// when they happen.
	for _, class := range []int{2, 4, 5} {
		rc.byClass[class] = h.total.With(route, classNames[class])
	}
	got, _ := h.routes.LoadOrStore(route, rc)
	return got.(*routeCounters)
}
