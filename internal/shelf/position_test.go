package shelf

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParsePosition(t *testing.T) {
	tests := []struct {
		in   string
		want Position // nil: refused
	}{
		{"0:5", Position{0: 5}},
		{"0:0", Position{0: 0}},
		{"0:5,1:7", Position{0: 5, 1: 7}},
		{"3:1,0:10,1:2", Position{0: 10, 1: 2, 3: 1}},
		{" 0:5 , 1:7 ", Position{0: 5, 1: 7}},
		{"0:5,", Position{0: 5}},
		{",0:5,,", Position{0: 5}},
		{"0:5,0:9,0:3", Position{0: 9}}, // the furthest per partition
		{"1:9,0:2,1:4", Position{0: 2, 1: 9}},
		{"2147483647:9223372036854775807", Position{2147483647: 9223372036854775807}},
		{"007:010", Position{7: 10}},

		{"", nil},
		{" ", nil},
		{",", nil},
		{",,", nil},
		{"0", nil},
		{"0:", nil},
		{":5", nil},
		{"0;5", nil},
		{"0:5;1:7", nil},
		{"0:1:2", nil},
		{"a:1", nil},
		{"0:b", nil},
		{"0 : 5", nil},
		{"-1:5", nil},
		{"0:-5", nil},
		{"0x1:5", nil},
		{"1.0:5", nil},
		{"2147483648:0", nil}, // beyond int32
		{"0:9223372036854775808", nil},
		{"0:5,x", nil}, // one bad part spoils the lot
		{strings.Repeat("0:1,", MaxPositionLen/4) + "0:1", nil},
	}
	for _, tt := range tests {
		got, err := ParsePosition(tt.in)
		if tt.want == nil {
			if err == nil || got != nil {
				t.Errorf("ParsePosition(%q) = %v, %v; want an error", tt.in, got, err)
			} else if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParsePosition(%q): %v is not ErrInvalid", tt.in, err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePositionLongestAccepted(t *testing.T) {
	s := strings.Repeat("0:1,", MaxPositionLen/4-1) + "0:12"
	if len(s) != MaxPositionLen {
		t.Fatalf("len = %d", len(s))
	}
	if p, err := ParsePosition(s); err != nil || !maps.Equal(p, Position{0: 12}) {
		t.Errorf("ParsePosition(%d bytes) = %v, %v", len(s), p, err)
	}
}

func TestPositionString(t *testing.T) {
	tests := []struct {
		pos  Position
		want string
	}{
		{Position{}, ""},
		{Position{0: 5}, "0:5"},
		{Position{3: 1, 0: 10, 1: 2}, "0:10,1:2,3:1"},
		{Position{12: 0, 2: 7}, "2:7,12:0"}, // numeric order, not text order
		{Position{2147483647: 9223372036854775807}, "2147483647:9223372036854775807"},
	}
	for _, tt := range tests {
		if got := tt.pos.String(); got != tt.want {
			t.Errorf("%v.String() = %q, want %q", map[int32]int64(tt.pos), got, tt.want)
		}
		if len(tt.pos) == 0 {
			continue
		}
		back, err := ParsePosition(tt.pos.String())
		if err != nil || !maps.Equal(back, tt.pos) {
			t.Errorf("ParsePosition(%q) = %v, %v", tt.pos.String(), back, err)
		}
	}
}

func TestPositionReached(t *testing.T) {
	tests := []struct {
		pos  Position
		next map[int32]int64
		want bool
	}{
		{Position{0: 5}, nil, false},
		{Position{0: 5}, map[int32]int64{0: 5}, false}, // offset 5 not applied yet
		{Position{0: 5}, map[int32]int64{0: 6}, true},
		{Position{0: 5}, map[int32]int64{0: 600}, true},
		{Position{0: 0}, map[int32]int64{}, false},
		{Position{0: 0}, map[int32]int64{0: 1}, true},
		{Position{0: 5, 1: 7}, map[int32]int64{0: 6}, false},
		{Position{0: 5, 1: 7}, map[int32]int64{0: 6, 1: 7}, false},
		{Position{0: 5, 1: 7}, map[int32]int64{0: 6, 1: 8}, true},
		{Position{0: 5, 1: 7}, map[int32]int64{0: 6, 1: 8, 2: 1}, true}, // other partitions do not matter
		{Position{2: 1}, map[int32]int64{0: 100, 1: 100}, false},
		{Position{}, nil, true},
	}
	for _, tt := range tests {
		if got := tt.pos.Reached(tt.next); got != tt.want {
			t.Errorf("%v.Reached(%v) = %v, want %v", tt.pos, tt.next, got, tt.want)
		}
	}
}

func TestPositionOf(t *testing.T) {
	got := PositionOf(LogPos{0, 5}, LogPos{1, 3}, LogPos{0, 2}, LogPos{1, 9})
	if want := (Position{0: 5, 1: 9}); !maps.Equal(got, want) {
		t.Errorf("PositionOf = %v, want %v", got, want)
	}
	if got := PositionOf(); len(got) != 0 {
		t.Errorf("PositionOf() = %v", got)
	}
	// The position of an applied record is reached once it is applied.
	at := LogPos{Partition: 4, Offset: 17}
	if PositionOf(at).Reached(map[int32]int64{4: 17}) || !PositionOf(at).Reached(map[int32]int64{4: 18}) {
		t.Error("PositionOf and Reached disagree on what applying a record means")
	}
}

func TestLogPosString(t *testing.T) {
	if got := (LogPos{Partition: 3, Offset: 42}).String(); got != "3:42" {
		t.Errorf("LogPos.String() = %q", got)
	}
	p, err := ParsePosition(LogPos{Partition: 3, Offset: 42}.String())
	if err != nil || !maps.Equal(p, Position{3: 42}) {
		t.Errorf("ParsePosition(LogPos.String()) = %v, %v", p, err)
	}
}
