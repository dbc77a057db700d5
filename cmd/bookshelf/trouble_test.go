package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The broker goes away and comes back: the services stop being ready,
// refuse writes with 503 and Retry-After, go on answering queries from
// what they have, and resume without a restart, losing nothing that was
// acknowledged.
func TestBrokerGoesAwayAndComesBack(t *testing.T) {
	dir := t.TempDir()
	bport, kport := freePort(t), freePort(t)
	broker := fmt.Sprintf("127.0.0.1:%d", kport)
	startBroker := func() *proc {
		p := startProc(t, bport, "broker", "--port", fmt.Sprint(kport), "--data-dir", filepath.Join(dir, "data"))
		eventually(t, "broker listening", func() bool { return p.out.String() != "" })
		return p
	}
	b := startBroker()
	booksPort, lrPort := freePort(t), freePort(t)
	books := startProc(t, booksPort, "books", "--broker", broker, "--port", fmt.Sprint(booksPort))
	lr := startProc(t, lrPort, "lastread", "--broker", broker, "--port", fmt.Sprint(lrPort))
	books.waitReady()
	lr.waitReady()

	add := postJSON(t, books.url("/books"), `{"title":"The Word for World Is Forest"}`)
	if add.status != 201 {
		t.Fatalf("add: %d %s", add.status, add.body)
	}
	var book bookJSON
	add.json(t, &book)
	read := do(t, "POST", books.url("/books/"+book.ID+"/read"), "", nil)
	if read.status != 200 {
		t.Fatalf("read: %d %s", read.status, read.body)
	}
	if r := getAt(t, lr.url("/books/last-read"), read.header.Get("Bookshelf-Position")); r.status != 200 {
		t.Fatalf("lastread at the read's position: %d %s", r.status, r.body)
	}

	b.term()
	eventuallyWithin(t, 15*time.Second, "books not ready without a broker", func() bool {
		return do(t, "GET", books.url("/readyz"), "", nil).status == 503
	})
	eventuallyWithin(t, 15*time.Second, "lastread not ready without a broker", func() bool {
		return do(t, "GET", lr.url("/readyz"), "", nil).status == 503
	})
	w := postJSON(t, books.url("/books"), `{"title":"Lost?"}`)
	if w.status != 503 || w.header.Get("Retry-After") == "" {
		t.Fatalf("write without a broker: %d %v %s", w.status, w.header, w.body)
	}
	var last lastReadJSON
	q := do(t, "GET", lr.url("/books/last-read"), "", nil)
	q.json(t, &last)
	if q.status != 200 || len(last.Books) != 1 {
		t.Fatalf("view without a broker: %d %s", q.status, q.body)
	}

	startBroker()
	books.waitReady()
	lr.waitReady()
	again := do(t, "POST", books.url("/books/"+book.ID+"/read"), "", nil)
	if again.status != 200 {
		t.Fatalf("read after the broker came back: %d %s", again.status, again.body)
	}
	var one lastReadJSON
	getAt(t, lr.url("/books/last-read"), again.header.Get("Bookshelf-Position")).json(t, &one)
	if len(one.Books) != 1 || !one.Books[0].ReadAt.After(last.Books[0].ReadAt) {
		t.Fatalf("after the broker came back: %+v (before: %+v)", one, last)
	}
	books.term()
	lr.term()
}

