package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
)

// Resolver finds the healthy instances of a service by its registry name,
// as base URLs such as "http://127.0.0.1:8087". It should answer from what
// it already knows (a watch), not ask a remote registry on every call.
type Resolver interface {
	Resolve(ctx context.Context, service string) ([]string, error)
}

// Registry names of the services the gateway routes to.
const (
	ServiceBooks    = "books"
	ServiceLastRead = "lastreadbooks"
	ServiceCatalog  = "booklist"
	ServiceStats    = "readingstats"
)

// Endpoint is one route of the public API.
type Endpoint struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Service     string `json:"service,omitempty"`
	Description string `json:"description"`
}

// API is the public API the gateway serves, in the order GET / lists it.
// Routing and documentation come from this one table.
var API = []Endpoint{
	{"POST", "/books", ServiceBooks, `Add a book: {"title", "authors": [...], "year", "isbn"}. 201 with the book (and its id), Location and Bookshelf-Position.`},
	{"GET", "/books", ServiceCatalog, "List the books on the shelf, in the order they were added (then by id): ?author=, ?q= (words of the title or an author, each a prefix; case and accents aside), ?limit= (default 20, at most 100), ?offset=, ?after= (the next cursor of a page)."},
	{"GET", "/books/last-read", ServiceLastRead, "The books read most recently, distinct, newest first, with title, authors and read_at: ?limit= (default 5)."},
	{"GET", "/books/{id}", ServiceCatalog, "One book, with how often and when it was last read; 404 if unknown or removed."},
	{"DELETE", "/books/{id}", ServiceBooks, "Remove a book: 204, or 404."},
	{"POST", "/books/{id}/read", ServiceBooks, `Mark a book read, now or at {"read_at": "2024-05-01T20:00:00Z"}: 200, or 404.`},
	{"GET", "/stats", ServiceStats, "Reading statistics: books read, per year, per author."},
	{"POST", "/bookshelf/books", ServiceBooks, "The original path of POST /books."},
	{"GET", "/bookshelf/books", ServiceCatalog, "The original path of GET /books."},
	{"GET", "/bookshelf/books/last/read", ServiceLastRead, "The original path of GET /books/last-read: the same books, as the original's bare JSON list."},
	{"POST", "/bookshelf/books/{id}/finished", ServiceBooks, "The original path of POST /books/{id}/read."},
	{"GET", "/healthz", "", "The gateway is alive."},
	{"GET", "/readyz", "", "The gateway is ready."},
	{"GET", "/metrics", "", "Metrics in the Prometheus text format."},
	{"GET", "/api", "", "This list, as JSON."},
}

// Limits of the proxy.
const (
	// maxAttempts bounds the instances one request tries.
	maxAttempts = 4
	// proxyBudget bounds all attempts of one request together; it stays
	// under the server's WriteTimeout so the client gets an answer.
	proxyBudget = WriteTimeout - 2*time.Second
	// resolveTimeout bounds asking the registry.
	resolveTimeout = 2 * time.Second
)

// forwardHeaders go from the client to an instance; relayHeaders come
// back. Everything else stays: hop-by-hop headers, cookies, and whatever
// the services do not read.
var (
	forwardHeaders = []string{"Content-Type", "Accept", IdempotencyKeyHeader, PositionHeader, "X-Request-Id"}
	relayHeaders   = []string{"Content-Type", "Location", PositionHeader, "Retry-After", "Allow", "Cache-Control", "X-Content-Type-Options"}
)

// Gateway is the HTTP handler of the gateway service: the public API
// (API), each route proxied to an instance of the service that answers it,
// found by res. It spreads requests over the instances (round robin per
// service) and tries another instance when one cannot be reached, or, for
// an idempotent request (GET, HEAD, DELETE, or a POST carrying an
// Idempotency-Key), when it fails or answers 502 or 503. A command the
// client sent without an Idempotency-Key gets one from the gateway, echoed
// in the answer, so commands are always retried safely. With no instance
// left it answers 503 with Retry-After.
//
// GET / is a page listing the API (the web UI will take its place), GET
// /api the same as JSON; /healthz, /readyz and /metrics as every service.
func Gateway(res Resolver, opts ...Option) http.Handler {
	c := newConfig(opts)
	g := &gateway{
		cfg:      c,
		res:      res,
		client:   c.client,
		next:     map[string]*atomic.Uint64{},
		attempts: c.metrics.CounterVec("bookshelf_gateway_attempts_total", "Requests the gateway sent to instances, by service and result.", "service", "result"),
	}
	if g.client == nil {
		g.client = newProxyClient()
		if c.transport != nil {
			g.client.Transport = c.transport(g.client.Transport)
		}
	}
	// Commands and queries have bounds of their own: a flood of commands
	// is shed at once, and the queries go on being answered.
	commands := newLimiter(c.maxCommands, "commands", c.gate, c.metrics)
	queries := newLimiter(c.maxQueries, "queries", nil, c.metrics)
	mux := http.NewServeMux()
	for _, e := range API {
		if e.Service == "" {
			continue
		}
		if g.next[e.Service] == nil {
			g.next[e.Service] = new(atomic.Uint64)
		}
		lim := queries
		if e.Service == ServiceBooks {
			lim = commands
		}
		mux.Handle(e.Method+" "+e.Path, lim.wrap(g.route(e.Service)))
	}
	index, api := renderIndex()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(index)))
		_, _ = w.Write(index)
	})
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		writeJSONBytes(w, http.StatusOK, api)
	})
	Common(mux, c.ready, c.metrics)
	return wrap(mux, c)
}

