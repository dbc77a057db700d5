package shelf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxRecordSize is the largest record a reader accepts; anything bigger is
// dead-lettered. Commands and events the services write are far smaller.
const MaxRecordSize = 64 << 10

var utf8BOM = []byte("\ufeff")

// SpecVersion is the CloudEvents version of every event written.
const SpecVersion = "1.0"

// ceWire is a CloudEvents 1.0 structured-mode event, with the bookshelf's
// extension attributes. Decoding reads it in one pass: Data is a typed
// struct, not raw JSON decoded a second time.
//
// The same struct carries the fields of the original Python envelope
// ({"id","name","created","payload"}), so a record is decoded once whatever
// its shape.
//
// Times and data are values, not pointers: a zero time is as good as none
// (the record's timestamp stands in), and decoding allocates less.
type ceWire struct {
	SpecVersion     string    `json:"specversion,omitempty"`
	ID              string    `json:"id"`
	Source          string    `json:"source,omitempty"`
	Type            string    `json:"type,omitempty"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time,omitzero"`
	DataContentType string    `json:"datacontenttype,omitempty"`
	BookSeq         int64     `json:"bookseq,omitempty"`
	CommandID       string    `json:"commandid,omitempty"`
	RequestHash     string    `json:"requesthash,omitempty"`
	Data            ceData    `json:"data"`

	// The Python envelope.
	Name    string          `json:"name,omitempty"`
	Created string          `json:"created,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type ceData struct {
	Title   string    `json:"title,omitempty"`
	Authors []string  `json:"authors,omitempty"`
	Year    int       `json:"year,omitempty"`
	ISBN    string    `json:"isbn,omitempty"`
	ReadAt  time.Time `json:"read_at,omitzero"`
}

const contentTypeJSON = "application/json"

// EncodeEvent writes e as a CloudEvents 1.0 JSON structured-mode event.
func EncodeEvent(e *Event) ([]byte, error) {
	w := ceWire{
		SpecVersion:     SpecVersion,
		ID:              e.ID,
		Source:          e.Source,
		Type:            e.Type,
		Subject:         e.BookID,
		Time:            e.Time.UTC(),
		DataContentType: contentTypeJSON,
		BookSeq:         e.Seq,
		CommandID:       e.CommandID,
		RequestHash:     e.RequestHash,
	}
	switch e.Type {
	case TypeBookAdded:
		w.Data = ceData{Title: e.Title, Authors: e.Authors, Year: e.Year, ISBN: e.ISBN}
	case TypeBookRead:
		w.Data = ceData{Title: e.Title, ReadAt: e.ReadAt.UTC()}
	}
	return json.Marshal(&w)
}

// DecodeRecord reads one record of the event log, as a tolerant reader:
// a CloudEvent, the original Python envelope, or a plain text line (a book
// with that title was read, at ts, the record's timestamp).
//
// The error wraps ErrUnknownType for a well-formed event of a type this
// version does not know (skip it), and ErrMalformed or ErrInvalid for
// anything else (dead-letter it).
func DecodeRecord(value []byte, ts time.Time) (Event, error) {
	var e Event
	err := DecodeRecordInto(&e, value, ts)
	return e, err
}

// DecodeRecordInto is DecodeRecord into a caller's Event, so a consumer loop
// can reuse one.
func DecodeRecordInto(e *Event, value []byte, ts time.Time) error {
	*e = Event{}
	if len(value) > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(value), MaxRecordSize)
	}
	if !utf8.Valid(value) {
		return fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	// A byte order mark says nothing, and left in place it would make a
	// JSON object a text line.
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(value, utf8BOM))
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: empty record", ErrMalformed)
	}
	if trimmed[0] != '{' {
		// A JSON array or string is a writer's mistake, not a title; a
		// number is left to be a title ("1984").
		if (trimmed[0] == '[' || trimmed[0] == '"') && json.Valid(trimmed) {
			return fmt.Errorf("%w: a JSON value that is not an object", ErrMalformed)
		}
		return decodeLine(e, string(trimmed), ts)
	}
	var w ceWire
	if !w.scan(trimmed) {
		return decodeObject(e, trimmed, ts)
	}
	return decodeWire(e, &w, ts)
}

// decodeObject reads with encoding/json what scan gave up on. It has its
// own ceWire, so that the one of the fast path can stay on the stack.
func decodeObject(e *Event, b []byte, ts time.Time) error {
	w := new(ceWire)
	if err := json.Unmarshal(b, w); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return decodeWire(e, w, ts)
}

func decodeWire(e *Event, w *ceWire, ts time.Time) error {
	switch {
	case w.SpecVersion != "":
		return decodeCloudEvent(e, w, ts)
	case w.Name != "":
		return decodeEnvelope(e, w, ts)
	}
	return fmt.Errorf("%w: a JSON object that is neither a CloudEvent (specversion) nor an envelope (name)", ErrMalformed)
}

func decodeLine(e *Event, line string, ts time.Time) error {
	title, err := cleanText("title", line, MaxTitleLen)
	if err != nil {
		return fmt.Errorf("%w: text line: %v", ErrMalformed, err)
	}
	e.Type, e.Title, e.ReadAt, e.Time = TypeBookRead, title, ts.UTC(), ts.UTC()
	return checked(e)
}

func decodeCloudEvent(e *Event, w *ceWire, ts time.Time) error {
	if w.SpecVersion != SpecVersion {
		return fmt.Errorf("%w: specversion %q, want %q", ErrMalformed, w.SpecVersion, SpecVersion)
	}
	if w.ID == "" || w.Source == "" || w.Type == "" {
		return fmt.Errorf("%w: a CloudEvent needs id, source and type", ErrMalformed)
	}
	if w.DataContentType != "" && !strings.Contains(w.DataContentType, "json") {
		return fmt.Errorf("%w: datacontenttype %q is not JSON", ErrMalformed, w.DataContentType)
	}
	e.ID, e.Source, e.Type, e.BookID = w.ID, w.Source, w.Type, w.Subject
	e.Seq, e.CommandID, e.RequestHash = w.BookSeq, w.CommandID, w.RequestHash
	e.Time = ts.UTC()
	if !w.Time.IsZero() { // an explicit zero time says no more than none
		e.Time = w.Time.UTC()
	}
	if w.BookSeq < 0 {
		return fmt.Errorf("%w: bookseq: negative", ErrInvalid)
	}
	d := &w.Data
	e.Title, e.Authors, e.Year, e.ISBN = d.Title, d.Authors, d.Year, d.ISBN
	if !d.ReadAt.IsZero() {
		e.ReadAt = d.ReadAt.UTC()
	}
	if e.Type == TypeBookRead && e.ReadAt.IsZero() {
		e.ReadAt = e.Time
	}
	return checked(e)
}

func checked(e *Event) error {
	err := e.check()
	if err == nil {
		err = checkTimes(e)
	}
	if err != nil {
		if err == ErrUnknownType {
			return fmt.Errorf("%w: %q", ErrUnknownType, e.Type)
		}
		return fmt.Errorf("%s event: %w", e.Type, err)
	}
	return nil
}

// checkTimes refuses times that cannot be written back: RFC 3339 holds the
// years 0 to 9999, and a zone offset (or a hostile record timestamp) can
// put a parsed time outside them once in UTC.
func checkTimes(e *Event) error {
	for _, f := range [...]struct {
		name string
		t    time.Time
	}{{"time", e.Time}, {"read_at", e.ReadAt}} {
		if y := f.t.Year(); y < 0 || y > 9999 {
			return invalid(f.name, "year %d is outside 0 to 9999", y)
		}
	}
	return nil
}

// envelopeTimeLayouts are the shapes of "created" in the Python envelope:
// Python's isoformat() without a zone, read as UTC.
var envelopeTimeLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	time.RFC3339Nano,
}

// envelopePayload is the payload of the Python envelope. Authors may be one
// string or a list.
type envelopePayload struct {
	ID      string          `json:"id"`
	BookID  string          `json:"book_id"`
	Title   string          `json:"title"`
	Authors json.RawMessage `json:"authors"`
	Author  string          `json:"author"`
	Year    int             `json:"year"`
	ISBN    string          `json:"isbn"`
	ReadAt  string          `json:"read_at"`
}

func decodeEnvelope(e *Event, w *ceWire, ts time.Time) error {
	e.ID, e.Source = w.ID, "python-envelope"
	e.Type = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(w.Name)), "_", "-")
	e.Time = ts.UTC()
	if w.Created != "" {
		t, err := parseEnvelopeTime(w.Created)
		if err != nil {
			return fmt.Errorf("%w: created: %v", ErrMalformed, err)
		}
		e.Time = t
	}
	var p envelopePayload
	if len(w.Payload) > 0 {
		raw := []byte(w.Payload)
		// The original wrote the payload of book-added as a JSON string
		// holding JSON; accept that and a plain object alike.
		if raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("%w: payload: %v", ErrMalformed, err)
			}
			raw = []byte(s)
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("%w: payload: %v", ErrMalformed, err)
		}
	}
	e.BookID = p.BookID
	if e.BookID == "" {
		e.BookID = p.ID
	}
	e.Title, e.Year, e.ISBN = strings.TrimSpace(p.Title), p.Year, p.ISBN
	authors, err := envelopeAuthors(p.Authors, p.Author)
	if err != nil {
		return err
	}
	e.Authors = authors
	switch e.Type {
	case TypeBookAdded:
		if e.BookID == "" && e.Title != "" {
			e.BookID = TitleBookID(e.Title)
		}
	case TypeBookRead:
		e.ReadAt = e.Time
		if p.ReadAt != "" {
			t, err := parseEnvelopeTime(p.ReadAt)
			if err != nil {
				return fmt.Errorf("%w: payload read_at: %v", ErrMalformed, err)
			}
			e.ReadAt = t
		}
	}
	return checked(e)
}

func envelopeAuthors(raw json.RawMessage, one string) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if one != "" {
			return []string{one}, nil
		}
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: payload authors: %v", ErrMalformed, err)
		}
		var out []string
		for a := range strings.SplitSeq(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
		return out, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: payload authors: %v", ErrMalformed, err)
	}
	return list, nil
}

func parseEnvelopeTime(s string) (time.Time, error) {
	var err error
	for _, layout := range envelopeTimeLayouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// EncodeCommand writes a command for the commands topic.
func EncodeCommand(c *Command) ([]byte, error) { return json.Marshal(c) }

// DecodeCommand reads a command from the commands topic and checks it.
// A command that reads but breaks the rules is returned with an error
// wrapping ErrUndecidable when its id is usable (the caller can answer
// it), else ErrMalformed.
func DecodeCommand(value []byte) (Command, error) {
	var c Command
	if len(value) > MaxRecordSize {
		return c, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(value), MaxRecordSize)
	}
	if err := json.Unmarshal(value, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := c.check(); err != nil {
		if c.ID != "" && len(c.ID) <= MaxIDLen {
			// It can be answered: say why it is not decided.
			return c, fmt.Errorf("%w: %v", ErrUndecidable, err)
		}
		return c, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c, nil
}

// EncodeOutcome writes an outcome for the replies topic.
func EncodeOutcome(o *Outcome) ([]byte, error) { return json.Marshal(o) }

// DecodeOutcome reads an outcome from the replies topic.
func DecodeOutcome(value []byte) (Outcome, error) {
	var o Outcome
	if err := json.Unmarshal(value, &o); err != nil {
		return o, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if o.CommandID == "" {
		return o, fmt.Errorf("%w: outcome without command_id", ErrMalformed)
	}
	return o, nil
}
