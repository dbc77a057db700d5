package shelf

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// blobs holds byte strings back to back, each after its length as a
// varint, in chunks of arenaChunk bytes; a blob is known by its offset
// alone, four bytes, where a strRef takes eight. A view of a million books
// keeps a few dozen megabytes in it; four gigabytes is its bound, far past
// what a process of the views holds.
type blobs struct {
	c [][]byte
}

// maxBlob is the longest blob: one that needs more is cut there (no
// id or title the views keep comes near; a title is at most MaxTitleLen
// characters).
const maxBlob = arenaChunk - binary.MaxVarintLen32

func (r *blobs) put(b []byte) uint32 {
	if len(b) > maxBlob {
		b = b[:maxBlob]
	}
	need := len(b) + varintLen(len(b))
	last := len(r.c) - 1
	switch {
	case last < 0:
		// The first chunk starts small and doubles: a view of a few
		// books holds a few kilobytes.
		r.c = append(r.c, make([]byte, 0, max(firstBlobChunk, need)))
		last = 0
	case len(r.c[last])+need > arenaChunk:
		if len(r.c) == 1<<32/arenaChunk {
			panic(fmt.Sprintf("shelf: a view's blobs outgrew %d GiB", (1<<32)>>30))
		}
		r.c = append(r.c, make([]byte, 0, arenaChunk))
		last++
	case len(r.c[last])+need > cap(r.c[last]):
		grown := make([]byte, len(r.c[last]), min(max(2*cap(r.c[last]), len(r.c[last])+need), arenaChunk))
		copy(grown, r.c[last])
		r.c[last] = grown
	}
	off := uint32(last*arenaChunk + len(r.c[last]))
	r.c[last] = binary.AppendUvarint(r.c[last], uint64(len(b)))
	r.c[last] = append(r.c[last], b...)
	return off
}

// firstBlobChunk is the room of a view's first chunk of blobs.
const firstBlobChunk = 4 << 10

// get is the blob at off, aliasing the chunk: read it, do not keep it.
func (r *blobs) get(off uint32) []byte {
	c := r.c[off/arenaChunk][off%arenaChunk:]
	n, k := binary.Uvarint(c)
	return c[k : k+int(n) : k+int(n)]
}

func varintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

// A book id is kept in one of these forms, the first that fits, told by
// its first byte. The aggregate's ids are 32 hex digits, and imports often
// number their books: either takes a fraction of its text. Each id has
// one form only (given the prefixes known), so two ids are equal when
// their forms are, and the table compares forms without decoding them.
const (
	idText   = iota // the id's bytes as they are
	idHex           // 32 lower-case hex digits, as 16 bytes
	idUUID          // a UUID as its canonical text writes it, as 16 bytes
	idNumber        // a prefix (by its number) and a decimal number
)

// maxIDPrefixes bounds the prefixes an idCodec numbers: beyond, an id of
// a new prefix is kept as text. Prefixes are few where numbering pays
// (an import's), and an id whose digits end a random string costs a
// prefix of its own: the bound keeps those from growing a table.
const maxIDPrefixes = 1 << 12

// idCodec puts ids into the forms above and back.
type idCodec struct {
	// prefixes are the prefixes of numbered ids, each with the count of
	// its digits (leading zeros included) as its first byte.
	prefixes []string
	num      map[string]uint32
	// stem numbers each prefix's text (its digit count left out), so
	// that ids of one text before their digits compare as numbers.
	stem  []uint32
	stems map[string]uint32
}

func newIDCodec() idCodec { return idCodec{num: map[string]uint32{}, stems: map[string]uint32{}} }

