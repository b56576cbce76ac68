package dedup

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Scan hands keep every record of topics whose timestamp is at or after since, up to the
// end offsets listed when it starts, as Rebuild reads them (topics that do not exist are
// fine), and returns how many it read. The records are read on a short-lived client built
// from clientOpts, or cl.Opts() when empty; cl itself only lists offsets. The spool uses it
// to find, after a restart, which of its records Kafka has already.
func Scan(ctx context.Context, cl *kgo.Client, topics []string, since time.Time, clientOpts []kgo.Opt, keep func(*kgo.Record)) (int64, error) {
	if len(topics) == 0 {
		return 0, nil
	}
	spans, err := listSpans(ctx, kadm.NewClient(cl), topics, since)
	if err != nil || len(spans) == 0 {
		return 0, err
	}
	r := &reader{spans: spans, left: len(spans), keep: keep}
	if len(clientOpts) == 0 {
		clientOpts = cl.Opts()
	}
	err = r.readAll(ctx, clientOpts)
	return r.done, err
}
