package shelf

import (
	"encoding/binary"
	"strings"
)

// maxCodedWords bounds the words a wordCodec numbers; a word past them is
// kept as text. Titles draw on few words beside the books (a shelf of a
// million books uses some tens of thousands), and the bound keeps a shelf
// of made-up words from growing a dictionary past a few megabytes.
const maxCodedWords = 1 << 16

// wordCodec keeps a title as the numbers of its words: a title of three
// words of a thousand takes seven bytes rather than twenty-odd. It gives
// the text back exactly: the words are the runs between single spaces,
// empty ones included, and a word is its number or its bytes.
type wordCodec struct {
	num   map[string]uint32
	words []string
}

func newWordCodec() wordCodec { return wordCodec{num: map[string]uint32{}} }

// encode appends the form of text to dst, numbering its new words while
// there is room: per word, a varint, odd for a word's number (2n+1), even
// for one kept as text (twice its length, then its bytes).
func (c *wordCodec) encode(dst []byte, text string) []byte {
	for {
		w, rest, more := strings.Cut(text, " ")
		n, ok := c.num[w]
		if !ok && w != "" && len(c.words) < maxCodedWords {
			n, ok = uint32(len(c.words)), true
			c.num[w] = n
			c.words = append(c.words, w)
		}
		if ok {
			dst = binary.AppendUvarint(dst, uint64(n)<<1|1)
		} else {
			dst = append(binary.AppendUvarint(dst, uint64(len(w))<<1), w...)
		}
		if !more {
			return dst
		}
		text = rest
	}
}

// decode appends the text whose form is f to dst. A form cut short (see
// maxBlob) gives the text up to the cut.
func (c *wordCodec) decode(dst, f []byte) []byte {
	for i := 0; len(f) > 0; i++ {
		v, k := binary.Uvarint(f)
		if k <= 0 {
			return dst
		}
		f = f[k:]
		if i > 0 {
			dst = append(dst, ' ')
		}
		if v&1 == 1 {
			dst = append(dst, c.words[v>>1]...)
			continue
		}
		n := int(min(v>>1, uint64(len(f))))
		dst = append(dst, f[:n]...)
		f = f[n:]
	}
	return dst
}
