package shelf

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxQueryWords bounds the words of a search: each costs a pass over the
// books its prefix matches.
const MaxQueryWords = 8

// SearchWords splits s into the words a search matches on: runs of letters
// and digits, lower-cased, with the accents of Latin letters taken off
// ("Stanisław Lem" is "stanislaw", "lem"), each once.
func SearchWords(s string) []string {
	var words []string
	eachWord(s, func(w []byte) bool {
		if !slices.Contains(words, string(w)) {
			words = append(words, string(w))
		}
		return true
	})
	return words
}

// eachWord calls fn with each word of s, folded as SearchWords folds it,
// while fn returns true. The word is good only during the call: a search
// checks a book's words without allocating them.
func eachWord(s string, fn func(w []byte) bool) {
	var buf [64]byte
	w := buf[:0]
	for _, r := range s {
		if r < utf8.RuneSelf { // most titles and names: no tables
			switch {
			case 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
				w = append(w, byte(r))
			case 'A' <= r && r <= 'Z':
				w = append(w, byte(r)+'a'-'A')
			default:
				if len(w) > 0 && !fn(w) {
					return
				}
				w = w[:0]
			}
			continue
		}
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // a combining accent, as in a decomposed "é"
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			if len(w) > 0 && !fn(w) {
				return
			}
			w = w[:0]
			continue
		}
		r = unicode.ToLower(r)
		if f, ok := foldLatin[r]; ok {
			w = append(w, f...)
		} else {
			w = utf8.AppendRune(w, r)
		}
	}
	if len(w) > 0 {
		fn(w)
	}
}

// foldLatin takes the accents off the lower-case letters of Latin-1 and
// Latin Extended-A, the letters of most European names and titles. (The
// standard library has no Unicode decomposition; other scripts are matched
// as they are written, lower-cased.)
var foldLatin = func() map[rune]string {
	m := map[rune]string{}
	for base, letters := range map[string]string{
		"a": "àáâãäåāăą", "c": "çćĉċč", "d": "ďđ", "e": "èéêëēĕėęě", "g": "ĝğġģ", "h": "ĥħ",
		"i": "ìíîïĩīĭįı", "j": "ĵ", "k": "ķ", "l": "ĺļľŀł", "n": "ñńņňŉ", "o": "òóôõöøōŏő",
		"r": "ŕŗř", "s": "śŝşšſ", "t": "ţťŧ", "u": "ùúûüũūŭůűų", "w": "ŵ", "y": "ýÿŷ", "z": "źżž",
		"ae": "æ", "oe": "œ", "ss": "ß", "th": "þ", "dh": "ð", "ij": "ĳ", "ng": "ŋ",
	} {
		for _, r := range letters {
			m[r] = base
		}
	}
	return m
}()

// wordIndex finds the books by the words of their titles and authors: the
// words in order, so that those with a prefix are a range found by binary
// search, and, per word, its books in catalog order.
type wordIndex struct {
	words sortedBlocks[string]
	books map[string]*sortedBlocks[*catalogBook]
}

func stringAfter(a, b string) bool { return a > b }

func (ix *wordIndex) add(b *catalogBook) {
	if ix.books == nil {
		ix.books = map[string]*sortedBlocks[*catalogBook]{}
	}
	b.eachSearchWord(func(w string) bool {
		bs := ix.books[w]
		if bs == nil {
			bs = &sortedBlocks[*catalogBook]{}
			ix.books[w] = bs
			ix.words.insert(w, stringAfter)
		}
		bs.insert(b, catalogAfter)
		return true
	})
}

func (ix *wordIndex) remove(b *catalogBook) {
	b.eachSearchWord(func(w string) bool {
		bs := ix.books[w]
		if bs == nil {
			return true
		}
		if bs.remove(b, catalogAfter); bs.n == 0 {
			delete(ix.books, w)
			ix.words.remove(w, stringAfter)
		}
		return true
	})
}

// foldedWords are the words b is found by, its title's and its authors',
// folded, each once, joined by spaces: what a search checks its
// candidates against, kept with the book (a few dozen bytes) so that the
// check is a substring search rather than a fold of the book's text.
func foldedWords(b Book) string {
	var sb strings.Builder
	add := func(w []byte) bool {
		if strings.Contains(sb.String(), " "+string(w)+" ") {
			return true // met already: each word once
		}
		sb.Write(w)
		sb.WriteByte(' ')
		return true
	}
	sb.WriteByte(' ')
	eachWord(b.Title, add)
	for _, a := range b.Authors {
		eachWord(a, add)
	}
	return sb.String()
}

// eachSearchWord calls fn with each word of b's, once.
func (b *catalogBook) eachSearchWord(fn func(w string) bool) {
	for w := range strings.FieldsSeq(b.words) {
		if !fn(w) {
			return
		}
	}
}

// matches tells whether every word of query is a prefix of one of b's.
func (b *catalogBook) matches(query []string) bool {
	for _, q := range query {
		// b.words starts with a space, and each word ends with one.
		if !strings.Contains(b.words, " "+q) {
			return false
		}
	}
	return true
}

// prefixed returns the books of each word that begins with prefix, and
// how many they hold together.
func (ix *wordIndex) prefixed(prefix string) (lists []*sortedBlocks[*catalogBook], size int) {
	c := ix.words.seek(func(w string) bool { return w >= prefix })
	for w, ok := c.value(); ok && strings.HasPrefix(w, prefix); w, ok = c.value() {
		bs := ix.books[w]
		lists = append(lists, bs)
		size += bs.n
		c.next()
	}
	return lists, size
}

// search calls fn, in catalog order, with each book whose words begin
// with every word of query, while fn returns true. It walks the books of
// the query word whose prefix has the fewest, merging the lists of the
// words it begins, and checks the other words on each book: a search
// costs the books its rarest word matches, not the shelf.
func (ix *wordIndex) search(query []string, fn func(*catalogBook) bool) {
	var lists []*sortedBlocks[*catalogBook]
	best := -1
	for _, q := range query {
		ls, n := ix.prefixed(q)
		if n == 0 {
			return
		}
		if best < 0 || n < best {
			lists, best = ls, n
		}
	}
	// One cursor per list, merged by catalog order; a book under two of
	// the words is met twice, one after the other, and taken once.
	heads := make([]blockCursor[*catalogBook], 0, len(lists))
	for _, l := range lists {
		heads = append(heads, blockCursor[*catalogBook]{s: l})
	}
	var last *catalogBook
	for {
		var b *catalogBook
		at := -1
		for i := range heads {
			if x, ok := heads[i].value(); ok && (b == nil || catalogAfter(b, x)) {
				b, at = x, i
			}
		}
		if b == nil {
			return
		}
		heads[at].next()
		if b == last {
			continue
		}
		last = b
		if len(query) > 1 && !b.matches(query) {
			continue
		}
		if !fn(b) {
			return
		}
	}
}
