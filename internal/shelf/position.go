package shelf

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// LogPos is the place of one record: a partition and an offset.
type LogPos struct {
	Partition int32
	Offset    int64
}

// String formats the position as "partition:offset".
func (p LogPos) String() string { return fmt.Sprintf("%d:%d", p.Partition, p.Offset) }

// Position is a point in the log a reader must have passed: for each
// partition, the offset of a record it must have applied. It travels in the
// Bookshelf-Position header as "p:o[,p:o...]".
type Position map[int32]int64

// MaxPositionLen bounds a header value, so a hostile one cannot make a
// reader allocate much.
const MaxPositionLen = 1024

// ParsePosition reads a Bookshelf-Position value.
func ParsePosition(s string) (Position, error) {
	if len(s) > MaxPositionLen {
		return nil, invalid("Bookshelf-Position", "longer than %d bytes", MaxPositionLen)
	}
	pos := Position{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ps, os, ok := strings.Cut(part, ":")
		if !ok {
			return nil, invalid("Bookshelf-Position", "%q is not partition:offset", part)
		}
		p, err := strconv.ParseInt(ps, 10, 32)
		if err != nil || p < 0 {
			return nil, invalid("Bookshelf-Position", "%q: bad partition", part)
		}
		o, err := strconv.ParseInt(os, 10, 64)
		if err != nil || o < 0 {
			return nil, invalid("Bookshelf-Position", "%q: bad offset", part)
		}
		if cur, ok := pos[int32(p)]; !ok || o > cur {
			pos[int32(p)] = o
		}
	}
	if len(pos) == 0 {
		return nil, invalid("Bookshelf-Position", "is empty")
	}
	return pos, nil
}

// PositionOf is the position that covers the given records.
func PositionOf(at ...LogPos) Position {
	pos := Position{}
	for _, a := range at {
		if o, ok := pos[a.Partition]; !ok || a.Offset > o {
			pos[a.Partition] = a.Offset
		}
	}
	return pos
}

// String formats the position for the Bookshelf-Position header, partitions
// in order.
func (p Position) String() string {
	parts := make([]int32, 0, len(p))
	for k := range p {
		parts = append(parts, k)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var b strings.Builder
	for i, k := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(k), 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(p[k], 10))
	}
	return b.String()
}

// Reached tells whether a reader whose next offsets are next has applied
// every record p names.
func (p Position) Reached(next map[int32]int64) bool {
	for part, off := range p {
		if next[part] <= off {
			return false
		}
	}
	return true
}
