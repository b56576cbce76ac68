package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/analytics"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/topics"
	"github.com/socialbridge/bridge/schemas"
)

// pollSize is the records a poll takes, as the analytics consumer's polls do.
const pollSize = 10_000

// checkEvery is how often the analytics phases read the database's offsets to see whether
// everything is counted: the timing's resolution, a few percent of the bare consumer's time.
const checkEvery = 5 * time.Millisecond

// throughputResult is what one consumer measured, round by round.
type throughputResult struct {
	name   string
	rounds []phase
}

// phase is one consumer's round.
type phase struct {
	seconds float64 // from its start until every event is counted
	cpu     float64 // CPU seconds this process used meanwhile (user + system)
	batches int     // analytics: transactions committed (analytics_batch_seconds_count)
	inTx    float64 // analytics: seconds inside them (analytics_batch_seconds_sum)
}

// median is the round of median seconds.
func (t throughputResult) median() phase {
	s := slices.Clone(t.rounds)
	slices.SortFunc(s, func(a, b phase) int { return cmp.Compare(a.seconds, b.seconds) })
	return s[len(s)/2]
}

// throughput produces o.events events to fresh topics, then, each round, times a bare
// franz-go group consumer and the analytics consumer on each database reading them all,
// each in a group (and database) of its own, from the first record.
func throughput(ctx context.Context, o options, dbs []database, r *report) error {
	cfg := benchConfig(o.brokers, fmt.Sprintf("abench%d.", time.Now().UnixNano()))
	cl, err := kgo.NewClient(kafkaconn.Options(cfg.Kafka)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	defer adm.DeleteTopics(context.WithoutCancel(ctx), event.Topics(cfg.Kafka.TopicPrefix)...)
	if err := produceEvents(ctx, cl, adm, cfg, o); err != nil {
		return err
	}
	ends, err := endOffsets(ctx, adm, cfg.Kafka.TopicPrefix)
	if err != nil {
		return err
	}
	if o.profile != "" {
		stop, err := startProfile(o.profile)
		if err != nil {
			return err
		}
		defer stop()
	}
	results := []*throughputResult{{name: "bare franz-go consumer"}}
	for _, db := range dbs {
		results = append(results, &throughputResult{name: "analytics → " + db.kind})
	}
	for round := range o.rounds {
		p, err := bare(ctx, cfg, fmt.Sprintf("bare-%d", round), o)
		if err != nil {
			return err
		}
		results[0].rounds = append(results[0].rounds, p)
		for i, db := range dbs {
			p, err := consume(ctx, cfg, db, ends, o.timeout)
			if err != nil {
				return fmt.Errorf("%s: %w", db.kind, err)
			}
			results[i+1].rounds = append(results[i+1].rounds, p)
		}
	}
	r.throughput = results
	return nil
}

func benchConfig(brokers []string, prefix string) config.Config {
	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.TopicPrefix = prefix
	cfg.Consumers.Analytics.Listen = "127.0.0.1:0"
	return cfg
}

func produceEvents(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cfg config.Config, o options) error {
	if err := topics.Ensure(ctx, cl, cfg.Kafka, nil, topics.Events(cfg.Kafka.TopicPrefix)...); err != nil {
		return err
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	errs := make(chan error, 1)
	for i := range o.events {
		ev := benchEvent(rng, i, o.platforms, o.profiles, now)
		v, err := enc.Encode(nil, &ev)
		if err != nil {
			return err
		}
		rec := &kgo.Record{Topic: event.Topic(cfg.Kafka.TopicPrefix, ev.Type), Key: []byte(ev.ID), Value: v}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return fmt.Errorf("produce: %w", err)
	default:
		return nil
	}
}

func endOffsets(ctx context.Context, adm *kadm.Client, prefix string) (map[store.TP]int64, error) {
	var topics []string
	for _, t := range analytics.Types {
		topics = append(topics, event.Topic(prefix, t))
	}
	offs, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[store.TP]int64{}
	offs.Each(func(o kadm.ListedOffset) { out[store.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset })
	return out, nil
}

// bare reads every event with a plain franz-go group consumer: the same topics, client
// options (consumers.MemberOptions) and poll size as the analytics consumer, and nothing
// done with the records.
func bare(ctx context.Context, cfg config.Config, group string, o options) (phase, error) {
	var topics []string
	for _, t := range analytics.Types {
		topics = append(topics, event.Topic(cfg.Kafka.TopicPrefix, t))
	}
	start, cpu := time.Now(), cpuSeconds()
	cl, err := kgo.NewClient(append(consumers.MemberOptions(cfg.Kafka, cfg.Kafka.TopicPrefix+group, topics...), kgo.DisableAutoCommit())...)
	if err != nil {
		return phase{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for n := 0; n < o.events; {
		fetches := cl.PollRecords(ctx, pollSize)
		if err := ctx.Err(); err != nil {
			return phase{}, fmt.Errorf("bare consumer: %d of %d records: %w", n, o.events, err)
		}
		n += fetches.NumRecords()
	}
	return phase{seconds: time.Since(start).Seconds(), cpu: cpuSeconds() - cpu}, nil
}

// consume runs the analytics consumer on a fresh database of db's kind until the database's
// offsets reach ends, and returns the seconds from its Run (the database is open by then).
func consume(ctx context.Context, cfg config.Config, db database, ends map[store.TP]int64, timeout time.Duration) (phase, error) {
	dsn, err := db.fresh(ctx)
	if err != nil {
		return phase{}, err
	}
	cfg.Consumers.Analytics.Database = dsn
	cfg.Consumers.Analytics.Group = fmt.Sprintf("%sanalytics-%d", cfg.Kafka.TopicPrefix, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := analytics.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), analytics.Options{})
	if err != nil {
		return phase{}, err
	}
	start, cpu := time.Now(), cpuSeconds()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- s.Run(runCtx) }()
	defer func() { stop(); <-done }()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return phase{}, err
	}
	defer st.Close()
	for {
		offs, err := st.Offsets(ctx)
		if err != nil {
			return phase{}, err
		}
		if reached(offs, ends) {
			p := phase{seconds: time.Since(start).Seconds(), cpu: cpuSeconds() - cpu}
			// The batch's metrics are observed just after its transaction commits, so the
			// database can show the offsets a moment before /metrics shows the batch.
			for {
				if p.batches, p.inTx, err = batchMetrics(ctx, s.Addr()); !errors.Is(err, errNoBatches) {
					return p, err
				}
				select {
				case <-ctx.Done():
					return phase{}, fmt.Errorf("%w: %w", err, ctx.Err())
				case <-time.After(checkEvery):
				}
			}
		}
		select {
		case <-ctx.Done():
			return phase{}, fmt.Errorf("not all counted: %w", ctx.Err())
		case <-time.After(checkEvery):
		}
	}
}

// errNoBatches: the consumer's /metrics shows no batch committed yet.
var errNoBatches = errors.New("no analytics_batch_seconds in the consumer's /metrics")

// batchMetrics reads from the consumer's /metrics how many batches it committed and the
// seconds it spent in them.
func batchMetrics(ctx context.Context, addr string) (int, float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	var n, secs float64
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "analytics_batch_seconds_count "); ok {
			n, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if v, ok := strings.CutPrefix(line, "analytics_batch_seconds_sum "); ok {
			secs, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if n == 0 {
		return 0, 0, errNoBatches
	}
	return int(n), secs, nil
}

// cpuSeconds is the CPU time this process has used, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func reached(offs, ends map[store.TP]int64) bool {
	for tp, end := range ends {
		if end > 0 && offs[tp] < end {
			return false
		}
	}
	return true
}

func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
