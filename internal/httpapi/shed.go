package httpapi

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
)

// Admission limits. A server past them answers 503 with Retry-After at
// once rather than queueing work it cannot finish in time: a client told
// so comes back, while one left waiting ties a connection (a file
// descriptor, here and at every hop) until it times out.
const (
	// DefaultMaxConns bounds the connections one server holds open, far
	// below the file descriptors of a process (Go raises the soft limit to
	// the hard one; `up` runs five servers and the Kafka clients).
	DefaultMaxConns = 2048
	// DefaultMaxCommands bounds the commands in flight in one books
	// instance or gateway: at a few milliseconds each, far more than the
	// command path decides in the time a client waits.
	DefaultMaxCommands = 256
	// DefaultMaxQueries bounds the queries in flight in a gateway,
	// counted apart from the commands so that commands never starve them.
	DefaultMaxQueries = 1024
)

// Reasons a request is shed, the reason label of bookshelf_http_shed_total.
const (
	shedInFlight  = "in-flight" // as many of its kind in flight as the bound
	shedScheduler = "scheduler" // the process's scheduler late (SchedGate)
)

// limiter admits at most cap(sem) requests at once; one more is shed. With
// a gate, it admits at most as many as the gate allows now, fewer when the
// scheduler is late. (len(sem) is read without a lock: the gate's number is
// a target a request or two over does not hurt.)
type limiter struct {
	sem      chan struct{}
	what     string
	gate     *SchedGate
	shed     *metrics.Counter
	shedLate *metrics.Counter
}

func newLimiter(n int, what string, gate *SchedGate, reg *metrics.Registry) *limiter {
	shed := reg.CounterVec("bookshelf_http_shed_total",
		"Requests answered 503 at once, by kind, and reason: too many in flight, or the scheduler late (commands only).", "kind", "reason")
	return &limiter{
		sem:      make(chan struct{}, max(n, 1)),
		what:     what,
		gate:     gate,
		shed:     shed.With(what, shedInFlight),
		shedLate: shed.With(what, shedScheduler),
	}
}

// wrap admits h's requests, or answers 503 busy at once.
func (l *limiter) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(l.sem) >= l.gate.Allowed() {
			l.shedLate.Inc()
			writeError(w, r, unavailable("busy", "Busy",
				"this server's processors are saturated, and %s wait so that queries are answered; retry in a moment", l.what), "")
			return
		}
		select {
		case l.sem <- struct{}{}:
			defer func() { <-l.sem }()
			h(w, r)
		default:
			l.shed.Inc()
			writeError(w, r, unavailable("busy", "Busy",
				"%d %s are in flight here, as many as it takes at once; retry in a moment", cap(l.sem), l.what), "")
		}
	}
}

// LimitListener bounds the connections a server holds open at n. A
// connection over the bound is answered 503 with Retry-After, without
// reading its request, and closed: a flood costs a moment's descriptor per
// connection, never the process's last one. Shed counts them.
func LimitListener(ln net.Listener, n int) *LimitedListener {
	return &LimitedListener{Listener: ln, sem: make(chan struct{}, max(n, 1)), refusing: make(chan struct{}, maxRefusing)}
}

// LimitedListener is a listener with a bound on its open connections.
type LimitedListener struct {
	net.Listener
	sem      chan struct{}
	refusing chan struct{} // connections being answered 503, bounded
	shed     atomic.Int64
}

// maxRefusing bounds the connections answered 503 at once; past it, one
// over the bound is closed unanswered.
const maxRefusing = 64

// busyAnswer is the whole answer to a connection over the bound.
var busyAnswer = func() []byte {
	body := `{"type":"` + problemBase + `busy","title":"Busy","status":503,` +
		`"detail":"this server holds as many connections as it takes; retry in a moment"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: " + ProblemContentType + "\r\n" +
		"Retry-After: 1\r\nConnection: close\r\nCache-Control: no-store\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// Shed is how many connections were turned away.
func (l *LimitedListener) Shed() int64 { return l.shed.Load() }

// Accept returns the next connection within the bound, answering those
// over it meanwhile.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitedConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
		default:
		}
		l.shed.Add(1)
		select {
		case l.refusing <- struct{}{}:
			go l.refuse(c)
		default:
			c.Close()
		}
	}
}

// refuse answers c 503 and closes it. Reading a little of the request
// first keeps the close from resetting the connection before the client
// has read the answer.
func (l *LimitedListener) refuse(c net.Conn) {
	defer func() { <-l.refusing }()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	var buf [4096]byte
	_, _ = c.Read(buf[:])
	_, _ = c.Write(busyAnswer)
}

// limitedConn gives its place back once closed.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
