package committed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Ranges lists the offsets of topics' partitions to read: from the first record at or after
// since (the first record when since is zero) up to each partition's end offset now.
// Empty partitions, and topics that do not exist, are left out.
func Ranges(ctx context.Context, adm *kadm.Client, since time.Time, topics ...string) (map[Partition]Range, error) {
	if len(topics) == 0 {
		return map[Partition]Range{}, nil // kadm would list every topic
	}
	var starts kadm.ListedOffsets
	var err error
	if since.IsZero() {
		starts, err = adm.ListStartOffsets(ctx, topics...)
	} else {
		// A negative millisecond would ask for a special offset (-1 latest, -2 earliest).
		starts, err = adm.ListOffsetsAfterMilli(ctx, max(0, since.UnixMilli()), topics...)
	}
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %v: %w", topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %v: %w", topics, err)
	}
	out := map[Partition]Range{}
	starts.Each(func(s kadm.ListedOffset) {
		e, _ := ends.Lookup(s.Topic, s.Partition)
		if lerr := cmp.Or(listErr(s), listErr(e)); lerr != nil {
			err = cmp.Or(err, lerr)
		} else if s.Err == nil && e.Err == nil && s.Offset >= 0 && s.Offset < e.Offset {
			out[Partition{s.Topic, s.Partition}] = Range{s.Offset, e.Offset}
		}
	})
	return out, err
}

// listErr is the error of a listed partition; a topic that does not exist (or vanished
// between the two listings) only means that there is nothing to read.
func listErr(o kadm.ListedOffset) error {
	if o.Err == nil || errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
		return nil
	}
	return fmt.Errorf("listing the offsets of %s[%d]: %w", o.Topic, o.Partition, o.Err)
}
