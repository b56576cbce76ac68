package redrive

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

// githubSource is the generic preset set up as docs/providers.md has it for GitHub: the event
// id and type come from headers the signature does not cover, so the ingress deduplicates
// its deliveries on a digest of the body (providers.ContentKeyed).
var githubSource = config.Source{Name: "github", Provider: "hmac", Secrets: []string{"github-secret"}, HMAC: &config.HMAC{
	Header: "X-Hub-Signature-256", Prefix: "sha256=", Encoding: "hex", Signed: "{body}",
	ID: "header:X-GitHub-Delivery", Type: "header:X-GitHub-Event",
}}

// mapHeaders are request headers for a preset's DedupKey.
type mapHeaders map[string]string

func (h mapHeaders) Peek(name string) []byte {
	v, ok := h[name]
	if !ok {
		return nil
	}
	return []byte(v)
}

// githubQuarantined is a GitHub-style delivery of body under the unsigned delivery id,
// quarantined as the ingress does it: the two headers the preset reads kept, and the digest
// it was deduplicated on in the dedup-key header. It returns the record and the digest.
func githubQuarantined(t *testing.T, prefix, delivery, body string) (*kgo.Record, string) {
	t.Helper()
	p, err := providers.New(githubSource.Provider, githubSource.Settings())
	if err != nil {
		t.Fatal(err)
	}
	h := mapHeaders{"X-GitHub-Delivery": delivery, "X-GitHub-Event": event.PostPublished}
	key := p.(providers.ContentKeyed).DedupKey(h, []byte(body))
	return quarantined(prefix, 0, "github", "hmac", body,
		kgo.RecordHeader{Key: "request-header-x-github-delivery", Value: []byte(delivery)},
		kgo.RecordHeader{Key: "request-header-x-github-event", Value: []byte(event.PostPublished)},
		kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(key)}), key
}

// keyedAccepted is an event record of source as the ingress writes it when it deduplicated
// the event on key rather than its id.
func keyedAccepted(t *testing.T, prefix, source, typ, id, key string) *kgo.Record {
	t.Helper()
	ev := failedPost(id, "")
	ev.Type, ev.Source, ev.Provider = typ, source, "hmac"
	r := accepted(t, prefix, ev)
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(key)})
	return r
}

// TestReplayDedupsOnTheDeliveryKey: the deliveries of a source whose event id is not signed
// are deduplicated by the replay on the key the ingress uses (the digest of what is signed,
// and its part for a delivery of several events), not on the event id:
//
//	0 d-1, body B1: produced
//	1 d-2, body B1 again (a resend under a fresh unsigned id): a duplicate of 0, in the same run
//	2 d-3, body B2, whose digest the bridge accepted already: a duplicate
//	3 d-1, body B3 (another delivery sharing 0's unsigned id): produced, as the bridge would
//	4 d-4, body B1 again: a duplicate of 0, replayed by an earlier run
//	5 an X delivery of three parts keyed KX: the first ignored, the third accepted by the
//	  bridge already (KX/2); only the second is produced, carrying KX/1
//
// With the memory store the replay learns what the bridge accepted from the dedup-key
// headers of the event records. With Redis, from Redis, but for the digest of a delivery of
// one event: the quarantine claimed it there, so Redis has it seen whether or not it was
// accepted; it is reserved there, for the bridges to know of the replayed event, only when
// that claim has ended (k3's).
func TestReplayDedupsOnTheDeliveryKey(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testReplayKeys(t, false) })
	t.Run("redis", func(t *testing.T) { testReplayKeys(t, true) })
}

