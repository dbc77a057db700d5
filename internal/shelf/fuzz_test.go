package shelf

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// addFiles seeds f with every file matching the patterns under testdata.
func addFiles(f *testing.F, patterns ...string) {
	f.Helper()
	for _, p := range patterns {
		files, err := filepath.Glob(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		if len(files) == 0 {
			f.Fatalf("no seed files match testdata/%s", p)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	addFiles(f, "golden/*", "records/*")
	f.Add([]byte(`{"id":"x","name":"book-read","created":"2016-05-10 12:34:56","payload":"{\"title\": \"Dune\", \"read_at\": \"2016-05-11T00:00:00\"}"}`))
	f.Add([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"book-read","subject":"b","data":{"read_at":"0001-01-01T00:00:00Z"}}`))

	ts := recordTime
	f.Fuzz(func(t *testing.T, value []byte) {
		e, err := DecodeRecord(value, ts)
		if err != nil {
			n := 0
			for _, target := range recordErrors {
				if errors.Is(err, target) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("DecodeRecord error %q matches %d of ErrMalformed, ErrInvalid, ErrUnknownType; want 1", err, n)
			}
			return
		}
		if err := e.check(); err != nil {
			t.Fatalf("DecodeRecord accepted an event that fails its check: %v", err)
		}

		// The reader fills in no id or source for a plain text line, and an
		// envelope may lack its id; a writer must give them.
		in := e
		if in.ID == "" {
			in.ID = "fuzz-id"
		}
		if in.Source == "" {
			in.Source = "/fuzz"
		}
		b, err := EncodeEvent(&in)
		if err != nil {
			t.Fatalf("EncodeEvent(%+v) after DecodeRecord: %v", in, err)
		}
		out, err := DecodeRecord(b, ts.Add(time.Hour))
		if err != nil {
			t.Fatalf("DecodeRecord(EncodeEvent(e)) = %v\nrecord %q\nencoded %s", err, value, b)
		}
		if d := encodedDiff(&out, &in); d != "" {
			t.Fatalf("the event changed on its way through EncodeEvent: %s\nrecord %q\nencoded %s", d, value, b)
		}
		// Once encoded, the encoding is fixed.
		again, err := EncodeEvent(&out)
		if err != nil || string(again) != string(b) {
			t.Fatalf("EncodeEvent is not stable:\n%s\n%s (%v)", b, again, err)
		}
	})
}

// encodedDiff is eventDiff over the fields that EncodeEvent writes for the
// type at hand: a book-removed event carries no title, a book-added one no
// read_at, and no event its log position.
func encodedDiff(got, want *Event) string {
	w := Event{
		ID: want.ID, Type: want.Type, Source: want.Source, BookID: want.BookID, Seq: want.Seq,
		CommandID: want.CommandID, RequestHash: want.RequestHash, Time: want.Time,
	}
	switch want.Type {
	case TypeBookAdded:
		w.Title, w.Authors, w.Year, w.ISBN = want.Title, want.Authors, want.Year, want.ISBN
	case TypeBookRead:
		w.Title, w.ReadAt = want.Title, want.ReadAt
	}
	g := *got
	if len(g.Authors) == 0 && len(w.Authors) == 0 {
		g.Authors, w.Authors = nil, nil // [] and no authors are the same
	}
	return eventDiff(&g, &w)
}

func FuzzDecodeCommand(f *testing.F) {
	add := addBook("c1", "b1", "Dune", "Frank Herbert")
	add.Book.Year, add.Book.ISBN, add.RequestHash = 1965, "9780441172719", "h1"
	read := markRead("c2", "b1")
	read.ReadAt = hour(3).In(time.FixedZone("", -7*3600))
	for _, c := range []Command{add, read, removeBook("c3", "b1"), addBook("c4", "b2", "Solaris")} {
		b, err := EncodeCommand(&c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"c1","type":"add-book","book_id":"b1","book":{"title":"Dune","authors":[]},"issued_at":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"c1","type":"mark-read","book_id":"b1","read_at":"0000-01-01T00:00:00+01:00","issued_at":"9999-12-31T23:59:59-23:59"}`))
	f.Add([]byte(`{"id":"c1","type":"remove-book","book_id":"b1","book":null}`))

	f.Fuzz(func(t *testing.T, value []byte) {
		c, err := DecodeCommand(value)
		switch {
		case errors.Is(err, ErrUndecidable):
			// It can be answered: it must name itself.
			if c.ID == "" || len(c.ID) > MaxIDLen {
				t.Fatalf("DecodeCommand error %q for a command without a usable id %q", err, c.ID)
			}
			return
		case err != nil:
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeCommand error %q is neither ErrMalformed nor ErrUndecidable", err)
			}
			return
		}
		b, err := EncodeCommand(&c)
		if err != nil {
			t.Fatalf("EncodeCommand(%+v) after DecodeCommand: %v", c, err)
		}
		back, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("DecodeCommand(EncodeCommand(c)) = %v\ninput %q\nencoded %s", err, value, b)
		}
		if d := commandDiff(&back, &c); d != "" {
			t.Fatalf("the command changed on its way through EncodeCommand: %s\ninput %q\nencoded %s", d, value, b)
		}
		if again, err := EncodeCommand(&back); err != nil || string(again) != string(b) {
			t.Fatalf("EncodeCommand is not stable:\n%s\n%s (%v)", b, again, err)
		}
	})
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{
		"0:5", "0:5,1:7", " 3:1 ,0:10,,1:2", "0:5,0:9", "2147483647:9223372036854775807",
		"+1:+2", "-0:0", "007:010", "", ",", "0", ":", "a:b", "2147483648:0", strings.Repeat("0:1,", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			if p != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParsePosition(%q) = %v, %v", s, p, err)
			}
			return
		}
		if len(p) == 0 {
			t.Fatalf("ParsePosition(%q) = an empty position", s)
		}
		for part, off := range p {
			if part < 0 || off < 0 {
				t.Fatalf("ParsePosition(%q) = %v: negative", s, p)
			}
		}
		str := p.String()
		back, err := ParsePosition(str)
		if err != nil || !maps.Equal(back, p) {
			t.Fatalf("ParsePosition(%q) = %v; its String %q parses as %v, %v", s, p, str, back, err)
		}
		if again := back.String(); again != str {
			t.Fatalf("String is not stable: %q, %q", str, again)
		}
		// A position is reached exactly when every partition is past it.
		next := maps.Clone(map[int32]int64(p))
		if p.Reached(next) {
			t.Fatalf("%v reached by next offsets equal to it", p)
		}
		keys := slices.Collect(maps.Keys(next))
		for _, k := range keys {
			if next[k] < 1<<63-1 {
				next[k]++
			}
		}
		if want := !slices.ContainsFunc(keys, func(k int32) bool { return p[k] == 1<<63-1 }); p.Reached(next) != want {
			t.Fatalf("%v.Reached(%v) = %v, want %v", p, next, !want, want)
		}
	})
}

