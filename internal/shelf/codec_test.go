package shelf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenEvents lock the event format: one per type, each with every field
// its type carries.
var goldenEvents = []struct {
	file  string
	event Event
}{
	{"book-added.json", Event{
		ID:          "cmd-7f3a9c-1",
		Type:        TypeBookAdded,
		Source:      EventSource,
		BookID:      "b-0001",
		Seq:         1,
		CommandID:   "cmd-7f3a9c",
		RequestHash: "3f1a0c9e5b7d2e48",
		Time:        time.Date(2024, time.March, 1, 12, 0, 0, 123456789, time.UTC),
		Title:       "The Left Hand of Darkness",
		Authors:     []string{"Ursula K. Le Guin"},
		Year:        1969,
		ISBN:        "9780441478125",
	}},
	{"book-read.json", Event{
		ID:        "cmd-81b0e2-1",
		Type:      TypeBookRead,
		Source:    EventSource,
		BookID:    "b-0001",
		Seq:       2,
		CommandID: "cmd-81b0e2",
		Time:      time.Date(2024, time.March, 2, 9, 0, 0, 0, time.UTC),
		ReadAt:    time.Date(2024, time.March, 2, 8, 30, 0, 0, time.UTC),
	}},
	{"book-removed.json", Event{
		ID:        "cmd-c44d17-1",
		Type:      TypeBookRemoved,
		Source:    EventSource,
		BookID:    "b-0001",
		Seq:       3,
		CommandID: "cmd-c44d17",
		Time:      time.Date(2024, time.March, 3, 18, 45, 30, 0, time.UTC),
	}},
}

func TestGoldenEvents(t *testing.T) {
	for _, g := range goldenEvents {
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.file)
			got, err := EncodeEvent(&g.event)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("EncodeEvent changed the format of %s:\n got %s\nwant %s", g.event.Type, got, want)
			}

			// The record timestamp is not used: the event has its time.
			back, err := DecodeRecord(want, t0)
			if err != nil {
				t.Fatalf("DecodeRecord(%s): %v", g.file, err)
			}
			if d := eventDiff(&back, &g.event); d != "" {
				t.Errorf("DecodeRecord(%s): %s", g.file, d)
			}
		})
	}
}

// TestGoldenFilesHaveEvents keeps testdata/golden and goldenEvents in
// step: a file nobody checks is no lock.
func TestGoldenFilesHaveEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var want []string
	for _, g := range goldenEvents {
		want = append(want, g.file)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("testdata/golden holds %v, want %v", names, want)
	}
}

// eventDiff names the fields in which two events differ, or returns "".
func eventDiff(got, want *Event) string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	tm := func(name string, g, w time.Time) {
		if !g.Equal(w) {
			d = append(d, fmt.Sprintf("%s %v, want %v", name, g, w))
		} else if !g.IsZero() && g.Location() != time.UTC {
			d = append(d, fmt.Sprintf("%s %v is not in UTC", name, g))
		}
	}
	str("ID", got.ID, want.ID)
	str("Type", got.Type, want.Type)
	str("Source", got.Source, want.Source)
	str("BookID", got.BookID, want.BookID)
	if got.Seq != want.Seq {
		d = append(d, fmt.Sprintf("Seq %d, want %d", got.Seq, want.Seq))
	}
	str("CommandID", got.CommandID, want.CommandID)
	str("RequestHash", got.RequestHash, want.RequestHash)
	tm("Time", got.Time, want.Time)
	str("Title", got.Title, want.Title)
	if !slices.Equal(got.Authors, want.Authors) {
		d = append(d, fmt.Sprintf("Authors %q, want %q", got.Authors, want.Authors))
	}
	if got.Year != want.Year {
		d = append(d, fmt.Sprintf("Year %d, want %d", got.Year, want.Year))
	}
	str("ISBN", got.ISBN, want.ISBN)
	tm("ReadAt", got.ReadAt, want.ReadAt)
	if got.At != want.At {
		d = append(d, fmt.Sprintf("At %v, want %v", got.At, want.At))
	}
	return strings.Join(d, "; ")
}

// recordTime is the timestamp of the records under testdata/records.
var recordTime = time.Date(2024, time.May, 1, 9, 0, 0, 0, time.UTC)

