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

// RebuildOptions change what Rebuild reads.
type RebuildOptions struct {
	// Snapshot is the path of a snapshot (see WriteSnapshot) to start from: then only the
	// records Kafka received since it are read. Empty, missing or unusable: the whole window
	// is read.
	Snapshot string
	// Progress, if set, is called after each fetch with the records read so far and the
	// records to read.
	Progress func(read, total int64)
	// ClientOpts connect the short-lived client that reads the records; empty: cl.Opts().
	// Pass the connection's base options when other clients may be built from cl.Opts() at
	// the same time: franz-go's client constructor writes to the compression option it is
	// given, so two constructors sharing one race.
	ClientOpts []kgo.Opt
}

// RebuildStats tell what a rebuild did.
type RebuildStats struct {
	IDs          int       // ids restored
	Records      int64     // records read from Kafka
	FromSnapshot int       // snapshot entries read; 0 when no snapshot was used
	SnapshotErr  error     // why the named snapshot was not used
	Reread       []string  // the groups the snapshot could not fill, read from Kafka over their window
	Since        time.Time // records were read from this time on
}

// Rebuild repopulates s at start from the records already in Kafka within the windows before
// now, so that a restarted bridge still answers redeliveries "duplicate". For each partition
// of topics it reads from the first offset at or after now minus the longest window (or the
// snapshot's time, with a usable snapshot that fills every group; else the start of the
// longest window among the groups it could not fill) up to the end offset listed at the start, and marks
// (header "source", key or KeyHeader) seen at the record's timestamp when that lies within the source's
// window. Records with no key or no source header are skipped; topics that do not exist are
// fine. At most s's maxIDs marks are held while reading (the newest), so the rebuild needs no
// more memory than the Store it fills. The range is read on a short-lived client built from
// o.ClientOpts or cl.Opts(), so cl must be a producer or admin client, not a group consumer;
// cl itself only lists offsets.
func Rebuild(ctx context.Context, cl *kgo.Client, topics []string, now time.Time, s *Store, o RebuildOptions) (RebuildStats, error) {
	st := RebuildStats{Since: now.Add(-s.longestWindow())}
	if o.Snapshot != "" {
		l, err := s.loadSnapshot(o.Snapshot, now)
		if st.SnapshotErr = err; err == nil {
			st.FromSnapshot, st.IDs, st.Reread, st.Since = l.entries, l.ids, l.reread, maxTime(st.Since, l.since)
		}
	}
	kept := newest{limit: s.maxIDs}
	if err := readInto(ctx, cl, topics, now, s, st.Since, &kept, &st, o); err != nil {
		return st, err
	}
	st.IDs += s.restore(kept.sorted())
	return st, nil
}

func readInto(ctx context.Context, cl *kgo.Client, topics []string, now time.Time, s *Store, since time.Time,
	kept *newest, st *RebuildStats, o RebuildOptions) error {
	if len(topics) == 0 {
		return nil // kadm would list every topic
	}
	spans, err := listSpans(ctx, kadm.NewClient(cl), topics, since)
	if err != nil || len(spans) == 0 {
		return err
	}
	r := &reader{spans: spans, left: len(spans), progress: o.Progress, keep: func(rec *kgo.Record) {
		if m, ok := s.markOf(rec, now); ok {
			kept.add(m)
		}
	}}
	for _, sp := range spans {
		r.total += sp.end - sp.start
	}
	if len(o.ClientOpts) == 0 {
		o.ClientOpts = cl.Opts()
	}
	err = r.readAll(ctx, o.ClientOpts)
	st.Records = r.done
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
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

// readAll consumes exactly r's spans. The client reads uncommitted (up to the high watermark
// that ListEndOffsets returned) and keeps control records, so every offset below the end is
// delivered and each partition ends on the record at end-1.
func (r *reader) readAll(ctx context.Context, opts []kgo.Opt) error {
	rc, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(startOffsets(r.spans)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // retention may delete our start
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("dedup: rebuild client: %w", err)
	}
	defer rc.Close()
	for r.left > 0 {
		fs := rc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.take(fs); err != nil {
			return err
		}
		if r.progress != nil {
			r.progress(r.done, r.total)
		}
		rc.PauseFetchPartitions(r.finished)
	}
	return nil
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

// reader hands the records of fetches to keep until every span has been read to its end.
type reader struct {
	spans       map[partition]span
	left        int
	keep        func(*kgo.Record)
	done, total int64
	progress    func(read, total int64)
	finished    map[string][]int32
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
		r.done++
		r.keep(rec)
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

// KeyHeader is the record header holding the key a record's delivery was deduplicated on,
// when that is not the record's key (its event id): the digest of a content-keyed source's
// delivery (see providers.ContentKeyed), on its event record or its quarantined copy.
const KeyHeader = "dedup-key"

// markOf returns the mark of a record accepted within its source's window before now: of
// its KeyHeader when it has one, else of its key.
func (s *Store) markOf(r *kgo.Record, now time.Time) (mark, bool) {
	if r.Attrs.IsControl() {
		return mark{}, false
	}
	var source, key []byte = nil, r.Key
	for _, h := range r.Headers {
		switch h.Key {
		case "source":
			source = h.Value
		case KeyHeader:
			key = h.Value
		}
	}
	if len(source) == 0 || len(key) == 0 {
		return mark{}, false
	}
	g := s.groupOf(string(source))
	if !r.Timestamp.After(now.Add(-time.Duration(g.window))) {
		return mark{}, false
	}
	return mark{stamp{s.key(string(source), string(key)), r.Timestamp.UnixNano()}, g.index}, true
}

// longestWindow is the window of the group that remembers longest.
func (s *Store) longestWindow() time.Duration {
	var w int64
	for _, g := range s.groups {
		w = max(w, g.window)
	}
	return time.Duration(w)
}

// restore marks ms, oldest first so that each FIFO stays in time order, and returns how many
// ids were new.
func (s *Store) restore(ms []mark) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range ms {
		if s.markSeen(s.groups[m.g], m.st.k, m.st.at) {
			n++
		}
	}
	return n
}
