package shelf

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is the clock of the validation tests: the year matters, the rest
// does not.
var now = time.Date(2024, time.June, 1, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func TestBookDraftValidate(t *testing.T) {
	duneTitle := ptr("Dune")
	tests := []struct {
		name  string
		draft BookDraft
		want  Book   // when field is empty
		field string // the FieldError's field, when the draft is refused
	}{
		{name: "title only", draft: BookDraft{Title: duneTitle},
			want: Book{ID: "b1", Title: "Dune"}},
		{name: "everything", draft: BookDraft{Title: ptr("  Dune "), Authors: []string{" Frank Herbert "}, AuthorsGiven: true, Year: ptr(1965), ISBN: ptr("978-0-441-17271-9")},
			want: Book{ID: "b1", Title: "Dune", Authors: []string{"Frank Herbert"}, Year: 1965, ISBN: "9780441172719"}},

		// Title.
		{name: "no title", draft: BookDraft{}, field: "title"},
		{name: "empty title", draft: BookDraft{Title: ptr("")}, field: "title"},
		{name: "blank title", draft: BookDraft{Title: ptr("   ")}, field: "title"},
		{name: "whitespace-only title", draft: BookDraft{Title: ptr("\t\n\u00a0\u3000")}, field: "title"},
		{name: "NUL in title", draft: BookDraft{Title: ptr("Du\x00ne")}, field: "title"},
		{name: "ESC in title", draft: BookDraft{Title: ptr("Du\x1b[2Jne")}, field: "title"},
		{name: "newline inside title", draft: BookDraft{Title: ptr("Du\nne")}, field: "title"},
		{name: "DEL in title", draft: BookDraft{Title: ptr("Du\x7fne")}, field: "title"},
		{name: "C1 control in title", draft: BookDraft{Title: ptr("Du\u0085ne")}, field: "title"},
		{name: "bad UTF-8 title", draft: BookDraft{Title: ptr("Du\xffne")}, field: "title"},
		{name: "title of 512 runes", draft: BookDraft{Title: ptr(strings.Repeat("é", 512))},
			want: Book{ID: "b1", Title: strings.Repeat("é", 512)}},
		{name: "title of 512 three-byte runes", draft: BookDraft{Title: ptr(strings.Repeat("書", 512))},
			want: Book{ID: "b1", Title: strings.Repeat("書", 512)}},
		{name: "title of 513 runes", draft: BookDraft{Title: ptr(strings.Repeat("é", 513))}, field: "title"},
		{name: "long title trimmed to 512", draft: BookDraft{Title: ptr("  " + strings.Repeat("a", 512) + "  ")},
			want: Book{ID: "b1", Title: strings.Repeat("a", 512)}},
		{name: "title of one rune", draft: BookDraft{Title: ptr("V")},
			want: Book{ID: "b1", Title: "V"}},

		// Authors.
		{name: "authors absent", draft: BookDraft{Title: duneTitle, Authors: nil},
			want: Book{ID: "b1", Title: "Dune"}},
		{name: "authors given as null", draft: BookDraft{Title: duneTitle, AuthorsGiven: true}, field: "authors"},
		{name: "authors given empty", draft: BookDraft{Title: duneTitle, Authors: []string{}}, field: "authors"},
		{name: "empty author", draft: BookDraft{Title: duneTitle, Authors: []string{"Frank Herbert", ""}, AuthorsGiven: true}, field: "authors"},
		{name: "blank author", draft: BookDraft{Title: duneTitle, Authors: []string{"  "}, AuthorsGiven: true}, field: "authors"},
		{name: "control char in author", draft: BookDraft{Title: duneTitle, Authors: []string{"Frank\x00Herbert"}, AuthorsGiven: true}, field: "authors"},
		{name: "author too long", draft: BookDraft{Title: duneTitle, Authors: []string{strings.Repeat("a", MaxAuthorLen+1)}, AuthorsGiven: true}, field: "authors"},
		{name: "too many authors", draft: BookDraft{Title: duneTitle, Authors: slices.Repeat([]string{"A"}, MaxAuthors+1), AuthorsGiven: true}, field: "authors"},
		{name: "most authors", draft: BookDraft{Title: duneTitle, Authors: slices.Repeat([]string{"A"}, MaxAuthors), AuthorsGiven: true},
			want: Book{ID: "b1", Title: "Dune", Authors: slices.Repeat([]string{"A"}, MaxAuthors)}},
		{name: "two authors", draft: BookDraft{Title: ptr("Good Omens"), Authors: []string{"Terry Pratchett", "Neil Gaiman"}, AuthorsGiven: true},
			want: Book{ID: "b1", Title: "Good Omens", Authors: []string{"Terry Pratchett", "Neil Gaiman"}}},

		// Year.
		{name: "year 0", draft: BookDraft{Title: duneTitle, Year: ptr(0)}, field: "year"},
		{name: "year below MinYear", draft: BookDraft{Title: duneTitle, Year: ptr(MinYear - 1)}, field: "year"},
		{name: "year MinYear", draft: BookDraft{Title: duneTitle, Year: ptr(MinYear)},
			want: Book{ID: "b1", Title: "Dune", Year: MinYear}},
		{name: "year BC", draft: BookDraft{Title: ptr("Odyssey"), Year: ptr(-700)},
			want: Book{ID: "b1", Title: "Odyssey", Year: -700}},
		{name: "year this year", draft: BookDraft{Title: duneTitle, Year: ptr(2024)},
			want: Book{ID: "b1", Title: "Dune", Year: 2024}},
		{name: "year next year", draft: BookDraft{Title: duneTitle, Year: ptr(2025)},
			want: Book{ID: "b1", Title: "Dune", Year: 2025}},
		{name: "year in two years", draft: BookDraft{Title: duneTitle, Year: ptr(2026)}, field: "year"},

		// ISBN.
		{name: "ISBN-10", draft: BookDraft{Title: duneTitle, ISBN: ptr("0441172717")},
			want: Book{ID: "b1", Title: "Dune", ISBN: "0441172717"}},
		{name: "ISBN-10 hyphens", draft: BookDraft{Title: duneTitle, ISBN: ptr("0-441-17271-7")},
			want: Book{ID: "b1", Title: "Dune", ISBN: "0441172717"}},
		{name: "ISBN-10 spaces", draft: BookDraft{Title: duneTitle, ISBN: ptr("0 441 17271 7")},
			want: Book{ID: "b1", Title: "Dune", ISBN: "0441172717"}},
		{name: "ISBN-10 with X", draft: BookDraft{Title: duneTitle, ISBN: ptr("0-8044-2957-X")},
			want: Book{ID: "b1", Title: "Dune", ISBN: "080442957X"}},
		{name: "ISBN-10 with x", draft: BookDraft{Title: duneTitle, ISBN: ptr("080442957x")},
			want: Book{ID: "b1", Title: "Dune", ISBN: "080442957X"}},
		{name: "ISBN-10 bad check digit", draft: BookDraft{Title: duneTitle, ISBN: ptr("0-441-17271-8")}, field: "isbn"},
		{name: "ISBN-10 X not last", draft: BookDraft{Title: duneTitle, ISBN: ptr("04411X2717")}, field: "isbn"},
		{name: "ISBN-13", draft: BookDraft{Title: duneTitle, ISBN: ptr("9780441172719")},
			want: Book{ID: "b1", Title: "Dune", ISBN: "9780441172719"}},
		{name: "ISBN-13 hyphens", draft: BookDraft{Title: duneTitle, ISBN: ptr("978-0-441-17271-9")},
			want: Book{ID: "b1", Title: "Dune", ISBN: "9780441172719"}},
		{name: "ISBN-13 bad check digit", draft: BookDraft{Title: duneTitle, ISBN: ptr("978-0-441-17271-8")}, field: "isbn"},
		{name: "ISBN-13 ending in X", draft: BookDraft{Title: duneTitle, ISBN: ptr("978044117271X")}, field: "isbn"},
		// An X weighs 40 in the ISBN-13 sum, which here comes out right:
		// only the rule that an ISBN-13 has no X refuses it.
		{name: "ISBN-13 with X inside", draft: BookDraft{Title: duneTitle, ISBN: ptr("978000000X002")}, field: "isbn"},
		{name: "ISBN with letters", draft: BookDraft{Title: duneTitle, ISBN: ptr("ISBN 0441172717")}, field: "isbn"},
		{name: "ISBN of 12 digits", draft: BookDraft{Title: duneTitle, ISBN: ptr("978044117271")}, field: "isbn"},
		{name: "ISBN of hyphens", draft: BookDraft{Title: duneTitle, ISBN: ptr("----")}, field: "isbn"},
		{name: "ISBN far too long", draft: BookDraft{Title: duneTitle, ISBN: ptr(strings.Repeat("-", 100) + "0441172717")}, field: "isbn"},
		{name: "ISBN blank is absent", draft: BookDraft{Title: duneTitle, ISBN: ptr("  ")},
			want: Book{ID: "b1", Title: "Dune"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.draft.Validate("b1", now)
			if tt.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("Validate = %+v, %v; want a FieldError on %q", got, err, tt.field)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
				}
				if got.ID != "" || got.Title != "" {
					t.Errorf("Validate returned a book with its error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !sameBook(got, tt.want) {
				t.Errorf("Validate = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func sameBook(a, b Book) bool {
	return a.ID == b.ID && a.Title == b.Title && slices.Equal(a.Authors, b.Authors) && a.Year == b.Year && a.ISBN == b.ISBN
}

// The year rule follows the clock it is given, not the machine's.
func TestBookDraftValidateYearFollowsNow(t *testing.T) {
	d := BookDraft{Title: ptr("Dune"), Year: ptr(2031)}
	if _, err := d.Validate("b1", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("2031 in 2030: %v", err)
	}
	if _, err := d.Validate("b1", time.Date(2029, 12, 31, 23, 59, 0, 0, time.UTC)); err == nil {
		t.Error("2031 in 2029: accepted")
	}
}

func TestTitleKeyAndTitleBookID(t *testing.T) {
	if a, b := TitleBookID("Dune"), TitleBookID("  dUNE "); a != b {
		t.Errorf("TitleBookID differs by case and space: %q, %q", a, b)
	}
	if a, b := TitleBookID("Dune"), TitleBookID("Dune Messiah"); a == b {
		t.Errorf("TitleBookID(Dune) = TitleBookID(Dune Messiah) = %q", a)
	}
	if id := TitleBookID("Dune"); !strings.HasPrefix(id, "title-") || len(id) > MaxIDLen {
		t.Errorf("TitleBookID = %q", id)
	}
	if k := TitleKey("  The Left Hand of DARKNESS\t"); k != "the left hand of darkness" {
		t.Errorf("TitleKey = %q", k)
	}
}
