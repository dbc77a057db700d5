package shelf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a book may hold. They keep one record small and a view's
// memory bounded per book.
const (
	MaxTitleLen   = 512
	MaxAuthorLen  = 256
	MaxAuthors    = 32
	MinYear       = -3000
	maxYearAhead  = 1 // a book may be announced for next year
	MaxISBNLength = 17
)

// Book is what the shelf knows of one book.
type Book struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Authors []string `json:"authors"`
	Year    int      `json:"year,omitempty"`
	ISBN    string   `json:"isbn,omitempty"`
}

// BookDraft is a book as a user describes it, before it has an id. Pointer
// and nil fields tell "absent" from "empty", which the rules need: an
// absent author list is fine, an empty one is not.
type BookDraft struct {
	Title   *string  `json:"title"`
	Authors []string `json:"authors"`
	// AuthorsGiven is true when the request named the field at all.
	AuthorsGiven bool    `json:"-"`
	Year         *int    `json:"year"`
	ISBN         *string `json:"isbn"`
}

// Validate checks the draft against the rules of the domain and returns the
// book it describes, normalised (trimmed title and names, ISBN digits only).
// The error is a *FieldError naming the first wrong field.
func (d BookDraft) Validate(id string, now time.Time) (Book, error) {
	b := Book{ID: id}
	if d.Title == nil {
		return Book{}, invalid("title", "is required")
	}
	title, err := cleanText("title", *d.Title, MaxTitleLen)
	if err != nil {
		return Book{}, err
	}
	b.Title = title
	if d.AuthorsGiven || d.Authors != nil {
		if len(d.Authors) == 0 {
			return Book{}, invalid("authors", "must name at least one author when given")
		}
		if len(d.Authors) > MaxAuthors {
			return Book{}, invalid("authors", "at most %d authors", MaxAuthors)
		}
		b.Authors = make([]string, 0, len(d.Authors))
		for _, a := range d.Authors {
			name, err := cleanText("authors", a, MaxAuthorLen)
			if err != nil {
				return Book{}, err
			}
			b.Authors = append(b.Authors, name)
		}
	}
	if d.Year != nil {
		if err := checkYear(*d.Year, now); err != nil {
			return Book{}, err
		}
		b.Year = *d.Year
	}
	if d.ISBN != nil && strings.TrimSpace(*d.ISBN) != "" {
		isbn, err := NormalizeISBN(*d.ISBN)
		if err != nil {
			return Book{}, err
		}
		b.ISBN = isbn
	}
	return b, nil
}

// check validates a book read back from an event: the same rules as a
// draft, without the clock (a year far ahead in an old event is still data).
func (b Book) check() error {
	if _, err := cleanText("title", b.Title, MaxTitleLen); err != nil {
		return err
	}
	if len(b.Authors) > MaxAuthors {
		return invalid("authors", "at most %d authors", MaxAuthors)
	}
	for _, a := range b.Authors {
		if _, err := cleanText("authors", a, MaxAuthorLen); err != nil {
			return err
		}
	}
	if b.Year != 0 && (b.Year < MinYear || b.Year > 100000) {
		return invalid("year", "%d is not a plausible year", b.Year)
	}
	if b.ISBN != "" {
		if _, err := NormalizeISBN(b.ISBN); err != nil {
			return err
		}
	}
	return nil
}

func checkYear(y int, now time.Time) error {
	if y == 0 || y < MinYear || y > now.Year()+maxYearAhead {
		return invalid("year", "%d is not a plausible year (between %d and %d, not 0)", y, MinYear, now.Year()+maxYearAhead)
	}
	return nil
}

// cleanText trims s and checks it is valid UTF-8, not empty, at most max
// characters and free of control characters.
func cleanText(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalid(field, "is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", invalid(field, "must not be empty")
	}
	if n > max {
		return "", invalid(field, "is %d characters long, at most %d allowed", n, max)
	}
	for _, r := range s {
		// C0, DEL and C1: none belongs in a title or a name, and some
		// (NEL, ESC) would corrupt a log line or a terminal.
		if unicode.IsControl(r) {
			return "", invalid(field, "must not contain control characters")
		}
	}
	return s, nil
}

// NormalizeISBN strips hyphens and spaces and checks the ISBN-10 or ISBN-13
// check digit.
func NormalizeISBN(s string) (string, error) {
	if len(s) > MaxISBNLength+8 {
		return "", invalid("isbn", "is too long")
	}
	digits := make([]byte, 0, 13)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case (c == 'X' || c == 'x') && len(digits) == 9:
			digits = append(digits, 'X')
		default:
			return "", invalid("isbn", "may hold only digits, hyphens and a final X")
		}
	}
	switch len(digits) {
	case 10:
		sum := 0
		for i, c := range digits {
			v := int(c - '0')
			if c == 'X' {
				v = 10
			}
			sum += (10 - i) * v
		}
		if sum%11 != 0 {
			return "", invalid("isbn", "ISBN-10 check digit does not match")
		}
	case 13:
		// The loop lets an X in only as a tenth character, which an
		// ISBN-13 may not have anywhere.
		if bytes.IndexByte(digits, 'X') >= 0 {
			return "", invalid("isbn", "ISBN-13 has no X")
		}
		sum := 0
		for i, c := range digits {
			w := 1
			if i%2 == 1 {
				w = 3
			}
			sum += w * int(c-'0')
		}
		if sum%10 != 0 {
			return "", invalid("isbn", "ISBN-13 check digit does not match")
		}
	default:
		return "", invalid("isbn", "must have 10 or 13 digits, has %d", len(digits))
	}
	return string(digits), nil
}

// TitleKey is how views match a title-only read (a plain text line) to a
// book: case and surrounding space do not matter.
func TitleKey(title string) string { return strings.ToLower(strings.TrimSpace(title)) }

// TitleBookID is the id views give a book known only by the title of a
// plain text read: stable, so the same title always lands on the same entry.
func TitleBookID(title string) string {
	sum := sha256.Sum256([]byte(TitleKey(title)))
	return "title-" + hex.EncodeToString(sum[:8])
}