// records says what the tolerant reader makes of each file under
// testdata/records: an event, or an error to match with errors.Is.
var records = []struct {
	file string
	want *Event
	err  error
}{
	// The original Python envelope: created without a zone (read as UTC),
	// the book-added payload a JSON string holding JSON.
	{file: "python-book-added.json", want: &Event{
		ID: "5f0b7d1e-8a7c-4f5e-9a51-3c2d6b1e0f42", Type: TypeBookAdded, Source: "python-envelope", BookID: "b1",
		Time:  time.Date(2016, time.May, 10, 12, 34, 56, 789012000, time.UTC),
		Title: "Dune", Authors: []string{"Frank Herbert"},
	}},
	{file: "python-book-read.json", want: &Event{
		ID: "0d6f2b8c-1e47-4b0a-8f0e-6a9c3d2e5b71", Type: TypeBookRead, Source: "python-envelope", BookID: "b1",
		Time:   time.Date(2016, time.May, 11, 8, 15, 0, 42000, time.UTC),
		ReadAt: time.Date(2016, time.May, 11, 8, 15, 0, 42000, time.UTC),
	}},
	// A payload object, a snake_case name, a space in created, authors as
	// one string and no id: the book is named for its title.
	{file: "python-book-added-object.json", want: &Event{
		ID: "a3c1e9f0-7b2d-4c68-9e15-d04f8a6b2c37", Type: TypeBookAdded, Source: "python-envelope",
		BookID: TitleBookID("The Dispossessed"),
		Time:   time.Date(2016, time.May, 12, 19, 1, 2, 0, time.UTC),
		Title:  "The Dispossessed", Authors: []string{"Ursula K. Le Guin"}, Year: 1974,
	}},
	// kcat -P: a book with that title was read when the record was written.
	{file: "text-line.txt", want: &Event{
		Type: TypeBookRead, Title: "The Left Hand of Darkness", Time: recordTime, ReadAt: recordTime,
	}},
	{file: "cloudevent-read-by-title.json", want: &Event{
		ID: "kcat-1", Type: TypeBookRead, Source: "/kcat", Title: "Solaris",
		Time:   time.Date(2024, time.April, 30, 19, 5, 0, 0, time.UTC),
		ReadAt: time.Date(2024, time.April, 30, 19, 5, 0, 0, time.UTC),
	}},

	{file: "unknown-book-rated.json", err: ErrUnknownType},

	{file: "poison-bad-utf8.txt", err: ErrMalformed},
	{file: "poison-broken-json.json", err: ErrMalformed},
	{file: "poison-specversion-0.3.json", err: ErrMalformed},
	{file: "poison-empty.txt", err: ErrMalformed},
	{file: "poison-neither.json", err: ErrMalformed},
	{file: "poison-text-line-control.txt", err: ErrMalformed},
	{file: "poison-empty-title.json", err: ErrInvalid},
	{file: "poison-subject-too-long.json", err: ErrInvalid},
	{file: "poison-time-before-year-0.json", err: ErrInvalid},
}

// Every error DecodeRecord returns is one of these; which one decides
// whether a consumer skips the record or dead-letters it.
var recordErrors = []error{ErrMalformed, ErrInvalid, ErrUnknownType}

