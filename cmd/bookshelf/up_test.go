package main

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestUpAddReadAndReadYourWrites(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		s := startUp(t, t.TempDir(), newPorts(t), tg)

		add := postJSON(t, s.gateway+"/books", `{"title":"The Left Hand of Darkness","authors":["Ursula K. Le Guin"],"year":1969,"isbn":"978-0-441-47812-5"}`)
		if add.status != 201 || add.header.Get("Location") == "" || add.header.Get("Bookshelf-Position") == "" {
			t.Fatalf("add: %d %v %s", add.status, add.header, add.body)
		}
		var book bookJSON
		add.json(t, &book)
		if tr := add.header.Get("traceresponse"); tr != "" {
			t.Errorf("traced with no OTEL_* variables set: traceresponse %q", tr)
		}

		read := do(t, "POST", s.gateway+"/books/"+book.ID+"/read", "", nil)
		if read.status != 200 || read.header.Get("Bookshelf-Position") == "" {
			t.Fatalf("read: %d %v %s", read.status, read.header, read.body)
		}
		// With the position it got back, the view answers with the write at once.
		var last lastReadJSON
		getAt(t, s.gateway+"/books/last-read", read.header.Get("Bookshelf-Position")).json(t, &last)
		if len(last.Books) != 1 || last.Books[0].ID != book.ID || last.Books[0].Authors[0] != "Ursula K. Le Guin" {
			t.Fatalf("last read right after the write at %s (added at %s): %+v",
				read.header.Get("Bookshelf-Position"), add.header.Get("Bookshelf-Position"), last)
		}
		var one bookJSON
		getAt(t, s.gateway+"/books/"+book.ID, read.header.Get("Bookshelf-Position")).json(t, &one)
		if one.Reads != 1 || one.Year != 1969 {
			t.Fatalf("catalog at %s: %+v", read.header.Get("Bookshelf-Position"), one)
		}
		var stats struct {
			BooksRead int            `json:"books_read"`
			PerAuthor map[string]int `json:"per_author"`
		}
		getAt(t, s.gateway+"/stats", read.header.Get("Bookshelf-Position")).json(t, &stats)
		if stats.BooksRead != 1 || stats.PerAuthor["Ursula K. Le Guin"] != 1 {
			t.Fatalf("stats at %s: %+v", read.header.Get("Bookshelf-Position"), stats)
		}

		// The original gateway's paths.
		orig := postJSON(t, s.gateway+"/bookshelf/books", `{"title":"Kindred","authors":["Octavia E. Butler"]}`)
		if orig.status != 201 {
			t.Fatalf("POST /bookshelf/books: %d %s", orig.status, orig.body)
		}
		var kindred bookJSON
		orig.json(t, &kindred)
		fin := do(t, "POST", s.gateway+"/bookshelf/books/"+kindred.ID+"/finished", "", nil)
		if fin.status != 200 {
			t.Fatalf("finished: %d %s", fin.status, fin.body)
		}
		// The original path answers the original's bare JSON list.
		getAt(t, s.gateway+"/bookshelf/books/last/read", fin.header.Get("Bookshelf-Position")).json(t, &last.Books)
		if got := titles(last); len(got) != 2 || got[0] != "Kindred" {
			t.Fatalf("original last-read path: %v", got)
		}

		// Removing a book: gone from the catalog and the last-read list.
		del := do(t, "DELETE", s.gateway+"/books/"+kindred.ID, "", nil)
		if del.status != 204 {
			t.Fatalf("delete: %d %s", del.status, del.body)
		}
		pos := del.header.Get("Bookshelf-Position")
		if r := getAt(t, s.gateway+"/books/"+kindred.ID, pos); r.status != 404 {
			t.Fatalf("removed book: %d %s", r.status, r.body)
		}
		if r := do(t, "POST", s.gateway+"/books/"+kindred.ID+"/read", "", nil); r.status != 404 {
			t.Fatalf("reading a removed book: %d %s", r.status, r.body)
		}
		getAt(t, s.gateway+"/books/last-read", pos).json(t, &last)
		if got := titles(last); len(got) != 1 {
			t.Fatalf("last read after removal: %v", got)
		}

		// Every service's metrics: the runtime's and the process's, and
		// its requests by route and code, counted and timed.
		for _, svc := range []string{"gateway", "books", "lastread", "catalog", "stats"} {
			m := do(t, "GET", s.url(svc, "/metrics"), "", nil)
			for _, family := range []string{"go_goroutines", "go_gc_duration_seconds", "process_resident_memory_bytes",
				"bookshelf_http_requests_total", "bookshelf_http_request_duration_seconds"} {
				if !strings.Contains(string(m.body), "# TYPE "+family+" ") {
					t.Errorf("%s's metrics lack the family %s", svc, family)
				}
			}
		}
	})
}

