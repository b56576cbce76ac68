package dedup

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/committed"
)

// Scan hands keep every committed record of topics whose timestamp is at or after since, up
// to the end offsets listed when it starts, as Rebuild reads them (topics that do not exist
// are fine; an aborted transaction's records, and those of one still open, are not handed
// on), and returns how many offsets it read. The records are read on a short-lived client
// built from clientOpts, or cl.Opts() when empty; cl itself only lists offsets. The spool
// uses it to find, after a restart, which of its records Kafka has already.
func Scan(ctx context.Context, cl *kgo.Client, topics []string, since time.Time, clientOpts []kgo.Opt, keep func(*kgo.Record)) (int64, error) {
	return scan(ctx, cl, topics, since, clientOpts, keep, nil)
}

func scan(ctx context.Context, cl *kgo.Client, topics []string, since time.Time, clientOpts []kgo.Opt,
	keep func(*kgo.Record), progress func(read, total int64)) (int64, error) {
	rgs, err := committed.Ranges(ctx, kadm.NewClient(cl), since, topics...)
	if err != nil || len(rgs) == 0 {
		return 0, wrap(err)
	}
	if len(clientOpts) == 0 {
		clientOpts = cl.Opts()
	}
	var n int64
	_, err = committed.Read(ctx, clientOpts, rgs, keep, func(read, total int64) {
		n = read
		if progress != nil {
			progress(read, total)
		}
	})
	return n, wrap(err)
}

func wrap(err error) error {
	if err != nil {
		return fmt.Errorf("dedup: %w", err)
	}
	return nil
}
