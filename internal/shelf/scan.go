package shelf

import "time"

// A fast path for decoding the records this package writes.
//
// A view catching up reads the whole log, so decoding is its hot path, and
// encoding/json spends most of it on a validation pass, reflection and
// allocations. scan reads the shape EncodeEvent writes (lower-case keys
// from a fixed set, each at most once; strings without escapes; integers;
// a list of names) straight into a ceWire. It gives up, rather than fail,
// at anything else, and the caller then hands the record to
// encoding/json, which reads it (or reports what is wrong) as before. So
// for every record scan accepts, encoding/json would have produced the
// same ceWire without error; FuzzScanWire holds it to that.

// jsonScanner walks one JSON text. ok turns false at the first thing it
// does not handle, and stays false.
type jsonScanner struct {
	b  []byte
	i  int
	ok bool
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and consumes one byte, which it returns (0 at the
// end).
func (s *jsonScanner) next() byte {
	s.space()
	if s.i >= len(s.b) {
		s.ok = false
		return 0
	}
	c := s.b[s.i]
	s.i++
	return c
}

// peek skips white space and returns the next byte without consuming it.
func (s *jsonScanner) peek() byte {
	s.space()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) expect(c byte) {
	if s.next() != c {
		s.ok = false
	}
}

// str reads a string without escapes or control characters and returns
// its bytes, which alias the input. The input is valid UTF-8 (the caller
// checked), so they are the string encoding/json would give.
func (s *jsonScanner) str() []byte {
	if !s.ok || s.next() != '"' {
		s.ok = false
		return nil
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1]
		case c == '\\' || c < 0x20:
			s.ok = false
			return nil
		}
	}
	s.ok = false
	return nil
}

// int reads an integer in JSON's grammar, -?(0|[1-9][0-9]*), that fits an
// int64. A fraction or an exponent stops the scan: encoding/json refuses
// them for an integer field, with its own error.
func (s *jsonScanner) int() int64 {
	s.space()
	if !s.ok {
		return 0
	}
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var n uint64
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		d := uint64(s.b[s.i] - '0')
		if n > (1<<64-1-d)/10 {
			s.ok = false
			return 0
		}
		n = n*10 + d
	}
	digits := s.i - start
	switch {
	case digits == 0, digits > 1 && s.b[start] == '0':
		s.ok = false
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		s.ok = false
	case neg && n > 1<<63:
		s.ok = false
	case neg:
		return -int64(n)
	case n > 1<<63-1:
		s.ok = false
	default:
		return int64(n)
	}
	return 0
}

// object reads the members of an object, calling member for each key
// after the colon. member reads the value; it returns false for a key it
// does not know.
func (s *jsonScanner) object(member func(key []byte) bool) {
	s.expect('{')
	if s.peek() == '}' {
		s.i++
		return
	}
	for s.ok {
		key := s.str()
		s.expect(':')
		if !s.ok || !member(key) {
			s.ok = false
			return
		}
		switch s.next() {
		case ',':
		case '}':
			return
		default:
			s.ok = false
		}
	}
}

// time reads an RFC 3339 string as encoding/json does for a time.Time.
func (s *jsonScanner) time(t *time.Time) {
	raw := s.str()
	if s.ok && t.UnmarshalText(raw) != nil {
		s.ok = false
	}
}

// scan reads b into w, which must be zero, and reports whether it could.
// On false, w holds a partial result to be thrown away.
func (w *ceWire) scan(b []byte) bool {
	s := jsonScanner{b: b, ok: true}
	var seen uint16
	once := func(bit uint16) bool {
		dup := seen&bit != 0
		seen |= bit
		return !dup
	}
	s.object(func(key []byte) bool {
		switch string(key) {
		case "specversion":
			w.SpecVersion = intern(s.str())
			return once(1 << 0)
		case "id":
			w.ID = string(s.str())
			return once(1 << 1)
		case "source":
			w.Source = intern(s.str())
			return once(1 << 2)
		case "type":
			w.Type = intern(s.str())
			return once(1 << 3)
		case "subject":
			w.Subject = string(s.str())
			return once(1 << 4)
		case "time":
			s.time(&w.Time)
			return once(1 << 5)
		case "datacontenttype":
			w.DataContentType = intern(s.str())
			return once(1 << 6)
		case "bookseq":
			w.BookSeq = s.int()
			return once(1 << 7)
		case "commandid":
			w.CommandID = string(s.str())
			return once(1 << 8)
		case "requesthash":
			w.RequestHash = string(s.str())
			return once(1 << 9)
		case "data":
			w.Data.scan(&s)
			return once(1 << 10)
		}
		return false
	})
	if !s.ok {
		return false
	}
	s.space()
	return s.i == len(s.b)
}

func (d *ceData) scan(s *jsonScanner) {
	var seen uint8
	once := func(bit uint8) bool {
		dup := seen&bit != 0
		seen |= bit
		return !dup
	}
	s.object(func(key []byte) bool {
		switch string(key) {
		case "title":
			d.Title = string(s.str())
			return once(1 << 0)
		case "authors":
			d.Authors = s.names()
			return once(1 << 1)
		case "year":
			n := s.int()
			d.Year = int(n)
			return once(1<<2) && int64(d.Year) == n
		case "isbn":
			d.ISBN = string(s.str())
			return once(1 << 3)
		case "read_at":
			s.time(&d.ReadAt)
			return once(1 << 4)
		}
		return false
	})
}

// names reads a list of strings. An empty list is an empty slice, not
// nil, as encoding/json makes it.
func (s *jsonScanner) names() []string {
	s.expect('[')
	if s.peek() == ']' {
		s.i++
		return make([]string, 0)
	}
	var out []string
	for s.ok {
		out = append(out, string(s.str()))
		switch s.next() {
		case ',':
		case ']':
			return out
		default:
			s.ok = false
		}
	}
	return nil
}

// intern returns the constant for the values every event repeats, so that
// decoding them allocates nothing.
func intern(b []byte) string {
	switch string(b) {
	case SpecVersion:
		return SpecVersion
	case TypeBookAdded:
		return TypeBookAdded
	case TypeBookRead:
		return TypeBookRead
	case TypeBookRemoved:
		return TypeBookRemoved
	case EventSource:
		return EventSource
	case contentTypeJSON:
		return contentTypeJSON
	}
	return string(b)
}
