package httpapi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
	"github.com/bookshelf/bookshelf/internal/shelf"
)

// heldSubmitter holds every command until released, as a command path
// saturated would.
type heldSubmitter struct {
	in      chan struct{}
	release chan struct{}
}

func (h heldSubmitter) Submit(ctx context.Context, c shelf.Command) (shelf.Outcome, error) {
	h.in <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
		return shelf.Outcome{}, ctx.Err()
	}
	b := *c.Book
	b.ID = c.BookID
	return shelf.Outcome{CommandID: c.ID, Status: shelf.StatusAccepted, Book: &b, Position: "0:1"}, nil
}

// Past its bound of commands in flight, books answers 503 busy at once,
// and counts it; the commands in flight are answered as usual.
func TestBooksShedsCommandsPastTheBound(t *testing.T) {
	sub := heldSubmitter{in: make(chan struct{}, 8), release: make(chan struct{})}
	reg := metrics.NewRegistry()
	h := Books(sub, WithMaxInFlight(2, 0), WithMetrics(reg), WithLogger(quietLogger(t)))
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { codes[i] = do(t, h, "POST", "/books", `{"title":"Dune"}`).Code })
	}
	<-sub.in
	<-sub.in
	began := time.Now()
	rec := do(t, h, "POST", "/books", `{"title":"Dune"}`)
	if d := time.Since(began); rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || d > 100*time.Millisecond {
		t.Fatalf("a third command with two in flight: %d (Retry-After %q) after %v, want 503 at once", rec.Code, rec.Header().Get("Retry-After"), d)
	}
	if p := problemOf(t, rec); !strings.HasSuffix(p.Type, "/busy") {
		t.Errorf("problem %+v, want busy", p)
	}
	// Health and metrics are never shed.
	if rec := do(t, h, "GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("healthz while saturated: %d", rec.Code)
	}
	if m := do(t, h, "GET", "/metrics", "").Body.String(); !strings.Contains(m, `bookshelf_http_shed_total{kind="commands",reason="in-flight"} 1`) {
		t.Errorf("the shed command is not counted:\n%s", m)
	}
	close(sub.release)
	wg.Wait()
	if codes[0] != 201 || codes[1] != 201 {
		t.Errorf("the commands in flight: %v, want 201 each", codes)
	}
}

// A gateway whose commands are all in flight sheds the next at once, and
// goes on answering queries: commands never starve them.
func TestGatewayCommandsDoNotStarveQueries(t *testing.T) {
	slow := newBackend(t, "books", 201)
	slow.delay = 2 * time.Second
	views := newBackend(t, "catalog", 200)
	res := resolverFunc(func(_ context.Context, service string) ([]string, error) {
		if service == ServiceBooks {
			return []string{slow.URL}, nil
		}
		return []string{views.URL}, nil
	})
	reg := metrics.NewRegistry()
	h := Gateway(res, WithMaxInFlight(1, 4), WithMetrics(reg), WithLogger(quietLogger(t)))
	srv := httptest.NewServer(h)
	defer srv.Close()
	held := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/books", "application/json", strings.NewReader(`{"title":"Dune"}`))
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	for slow.hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	resp, err := http.Post(srv.URL+"/books", "application/json", strings.NewReader(`{"title":"Dune"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(began); resp.StatusCode != 503 || d > 500*time.Millisecond {
		t.Fatalf("a command with the gateway's one in flight: %d after %v, want 503 at once", resp.StatusCode, d)
	}
	for range 10 {
		resp, err := http.Get(srv.URL + "/books?limit=1")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a query while commands are saturated: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	if code := <-held; code != 201 {
		t.Errorf("the command in flight: %d", code)
	}
}

// A server holds no more connections than its bound: one more is answered
// 503 at once, raw, and closed; once a connection closes, its place is
// taken again.
func TestLimitListenerTurnsAwayConnectionsPastTheBound(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(raw, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	defer srv.Close()
	addr := raw.Addr().String()
	get := func(c net.Conn) (*http.Response, error) {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		return http.ReadResponse(bufio.NewReader(c), nil)
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp, err := get(c); err != nil || resp.StatusCode != 200 {
			t.Fatalf("a connection within the bound: %v %v", resp, err)
		}
		held = append(held, c) // kept open, idle
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	resp, err := get(over)
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Content-Type") != ProblemContentType {
		t.Fatalf("a connection past the bound: %v %v, want 503 busy with Retry-After", resp, err)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), `"status":503`) {
		t.Errorf("body %q", body)
	}
	if ln.Shed() != 1 {
		t.Errorf("Shed = %d, want 1", ln.Shed())
	}
	held[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := get(c)
		c.Close()
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the freed place is not taken again: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
