package redrive

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
)

// receivedAt is when the quarantined deliveries of the tests came: when the tests started,
// as the ingress stamps a record with its arrival. Not a fixed date: a record whose
// timestamp is older than the topic's retention (the broker's default, 7 days, for the
// topics tests create) is deleted by the broker's next retention check, which runs every 5
// minutes and would empty the quarantine in the middle of whichever test it met.
var receivedAt = time.Now().UTC().Truncate(time.Millisecond)

// quarantined is a record of the quarantine topic as the ingress writes it: the raw body,
// with the source, provider, reason, content type and arrival in headers, and extra
// headers after them.
func quarantined(prefix string, partition int32, source, provider, body string, extra ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Topic: event.QuarantineTopic(prefix), Partition: partition, Value: []byte(body), Timestamp: receivedAt,
		Headers: append([]kgo.RecordHeader{
			{Key: "source", Value: []byte(source)},
			{Key: "provider", Value: []byte(provider)},
			{Key: "received-at", Value: []byte(receivedAt.Format(time.RFC3339Nano))},
			{Key: "reason", Value: []byte("unknown event type (an older bridge)")},
			{Key: "content-type", Value: []byte("application/json")},
		}, extra...)}
}

func codivBody(typ, id string) string {
	return fmt.Sprintf(`{"event":%q,"id":%q,"timestamp":"2026-05-08T14:00:40Z","data":{"post_id":"post_%s","profile_name":"main","platform":"instagram"}}`, typ, id, id)
}

// produceAsIngress writes rs as the ingress does: idempotent, not in a transaction.
func produceAsIngress(t *testing.T, brokers []string, rs ...*kgo.Record) {
	t.Helper()
	topics := map[string]bool{}
	for _, r := range rs {
		topics[r.Topic] = true
	}
	for topic := range topics {
		createTopics(t, brokers, topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())).ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// accepted is an event record as the ingress writes it, received now.
func accepted(t *testing.T, prefix string, ev *event.Event) *kgo.Record {
	t.Helper()
	enc, _ := schemas.NewSingleObject()
	v, err := enc.Encode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: event.Topic(prefix, ev.Type), Key: []byte(ev.ID), Value: v, Timestamp: time.Now(),
		Headers: []kgo.RecordHeader{{Key: "event-type", Value: []byte(ev.Type)}, {Key: "source", Value: []byte(ev.Source)}}}
}

