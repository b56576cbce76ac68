package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/topics"
)

// directProducer is the Kafka-side ceiling: a franz-go client with the bridge's producer
// options, producing the records the bridge would build, with no HTTP in front. It produces
// through the bridge's own produce-and-wait (producer.Kafka), so that the only difference
// from the bridge is the ingress: franz-go's ProduceSync would behave differently with a
// linger, which it cuts short.
type directProducer struct {
	cl   *kgo.Client
	p    *producer.Kafka
	k    config.Kafka
	path *requestPath
}

func newDirectProducer(ctx context.Context, k config.Kafka, path *requestPath) (*directProducer, error) {
	cl, err := kgo.NewClient(producer.Options(k)...)
	if err != nil {
		return nil, err
	}
	if err := topics.Ensure(ctx, cl, k, nil, topics.Events(k.TopicPrefix)...); err != nil {
		cl.Close()
		return nil, err
	}
	return &directProducer{cl: cl, p: producer.New(cl, k.ProduceTimeout.D()), k: k, path: path}, nil
}

func (p *directProducer) close() { p.cl.Close() }

// records builds the records of ds, as the bridge builds them, before a phase starts.
func (p *directProducer) records(ds []delivery) ([]*kgo.Record, error) {
	now := time.Now()
	recs := make([]*kgo.Record, len(ds))
	for i := range ds {
		rec, err := p.path.record(&ds[i], p.k.TopicPrefix, now)
		if err != nil {
			return nil, fmt.Errorf("record of %s: %w", ds[i].id, err)
		}
		recs[i] = rec
	}
	return recs, nil
}

// sender produces recs one at a time per goroutine, each waiting for its acknowledgement
// as a request of the bridge does.
func (p *directProducer) sender(recs []*kgo.Record) sender {
	return func() (func(int, time.Time) result, func()) {
		send := func(i int, due time.Time) result {
			// The bridge stamps each record with the time it was received; franz-go's
			// delivery timeout counts from the timestamp, so a reused record needs a new one.
			recs[i].Timestamp = time.Now()
			if err := p.p.Produce(recs[i], func(error) {}); err != nil {
				return result{outcome: sendError, latency: time.Since(due)}
			}
			return result{outcome: accepted, latency: time.Since(due)}
		}
		return send, func() {}
	}
}

// cycle is sender over recs for any number of items: item i sends recs[i % len(recs)].
func (p *directProducer) cycle(recs []*kgo.Record) sender {
	send := p.sender(recs)
	return func() (func(int, time.Time) result, func()) {
		f, done := send()
		return func(i int, due time.Time) result { return f(i%len(recs), due) }, done
	}
}
