// Package committed reads the committed records of ranges of Kafka partitions, and settles
// transactions itself so that no transaction another producer holds open can hold a read
// back. The dedup store's rebuild at a bridge's start reads the event topics with it, and
// the operator commands (internal/redrive) the dead-letter and quarantine topics and their
// marks.
//
// Why not a read-committed fetch: it stops at the last stable offset, so a transaction left
// open on a partition holds every reader back until it ends (up to its timeout: a bridge's
// start, behind a replay in progress), and it drops the records of aborted transactions
// without a trace, so a reader cannot tell that it has passed the end of its range (the
// last record below the end may be an aborted one). Read uncommitted with the control
// records kept, every offset below the end arrives and nothing waits; each transaction's
// records are then held until its control record says whether it committed.
package committed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Partition names one partition of a topic.
type Partition struct {
	Topic string
	Index int32
}

// Range is the offsets [Start, End) of a partition to read.
type Range struct{ Start, End int64 }

// Read calls keep with each committed record of rs (control records aside), partition by
// partition, a transaction's records when its commit is read, and returns for each
// partition where a later read resumes: the end of its range, or the first record of a
// transaction still open there, whose records were not kept. A range that retention
// deleted meanwhile, in part or whole, is read from what is left. progress, if not nil, is
// called after each fetch with the offsets read so far and the offsets to read.
//
// The records are read by a client of their own built from opts (the connection's
// options, without consumer settings).
func Read(ctx context.Context, opts []kgo.Opt, rs map[Partition]Range, keep func(*kgo.Record), progress func(read, total int64)) (map[Partition]int64, error) {
	if len(rs) == 0 {
		return map[Partition]int64{}, nil
	}
	r := newReader(rs)
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(r.starts()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // retention may have deleted a start
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for r.left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		finished, err := r.take(fs, keep)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(r.read, r.total)
		}
		cl.PauseFetchPartitions(finished)
	}
	return r.resume(), nil
}

// reader reads the ranges, a settler each.
type reader struct {
	parts       map[Partition]*settler
	left        int // partitions not read to their end
	read, total int64
}

func newReader(rs map[Partition]Range) *reader {
	r := &reader{parts: make(map[Partition]*settler, len(rs)), left: len(rs)}
	for p, rg := range rs {
		r.parts[p] = &settler{rng: rg, pending: map[int64][]*kgo.Record{}}
		r.total += rg.End - rg.Start
	}
	return r
}

func (r *reader) starts() map[string]map[int32]kgo.Offset {
	out := map[string]map[int32]kgo.Offset{}
	for p, s := range r.parts {
		if out[p.Topic] == nil {
			out[p.Topic] = map[int32]kgo.Offset{}
		}
		out[p.Topic][p.Index] = kgo.NewOffset().At(s.rng.Start)
	}
	return out
}

// take reads one poll's fetches and returns the partitions it finished.
func (r *reader) take(fs kgo.Fetches, keep func(*kgo.Record)) (map[string][]int32, error) {
	var err error
	finished := map[string][]int32{}
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		err = cmp.Or(err, fetchErr(p))
		s := r.parts[Partition{p.Topic, p.Partition}]
		if s == nil || s.done {
			return // a fetch buffered before the partition was paused
		}
		n := s.read(p.FetchPartition, keep)
		r.read += n
		if s.done {
			r.left--
			finished[p.Topic] = append(finished[p.Topic], p.Partition)
		}
	})
	return finished, err
}

func (r *reader) resume() map[Partition]int64 {
	out := make(map[Partition]int64, len(r.parts))
	for p, s := range r.parts {
		out[p] = s.resume()
	}
	return out
}

// fetchErr is a fetch error that stops the read. Data loss is only a notice: the client
// has skipped ahead to what is left, which is all there is to read.
func fetchErr(p kgo.FetchTopicPartition) error {
	var loss *kgo.ErrDataLoss
	if p.Err == nil || errors.As(p.Err, &loss) {
		return nil
	}
	return fmt.Errorf("reading %s[%d]: %w", p.Topic, p.Partition, p.Err)
}