func newTestQuarantine(t *testing.T, brokers []string, prefix string) *Quarantine {
	t.Helper()
	q, err := NewQuarantine(testConfig(t, brokers, prefix), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// seedQuarantine writes the deliveries the replay tests share: at partition 0,
//
//	0 a codivupload post.published evt_q1, which normalizes today
//	1 a codivupload body that still does not (malformed JSON)
//	2 a codivupload post.failed evt_q2, already accepted by the bridge (in post.failed)
//	3 evt_q1 again: a second quarantined delivery of the same event
//	4 a standard-webhooks delivery whose request's webhook-id was not kept: no event id
//	5 the same with request-header-webhook-id kept: msg_sw1
//	6 a delivery of a source no longer configured
func seedQuarantine(t *testing.T, brokers []string, prefix string) {
	t.Helper()
	sw := `{"type":"post.published","timestamp":"2026-05-08T14:00:00Z","data":{"post_id":"p_1","platform":"instagram"}}`
	done := failedPost("evt_q2", "timeout")
	done.Source = "codiv"
	produceAsIngress(t, brokers, accepted(t, prefix, done))
	produceAsIngress(t, brokers,
		quarantined(prefix, 0, "codiv", "codivupload", codivBody("post.published", "evt_q1")),
		quarantined(prefix, 0, "codiv", "codivupload", `{"event":"post.published",`),
		quarantined(prefix, 0, "codiv", "codivupload", codivBody("post.failed", "evt_q2")),
		quarantined(prefix, 0, "codiv", "codivupload", codivBody("post.published", "evt_q1")),
		quarantined(prefix, 0, "acme", "standard-webhooks", sw),
		quarantined(prefix, 0, "acme", "standard-webhooks", sw, kgo.RecordHeader{Key: "request-header-webhook-id", Value: []byte("msg_sw1")}),
		quarantined(prefix, 0, "gone", "codivupload", codivBody("post.published", "evt_gone")),
	)
}

// TestQuarantineList: each delivery is listed with what the ingress knew and what today's
// presets make of it.
func TestQuarantineList(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seedQuarantine(t, brokers, prefix)
	ds, err := newTestQuarantine(t, brokers, prefix).List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 7 {
		t.Fatalf("listed %d deliveries, want 7", len(ds))
	}
	d := ds[0]
	if d.Source != "codiv" || d.Provider != "codivupload" || !d.ReceivedAt.Equal(receivedAt) || d.Replayed || !d.Normalizes ||
		len(d.Events) != 1 || d.Events[0] != (Normal{"evt_q1", event.PostPublished}) || d.Reason == "" {
		t.Errorf("first delivery: %+v", d)
	}
	for i, want := range map[int]string{1: "", 4: "missing event id", 6: `source "gone" is not in the configuration`} {
		if ds[i].Normalizes || ds[i].Problem == "" || !strings.Contains(ds[i].Problem, want) {
			t.Errorf("delivery %d: normalizes %v, problem %q; want a problem saying %q", i, ds[i].Normalizes, ds[i].Problem, want)
		}
	}
	if !ds[5].Normalizes || ds[5].Events[0].EventID != "msg_sw1" {
		t.Errorf("delivery 5, with its request's webhook-id kept: %+v", ds[5])
	}
	if got, _ := newTestQuarantine(t, brokers, prefix).List(context.Background(), Filter{IDs: []string{"evt_q1"}}); len(got) != 2 {
		t.Errorf("--id evt_q1 listed %d deliveries, want 2", len(got))
	}
}

// TestReplay: a dry run produces nothing; a replay produces each event that now
// normalizes once (evt_q1 of two deliveries once, msg_sw1), not the one the bridge had
// accepted (evt_q2), as the ingress would have (key, headers, value with the original
// body and arrival); the deliveries whose events are in Kafka now are marked replayed;
// a second replay does nothing.
func TestReplay(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seedQuarantine(t, brokers, prefix)
	q := newTestQuarantine(t, brokers, prefix)
	ctx := context.Background()
	if _, _, err := q.Replay(ctx, Filter{IDs: []string{"evt_q1", "evt_nope"}}, false); err == nil {
		t.Fatal("a replay naming an id no delivery normalizes to succeeded")
	}
	res, steps, err := q.Replay(ctx, Filter{}, true)
	if err != nil || res != (ReplayResult{Replayed: 2, Skipped: 5}) || len(steps) != 7 || steps[0].Action != "replay" || steps[3].Reason == "" {
		t.Fatalf("dry run: %+v, %v\n%+v", res, err, steps)
	}
	if n := uncommitted(t, brokers, event.Topic(prefix, event.PostPublished)); n != 0 {
		t.Fatalf("after the dry run post.published holds %d records, want 0", n)
	}
	if res, _, err = q.Replay(ctx, Filter{}, false); err != nil || res != (ReplayResult{Replayed: 2, Skipped: 5}) {
		t.Fatalf("replay: %+v, %v; want 2 replayed, 5 skipped", res, err)
	}
	published := readTopic(t, brokers, event.Topic(prefix, event.PostPublished))
	if len(published) != 2 || string(published[0].Key) != "evt_q1" || string(published[1].Key) != "msg_sw1" {
		t.Fatalf("post.published holds %d records, want evt_q1 then msg_sw1", len(published))
	}
	checkReplayed(t, published[0], prefix)
	if n := len(readTopic(t, brokers, event.Topic(prefix, event.PostFailed))); n != 1 {
		t.Errorf("post.failed holds %d records, want 1: evt_q2 was accepted before and must not be produced again", n)
	}
	ds, _ := q.List(ctx, Filter{})
	for i, want := range []bool{true, false, true, true, false, true, false} {
		if ds[i].Replayed != want {
			t.Errorf("delivery %d replayed: %v, want %v", i, ds[i].Replayed, want)
		}
	}
	if res, _, err = q.Replay(ctx, Filter{}, false); err != nil || res != (ReplayResult{Skipped: 7}) {
		t.Errorf("second replay: %+v, %v; want all 7 skipped", res, err)
	}
}

// checkReplayed checks that r carries the first seeded delivery as the ingress would have
// produced it.
func checkReplayed(t *testing.T, r *kgo.Record, prefix string) {
	t.Helper()
	for k, want := range map[string]string{"event-type": "post.published", "source": "codiv", "provider": "codivupload",
		"received-at": receivedAt.Format(time.RFC3339Nano), HeaderReplayedFromPartition: "0", HeaderReplayedFromOffset: "0"} {
		if got := kafkatest.Header(r, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	dec, _ := schemas.NewSingleObject()
	var ev event.Event
	if err := dec.Decode(r.Value, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ID != "evt_q1" || ev.Source != "codiv" || !ev.ReceivedAt.Equal(receivedAt) || string(ev.Raw) != codivBody("post.published", "evt_q1") ||
		ev.PostID == nil || *ev.PostID != "post_evt_q1" || ev.OccurredAt.IsZero() {
		t.Errorf("replayed event: %+v", ev)
	}
	if time.Since(r.Timestamp) > time.Hour {
		t.Errorf("record timestamp %s: want the replay's time", r.Timestamp)
	}
}

// TestReplayWithRedis: with dedup.store redis, the replay asks the bridge's Redis: an id
// the bridge accepted (seen there, though not in the event topic the replay could read) is
// not produced, and the id the replay produced is seen there afterwards, so that a bridge
// receiving it later answers "duplicate".
func TestReplayWithRedis(t *testing.T) {
	addr := testenv.Require(t, testenv.Redis)
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	produceAsIngress(t, brokers,
		quarantined(prefix, 0, "codiv", "codivupload", codivBody("post.published", "evt_r1")),
		quarantined(prefix, 0, "codiv", "codivupload", codivBody("post.published", "evt_r2")))
	cfg := testConfig(t, brokers, prefix)
	cfg.Dedup.Store, cfg.Dedup.Redis.Addr, cfg.Dedup.Redis.KeyPrefix = config.StoreRedis, addr, "test:"+prefix
	bridge := dedup.NewRedis(dedup.RedisOptions{Addr: addr, KeyPrefix: cfg.Dedup.Redis.KeyPrefix, Window: time.Hour, Lease: 10 * time.Second})
	t.Cleanup(func() { _ = bridge.Close(context.Background()) })
	_, done, err := bridge.Reserve(context.Background(), "codiv", "evt_r2", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done(true)
	q, err := NewQuarantine(cfg, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "evt_r2 seen in redis", func() bool { ok, _ := bridge.Seen(context.Background(), "codiv", "evt_r2"); return ok })
	res, _, err := q.Replay(context.Background(), Filter{}, false)
	if err != nil || res != (ReplayResult{Replayed: 1, Skipped: 1}) {
		t.Fatalf("replay: %+v, %v; want evt_r1 replayed, evt_r2 skipped", res, err)
	}
	if rs := readTopic(t, brokers, event.Topic(prefix, event.PostPublished)); len(rs) != 1 || string(rs[0].Key) != "evt_r1" {
		t.Errorf("post.published holds %d records, want evt_r1 alone", len(rs))
	}
	if ok, err := bridge.Seen(context.Background(), "codiv", "evt_r1"); !ok || err != nil {
		t.Errorf("evt_r1 not seen in redis after the replay (%v): a bridge would produce it again", err)
	}
}
