package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
)

// ReadyFunc tells whether a service can serve, and if not, why, in words a
// person reads in /readyz (such as "catching up: 1200 of 5000 records"). A
// reason given while ready is a warning /readyz shows beside "ready".
type ReadyFunc func() (ready bool, reason string)

// alwaysReady is the ReadyFunc of a service that is ready once it serves.
func alwaysReady() (bool, string) { return true, "" }

// Option configures a handler or a server built by this package. Each
// constructor uses the options that concern it and ignores the others.
type Option func(*config)

type config struct {
	log           *slog.Logger
	metrics       *metrics.Registry
	ready         ReadyFunc
	readySet      bool
	now           func() time.Time
	submitTimeout time.Duration
	waitTimeout   time.Duration
	client        *http.Client
	transport     func(http.RoundTripper) http.RoundTripper
	commandTry    time.Duration
	queryTry      time.Duration
	maxCommands   int
	maxQueries    int
	gate          *SchedGate
}

// Defaults of the options.
const (
	DefaultSubmitTimeout = 10 * time.Second
	DefaultWaitTimeout   = 2 * time.Second
	// DefaultCommandAttempt bounds one proxied command: it is longer than
	// DefaultSubmitTimeout because the books service waits for the outcome.
	DefaultCommandAttempt = 12 * time.Second
	DefaultQueryAttempt   = 5 * time.Second
)

func newConfig(opts []Option) *config {
	c := &config{
		log:           slog.Default(),
		ready:         alwaysReady,
		now:           time.Now,
		submitTimeout: DefaultSubmitTimeout,
		waitTimeout:   DefaultWaitTimeout,
		commandTry:    DefaultCommandAttempt,
		queryTry:      DefaultQueryAttempt,
		maxCommands:   DefaultMaxCommands,
		maxQueries:    DefaultMaxQueries,
	}
	for _, o := range opts {
		o(c)
	}
	if c.metrics == nil {
		// /metrics still answers, with the HTTP counts at least.
		c.metrics = metrics.NewRegistry()
	}
	return c
}

// WithLogger sets the logger (default slog.Default()). Give it the service
// name: log.With("service", "books").
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithMetrics sets the registry served on /metrics and counted into. The
// default is a registry of the handler's own.
func WithMetrics(r *metrics.Registry) Option { return func(c *config) { c.metrics = r } }

// WithReady sets how a service answers /readyz (default: ready). The
// views take as an argument whether they can answer queries (caught up);
// WithReady may add more to their /readyz, such as the broker answering:
// a view that lost its broker still answers queries from what it has, but
// is not ready to be sent traffic.
func WithReady(f ReadyFunc) Option {
	return func(c *config) {
		if f != nil {
			c.ready, c.readySet = f, true
		}
	}
}

// WithClock sets the clock used to check years and read_at (tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithSubmitTimeout bounds how long Books waits for a command's outcome.
func WithSubmitTimeout(d time.Duration) Option { return func(c *config) { c.submitTimeout = d } }

// WithWaitTimeout bounds how long a view waits to reach the position a
// request names in Bookshelf-Position.
func WithWaitTimeout(d time.Duration) Option { return func(c *config) { c.waitTimeout = d } }

// WithHTTPClient sets the client Gateway proxies with. Its Timeout should
// be zero: each attempt has its own (WithAttemptTimeouts).
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.client = hc } }

// WithProxyTransport wraps the transport of Gateway's own proxy client
// (the one it makes when WithHTTPClient is not given): for instance to
// trace the requests it sends.
func WithProxyTransport(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(c *config) { c.transport = wrap }
}

// WithAttemptTimeouts bounds one proxied attempt of Gateway: command for
// requests to the books service, query for the views.
func WithAttemptTimeouts(command, query time.Duration) Option {
	return func(c *config) { c.commandTry, c.queryTry = command, query }
}

// WithMaxInFlight bounds the commands (Books, Gateway) and the queries
// (Gateway) a handler serves at once; one more is answered 503 busy with
// Retry-After at once, and counted in bookshelf_http_shed_total. The
// defaults are DefaultMaxCommands and DefaultMaxQueries.
func WithMaxInFlight(commands, queries int) Option {
	return func(c *config) {
		if commands > 0 {
			c.maxCommands = commands
		}
		if queries > 0 {
			c.maxQueries = queries
		}
	}
}

// WithSchedGate bounds the commands (Books, Gateway) in flight also by
// g.Allowed(), fewer while the Go scheduler is late: a command past it is
// answered 503 busy with Retry-After at once, and counted in
// bookshelf_http_shed_total{reason="scheduler"}. Queries are not. The
// default is no gate; g's Run is the caller's to run.
func WithSchedGate(g *SchedGate) Option { return func(c *config) { c.gate = g } }