func TestDecodeRecordFiles(t *testing.T) {
	for _, r := range records {
		t.Run(r.file, func(t *testing.T) {
			value, err := os.ReadFile(filepath.Join("testdata", "records", r.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeRecord(value, recordTime)
			checkRecord(t, got, err, r.want, r.err)
		})
	}
}

func checkRecord(t *testing.T, got Event, err error, want *Event, wantErr error) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("DecodeRecord = %+v, %v; want %v", got, err, wantErr)
		}
		for _, other := range recordErrors {
			if other != wantErr && errors.Is(err, other) {
				t.Errorf("DecodeRecord: %v matches %v as well as %v", err, other, wantErr)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("DecodeRecord: %v", err)
	}
	if d := eventDiff(&got, want); d != "" {
		t.Error(d)
	}
}

// TestRecordFilesHaveOutcomes keeps testdata/records and records in step.
func TestRecordFilesHaveOutcomes(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "records"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range records {
		known[r.file] = true
	}
	for _, e := range entries {
		if !known[e.Name()] {
			t.Errorf("testdata/records/%s has no expected outcome in records", e.Name())
		}
		delete(known, e.Name())
	}
	for f := range known {
		t.Errorf("records names %s, which is not in testdata/records", f)
	}
}

// A validation failure of a known type is reported as "<type> event: ..."
// and still matches ErrInvalid, with the field at hand.
func TestDecodeRecordFieldError(t *testing.T) {
	value := `{"specversion":"1.0","id":"e1","source":"s","type":"book-added","subject":"b1","data":{"title":"Dune","isbn":"0-441-17271-8"}}`
	_, err := DecodeRecord([]byte(value), recordTime)
	var fe *FieldError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != "isbn" {
		t.Fatalf("DecodeRecord = %v; want ErrInvalid, a FieldError on isbn", err)
	}
	if !strings.HasPrefix(err.Error(), "book-added event: isbn: ") {
		t.Errorf("error %q does not name the event type and field", err)
	}
}

func TestDecodeRecordSize(t *testing.T) {
	event := []byte(`{"specversion":"1.0","id":"e1","source":"s","type":"book-removed","subject":"b1"}`)
	pad := func(n int) []byte { return append(slices.Clone(event), bytes.Repeat([]byte(" "), n-len(event))...) }

	if _, err := DecodeRecord(pad(MaxRecordSize), recordTime); err != nil {
		t.Errorf("a record of MaxRecordSize bytes: %v", err)
	}
	if _, err := DecodeRecord(pad(MaxRecordSize+1), recordTime); !errors.Is(err, ErrMalformed) {
		t.Errorf("a record of MaxRecordSize+1 bytes: %v, want ErrMalformed", err)
	}
	big := fmt.Appendf(nil, `{"specversion":"1.0","id":"e1","source":"s","type":"book-added","subject":"b1","data":{"title":%q}}`,
		strings.Repeat("a", MaxRecordSize))
	if _, err := DecodeRecord(big, recordTime); !errors.Is(err, ErrMalformed) {
		t.Errorf("a record of %d bytes: %v, want ErrMalformed", len(big), err)
	}
}

func TestDecodeRecord(t *testing.T) {
	ce := func(attrs string) string {
		return `{"specversion":"1.0","id":"e1","source":"/bookshelf/books"` + attrs + `}`
	}
	tests := []struct {
		name  string
		value string
		want  *Event
		err   error
	}{
		{name: "removed", value: ce(`,"type":"book-removed","subject":"b1","bookseq":3,"time":"2024-03-01T12:00:00Z"`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Seq: 3, Time: t0}},
		{name: "time in another zone", value: ce(`,"type":"book-removed","subject":"b1","time":"2024-03-01T13:00:00+01:00"`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Time: t0}},
		{name: "no time: the record's", value: ce(`,"type":"book-removed","subject":"b1"`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Time: recordTime}},
		{name: "zero time: the record's", value: ce(`,"type":"book-removed","subject":"b1","time":"0001-01-01T00:00:00Z"`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Time: recordTime}},
		{name: "read without read_at: read at its time", value: ce(`,"type":"book-read","subject":"b1","time":"2024-03-01T12:00:00Z","data":{}`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRead, BookID: "b1", Time: t0, ReadAt: t0}},
		{name: "null data", value: ce(`,"type":"book-removed","subject":"b1","data":null`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Time: recordTime}},
		{name: "surrounding space", value: "\n\t " + ce(`,"type":"book-removed","subject":"b1"`) + "\r\n",
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Time: recordTime}},
		{name: "other JSON content type", value: ce(`,"type":"book-removed","subject":"b1","datacontenttype":"application/cloudevents+json"`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Time: recordTime}},
		{name: "byte order mark", value: "\ufeff" + ce(`,"type":"book-removed","subject":"b1"`),
			want: &Event{ID: "e1", Source: EventSource, Type: TypeBookRemoved, BookID: "b1", Time: recordTime}},
		{name: "byte order mark on a line", value: "\ufeffDune",
			want: &Event{Type: TypeBookRead, Title: "Dune", Time: recordTime, ReadAt: recordTime}},
		{name: "text line with surrounding space", value: "  Dune\n",
			want: &Event{Type: TypeBookRead, Title: "Dune", Time: recordTime, ReadAt: recordTime}},
		{name: "unknown type with bad data is still unknown", value: ce(`,"type":"book-rated","subject":"` + strings.Repeat("b", 200) + `"`),
			err: ErrUnknownType},

		{name: "no id", value: `{"specversion":"1.0","source":"s","type":"book-removed","subject":"b1"}`, err: ErrMalformed},
		{name: "no source", value: `{"specversion":"1.0","id":"e1","type":"book-removed","subject":"b1"}`, err: ErrMalformed},
		{name: "no type", value: ce(`,"subject":"b1"`), err: ErrMalformed},
		{name: "XML content", value: ce(`,"type":"book-removed","subject":"b1","datacontenttype":"application/xml"`), err: ErrMalformed},
		{name: "data not an object", value: ce(`,"type":"book-added","subject":"b1","data":"{\"title\":\"Dune\"}"`), err: ErrMalformed},
		{name: "bad time", value: ce(`,"type":"book-removed","subject":"b1","time":"yesterday"`), err: ErrMalformed},
		// A JSON array or string is a mistake, not a title; a number and
		// anything that is not JSON is a line.
		{name: "JSON array", value: `[1,2,3]`, err: ErrMalformed},
		{name: "JSON string", value: `"Dune"`, err: ErrMalformed},
		{name: "a number is a title", value: `1984`, want: &Event{Type: TypeBookRead, Title: "1984", Time: recordTime, ReadAt: recordTime}},
		{name: "bracketed title", value: `[Untitled]`, want: &Event{Type: TypeBookRead, Title: "[Untitled]", Time: recordTime, ReadAt: recordTime}},
		{name: "trailing garbage", value: ce(`,"type":"book-removed","subject":"b1"`) + `}`, err: ErrMalformed},
		{name: "whitespace only", value: " \n\t", err: ErrMalformed},
		{name: "text line too long", value: strings.Repeat("a", MaxTitleLen+1), err: ErrMalformed},
		{name: "envelope with bad created", value: `{"id":"x","name":"book-read","created":"10/05/2016","payload":{"id":"b1"}}`, err: ErrMalformed},
		{name: "envelope with broken payload string", value: `{"id":"x","name":"book-added","payload":"{\"id\": "}`, err: ErrMalformed},
		{name: "envelope of unknown name", value: `{"id":"x","name":"book-rated","payload":{"id":"b1"}}`, err: ErrUnknownType},

		{name: "negative bookseq", value: ce(`,"type":"book-removed","subject":"b1","bookseq":-1`), err: ErrInvalid},
		{name: "added without subject", value: ce(`,"type":"book-added","data":{"title":"Dune"}`), err: ErrInvalid},
		{name: "removed without subject", value: ce(`,"type":"book-removed"`), err: ErrInvalid},
		{name: "read of nothing", value: ce(`,"type":"book-read","data":{}`), err: ErrInvalid},
		{name: "read with a control char in the title", value: ce(`,"type":"book-read","data":{"title":"Du\u0000ne"}`), err: ErrInvalid},
		{name: "added with a blank author", value: ce(`,"type":"book-added","subject":"b1","data":{"title":"Dune","authors":[" "]}`), err: ErrInvalid},
		{name: "added with an absurd year", value: ce(`,"type":"book-added","subject":"b1","data":{"title":"Dune","year":1000000}`), err: ErrInvalid},
		{name: "read_at after year 9999", value: ce(`,"type":"book-read","subject":"b1","data":{"read_at":"9999-12-31T23:30:00-01:00"}`), err: ErrInvalid},
		{name: "envelope read of nothing", value: `{"id":"x","name":"book-read","payload":{}}`, err: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRecord([]byte(tt.value), recordTime)
			checkRecord(t, got, err, tt.want, tt.err)
		})
	}
}