func TestUpBadInput(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		s := startUp(t, t.TempDir(), newPorts(t), tg)
		add := postJSON(t, s.gateway+"/books", `{"title":"Dune"}`)
		var dune bookJSON
		add.json(t, &dune)

		cases := []struct {
			name, method, path, ctype, body string
			headers                         []string
			status                          int
			detail                          string // a word the problem's detail must hold
		}{
			{"broken JSON", "POST", "/books", "application/json", `{"title":`, nil, 400, ""},
			{"missing title", "POST", "/books", "application/json", `{"authors":["A"]}`, nil, 400, "title"},
			{"empty authors", "POST", "/books", "application/json", `{"title":"T","authors":[]}`, nil, 400, "authors"},
			{"year not a number", "POST", "/books", "application/json", `{"title":"T","year":"soon"}`, nil, 400, "year"},
			{"implausible year", "POST", "/books", "application/json", `{"title":"T","year":99999}`, nil, 400, "year"},
			{"bad ISBN", "POST", "/books", "application/json", `{"title":"T","isbn":"978-0-441-47812-6"}`, nil, 400, "isbn"},
			{"title too long", "POST", "/books", "application/json", `{"title":"` + strings.Repeat("x", 513) + `"}`, nil, 400, "title"},
			{"body over 64 KiB", "POST", "/books", "application/json", `{"title":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, ""},
			{"not JSON", "POST", "/books", "text/plain", `Dune`, nil, 415, ""},
			{"unknown book read", "POST", "/books/no-such-book/read", "", "", nil, 404, ""},
			{"unknown book delete", "DELETE", "/books/no-such-book", "", "", nil, 404, ""},
			{"unknown book get", "GET", "/books/no-such-book", "", "", nil, 404, ""},
			{"bad read_at", "POST", "/books/" + dune.ID + "/read", "application/json", `{"read_at":"yesterday"}`, nil, 400, "read_at"},
			{"bad limit", "GET", "/books/last-read?limit=1000", "", "", nil, 400, "limit"},
			{"bad position", "GET", "/books/last-read", "", "", []string{"Bookshelf-Position", "nonsense"}, 400, "Position"},
			{"position never reached", "GET", "/books/last-read", "", "", []string{"Bookshelf-Position", "0:999999"}, 503, ""},
			{"unknown path", "GET", "/nowhere", "", "", nil, 404, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var body *strings.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				} else {
					body = strings.NewReader("")
				}
				r := do(t, c.method, s.gateway+c.path, c.ctype, body, c.headers...)
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
					t.Fatalf("content type %q, want problem+json", ct)
				}
				if c.status == 503 && r.header.Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
				var p struct {
					Detail string `json:"detail"`
					Status int    `json:"status"`
				}
				r.decode(t, &p)
				if p.Status != c.status || !strings.Contains(strings.ToLower(string(r.body)), strings.ToLower(c.detail)) {
					t.Fatalf("problem %s does not name %q", r.body, c.detail)
				}
			})
		}
	})
}

func TestUpIdempotencyKey(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		s := startUp(t, t.TempDir(), newPorts(t), tg)
		body := `{"title":"Solaris","authors":["Stanisław Lem"]}`
		first := postJSON(t, s.gateway+"/books", body, "Idempotency-Key", "order-42")
		again := postJSON(t, s.gateway+"/books", body, "Idempotency-Key", "order-42")
		if first.status != 201 || again.status != 201 || !bytes.Equal(first.body, again.body) ||
			first.header.Get("Bookshelf-Position") != again.header.Get("Bookshelf-Position") {
			t.Fatalf("same key, same body: %d %s / %d %s", first.status, first.body, again.status, again.body)
		}
		other := postJSON(t, s.gateway+"/books", `{"title":"Fiasco"}`, "Idempotency-Key", "order-42")
		if other.status != 409 {
			t.Fatalf("same key, other body: %d %s", other.status, other.body)
		}
		var list struct {
			Total int `json:"total"`
		}
		getAt(t, s.gateway+"/books", first.header.Get("Bookshelf-Position")).json(t, &list)
		if list.Total != 1 {
			t.Fatalf("catalog holds %d books, want 1", list.Total)
		}
		// A read with a key is counted once however often it is retried.
		var b bookJSON
		first.json(t, &b)
		r1 := do(t, "POST", s.gateway+"/books/"+b.ID+"/read", "", nil, "Idempotency-Key", "read-1")
		r2 := do(t, "POST", s.gateway+"/books/"+b.ID+"/read", "", nil, "Idempotency-Key", "read-1")
		if r1.status != 200 || r2.status != 200 || !bytes.Equal(r1.body, r2.body) {
			t.Fatalf("keyed read twice: %d %s / %d %s", r1.status, r1.body, r2.status, r2.body)
		}
		var one bookJSON
		getAt(t, s.gateway+"/books/"+b.ID, r2.header.Get("Bookshelf-Position")).json(t, &one)
		if one.Reads != 1 {
			t.Fatalf("reads = %d, want 1", one.Reads)
		}
	})
}

func TestUpKcatLinesEnvelopeAndPoison(t *testing.T) {
	needKcat(t)
	eachTarget(t, func(t *testing.T, tg target) {
		s := startUp(t, t.TempDir(), newPorts(t), tg)
		broker, topic := s.broker(), tg.topic

		// The original README's step: each line a book read.
		kcatProduce(t, broker, topic, "Dune", "Neuromancer", "Dune")
		// The original Python envelope, payload as a JSON string,
		// zone-less time: a read of a book the API added is reading
		// history, and shows; an add from outside is no book the
		// aggregate knows, and is dead-lettered, saying why.
		var hyperion bookJSON
		postJSON(t, s.gateway+"/books", `{"title":"Hyperion","authors":["Dan Simmons"]}`).json(t, &hyperion)
		kcatProduce(t, broker, topic,
			`{"id":"e1","name":"book-added","created":"2016-05-10T12:34:56.789012","payload":"{\"id\": \"py1\", \"title\": \"Endymion\", \"authors\": [\"Dan Simmons\"]}"}`,
			`{"id":"e2","name":"book-read","created":"2016-05-11T08:00:00","payload":{"id":"`+hyperion.ID+`"}}`)
		// Poison, between good records: broken JSON, a CloudEvent of another
		// spec version, a known type with bad data.
		kcatProduce(t, broker, topic,
			`{"specversion":"1.0","id":`,
			`{"specversion":"0.3","id":"x","source":"s","type":"book-read"}`,
			`{"specversion":"1.0","id":"y","source":"s","type":"book-added","subject":"b","data":{"title":""}}`,
			"Foundation")

		var last lastReadJSON
		eventually(t, "lines shown on the lastread service's / (the original port 8087 page)", func() bool {
			do(t, "GET", s.url("lastread", "/?limit=10"), "", nil).json(t, &last.Books)
			got := titles(last)
			return len(got) == 4 && got[0] == "Foundation"
		})
		got := titles(last)
		want := map[string]bool{"Foundation": true, "Dune": true, "Neuromancer": true, "Hyperion": true}
		for _, title := range got {
			if !want[title] {
				t.Fatalf("last read = %v", got)
			}
		}
		for _, b := range last.Books {
			if b.Title == "Hyperion" && (b.ID != hyperion.ID || len(b.Authors) != 1 || b.ReadAt.Year() != 2016) {
				t.Fatalf("envelope read = %+v", b)
			}
		}
		if r := do(t, "GET", s.gateway+"/books/py1", "", nil); r.status != 404 {
			t.Fatalf("the envelope's add from outside: GET /books/py1 = %d %s, want 404 as the aggregate says", r.status, r.body)
		}
		eventually(t, "three poison records and the outside add in bookshelf.dlq", func() bool {
			return len(kcatConsume(t, broker, topic+".dlq")) == 4
		})
		admitted := 0
		for _, line := range kcatConsume(t, broker, topic+".dlq") {
			if !strings.Contains(line, "bookshelf-origin-topic="+topic) || !strings.Contains(line, "bookshelf-error=") {
				t.Fatalf("dead letter without its origin and error: %s", line)
			}
			if strings.Contains(line, "not admitted") && strings.Contains(line, "POST /books") {
				admitted++
			}
		}
		if admitted != 1 {
			t.Fatalf("%d dead letters say an outside add is not admitted and what to do instead, want 1", admitted)
		}
		m := do(t, "GET", s.url("lastread", "/metrics"), "", nil)
		if !strings.Contains(string(m.body), "bookshelf_records_dead_lettered_total 4") {
			t.Fatalf("metrics do not count the dead letters:\n%s", m.body)
		}
	})
}

// The README's kcat scenario: books added through the API, then each
// title pushed as a plain line (one of them before its book is added).
// The replicas that lived through it and fresh replicas reading the same
// log, in another interleaving of its partitions, answer every query
// alike.
func TestUpReplicasAgreeOnTheKcatScenario(t *testing.T) {
	needKcat(t)
	eachTarget(t, func(t *testing.T, tg target) {
		s := startUp(t, t.TempDir(), newPorts(t), tg)
		broker, topic := s.broker(), tg.topic
		kcatProduce(t, broker, topic, "The Dispossessed") // before its book
		titles := []string{"Dune", "Neuromancer", "Hyperion", "Foundation", "Solaris", "Kindred", "The Dispossessed"}
		var last string
		for i, title := range titles {
			r := postJSON(t, s.gateway+"/books", fmt.Sprintf(`{"title":%q,"authors":["Author %d","Shared Author"]}`, title, i%3))
			if r.status != 201 {
				t.Fatalf("add %s: %d %s", title, r.status, r.body)
			}
			last = r.header.Get("Bookshelf-Position")
		}
		kcatProduce(t, broker, topic, titles[:6]...)
		kcatProduce(t, broker, topic, "A Title of No Book", "dune")

		queries := []string{"/books/last-read?limit=20", "/books?limit=100", "/books?limit=1", "/books?limit=3&offset=2",
			"/books?author=Shared%20Author&limit=2&offset=1", "/stats"}
		service := func(q string) string {
			switch {
			case strings.HasPrefix(q, "/books/last-read"):
				return "lastread"
			case strings.HasPrefix(q, "/stats"):
				return "stats"
			}
			return "catalog"
		}
		// A replica has read every line once: 8 entries last read (7
		// books and the title of none), 8 reads in the catalog (all but
		// that title's), 9 in the statistics.
		settled := func(url func(string) string) bool {
			var lr lastReadJSON
			var cat struct{ Books []struct{ Reads int } }
			var st struct {
				BooksRead int `json:"books_read"`
			}
			getAt(t, url("/books/last-read?limit=20"), last).json(t, &lr)
			getAt(t, url("/books?limit=100"), last).json(t, &cat)
			getAt(t, url("/stats"), last).json(t, &st)
			reads := 0
			for _, b := range cat.Books {
				reads += b.Reads
			}
			return len(lr.Books) == 8 && reads == 8 && st.BooksRead == 9
		}
		eventually(t, "every line read by the live replicas", func() bool {
			return settled(func(q string) string { return s.url(service(q), q) })
		})
		var lr lastReadJSON
		getAt(t, s.url("lastread", "/books/last-read?limit=20"), last).json(t, &lr)
		for _, b := range lr.Books {
			if b.Title == "The Dispossessed" && strings.HasPrefix(b.ID, "title-") {
				t.Errorf("the line read before its book was added stays on an entry of its own: %+v", b)
			}
		}
		fresh := map[string]*proc{}
		for _, kind := range []string{"lastread", "catalog", "stats"} {
			port := freePort(t)
			fresh[kind] = startProc(t, port, kind, "--broker", broker, "--topic", topic, "--port", strconv.Itoa(port), "--id", "fresh-"+kind)
		}
		for _, p := range fresh {
			p.waitReady()
		}
		eventually(t, "every line read by the fresh replicas", func() bool {
			return settled(func(q string) string { return fresh[service(q)].url(q) })
		})
		for _, q := range queries {
			l, f := getAt(t, s.url(service(q), q), last), getAt(t, fresh[service(q)].url(q), last)
			if l.status != 200 || string(f.body) != string(l.body) {
				t.Errorf("GET %s: the live replica says\n%d %s\na fresh one says\n%d %s", q, l.status, l.body, f.status, f.body)
			}
		}
		for _, p := range fresh {
			p.term()
		}
	})
}

func TestUpSurvivesRestart(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		dir, ports := t.TempDir(), newPorts(t)
		s := startUp(t, dir, ports, tg)
		add := postJSON(t, s.gateway+"/books", `{"title":"Piranesi","authors":["Susanna Clarke"]}`)
		var b bookJSON
		add.json(t, &b)
		read := do(t, "POST", s.gateway+"/books/"+b.ID+"/read", "", nil, "Idempotency-Key", "k1")
		if read.status != 200 {
			t.Fatalf("read: %d %s", read.status, read.body)
		}
		if !strings.Contains(s.stdout.String(), "http://127.0.0.1:") {
			t.Fatalf("up did not print where it listens:\n%s", s.stdout.String())
		}
		s.stop()

		s = startUp(t, dir, ports, tg)
		var one bookJSON
		r := do(t, "GET", s.gateway+"/books/"+b.ID, "", nil)
		r.json(t, &one)
		if r.status != 200 || one.Title != "Piranesi" || one.Reads != 1 {
			t.Fatalf("after restart: %d %s", r.status, r.body)
		}
		// The aggregate rebuilt its state: the keyed read is recognised, the
		// book is known.
		again := do(t, "POST", s.gateway+"/books/"+b.ID+"/read", "", nil, "Idempotency-Key", "k1")
		if again.status != 200 || !bytes.Equal(again.body, read.body) {
			t.Fatalf("keyed read after restart: %d %s, want %s", again.status, again.body, read.body)
		}
		if dup := postJSON(t, s.gateway+"/books/"+b.ID+"/read", ``); dup.status != 200 {
			t.Fatalf("read after restart: %d %s", dup.status, dup.body)
		}
	})
}

func TestUpTakenPortIsOneClearLine(t *testing.T) {
	ports := newPorts(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports["lastread"]))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	args := []string{"up", "--data-dir", t.TempDir()}
	for name, p := range ports {
		args = append(args, fmt.Sprintf("--%s-port=%d", name, p))
	}
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err == nil {
		t.Fatal("up started although a port was taken")
	}
	want := fmt.Sprintf("bookshelf: port %d on 127.0.0.1 is taken; choose another with --lastread-port\n", ports["lastread"])
	if string(out) != want {
		t.Fatalf("output %q, want %q", out, want)
	}
}
