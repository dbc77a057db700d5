package kafka

// refusals is the bookkeeping of records the broker refuses for good (see
// refusedForGood), per partition and command offset. The records of
// several commands share a produce batch, and a refusal met once may not
// come again, so one refusal cannot name its command: a first refusal
// makes the command's partition suspect; a suspect partition's commands
// are written one at a time (see rounds); and a refusal met again by a
// command written alone is that command's for good, which, decided again,
// is dead-lettered and answered with it (see triage). A commit of the
// partition's commands ends the suspicion.
//
// It only keeps notes: it reads and writes nothing. Only the Run
// goroutine touches it. The zero value is empty and ready.
type refusals struct {
	suspect map[int32]bool
	refused map[int32]map[int64]error
}

// written is what one command met in a write: its record's partition and
// offset on the commands topic, and the refusal for good one of its
// records met, if any.
type written struct {
	part    int32
	offset  int64
	refusal error
}

// of is why the broker refused for good a record of the command at part
// and offset, or nil.
func (r *refusals) of(part int32, offset int64) error { return r.refused[part][offset] }

// suspected tells whether a write of part's commands met a refusal not yet
// blamed on one of them.
func (r *refusals) suspected(part int32) bool { return r.suspect[part] }

// rounds splits the commands of a batch, given by their partitions in
// order, into the rounds they are written in, as indexes into parts:
// first all those of partitions not suspect together, then each of a
// suspect partition alone, in order, so that a refusal names its command.
func (r *refusals) rounds(parts []int32) [][]int {
	var together []int
	var alone [][]int
	for i, part := range parts {
		if r.suspect[part] {
			alone = append(alone, []int{i})
		} else {
			together = append(together, i)
		}
	}
	if len(together) == 0 {
		return alone
	}
	return append([][]int{together}, alone...)
}

// blame notes, after a failed write of one round, the refusals its
// commands met. A round of one command of a suspect partition was written
// alone: its refusal is the command's. Any other round's refusals make
// their partitions suspect.
func (r *refusals) blame(round []written) {
	alone := len(round) == 1 && r.suspect[round[0].part]
	for _, w := range round {
		if w.refusal == nil {
			continue
		}
		if !alone {
			if r.suspect == nil {
				r.suspect = map[int32]bool{}
			}
			r.suspect[w.part] = true
			continue
		}
		if r.refused == nil {
			r.refused = map[int32]map[int64]error{}
		}
		if r.refused[w.part] == nil {
			r.refused[w.part] = map[int64]error{}
		}
		r.refused[w.part][w.offset] = w.refusal
	}
}

// committed notes that the command at part and offset was committed, its
// refusal with it if it had one (as a dead letter and an answer): the
// refusal is spent, and the partition's writes went through.
func (r *refusals) committed(part int32, offset int64) {
	delete(r.refused[part], offset)
	delete(r.suspect, part)
}

// forget drops all notes of part: the instance no longer owns it for sure,
// and a new owner starts again from the log.
func (r *refusals) forget(part int32) {
	delete(r.refused, part)
	delete(r.suspect, part)
}

// offsetSet is a set of command offsets per partition.
type offsetSet map[int32]map[int64]bool

func (s offsetSet) add(part int32, offset int64) {
	if s[part] == nil {
		s[part] = map[int64]bool{}
	}
	s[part][offset] = true
}

func (s offsetSet) has(part int32, offset int64) bool { return s[part][offset] }

func (s offsetSet) remove(part int32, offset int64) { delete(s[part], offset) }
