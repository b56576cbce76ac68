package committed

import "github.com/twmb/franz-go/pkg/kgo"

// settler reads one partition's range, and holds a transaction's records until its control
// record says whether it committed.
type settler struct {
	rng     Range
	pending map[int64][]*kgo.Record // by producer id: records of transactions not yet ended
	done    bool
}

// read takes one fetch of the partition, and returns how many offsets of the range it read.
func (s *settler) read(p kgo.FetchPartition, keep func(*kgo.Record)) int64 {
	var n int64
	for _, r := range p.Records {
		if r.Offset >= s.rng.End {
			s.done = true
			break
		}
		n++
		s.take(r, keep)
		if r.Offset >= s.rng.End-1 {
			s.done = true
		}
	}
	if p.LogStartOffset >= s.rng.End { // retention deleted the rest of the range
		s.done = true
	}
	return n
}

func (s *settler) take(r *kgo.Record, keep func(*kgo.Record)) {
	switch {
	case r.Attrs.IsControl():
		rs := s.pending[r.ProducerID]
		delete(s.pending, r.ProducerID)
		if commits(r) {
			for _, c := range rs {
				keep(c)
			}
		}
	case r.Attrs.IsTransactional():
		s.pending[r.ProducerID] = append(s.pending[r.ProducerID], r)
	default:
		keep(r)
	}
}

// commits reports whether a control record is a COMMIT marker: its key is a version and a
// type, two big-endian int16s, and type 1 is COMMIT (0 is ABORT).
func commits(r *kgo.Record) bool {
	return len(r.Key) >= 4 && r.Key[2] == 0 && r.Key[3] == 1
}

// resume is where a later read of the partition starts: the first record of a transaction
// still open at the end of the range, else the end.
func (s *settler) resume() int64 {
	at := s.rng.End
	for _, rs := range s.pending {
		at = min(at, rs[0].Offset)
	}
	return at
}
