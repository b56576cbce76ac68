package main

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/topics"
)

// The micro-benchmarks time each step of the request path on one typical delivery: a
// signed, 600-byte CodivUpload post.published, with its headers in the type the ingress
// reads them from. Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/...
//
// BenchmarkProduce uses the broker in BRIDGE_TEST_KAFKA if set, else an in-process kfake.

var benchSecret = []byte("cdv_whsec_bench_0123456789abcdef")

func typical(tb testing.TB) (*requestPath, delivery) {
	tb.Helper()
	p, err := newRequestPath(benchSecret)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	body := makeBody(r, "evt_01J9Z8K2M4", event.PostPublished, time.Date(2026, 5, 8, 14, 0, 42, 0, time.UTC), 600)
	return p, request("evt_01J9Z8K2M4", event.PostPublished, body, sign(benchSecret, body))
}

var benchNow = time.Date(2026, 5, 8, 14, 0, 43, 0, time.UTC)

func BenchmarkVerify(b *testing.B) {
	p, d := typical(b)
	h := requestHeader(&d)
	b.SetBytes(int64(len(d.body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.preset.Verify(h, d.body, p.keys, benchNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	p, d := typical(b)
	h := requestHeader(&d)
	b.SetBytes(int64(len(d.body)))
	b.ReportAllocs()
	var ev event.Event
	for b.Loop() {
		if err := p.preset.Normalize(h, d.body, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDedup reserves an id and marks it accepted, as a delivery seen for the first
// time does; and answers a redelivery of an accepted id.
func BenchmarkDedup(b *testing.B) {
	const n = 1 << 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "evt_" + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		s := dedup.New(24*time.Hour, 10_000_000, dedup.Options{})
		i := 0
		for b.Loop() {
			if i == n {
				s, i = dedup.New(24*time.Hour, 10_000_000, dedup.Options{}), 0
			}
			dup, done, err := s.Reserve(ctx, sourceName, ids[i], benchNow)
			if err != nil || dup {
				b.Fatal(dup, err)
			}
			done(true)
			i++
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		b.ReportAllocs()
		s := dedup.New(24*time.Hour, 10_000_000, dedup.Options{})
		_, done, _ := s.Reserve(ctx, sourceName, ids[0], benchNow)
		done(true)
		for b.Loop() {
			if dup, _, _ := s.Reserve(ctx, sourceName, ids[0], benchNow); !dup {
				b.Fatal("not a duplicate")
			}
		}
	})
}

// BenchmarkEncode encodes the normalized event into a fresh buffer, as the ingress does.
func BenchmarkEncode(b *testing.B) {
	p, d := typical(b)
	var ev event.Event
	if err := p.event(requestHeader(&d), d.body, benchNow, &ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.encode(&ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotPath is the ingress's work on one delivery between reading the body and
// reserving its id: verify, normalize into a reused event, set the envelope, encode.
func BenchmarkHotPath(b *testing.B) {
	p, d := typical(b)
	h := requestHeader(&d)
	b.SetBytes(int64(len(d.body)))
	b.ReportAllocs()
	var ev event.Event
	for b.Loop() {
		ev = event.Event{}
		if err := p.event(h, d.body, benchNow, &ev); err != nil {
			b.Fatal(err)
		}
		if _, err := p.encode(&ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProduce produces the delivery's record with the bridge's producer options and
// its produce-and-wait, one at a time ("sync") and from 16 goroutines per CPU at once
// ("concurrent", where franz-go batches records waiting together).
func BenchmarkProduce(b *testing.B) {
	p, d := typical(b)
	k := config.Default().Kafka
	k.Brokers, k.TopicPrefix = kafkatest.Brokers(b), kafkatest.Prefix(b)
	cl, err := kgo.NewClient(producer.Options(k)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if err := topics.Ensure(ctx, cl, k, nil, topics.Events(k.TopicPrefix)...); err != nil {
		b.Fatal(err)
	}
	defer adm.DeleteTopics(ctx, event.Topics(k.TopicPrefix)...)
	kp := producer.New(cl, k.ProduceTimeout.D())
	newRecord := func(tb testing.TB) *kgo.Record {
		rec, err := p.record(&d, k.TopicPrefix, benchNow)
		if err != nil {
			tb.Fatal(err)
		}
		return rec
	}
	b.Run("sync", func(b *testing.B) {
		rec := newRecord(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := kp.Produce(rec, func(error) {}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("concurrent", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			rec := newRecord(b)
			for pb.Next() {
				if err := kp.Produce(rec, func(error) {}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