// newProxyClient returns the gateway's client: keep-alive connections to
// every instance, as many kept idle as there may be commands in flight to
// it (fewer, and under load each command past them dials a connection and
// closes it after: 5 % of `up`'s processor time at twice capacity), no
// redirects followed (the client gets them), no transparent compression
// (the services answer small, plain bodies).
func newProxyClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = DefaultMaxCommands
	t.MaxIdleConns = 4 * DefaultMaxCommands
	t.DisableCompression = true
	t.ResponseHeaderTimeout = 0 // each attempt has its own deadline
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type gateway struct {
	cfg      *config
	res      Resolver
	client   *http.Client
	next     map[string]*atomic.Uint64 // round robin, per service; read-only after Gateway
	attempts *metrics.CounterVec
}

func (g *gateway) route(service string) http.HandlerFunc {
	// Counters per result, looked up once.
	count := map[string]*metrics.Counter{}
	for _, res := range []string{"ok", "unreachable", "failed", "unavailable", "none"} {
		count[res] = g.attempts.With(service, res)
	}
	return func(w http.ResponseWriter, r *http.Request) { g.proxy(w, r, service, count) }
}

// idempotent tells whether sending r twice does no more than once.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return true
	case http.MethodPost:
		return r.Header.Get(IdempotencyKeyHeader) != ""
	}
	return false
}

func (g *gateway) proxy(w http.ResponseWriter, r *http.Request, service string, count map[string]*metrics.Counter) {
	// The body is buffered: it may go to more than one instance.
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > MaxBodyBytes {
			writeError(w, r, tooLarge(w), "")
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				writeError(w, r, tooLarge(w), "")
			} else {
				writeError(w, r, badRequest("malformed-body", "", "the request body could not be read: %v", err), "")
			}
			return
		}
		body = b
	}

	rctx, cancel := context.WithTimeout(r.Context(), resolveTimeout)
	instances, err := g.res.Resolve(rctx, service)
	cancel()
	if err != nil {
		g.cfg.log.Warn("cannot resolve instances", "target", service, "err", err)
	}
	if len(instances) == 0 {
		count["none"].Inc()
		writeError(w, r, unavailable("no-instance", "No instance available", "no healthy instance of %s; retry in a moment", service), "")
		return
	}

	// A command without an Idempotency-Key gets one of the gateway's own:
	// then a try that timed out waiting for its outcome (its partition's
	// owner died, say) can be made again on another instance, and the
	// aggregate answers the second try with the first one's outcome
	// instead of deciding twice.
	// The answer carries the key, so a client told 503 can retry with it
	// and still not decide twice.
	if service == ServiceBooks && r.Header.Get(IdempotencyKeyHeader) == "" &&
		(r.Method == http.MethodPost || r.Method == http.MethodDelete) {
		key := "gateway-" + randomID()
		r.Header.Set(IdempotencyKeyHeader, key)
		w.Header().Set(IdempotencyKeyHeader, key)
	}
	retryable := idempotent(r)
	perAttempt := g.cfg.queryTry
	if service == ServiceBooks {
		perAttempt = g.cfg.commandTry
	}
	deadline := time.Now().Add(proxyBudget)
	n := len(instances)
	start := int(g.next[service].Add(1) % uint64(n))
	var kept *keptAnswer // a 502/503 of an instance, relayed if no other does better
	attempts := min(n, maxAttempts)
	if service == ServiceBooks && retryable {
		// A command that timed out waiting for its outcome may succeed on
		// the same instance a moment later, once its partition has a new
		// owner: go round the instances again, within the budget.
		attempts = maxAttempts
	}
	for i := range attempts {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		base := instances[(start+i)%n]
		actx, cancel := context.WithTimeout(r.Context(), min(perAttempt, remaining))
		var resp *http.Response
		var err error
		if service == ServiceBooks && retryable && n > 1 {
			resp, err = g.sendHedged(actx, r, base, instances[(start+i+1)%n], body)
		} else {
			resp, err = g.send(actx, r, base, body)
		}
		if err != nil {
			cancel()
			if r.Context().Err() != nil {
				return // the client left: nobody to answer
			}
			if unreached(err) {
				count["unreachable"].Inc()
				g.cfg.log.Debug("instance unreachable", "target", service, "instance", base, "err", err)
				continue // it never saw the request: always safe to try another
			}
			count["failed"].Inc()
			g.cfg.log.Warn("instance failed", "target", service, "instance", base, "method", r.Method, "path", r.URL.Path, "err", err)
			if retryable {
				continue
			}
			writeError(w, r, unavailable("upstream-failed", "Upstream failed",
				"%s did not answer in time; the request may or may not have taken effect: retry with an Idempotency-Key header to be safe", service), "")
			return
		}
		if (resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable) && retryable {
			count["unavailable"].Inc()
			kept = keep(resp)
			cancel()
			continue
		}
		count["ok"].Inc()
		relay(w, resp, g.cfg.log)
		cancel()
		return
	}
	if kept != nil {
		kept.write(w)
		return
	}
	writeError(w, r, unavailable("no-instance", "No instance available", "no healthy instance of %s could be reached; retry in a moment", service), "")
}

