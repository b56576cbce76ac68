package dedup

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

// Rebuild repopulates s at start from the records already in Kafka within window before now,
// so that a restarted bridge still answers redeliveries "duplicate". For each partition of
// topics it reads from the first offset at or after now-window up to the end offset listed at
// the start, and marks (header "source", key) seen at the record's timestamp. Records with no
// key or no source header are skipped; topics that do not exist are fine. It returns how many
// ids it restored. The range is read on a short-lived client built from cl.Opts(), so cl must
// be a producer or admin client, not a group consumer; cl itself only lists offsets.
func Rebuild(ctx context.Context, cl *kgo.Client, topics []string, window time.Duration, now time.Time, s *Store) (n int, err error) {
	if len(topics) == 0 {
		return 0, nil // kadm would list every topic
	}
	cutoff := now.Add(-window)
	spans, err := listSpans(ctx, kadm.NewClient(cl), topics, cutoff)
	if err != nil || len(spans) == 0 {
		return 0, err
	}
	stamps, err := readSpans(ctx, cl.Opts(), spans, func(r *kgo.Record) (stamp, bool) {
		return s.stampOf(r, cutoff)
	})
	if err != nil {
		return 0, err
	}
	return s.restore(stamps), nil
}

// partition names one topic partition.
type partition struct {
	topic string
	p     int32
}

// span is the offsets [start, end) of a partition to read.
type span struct{ start, end int64 }

// listSpans returns the non-empty offset range of every partition of topics since cutoff.
func listSpans(ctx context.Context, adm *kadm.Client, topics []string, cutoff time.Time) (map[partition]span, error) {
	// A negative millisecond would ask for a special offset (-1 latest, -2 earliest).
	starts, err := adm.ListOffsetsAfterMilli(ctx, max(0, cutoff.UnixMilli()), topics...)
	if err != nil {
		return nil, fmt.Errorf("dedup: list offsets after %s: %w", cutoff.Format(time.RFC3339), err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("dedup: list end offsets: %w", err)
	}
	spans := make(map[partition]span)
	starts.Each(func(start kadm.ListedOffset) {
		end, _ := ends.Lookup(start.Topic, start.Partition)
		if e := cmp.Or(listErr(start), listErr(end)); e != nil {
			err = cmp.Or(err, e)
		} else if start.Err == nil && end.Err == nil && start.Offset >= 0 && start.Offset < end.Offset {
			spans[partition{start.Topic, start.Partition}] = span{start.Offset, end.Offset}
		}
	})
	return spans, err
}

// listErr returns the error of a listed partition, except that a topic that does not exist
// (or vanished between the two listings) only means nothing to read.
func listErr(o kadm.ListedOffset) error {
	if o.Err == nil || errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
		return nil
	}
	return fmt.Errorf("dedup: list offsets of %s[%d]: %w", o.Topic, o.Partition, o.Err)
}

// readSpans consumes exactly spans and returns the stamps that keep accepts. The client reads
// uncommitted (up to the high watermark that ListEndOffsets returned) and keeps control
// records, so every offset below the end is delivered and each partition ends on the record
// at end-1.
func readSpans(ctx context.Context, opts []kgo.Opt, spans map[partition]span, keep func(*kgo.Record) (stamp, bool)) ([]stamp, error) {
	rc, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(startOffsets(spans)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // retention may delete our start
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("dedup: rebuild client: %w", err)
	}
	defer rc.Close()
	r := reader{spans: spans, left: len(spans), keep: keep}
	for r.left > 0 {
		fs := rc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.take(fs); err != nil {
			return nil, err
		}
		rc.PauseFetchPartitions(r.finished)
	}
	return r.stamps, nil
}

func startOffsets(spans map[partition]span) map[string]map[int32]kgo.Offset {
	offsets := make(map[string]map[int32]kgo.Offset)
	for tp, sp := range spans {
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = make(map[int32]kgo.Offset)
		}
		offsets[tp.topic][tp.p] = kgo.NewOffset().At(sp.start)
	}
	return offsets
}

// reader collects stamps from fetches until every span has been read to its end.
type reader struct {
	spans    map[partition]span
	left     int
	keep     func(*kgo.Record) (stamp, bool)
	stamps   []stamp
	finished map[string][]int32
}

func (r *reader) take(fs kgo.Fetches) error {
	var err error
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		err = cmp.Or(err, fetchErr(p))
		if len(p.Records) > 0 {
			r.read(partition{p.Topic, p.Partition}, p.Records)
		}
	})
	return err
}

func (r *reader) read(tp partition, recs []*kgo.Record) {
	sp, ok := r.spans[tp]
	if !ok {
		return // finished already; its fetch was buffered before the pause
	}
	for _, rec := range recs {
		if rec.Offset >= sp.end {
			break
		}
		if st, ok := r.keep(rec); ok {
			r.stamps = append(r.stamps, st)
		}
	}
	if recs[len(recs)-1].Offset >= sp.end-1 {
		delete(r.spans, tp)
		r.left--
		if r.finished == nil {
			r.finished = make(map[string][]int32)
		}
		r.finished[tp.topic] = append(r.finished[tp.topic], tp.p)
	}
}

// fetchErr returns a fetch error that stops the rebuild. Data loss is only a notice: the
// client has skipped ahead to what is left, which is all there is to read.
func fetchErr(p kgo.FetchTopicPartition) error {
	var loss *kgo.ErrDataLoss
	if p.Err == nil || errors.As(p.Err, &loss) {
		return nil
	}
	return fmt.Errorf("dedup: read %s[%d]: %w", p.Topic, p.Partition, p.Err)
}

// stampOf returns the stamp of an id record accepted after cutoff.
func (s *Store) stampOf(r *kgo.Record, cutoff time.Time) (stamp, bool) {
	if r.Attrs.IsControl() || len(r.Key) == 0 || !r.Timestamp.After(cutoff) {
		return stamp{}, false
	}
	for _, h := range r.Headers {
		if h.Key == "source" && len(h.Value) > 0 {
			return stamp{s.key(string(h.Value), string(r.Key)), r.Timestamp.UnixNano()}, true
		}
	}
	return stamp{}, false
}

// restore marks stamps seen oldest first, so the FIFO stays in time order, and returns how
// many ids were new.
func (s *Store) restore(stamps []stamp) int {
	slices.SortStableFunc(stamps, func(a, b stamp) int { return cmp.Compare(a.at, b.at) })
	n := 0
	for _, st := range stamps {
		if s.mark(st.k, st.at) {
			n++
		}
	}
	return n
}
