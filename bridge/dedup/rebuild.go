package dedup

import (
	"context"
	"time"

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
// fine.
//
// Only committed records count: the id of an aborted transaction's record (a replay killed
// or fenced midway) is not in Kafka, and a delivery of it must not be refused as a
// duplicate. Transactions are settled as the records are read (see package committed), so
// that a transaction another producer holds open never holds a start back; its records,
// neither committed nor aborted yet, are not counted (if it commits, a delivery of one of
// its ids meanwhile is produced again: a duplicate, never a loss).
//
// At most s's maxIDs marks are held while reading (the newest), so the rebuild needs no
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
	n, err := scan(ctx, cl, topics, since, o.ClientOpts, func(rec *kgo.Record) {
		if m, ok := s.markOf(rec, now); ok {
			kept.add(m)
		}
	}, o.Progress)
	st.Records = n
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

// KeyHeader is the record header holding the key a record's delivery was deduplicated on,
// when that is not the record's key (its event id): the digest of a content-keyed source's
// delivery (see providers.ContentKeyed), on its event record or its quarantined copy.
const KeyHeader = "dedup-key"

// markOf returns the mark of a record accepted within its source's window before now: of
// its KeyHeader when it has one, else of its key.
func (s *Store) markOf(r *kgo.Record, now time.Time) (mark, bool) {
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
