package kafka

import (
	"errors"
	"reflect"
	"testing"
)

var (
	errTooLarge = errors.New("MESSAGE_TOO_LARGE")
	errInvalid  = errors.New("INVALID_RECORD")
)

func TestRefusalsRounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		suspect []int32
		parts   []int32
		want    [][]int
	}{
		{"none", nil, nil, nil},
		{"no suspect: all together", nil, []int32{0, 1, 0, 2}, [][]int{{0, 1, 2, 3}}},
		{"a suspect's commands alone, after the rest, in order", []int32{1},
			[]int32{1, 0, 1, 2}, [][]int{{1, 3}, {0}, {2}}},
		{"only suspects: each alone", []int32{0, 1},
			[]int32{0, 1, 0}, [][]int{{0}, {1}, {2}}},
		{"a suspect with no commands changes nothing", []int32{2},
			[]int32{0, 1}, [][]int{{0, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r refusals
			for _, part := range tc.suspect {
				r.blame([]written{{part: part, offset: 99, refusal: errTooLarge}, {part: part, offset: 100}})
			}
			if got := r.rounds(tc.parts); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rounds(%v) with suspects %v = %v, want %v", tc.parts, tc.suspect, got, tc.want)
			}
		})
	}
}

func TestRefusalsBlame(t *testing.T) {
	type at struct {
		part   int32
		offset int64
	}
	for _, tc := range []struct {
		name        string
		suspect     []int32 // before the round
		round       []written
		wantSuspect []int32
		wantRefused map[at]error
	}{
		{
			name:  "a failed round without refusals notes nothing",
			round: []written{{part: 0, offset: 1}, {part: 1, offset: 2}},
		},
		{
			name:        "a first refusal makes its partition suspect, not the command refused",
			round:       []written{{part: 0, offset: 1}, {part: 1, offset: 2, refusal: errTooLarge}},
			wantSuspect: []int32{1},
		},
		{
			name:        "a command alone in its round but of no suspect partition only makes it suspect",
			round:       []written{{part: 2, offset: 7, refusal: errTooLarge}},
			wantSuspect: []int32{2},
		},
		{
			name:        "a command of a suspect partition written alone is refused for good",
			suspect:     []int32{2},
			round:       []written{{part: 2, offset: 7, refusal: errInvalid}},
			wantSuspect: []int32{2},
			wantRefused: map[at]error{{2, 7}: errInvalid},
		},
		{
			name:        "a suspect partition's command without refusal, alone, is not refused",
			suspect:     []int32{2},
			round:       []written{{part: 2, offset: 7}},
			wantSuspect: []int32{2},
		},
		{
			name:        "commands of a suspect partition written together are not blamed",
			suspect:     []int32{2},
			round:       []written{{part: 2, offset: 7, refusal: errTooLarge}, {part: 2, offset: 8, refusal: errTooLarge}},
			wantSuspect: []int32{2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r refusals
			for _, part := range tc.suspect {
				r.blame([]written{{part: part, offset: 1000, refusal: errTooLarge}, {part: part, offset: 1001}})
			}
			r.blame(tc.round)
			for part := range int32(4) {
				want := false
				for _, s := range tc.wantSuspect {
					want = want || s == part
				}
				if got := r.suspected(part); got != want {
					t.Errorf("suspected(%d) = %v, want %v", part, got, want)
				}
				for off := range int64(10) {
					if got, want := r.of(part, off), tc.wantRefused[at{part, off}]; got != want {
						t.Errorf("of(%d, %d) = %v, want %v", part, off, got, want)
					}
				}
			}
		})
	}
}

// The life of a refusal: met in a batch, met again alone, the command
// dead-lettered and committed; and a partition that moves.
func TestRefusalsCommittedAndForget(t *testing.T) {
	var r refusals
	r.blame([]written{{part: 0, offset: 5, refusal: errTooLarge}, {part: 1, offset: 6, refusal: errTooLarge}})
	r.blame([]written{{part: 0, offset: 5, refusal: errTooLarge}})
	r.blame([]written{{part: 1, offset: 6, refusal: errInvalid}})
	if r.of(0, 5) != errTooLarge || r.of(1, 6) != errInvalid {
		t.Fatalf("refused: of(0,5) = %v, of(1,6) = %v", r.of(0, 5), r.of(1, 6))
	}

	r.committed(0, 5)
	if r.of(0, 5) != nil || r.suspected(0) {
		t.Errorf("after commit of 0/5: of = %v, suspected = %v; want nothing", r.of(0, 5), r.suspected(0))
	}
	if r.of(1, 6) != errInvalid || !r.suspected(1) {
		t.Errorf("a commit of partition 0 changed partition 1: of = %v, suspected = %v", r.of(1, 6), r.suspected(1))
	}

	r.forget(1)
	if r.of(1, 6) != nil || r.suspected(1) {
		t.Errorf("after forget(1): of = %v, suspected = %v; want nothing", r.of(1, 6), r.suspected(1))
	}
	// Forgetting or committing what was never noted is no trouble.
	r.forget(3)
	r.committed(3, 1)
}

func TestOffsetSet(t *testing.T) {
	s := offsetSet{}
	if s.has(0, 1) {
		t.Fatal("an empty set has 0/1")
	}
	s.add(0, 1)
	s.add(0, 2)
	s.add(1, 1)
	if !s.has(0, 1) || !s.has(0, 2) || !s.has(1, 1) || s.has(1, 2) {
		t.Fatalf("after adding 0/1, 0/2, 1/1: %v", s)
	}
	s.remove(0, 1)
	s.remove(2, 1) // a partition never seen
	if s.has(0, 1) || !s.has(0, 2) {
		t.Fatalf("after removing 0/1: %v", s)
	}
}
