package shelf

import (
	"bytes"
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
	books map[string]*unsortedList[int32]
	// lists are the catalog's lists, in its order; wordsOf gives a
	// book's words (see foldedWords).
	lists   *listSet
	wordsOf func(n int32) []byte
}

func stringAfter(a, b string) bool { return a > b }

func (ix *wordIndex) add(n int32) {
	if ix.books == nil {
		ix.books = map[string]*unsortedList[int32]{}
	}
	eachSearchWord(ix.wordsOf(n), func(w []byte) {
		bs := ix.books[string(w)]
		if bs == nil {
			bs = &unsortedList[int32]{}
			ix.books[string(w)] = bs
			ix.words.insert(string(w), stringAfter)
		}
		ix.lists.push(bs, n)
	})
}

func (ix *wordIndex) remove(n int32) {
	eachSearchWord(ix.wordsOf(n), func(w []byte) {
		bs := ix.books[string(w)]
		if bs == nil {
			return
		}
		if ix.lists.remove(bs, n); bs.n == 0 {
			delete(ix.books, string(w))
			ix.words.remove(string(w), stringAfter)
		}
	})
}

// foldedWords are the words b is found by, its title's and its authors',
// folded, each once, joined by spaces: what a search checks its
// candidates against, kept with the book (a few dozen bytes) so that the
// check is a substring search rather than a fold of the book's text.
func foldedWords(b Book) string { return string(appendFoldedWords(nil, b.Title, b.Authors)) }

// appendFoldedWords appends the foldedWords of a title and authors to dst.
func appendFoldedWords(dst []byte, title string, authors []string) []byte {
	dst = append(dst, ' ')
	add := func(w []byte) bool {
		for i := 0; ; { // met already? each word once
			j := bytes.Index(dst[i:], w)
			if j < 0 {
				break
			}
			if at := i + j; dst[at-1] == ' ' && at+len(w) < len(dst) && dst[at+len(w)] == ' ' {
				return true
			}
			i += j + 1
		}
		dst = append(append(dst, w...), ' ')
		return true
	}
	eachWord(title, add)
	for _, a := range authors {
		eachWord(a, add)
	}
	return dst
}

// eachSearchWord calls fn with each word of folded words, once.
func eachSearchWord(words []byte, fn func(w []byte)) {
	for w := range bytes.FieldsSeq(words) {
		fn(w)
	}
}

// wordsMatch tells whether every word of query is a prefix of one of the
// folded words.
func wordsMatch(words []byte, query []string) bool {
	for _, q := range query {
		// The words start with a space, and each ends with one.
		if !containsWordPrefix(words, q) {
			return false
		}
	}
	return true
}

func containsWordPrefix(words []byte, prefix string) bool {
	for i := 0; ; {
		j := bytes.Index(words[i:], []byte(prefix))
		if j < 0 {
			return false
		}
		if at := i + j; at > 0 && words[at-1] == ' ' {
			return true
		}
		i += j + 1
	}
}

// prefixed returns the books of each word that begins with prefix, and
// how many they hold together.
func (ix *wordIndex) prefixed(prefix string) (lists []*sortedBlocks[int32], size int) {
	ix.lists.settle()
	c := ix.words.seek(func(w string) bool { return w >= prefix })
	for w, ok := c.value(); ok && strings.HasPrefix(w, prefix); w, ok = c.value() {
		bs := ix.books[w]
		lists = append(lists, &bs.sortedBlocks)
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
func (ix *wordIndex) search(query []string, fn func(int32) bool) {
	var lists []*sortedBlocks[int32]
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
	heads := make([]blockCursor[int32], 0, len(lists))
	for _, l := range lists {
		heads = append(heads, blockCursor[int32]{s: l})
	}
	last := int32(-1)
	for {
		b := int32(-1)
		at := -1
		for i := range heads {
			if x, ok := heads[i].value(); ok && (b < 0 || ix.lists.after(b, x)) {
				b, at = x, i
			}
		}
		if b < 0 {
			return
		}
		heads[at].next()
		if b == last {
			continue
		}
		last = b
		if len(query) > 1 && !wordsMatch(ix.wordsOf(b), query) {
			continue
		}
		if !fn(b) {
			return
		}
	}
}