// A plain text line whose record timestamp cannot be written as RFC 3339
// is refused rather than passed on to fail later.
func TestDecodeRecordHostileTimestamp(t *testing.T) {
	if _, err := DecodeRecord([]byte("Dune"), time.UnixMilli(1<<62)); !errors.Is(err, ErrInvalid) {
		t.Errorf("DecodeRecord = %v, want ErrInvalid", err)
	}
}

// DecodeRecordInto starts from a clean event each time: nothing of the
// previous record leaks into the next.
func TestDecodeRecordIntoReuse(t *testing.T) {
	added, err := os.ReadFile(filepath.Join("testdata", "golden", "book-added.json"))
	if err != nil {
		t.Fatal(err)
	}
	removed, err := os.ReadFile(filepath.Join("testdata", "golden", "book-removed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e Event
	if err := DecodeRecordInto(&e, added, recordTime); err != nil {
		t.Fatal(err)
	}
	e.At = LogPos{Partition: 1, Offset: 2}
	if err := DecodeRecordInto(&e, removed, recordTime); err != nil {
		t.Fatal(err)
	}
	want := goldenEvents[2].event
	if d := eventDiff(&e, &want); d != "" {
		t.Error(d)
	}
	if err := DecodeRecordInto(&e, []byte("{"), recordTime); err == nil {
		t.Fatal("broken JSON decoded")
	}
}

// What the aggregate decides, a view reads back unchanged.
func TestDecidedEventsRoundTrip(t *testing.T) {
	s := NewShelf()
	c := addBook("c1", "b1", "Dune", "Frank Herbert")
	c.Book.Year, c.Book.ISBN, c.RequestHash = 1965, "9780441172719", "h1"
	read := markRead("c2", "b1")
	read.ReadAt = hour(5)
	for _, c := range []Command{c, read, markRead("c3", "b1"), removeBook("c4", "b1")} {
		d, err := decide(s, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range d.Events {
			b, err := EncodeEvent(&e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeRecord(b, recordTime)
			if err != nil {
				t.Fatalf("DecodeRecord(%s): %v", b, err)
			}
			if d := eventDiff(&back, &e); d != "" {
				t.Errorf("%s: %s", e.Type, d)
			}
		}
	}
}

func TestCommandRoundTrip(t *testing.T) {
	add := addBook("c1", "b1", "Dune", "Frank Herbert")
	add.Book.Year, add.Book.ISBN, add.RequestHash = 1965, "9780441172719", "h1"
	read := markRead("c2", "b1")
	read.ReadAt = hour(3).In(time.FixedZone("", 3600))
	for _, c := range []Command{add, read, markRead("c3", "b1"), removeBook("c4", "b1")} {
		b, err := EncodeCommand(&c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("DecodeCommand(%s): %v", b, err)
		}
		if d := commandDiff(&got, &c); d != "" {
			t.Errorf("%s: %s", c.Type, d)
		}
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	for _, in := range []string{
		``,
		`{`,
		`null`,
		`[]`,
		`{"type":"mark-read","book_id":"b1"}`,
		`{"id":"` + strings.Repeat("c", MaxIDLen+1) + `","type":"rate-book","book_id":"b1"}`,
		`{"id":"c1","type":"mark-read","book_id":"b1","read_at":"today"}`,
		`{"id":"c1","type":"mark-read","book_id":"b1"}` + strings.Repeat(" ", MaxRecordSize),
	} {
		if c, err := DecodeCommand([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeCommand(%.60q) = %+v, %v; want ErrMalformed", in, c, err)
		}
	}
}

// A command that reads and names itself, but breaks the rules (a type
// this version does not know, during a rolling upgrade), can be answered:
// it is undecidable, with its id, and the answer says why.
func TestDecodeCommandUndecidable(t *testing.T) {
	for in, why := range map[string]string{
		`{"id":"c1","type":"add-book","book_id":"b1"}`:                                       "book: is required",
		`{"id":"c1","type":"add-book","book_id":"b1","book":{"title":""}}`:                   "title: must not be empty",
		`{"id":"c1","type":"rate-book","book_id":"b1"}`:                                      `unknown command type "rate-book"`,
		`{"id":"c1","type":"mark-read"}`:                                                     "book_id",
		`{"id":"c1","type":"mark-read","book_id":"` + strings.Repeat("b", MaxIDLen+1) + `"}`: "book_id",
	} {
		c, err := DecodeCommand([]byte(in))
		if !errors.Is(err, ErrUndecidable) || c.ID != "c1" || !strings.Contains(err.Error(), why) {
			t.Errorf("DecodeCommand(%.60q) = %+v, %v; want ErrUndecidable for c1 naming %q", in, c, err, why)
			continue
		}
		o := Rejection(c.ID, err)
		if o.Error != "undecidable" || !errors.Is(o.Err(), ErrUndecidable) {
			t.Errorf("Rejection of %.60q = %+v; want an undecidable rejection", in, o)
		}
	}
}

// commandDiff names the fields in which two commands differ, or returns "".
func commandDiff(got, want *Command) string {
	var d []string
	if got.ID != want.ID || got.Type != want.Type || got.BookID != want.BookID || got.RequestHash != want.RequestHash {
		d = append(d, fmt.Sprintf("ids %q %q %q %q, want %q %q %q %q", got.ID, got.Type, got.BookID, got.RequestHash,
			want.ID, want.Type, want.BookID, want.RequestHash))
	}
	if !got.ReadAt.Equal(want.ReadAt) {
		d = append(d, fmt.Sprintf("ReadAt %v, want %v", got.ReadAt, want.ReadAt))
	}
	if !got.IssuedAt.Equal(want.IssuedAt) {
		d = append(d, fmt.Sprintf("IssuedAt %v, want %v", got.IssuedAt, want.IssuedAt))
	}
	switch {
	case (got.Book == nil) != (want.Book == nil):
		d = append(d, fmt.Sprintf("Book %+v, want %+v", got.Book, want.Book))
	case got.Book != nil && (!sameBook(*got.Book, *want.Book) || (got.Book.Authors == nil) != (want.Book.Authors == nil)):
		d = append(d, fmt.Sprintf("Book %+v, want %+v", *got.Book, *want.Book))
	}
	return strings.Join(d, "; ")
}

// The fast path reads what EncodeEvent writes; were it to give up on it,
// decoding would still be right, only slow, and no other test would say.
func TestScanTakesWhatEncodeEventWrites(t *testing.T) {
	records := newStream(4).records(t, 200)
	for _, g := range goldenEvents {
		b, err := EncodeEvent(&g.event)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, b)
	}
	for _, r := range records {
		var w ceWire
		if !w.scan(r) {
			t.Errorf("scan gave up on %s", r)
		}
	}
}

// What the fast path gives up on, encoding/json reads as before.
func TestScanGivesUp(t *testing.T) {
	for _, tt := range []struct{ value, title string }{
		{`{"specversion":"1.0","id":"e","source":"s","type":"book-read","subject":"b","data":{"title":"Pride \u0026 Prejudice"}}`, "Pride & Prejudice"},
		{`{"specversion":"1.0","id":"e","source":"s","type":"book-read","subject":"b","data":{"title":"Say \"yes\""}}`, `Say "yes"`},
		{`{"SpecVersion":"1.0","ID":"e","Source":"s","Type":"book-read","Subject":"b","Data":{"Title":"Dune"}}`, "Dune"},
		{`{"specversion":"1.0","id":"e","source":"s","type":"book-read","subject":"b","traceparent":"00-ab-cd-01","data":{"title":"Dune"}}`, "Dune"},
		{`{"specversion":"1.0","id":"e","source":"s","type":"book-read","subject":"b","data":{"title":"Dune"},"data":{"isbn":""}}`, "Dune"},
		{`{"specversion":"1.0","id":"e","source":"s","type":"book-read","subject":"b","time":null,"data":{"title":"Dune"}}`, "Dune"},
	} {
		var w ceWire
		if w.scan([]byte(tt.value)) {
			t.Errorf("scan read %s", tt.value)
		}
		e, err := DecodeRecord([]byte(tt.value), recordTime)
		if err != nil || e.Title != tt.title {
			t.Errorf("DecodeRecord(%s) = title %q, %v; want %q", tt.value, e.Title, err, tt.title)
		}
	}
}

// A consumer reuses its record buffers: the event must not point into one.
func TestDecodeRecordCopies(t *testing.T) {
	for _, g := range goldenEvents {
		b, err := EncodeEvent(&g.event)
		if err != nil {
			t.Fatal(err)
		}
		var e Event
		if err := DecodeRecordInto(&e, b, recordTime); err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 'x'
		}
		if d := eventDiff(&e, &g.event); d != "" {
			t.Errorf("%s after the buffer was overwritten: %s", g.file, d)
		}
	}
}
