package shelf

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSearchWords(t *testing.T) {
	for in, want := range map[string][]string{
		"Dune":                         {"dune"},
		"  The Left Hand of Darkness ": {"the", "left", "hand", "of", "darkness"},
		"Stanisław Lem":                {"stanislaw", "lem"},
		"Ursula K. Le Guin":            {"ursula", "k", "le", "guin"},
		"Gabriel García Márquez":       {"gabriel", "garcia", "marquez"},
		"Cien años de soledad":         {"cien", "anos", "de", "soledad"},
		"Straße, STRASSE":              {"strasse"},
		"Ægir's Œuvre":                 {"aegir", "s", "oeuvre"},
		"Cafe\u0301":                   {"cafe"}, // a decomposed é
		"1984":                         {"1984"},
		"Война и мир":                  {"война", "и", "мир"},
		"!!! --- ...":                  nil,
		"dune DUNE Dune":               {"dune"},
	} {
		if got := SearchWords(in); !slices.Equal(got, want) {
			t.Errorf("SearchWords(%q) = %q, want %q", in, got, want)
		}
	}
}

// ids of a page.
func pageIDs(books []CatalogBook) []string {
	out := []string{}
	for _, b := range books {
		out = append(out, b.ID)
	}
	return out
}

func TestCatalogSearch(t *testing.T) {
	v := NewCatalog()
	for i, e := range []*Event{
		added("b1", 1, "Dune", "Frank Herbert"),
		added("b2", 1, "Dune Messiah", "Frank Herbert"),
		added("b3", 1, "Solaris", "Stanisław Lem"),
		added("b4", 1, "The Cyberiad", "Stanisław Lem"),
		added("b5", 1, "Cien años de soledad", "Gabriel García Márquez"),
		added("b6", 1, "Children of Dune", "Frank Herbert"),
		added("b7", 1, "Gone", "Nobody"),
		removed("b7", 2),
	} {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		v.Apply(e)
	}
	for _, tc := range []struct {
		q, author string
		want      []string
	}{
		{q: "dune", want: []string{"b1", "b2", "b6"}},
		{q: "DU", want: []string{"b1", "b2", "b6"}},
		{q: "dune mess", want: []string{"b2"}},
		{q: "mess dune", want: []string{"b2"}},
		{q: "herbert children", want: []string{"b6"}},
		{q: "lem", want: []string{"b3", "b4"}},
		{q: "stanislaw", want: []string{"b3", "b4"}},
		{q: "Stanisław", want: []string{"b3", "b4"}},
		{q: "garcía", want: []string{"b5"}},
		{q: "garcia MARQ años", want: []string{"b5"}},
		{q: "anos", want: []string{"b5"}},
		{q: "une", want: []string{}},   // a word's prefix, not any part of it
		{q: "gone", want: []string{}},  // removed
		{q: "dunes", want: []string{}}, // longer than any word
		{q: "dune", author: "frank herbert", want: []string{"b1", "b2", "b6"}},
		{q: "sol", author: "STANISŁAW LEM", want: []string{"b3"}}, // the author is an exact name, any case
		{q: "sol", author: "Lem", want: []string{}},
		{q: "c", want: []string{"b4", "b5", "b6"}},
	} {
		books, total, next, err := v.Page(PageQuery{Q: tc.q, Author: tc.author, Limit: 20})
		if got := pageIDs(books); err != nil || !slices.Equal(got, tc.want) || total != len(tc.want) || next != "" {
			t.Errorf("q=%q author=%q: %v, total %d, next %q, %v; want %v", tc.q, tc.author, got, total, next, err, tc.want)
		}
	}
	// Paged, by offset and by cursor: total counts every match.
	books, total, next, _ := v.Page(PageQuery{Q: "dune", Limit: 2})
	if got := pageIDs(books); !slices.Equal(got, []string{"b1", "b2"}) || total != 3 || next != "b2" {
		t.Errorf("first page: %v, %d, %q", got, total, next)
	}
	books, total, next, _ = v.Page(PageQuery{Q: "dune", Limit: 2, After: "b2"})
	if got := pageIDs(books); !slices.Equal(got, []string{"b6"}) || total != 3 || next != "" {
		t.Errorf("page after b2: %v, %d, %q", got, total, next)
	}
	books, _, _, _ = v.Page(PageQuery{Q: "dune", Limit: 1, Offset: 2})
	if got := pageIDs(books); !slices.Equal(got, []string{"b6"}) {
		t.Errorf("offset 2: %v", got)
	}
	for _, q := range []string{"!!!", "a b c d e f g h i"} {
		if _, _, _, err := v.Page(PageQuery{Q: q, Limit: 5}); !errors.Is(err, ErrInvalid) {
			t.Errorf("q=%q: %v, want an invalid field", q, err)
		}
	}
	// A removed book leaves every index; a re-added one comes back.
	v.Apply(removed("b1", 2))
	if books, _, _, _ := v.Page(PageQuery{Q: "dune", Limit: 5}); !slices.Equal(pageIDs(books), []string{"b2", "b6"}) {
		t.Errorf("after removing b1: %v", pageIDs(books))
	}
	v.Apply(added("b1", 3, "Dune", "Frank Herbert"))
	if books, _, _, _ := v.Page(PageQuery{Q: "dune", Limit: 5}); !slices.Equal(pageIDs(books), []string{"b1", "b2", "b6"}) {
		t.Errorf("after adding b1 again: %v", pageIDs(books))
	}
}

