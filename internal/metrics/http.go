package metrics

import (
	"sync"
	"time"
)

// Names of the HTTP request metrics.
const (
	HTTPRequestsName = "bookshelf_http_requests_total"
	HTTPSecondsName  = "bookshelf_http_request_seconds_total"
)

// HTTPRequests counts HTTP requests by route pattern and status class
// ("2xx", "4xx"...) and adds up the seconds spent on them per route: enough
// for rates, error ratios and mean latency without histograms.
type HTTPRequests struct {
	total   *CounterVec
	seconds *CounterVec
	routes  sync.Map // route -> *routeCounters
}

type routeCounters struct {
	byClass [6]*Counter // index: status / 100; 0 holds anything out of range
	seconds *Counter
}

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// NewHTTPRequests registers the request metrics in r (or returns the ones
// already there).
func NewHTTPRequests(r *Registry) *HTTPRequests {
	return &HTTPRequests{
		total:   r.CounterVec(HTTPRequestsName, "HTTP requests served, by route pattern and status class.", "route", "code"),
		seconds: r.CounterVec(HTTPSecondsName, "Seconds spent serving HTTP requests, by route pattern.", "route"),
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
	rc.seconds.Add(d.Seconds())
}

func (h *HTTPRequests) route(route string) *routeCounters {
	if rc, ok := h.routes.Load(route); ok {
		return rc.(*routeCounters)
	}
	rc := &routeCounters{seconds: h.seconds.With(route)}
	// The common classes exist from the first request on; others appear
	// when they happen.
	for _, class := range []int{2, 4, 5} {
		rc.byClass[class] = h.total.With(route, classNames[class])
	}
	got, _ := h.routes.LoadOrStore(route, rc)
	return got.(*routeCounters)
}