// hedgeAfter is how long a keyed command waits for its instance's answer
// before it is sent to a second instance as well. A command is answered in
// well under a second when its partition has an owner; an instance that
// is frozen or cut off from the brokers holds it until the attempt's
// timeout, and its Consul check takes seconds more to notice.
const hedgeAfter = time.Second

// sendHedged sends a keyed command to the instance at base and, once it has
// not answered within hedgeAfter (or failed), to the one at other too; the
// first good answer is the command's. Sending a command twice is safe: its
// key makes it one command, and the aggregate answers the second with the
// first's outcome. Otherwise it returns an instance's 502 or 503 if one came,
// else the last error.
func (g *gateway) sendHedged(ctx context.Context, r *http.Request, base, other string, body []byte) (*http.Response, error) {
	type answer struct {
		resp *http.Response
		err  error
	}
	answers := make(chan answer, 2)
	try := func(to string) {
		go func() {
			resp, err := g.send(ctx, r, to, body)
			answers <- answer{resp, err}
		}()
	}
	try(base)
	sent, pending := 1, 1
	hedge := time.NewTimer(hedgeAfter)
	defer hedge.Stop()
	var fallback answer
	for pending > 0 {
		select {
		case <-hedge.C:
			if sent == 1 {
				try(other)
				sent, pending = 2, pending+1
			}
		case a := <-answers:
			pending--
			if a.err == nil && a.resp.StatusCode != http.StatusBadGateway && a.resp.StatusCode != http.StatusServiceUnavailable {
				// The other try ends when the caller cancels ctx; its
				// answer, if any, is closed unread.
				go func(left int) {
					for range left {
						if o := <-answers; o.resp != nil {
							o.resp.Body.Close()
						}
					}
				}(pending)
				return a.resp, nil
			}
			switch {
			case a.resp != nil && fallback.resp == nil:
				fallback = a
			case a.resp != nil:
				a.resp.Body.Close()
			case fallback.resp == nil:
				fallback.err = a.err
			}
			if sent == 1 {
				try(other) // the first failed: no need to wait for the hedge
				sent, pending = 2, pending+1
			}
		}
	}
	return fallback.resp, fallback.err
}

// send forwards r, with body, to the instance at base.
func (g *gateway) send(ctx context.Context, r *http.Request, base string, body []byte) (*http.Response, error) {
	target := strings.TrimSuffix(base, "/") + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, rd)
	if err != nil {
		// A base URL the registry should not have held; no request left.
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	for _, k := range forwardHeaders {
		if vs := r.Header.Values(k); len(vs) > 0 {
			out.Header[k] = vs
		}
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}
	return g.client.Do(out)
}

// unreached tells whether err means the request never reached the
// instance: the connection could not be made.
func unreached(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// relay copies an instance's answer to the client.
func relay(w http.ResponseWriter, resp *http.Response, log *slog.Logger) {
	defer resp.Body.Close()
	copyHeaders(w.Header(), resp.Header)
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		// Headers are out; the client sees a short body. Nothing else to do.
		log.Debug("relaying an answer failed", "err", err)
	}
}

func copyHeaders(dst, src http.Header) {
	for _, k := range relayHeaders {
		if vs := src.Values(k); len(vs) > 0 {
			dst[k] = slices.Clone(vs)
		}
	}
}

// keptAnswer is an instance's 502 or 503, read whole (it is small) so the
// next instance can be tried before deciding what to answer.
type keptAnswer struct {
	status int
	header http.Header
	body   []byte
}

func keep(resp *http.Response) *keptAnswer {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	k := &keptAnswer{status: resp.StatusCode, header: http.Header{}, body: body}
	copyHeaders(k.header, resp.Header)
	return k
}

func (k *keptAnswer) write(w http.ResponseWriter) {
	for key, vs := range k.header {
		w.Header()[key] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(k.body)))
	w.WriteHeader(k.status)
	_, _ = w.Write(k.body)
}
