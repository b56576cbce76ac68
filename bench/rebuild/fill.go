package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/topics"
	"github.com/socialbridge/bridge/schemas"
)

// span is how far back the records' timestamps go: within the 24 h window rebuilt.
const span = 23 * time.Hour

// fill creates the topics and produces n records as the bridge writes them, with timestamps
// spread evenly over the last span.
func fill(ctx context.Context, cl *kgo.Client, adm *kadm.Client, k config.Kafka, n int) error {
	if err := topics.Ensure(ctx, cl, k, nil, topics.Events(k.TopicPrefix)...); err != nil {
		return err
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		return err
	}
	logf("producing %d records to %s*", n, k.TopicPrefix)
	start, now := time.Now(), time.Now()
	r := rand.New(rand.NewPCG(uint64(n), 1))
	var mu sync.Mutex
	var firstErr error
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
		}
	}
	for i := range n {
		rec, err := record(enc, r, k.TopicPrefix, i, now.Add(-span+time.Duration(i)*(span/time.Duration(n))))
		if err != nil {
			return err
		}
		cl.Produce(ctx, rec, promise)
		if i%1_000_000 == 999_999 {
			logf("%d produced, %.0f/s", i+1, float64(i+1)/time.Since(start).Seconds())
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	logf("produced %d in %s", n, time.Since(start).Round(time.Second))
	return firstErr
}

var types = []string{event.PostPublished, event.PostPublished, event.PostPublished, event.PostFailed, event.PostRetry, event.PostTokenExpired}

// record is one record as the bridge would produce it for a CodivUpload delivery.
func record(enc schemas.Encoder, r *rand.Rand, prefix string, i int, at time.Time) (*kgo.Record, error) {
	id := "evt_rebuild_" + strconv.Itoa(i)
	typ := types[r.IntN(len(types))]
	body := fmt.Appendf(nil, `{"event":%q,"id":%q,"timestamp":%q,"data":{"post_id":"post_%08x","profile_name":"main","platform":"instagram","platform_post_url":"https://www.instagram.com/p/%s"}}`,
		typ, id, at.UTC().Format(time.RFC3339), r.Uint32(), token(r, 300+r.IntN(401)))
	post, profile, platform := fmt.Sprintf("post_%08x", r.Uint32()), "main", "instagram"
	ev := &event.Event{ID: id, Type: typ, Source: "codivupload", Provider: "codivupload", OccurredAt: at, ReceivedAt: at,
		PostID: &post, ProfileName: &profile, Platform: &platform, Raw: body}
	value, err := enc.Encode(make([]byte, 0, len(body)+512), ev)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{
		Topic: event.Topic(prefix, typ), Key: []byte(id), Value: value, Timestamp: at,
		Headers: []kgo.RecordHeader{
			{Key: "event-type", Value: []byte(typ)},
			{Key: "source", Value: []byte("codivupload")},
			{Key: "provider", Value: []byte("codivupload")},
			{Key: "received-at", Value: at.UTC().AppendFormat(nil, time.RFC3339Nano)},
		},
	}, nil
}

func token(r *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}