// encode appends the form of id to dst. With learn, a prefix not yet
// known is numbered (while there is room); without, ok is false when
// the id's form needs a prefix not known, and so no id kept has it.
func (c *idCodec) encode(dst []byte, id string, learn bool) (_ []byte, ok bool) {
	switch {
	case isHexID(id):
		dst, _ = hex.AppendDecode(append(dst, idHex), []byte(id))
		return dst, true
	case isUUID(id):
		dst = append(dst, idUUID)
		for _, part := range [...]string{id[0:8], id[9:13], id[14:18], id[19:23], id[24:36]} {
			dst, _ = hex.AppendDecode(dst, []byte(part))
		}
		return dst, true
	}
	digits := 0
	for digits < len(id) && digits < 19 && isDigit(id[len(id)-1-digits]) {
		digits++
	}
	if digits > 0 {
		var buf idForm
		key := append(append(buf[:0], byte(digits)), id[:len(id)-digits]...)
		p, known := c.num[string(key)] // no copy made to look up
		if !known && learn && len(c.prefixes) < maxIDPrefixes {
			p, known = uint32(len(c.prefixes)), true
			c.num[string(key)] = p
			c.prefixes = append(c.prefixes, string(key))
			st, ok := c.stems[string(key[1:])]
			if !ok {
				st = uint32(len(c.stems))
				c.stems[string(key[1:])] = st
			}
			c.stem = append(c.stem, st)
		}
		if known {
			v, _ := strconv.ParseUint(id[len(id)-digits:], 10, 64) // 19 digits at most: fits
			dst = binary.AppendUvarint(append(dst, idNumber), uint64(p))
			return binary.AppendUvarint(dst, v), true
		}
		if !learn && len(c.prefixes) < maxIDPrefixes {
			// An id kept with this prefix would have numbered it.
			return dst, false
		}
	}
	return append(append(dst, idText), id...), true
}

// decode appends the id whose form is f to dst.
func (c *idCodec) decode(dst, f []byte) []byte {
	switch f[0] {
	case idHex:
		return hex.AppendEncode(dst, f[1:17])
	case idUUID:
		for i, n := range [...]int{4, 2, 2, 2, 6} {
			if i > 0 {
				dst = append(dst, '-')
			}
			dst = hex.AppendEncode(dst, f[1:1+n])
			f = f[n:]
		}
		return dst
	case idNumber:
		p, k := binary.Uvarint(f[1:])
		v, _ := binary.Uvarint(f[1+k:])
		key := c.prefixes[p]
		dst = append(dst, key[1:]...)
		var num [20]byte
		s := strconv.AppendUint(num[:0], v, 10)
		for range int(key[0]) - len(s) {
			dst = append(dst, '0')
		}
		return append(dst, s...)
	}
	return append(dst, f[1:]...)
}

// idOrder places a numbered id among the ids of its stem (the text
// before its digits): their texts are in the order of (digits, width),
// digits being its number shifted left to 19 digits. Of two digit strings
// whose shifted numbers are equal, one is the other with zeros after it,
// and so the shorter sorts first.
type idOrder struct {
	stem   uint32
	width  uint8
	digits uint64
}

// order returns the idOrder of a numbered id's form; ok is false for the
// other forms.
func (c *idCodec) order(f []byte) (o idOrder, ok bool) {
	if f[0] != idNumber {
		return o, false
	}
	p, k := binary.Uvarint(f[1:])
	v, _ := binary.Uvarint(f[1+k:])
	w := c.prefixes[p][0]
	return idOrder{stem: c.stem[p], width: w, digits: v * pow10[19-w]}, true
}

// compare orders two idOrders of one stem as their ids' texts.
func (o idOrder) compare(p idOrder) int {
	if c := cmp.Compare(o.digits, p.digits); c != 0 {
		return c
	}
	return cmp.Compare(o.width, p.width)
}

var pow10 = func() (t [20]uint64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLowerHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' }

func isHexID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := range len(id) {
		if !isLowerHex(id[i]) {
			return false
		}
	}
	return true
}

func isUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := range len(id) {
		switch i {
		case 8, 13, 18, 23:
			if id[i] != '-' {
				return false
			}
		default:
			if !isLowerHex(id[i]) {
				return false
			}
		}
	}
	return true
}
