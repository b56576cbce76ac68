package redrive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tp names one partition of a topic.
type tp struct {
	topic string
	p     int32
}

// span is the offsets [start, end) of a partition to read.
type span struct{ start, end int64 }

// spans lists the offsets of topics' partitions to read: from the first record at or after
// since (the first record when since is zero) up to each partition's end offset now; empty
// partitions and topics that do not exist are left out.
func spans(ctx context.Context, adm *kadm.Client, since time.Time, topics ...string) (map[tp]span, error) {
	var starts kadm.ListedOffsets
	var err error
	if since.IsZero() {
		starts, err = adm.ListStartOffsets(ctx, topics...)
	} else {
		starts, err = adm.ListOffsetsAfterMilli(ctx, max(0, since.UnixMilli()), topics...)
	}
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %v: %w", topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %v: %w", topics, err)
	}
	out := map[tp]span{}
	starts.Each(func(s kadm.ListedOffset) {
		e, _ := ends.Lookup(s.Topic, s.Partition)
		if lerr := cmp.Or(listErr(s), listErr(e)); lerr != nil {
			err = cmp.Or(err, lerr)
		} else if s.Err == nil && e.Err == nil && s.Offset >= 0 && s.Offset < e.Offset {
			out[tp{s.Topic, s.Partition}] = span{s.Offset, e.Offset}
		}
	})
	return out, err
}

// listErr is the error of a listed partition; a topic that does not exist only means that
// there is nothing to read.
func listErr(o kadm.ListedOffset) error {
	if o.Err == nil || errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
		return nil
	}
	return fmt.Errorf("listing the offsets of %s[%d]: %w", o.Topic, o.Partition, o.Err)
}

// readCommitted calls keep with each committed record of spans, partition by partition in
// the order their transactions committed, and returns, for each partition, where a later
// read resumes: the end of its span, or the first record of a transaction still open there.
//
// It reads uncommitted, keeping control records, and settles transactions itself: a
// read-committed fetch stops at the last stable offset, and drops the records of aborted
// transactions without a trace, so a reader cannot tell that it has passed the end of its
// span (the last record below it may be an aborted one, and a transaction open on another
// producer holds the stable offset back for as long as it stays open). Read uncommitted,
// every offset below the end arrives, control records included, and nothing waits.
func readCommitted(ctx context.Context, opts []kgo.Opt, ss map[tp]span, keep func(*kgo.Record)) (map[tp]int64, error) {
	if len(ss) == 0 {
		return map[tp]int64{}, nil
	}
	start := map[string]map[int32]kgo.Offset{}
	parts := make(map[tp]*settler, len(ss))
	for k, s := range ss {
		if start[k.topic] == nil {
			start[k.topic] = map[int32]kgo.Offset{}
		}
		start[k.topic][k.p] = kgo.NewOffset().At(s.start)
		parts[k] = &settler{span: s, pending: map[int64][]*kgo.Record{}}
	}
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(start),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // retention may have deleted our start
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	left := len(parts)
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			ferr = cmp.Or(ferr, fetchErr(p))
			s := parts[tp{p.Topic, p.Partition}]
			if s == nil || s.done {
				return
			}
			if s.read(p.FetchPartition, keep) {
				left--
			}
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	resume := make(map[tp]int64, len(parts))
	for k, s := range parts {
		resume[k] = s.resume()
	}
	return resume, nil
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

// settler reads one partition's span and keeps a transaction's records until its control
// record says whether it committed.
type settler struct {
	span    span
	pending map[int64][]*kgo.Record // by producer id: records of transactions not yet ended
	done    bool
}

// read takes one fetch of the partition and reports whether the span has now been read.
func (s *settler) read(p kgo.FetchPartition, keep func(*kgo.Record)) bool {
	for _, r := range p.Records {
		if r.Offset >= s.span.end {
			s.done = true
			break
		}
		s.take(r, keep)
		if r.Offset >= s.span.end-1 {
			s.done = true
		}
	}
	if p.LogStartOffset >= s.span.end { // retention deleted the rest of the span
		s.done = true
	}
	return s.done
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
// still open at the end of the span, else the end.
func (s *settler) resume() int64 {
	at := s.span.end
	for _, rs := range s.pending {
		at = min(at, rs[0].Offset)
	}
	return at
}