// The index answers as a walk of every book would, for random shelves and
// queries: the same books, in the same order, with the same totals.
func TestCatalogSearchIsAWalk(t *testing.T) {
	vocab := []string{"dune", "dunes", "dusk", "solaris", "sol", "über", "uber", "ángel", "angela", "lem", "le", "guin", "x", "1984", "19"}
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 7))
		v := NewCatalog()
		word := func() string {
			w := vocab[rng.IntN(len(vocab))]
			if rng.IntN(3) == 0 {
				w = strings.ToUpper(w)
			}
			return w
		}
		phrase := func(n int) string {
			var ws []string
			for range 1 + rng.IntN(n) {
				ws = append(ws, word())
			}
			return strings.Join(ws, " ")
		}
		for i := range 300 {
			e := added(fmt.Sprintf("b%03d", i), 1, phrase(3), phrase(2), phrase(2))
			e.Time = t0.Add(time.Duration(rng.IntN(50)) * time.Second)
			v.Apply(e)
			if rng.IntN(8) == 0 {
				v.Apply(removed(fmt.Sprintf("b%03d", rng.IntN(i+1)), 2))
			}
		}
		all, _ := v.List("", MaxLimit*100, 0)
		for range 40 {
			var query []string
			for range 1 + rng.IntN(3) {
				w := []rune(SearchWords(word())[0])
				query = append(query, string(w[:1+rng.IntN(len(w))]))
			}
			q := strings.Join(query, " ")
			want := []string{}
			for _, b := range all {
				if wordsMatch([]byte(foldedWords(b.Book)), SearchWords(q)) {
					want = append(want, b.ID)
				}
			}
			var got []string
			page := PageQuery{Q: q, Limit: 1 + rng.IntN(7)}
			total := -1
			for {
				books, n, next, err := v.Page(page)
				if err != nil {
					t.Fatalf("seed %d, q=%q: %v", seed, q, err)
				}
				if total >= 0 && n != total {
					t.Fatalf("seed %d, q=%q: total %d, then %d", seed, q, total, n)
				}
				total = n
				got = append(got, pageIDs(books)...)
				if next == "" {
					break
				}
				page.After = next
			}
			if !slices.Equal(got, want) || total != len(want) {
				t.Fatalf("seed %d, q=%q: found %v (total %d), a walk finds %v", seed, q, got, total, want)
			}
		}
	}
}

// A query is outside input: whatever it holds, its words are non-empty,
// distinct, folded (folding them again changes nothing), and a book whose
// title is the query is found by it.
func FuzzSearchWords(f *testing.F) {
	for _, s := range []string{"Dune", "Stanisław Lem", "Cafe\u0301 ÆØÅ ß", "Война и мир", "a-b_c.d", "\xff\xfe", "１２３"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words := SearchWords(s)
		if len(words) > 0 && strings.Join(SearchWords(strings.Join(words, " ")), " ") != strings.Join(words, " ") {
			t.Fatalf("SearchWords(%q) = %q, not a fixed point", s, words)
		}
		for i, w := range words {
			if w == "" || slices.Contains(words[i+1:], w) {
				t.Fatalf("SearchWords(%q) = %q: empty or repeated word", s, words)
			}
		}
		if len(words) == 0 || len(words) > MaxQueryWords {
			return
		}
		v := NewCatalog()
		v.Apply(&Event{Type: TypeBookAdded, Source: EventSource, Seq: 1, BookID: "b1", Title: s})
		if books, _, _, err := v.Page(PageQuery{Q: s, Limit: 1}); err != nil || len(books) != 1 {
			t.Fatalf("a book titled %q is not found by it: %v %v", s, books, err)
		}
	})
}