// FuzzScanWire holds the fast path to its promise: whatever scan reads,
// encoding/json reads the same, without error.
func FuzzScanWire(f *testing.F) {
	addFiles(f, "golden/*", "records/*")
	for _, r := range newStream(3).records(f, 20) {
		f.Add(r)
	}
	f.Add([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"book-added","subject":"b","bookseq":-9223372036854775808,"data":{"title":"T","authors":[],"year":-0}}`))
	f.Add([]byte(` { "id" : "e" , "data" : { "authors" : [ "a" , "b" ] , "read_at" : "2024-01-01T00:00:00+23:59" } } `))
	f.Add([]byte(`{"specversion":"1.0","specversion":"1.0"}`))
	f.Add([]byte(`{"bookseq":1e3}`))
	f.Add([]byte(`{"ID":"e"}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return // DecodeRecordInto refuses it before scan sees it
		}
		var fast ceWire
		if !fast.scan(b) {
			return
		}
		var slow ceWire
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("scan read %q, encoding/json refuses it: %v", b, err)
		}
		if d := wireDiff(&fast, &slow); d != "" {
			t.Fatalf("scan and encoding/json differ on %q: %s", b, d)
		}
	})
}

func wireDiff(a, b *ceWire) string {
	var d []string
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"specversion", a.SpecVersion, b.SpecVersion}, {"id", a.ID, b.ID}, {"source", a.Source, b.Source},
		{"type", a.Type, b.Type}, {"subject", a.Subject, b.Subject}, {"datacontenttype", a.DataContentType, b.DataContentType},
		{"bookseq", a.BookSeq, b.BookSeq}, {"commandid", a.CommandID, b.CommandID}, {"requesthash", a.RequestHash, b.RequestHash},
		{"title", a.Data.Title, b.Data.Title}, {"year", a.Data.Year, b.Data.Year}, {"isbn", a.Data.ISBN, b.Data.ISBN},
		{"name", a.Name, b.Name}, {"created", a.Created, b.Created}, {"payload", string(a.Payload), string(b.Payload)},
		{"authors nil", a.Data.Authors == nil, b.Data.Authors == nil},
	} {
		if f.a != f.b {
			d = append(d, fmt.Sprintf("%s: %#v, %#v", f.name, f.a, f.b))
		}
	}
	if !slices.Equal(a.Data.Authors, b.Data.Authors) {
		d = append(d, fmt.Sprintf("authors: %q, %q", a.Data.Authors, b.Data.Authors))
	}
	for _, tm := range [][2]time.Time{{a.Time, b.Time}, {a.Data.ReadAt, b.Data.ReadAt}} {
		_, oa := tm[0].Zone()
		_, ob := tm[1].Zone()
		if !tm[0].Equal(tm[1]) || oa != ob {
			d = append(d, fmt.Sprintf("time: %v, %v", tm[0], tm[1]))
		}
	}
	return strings.Join(d, "; ")
}
