package shelf

import (
	"fmt"
	"strings"
	"testing"
)

// Every text comes back exactly, spaces and all, whether its words are
// numbered or kept as text, and a title of known words takes a byte or
// two a word.
func TestWordCodec(t *testing.T) {
	c := newWordCodec()
	texts := []string{"", " ", "  ", "Dune", "Dune ", " Dune", "The Left  Hand of Darkness", "é ü\t\x00", "a b a b",
		strings.Repeat("long", 100) + " x"}
	for _, s := range texts {
		if got := string(c.decode(nil, c.encode(nil, s))); got != s {
			t.Errorf("%q came back as %q", s, got)
		}
	}
	if f := c.encode(nil, "Dune of Darkness"); len(f) != 3 {
		t.Errorf("a title of three known words takes %d bytes, want 3", len(f))
	}
	// Past the bound, new words are kept as text, known ones numbered.
	for i := len(c.words); i < maxCodedWords+10; i++ {
		c.encode(nil, fmt.Sprint("w", i))
	}
	if len(c.words) != maxCodedWords {
		t.Fatalf("%d words numbered, want %d", len(c.words), maxCodedWords)
	}
	for _, s := range []string{"never seen before", "Dune never", fmt.Sprint("w", maxCodedWords-1, " w", maxCodedWords+5)} {
		if got := string(c.decode(nil, c.encode(nil, s))); got != s {
			t.Errorf("past the bound, %q came back as %q", s, got)
		}
	}
}

func FuzzWordCodec(f *testing.F) {
	for _, s := range []string{"", "Dune", "The Left  Hand of Darkness", " a ", "é"} {
		f.Add(s, s+" again")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		c := newWordCodec()
		fa := c.encode(nil, a)
		fb := c.encode(nil, b)
		if got := string(c.decode(nil, fa)); got != a {
			t.Fatalf("%q came back as %q", a, got)
		}
		if got := string(c.decode(nil, fb)); got != b {
			t.Fatalf("%q came back as %q", b, got)
		}
	})
}