// kill -9 of an aggregate instance under a stream of commands: every
// command ends up decided exactly once. The survivor takes the dead one's
// partitions over; a command caught in between is retried by the gateway
// or, told 503, by the client with the key the gateway gave it.
func TestKillAggregateInstanceLosesAndDuplicatesNothing(t *testing.T) {
	needKcat(t)
	dir := t.TempDir()
	kport := freePort(t)
	broker := fmt.Sprintf("127.0.0.1:%d", kport)
	b := startProc(t, kport, "broker", "--port", fmt.Sprint(kport), "--data-dir", filepath.Join(dir, "data"))
	eventually(t, "broker listening", func() bool { return b.out.String() != "" })

	p1, p2, cport, gport := freePort(t), freePort(t), freePort(t), freePort(t)
	books1 := startProc(t, p1, "books", "--broker", broker, "--port", fmt.Sprint(p1), "--id", "books-1")
	books2 := startProc(t, p2, "books", "--broker", broker, "--port", fmt.Sprint(p2), "--id", "books-2")
	catalog := startProc(t, cport, "catalog", "--broker", broker, "--port", fmt.Sprint(cport))
	routes := fmt.Sprintf("books=http://127.0.0.1:%d,books=http://127.0.0.1:%d,booklist=http://127.0.0.1:%d", p1, p2, cport)
	gw := startProc(t, gport, "gateway", "--port", fmt.Sprint(gport), "--routes", routes)
	for _, p := range []*proc{books1, books2, catalog, gw} {
		p.waitReady()
	}

	const n = 30
	var last string // the position of the last command, for the catalog
	retried := 0
	for i := range n {
		if i == n/3 {
			books1.kill()
		}
		body := fmt.Sprintf(`{"title":"Book %d"}`, i)
		r := postJSON(t, gw.url("/books"), body)
		key := r.header.Get("Idempotency-Key")
		for deadline := time.Now().Add(60 * time.Second); r.status == 503; {
			if key == "" || time.Now().After(deadline) {
				t.Fatalf("command %d: %d %s (key %q)", i, r.status, r.body, key)
			}
			retried++
			time.Sleep(500 * time.Millisecond)
			r = postJSON(t, gw.url("/books"), body, "Idempotency-Key", key)
		}
		if r.status != 201 {
			t.Fatalf("command %d: %d %s", i, r.status, r.body)
		}
		last = r.header.Get("Bookshelf-Position")
	}
	var list struct {
		Total int `json:"total"`
	}
	eventually(t, "the catalog has caught up", func() bool {
		r := getAt(t, catalog.url("/books?limit=100"), last)
		return r.status == 200
	})
	// Each partition's last write must be in too, not just the last one's.
	eventually(t, "every book in the catalog", func() bool {
		do(t, "GET", catalog.url("/books?limit=100"), "", nil).json(t, &list)
		return list.Total >= n
	})
	// The catalog folds a second book-added of one id into the first: count
	// the events in the log itself, with kcat.
	added := 0
	for _, line := range kcatConsume(t, broker, "bookshelf") {
		if strings.Contains(line, `"type":"book-added"`) {
			added++
		}
	}
	if added != n || list.Total != n {
		t.Fatalf("the log holds %d book-added events and the catalog %d books, want exactly %d", added, list.Total, n)
	}
	t.Logf("%d commands, books-1 killed after %d, %d client retries with the gateway's key", n, n/3, retried)
}

// Consul unreachable at start: the service serves all the same, and says
// so once, not once per retry.
func TestServesWhileConsulIsAway(t *testing.T) {
	kport, port, consulPort := freePort(t), freePort(t), freePort(t) // nothing listens on consulPort
	b := startProc(t, kport, "broker", "--port", fmt.Sprint(kport), "--data-dir", t.TempDir())
	eventually(t, "broker listening", func() bool { return b.out.String() != "" })
	lr := startProc(t, port, "lastread", "--broker", fmt.Sprintf("127.0.0.1:%d", kport), "--port", fmt.Sprint(port),
		"--consul", fmt.Sprintf("127.0.0.1:%d", consulPort))
	lr.waitReady()
	if r := do(t, "GET", lr.url("/books/last-read"), "", nil); r.status != 200 {
		t.Fatalf("GET while Consul is away: %d %s", r.status, r.body)
	}
	time.Sleep(3 * time.Second) // several retries
	if n := strings.Count(lr.out.String(), "register failed; retrying"); n != 1 {
		t.Fatalf("logged the registration failure %d times, want once:\n%s", n, lr.out.String())
	}
	lr.term()
}
