package main

import (
	"fmt"
	"path/filepath"
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
	do(t, "GET", lr.url("/books/last-read"), "", nil, "Bookshelf-Position", read.header.Get("Bookshelf-Position"))

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
	do(t, "GET", lr.url("/books/last-read"), "", nil, "Bookshelf-Position", again.header.Get("Bookshelf-Position")).json(t, &one)
	if len(one.Books) != 1 || !one.Books[0].ReadAt.After(last.Books[0].ReadAt) {
		t.Fatalf("after the broker came back: %+v (before: %+v)", one, last)
	}
	books.term()
	lr.term()
}