func testReplayKeys(t *testing.T, redis bool) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	cfg := testConfig(t, brokers, prefix)
	cfg.Sources = append(cfg.Sources, githubSource, config.Source{Name: "x", Provider: "x", Secrets: []string{"x-secret"}})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var bridge *dedup.Redis
	if redis {
		addr := testenv.Require(t, testenv.Redis)
		cfg.Dedup.Store, cfg.Dedup.Redis.Addr, cfg.Dedup.Redis.KeyPrefix = config.StoreRedis, addr, "test:"+prefix
		bridge = dedup.NewRedis(dedup.RedisOptions{Addr: addr, KeyPrefix: cfg.Dedup.Redis.KeyPrefix, Window: time.Hour, Lease: 10 * time.Second})
		t.Cleanup(func() { _ = bridge.Close(context.Background()) })
	}
	const (
		b1 = `{"action":"published","release":{"id":1}}`
		b2 = `{"action":"published","release":{"id":2}}`
		b3 = `{"action":"published","release":{"id":3}}`
		xb = `{"for_user_id":"3001969357","favorite_events":[{"id":"f1"}],"follow_events":[` +
			`{"type":"follow","created_timestamp":"1778248840000","target":{"id":"3001969357"},"source":{"id":"u1"}},` +
			`{"type":"follow","created_timestamp":"1778248841000","target":{"id":"3001969357"},"source":{"id":"u2"}}]}`
		kx = "signed_x" // as a content-keyed preset of several events per delivery would have it
	)
	q0, k1 := githubQuarantined(t, prefix, "d-1", b1)
	q1, _ := githubQuarantined(t, prefix, "d-2", b1)
	q2, k2 := githubQuarantined(t, prefix, "d-3", b2)
	q3, k3 := githubQuarantined(t, prefix, "d-1", b3)
	q4, _ := githubQuarantined(t, prefix, "d-4", b1)
	q5 := quarantined(prefix, 0, "x", "x", xb, kgo.RecordHeader{Key: dedup.KeyHeader, Value: []byte(kx)})
	produceAsIngress(t, brokers,
		keyedAccepted(t, prefix, "github", event.PostPublished, "d-0", k2),
		keyedAccepted(t, prefix, "x", event.FollowerGained, "other", kx+"/2"))
	produceAsIngress(t, brokers, q0, q1, q2, q3, q4, q5)
	if redis { // what the bridge did: quarantined each delivery's digest (k3's claim has ended), accepted k2 and kx/2
		for _, k := range []string{k1, k2} {
			markSeen(t, bridge, "github", k)
		}
		markSeen(t, bridge, "x", kx)
		markSeen(t, bridge, "x", kx+"/2")
	}
	q, err := NewQuarantine(cfg, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	res, steps, err := q.Replay(ctx, Filter{IDs: []string{"d-1", "d-2"}}, false)
	if err != nil || res != (ReplayResult{Replayed: 2, Skipped: 1}) {
		t.Errorf("replay of d-1 and d-2: %+v, %v; want 0 and 3 replayed, 1 skipped as a duplicate of 0\n%+v", res, err, steps)
	}
	if len(steps) == 3 && !slices.Equal(steps[1].Duplicates, []string{"d-2"}) {
		t.Errorf("delivery 1: %+v, want d-2 a duplicate", steps[1])
	}
	var xs ReplayStep
	for _, dry := range []bool{true, false} {
		res, steps, err = q.Replay(ctx, Filter{}, dry)
		if err != nil || res != (ReplayResult{Replayed: 1, Skipped: 5}) || len(steps) != 6 {
			t.Errorf("replay of the rest (dry run %v): %+v, %v; want the x delivery replayed, the rest skipped\n%+v", dry, res, err, steps)
			continue
		}
		xs = steps[5]
	}
	if len(xs.Produce) != 1 || len(xs.Duplicates) != 1 {
		t.Errorf("the x delivery: %+v, want one event produced and one duplicate", xs)
	}

	published := readTopic(t, brokers, event.Topic(prefix, event.PostPublished))
	var keys []string
	for _, r := range published {
		if kafkatest.Header(r, HeaderReplayedFromOffset) != "" {
			keys = append(keys, string(r.Key)+" "+kafkatest.Header(r, dedup.KeyHeader))
		}
	}
	if want := []string{"d-1 " + k1, "d-1 " + k3}; !slices.Equal(keys, want) {
		t.Errorf("replayed to post.published: %q, want %q", keys, want)
	}
	var gained []string
	for _, r := range readTopic(t, brokers, event.Topic(prefix, event.FollowerGained)) {
		if kafkatest.Header(r, HeaderReplayedFromOffset) != "" {
			gained = append(gained, kafkatest.Header(r, dedup.KeyHeader))
		}
	}
	if want := []string{kx + "/1"}; !slices.Equal(gained, want) {
		t.Errorf("replayed to follower.gained with dedup keys %q, want %q", gained, want)
	}
	if redis {
		for _, k := range [][2]string{{"x", kx + "/1"}, {"github", k3}} {
			if ok, err := bridge.Seen(ctx, k[0], k[1]); !ok || err != nil {
				t.Errorf("%s not seen in redis after the replay (%v): a bridge would produce it again", k, err)
			}
		}
	}
}

// markSeen reserves and accepts (source, key) in r, as the ingress does, and waits until it
// is seen.
func markSeen(t *testing.T, r *dedup.Redis, source, key string) {
	t.Helper()
	dup, done, err := r.Reserve(context.Background(), source, key, time.Now())
	if err != nil || dup {
		t.Fatalf("reserve %s %s: dup %v, %v", source, key, dup, err)
	}
	done(true)
	testkit.Eventually(t, 30*time.Second, key+" seen in redis", func() bool { ok, _ := r.Seen(context.Background(), source, key); return ok })
}
