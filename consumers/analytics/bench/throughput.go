package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/schemas"
)

// throughputResult is one consumer's median time to count all the events.
type throughputResult struct {
	name    string
	seconds []float64 // one per round
}

func (t throughputResult) median() float64 {
	s := slices.Clone(t.seconds)
	slices.Sort(s)
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
	defer adm.DeleteTopics(context.WithoutCancel(ctx), producer.Topics(cfg.Kafka.TopicPrefix)...)
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
		secs, err := bare(ctx, cfg, fmt.Sprintf("bare-%d", round), o)
		if err != nil {
			return err
		}
		results[0].seconds = append(results[0].seconds, secs)
		for i, db := range dbs {
			secs, err := consume(ctx, cfg, db, ends, o.timeout)
			if err != nil {
				return fmt.Errorf("%s: %w", db.kind, err)
			}
			results[i+1].seconds = append(results[i+1].seconds, secs)
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
	if err := producer.CreateTopics(ctx, adm, cfg.Kafka); err != nil {
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
		rec := &kgo.Record{Topic: producer.Topic(cfg.Kafka.TopicPrefix, ev.Type), Key: []byte(ev.ID), Value: v}
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
		topics = append(topics, producer.Topic(prefix, t))
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
// options and poll size as the analytics consumer, and nothing done with the records.
func bare(ctx context.Context, cfg config.Config, group string, o options) (float64, error) {
	var topics []string
	for _, t := range analytics.Types {
		topics = append(topics, producer.Topic(cfg.Kafka.TopicPrefix, t))
	}
	start := time.Now()
	cl, err := kgo.NewClient(append(kafkaconn.Options(cfg.Kafka),
		kgo.ConsumerGroup(cfg.Kafka.TopicPrefix+group), kgo.ConsumeTopics(topics...), kgo.DisableAutoCommit())...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for n := 0; n < o.events; {
		fetches := cl.PollRecords(ctx, analytics.DefaultMaxBatch)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("bare consumer: %d of %d records: %w", n, o.events, err)
		}
		n += fetches.NumRecords()
	}
	return time.Since(start).Seconds(), nil
}

// consume runs the analytics consumer on a fresh database of db's kind until the database's
// offsets reach ends, and returns the seconds from its Run (the database is open by then).
func consume(ctx context.Context, cfg config.Config, db database, ends map[store.TP]int64, timeout time.Duration) (float64, error) {
	dsn, err := db.fresh(ctx)
	if err != nil {
		return 0, err
	}
	cfg.Consumers.Analytics.Database = dsn
	cfg.Consumers.Analytics.Group = fmt.Sprintf("%sanalytics-%d", cfg.Kafka.TopicPrefix, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := analytics.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- s.Run(runCtx) }()
	defer func() { stop(); <-done }()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	for {
		offs, err := st.Offsets(ctx)
		if err != nil {
			return 0, err
		}
		if reached(offs, ends) {
			return time.Since(start).Seconds(), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("not all counted: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
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
