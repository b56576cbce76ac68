package kafkatest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

func TestPrefixUnique(t *testing.T) {
	t.Parallel()
	a, b := kafkatest.Prefix(t), kafkatest.Prefix(t)
	if a == b || !strings.HasPrefix(a, "t") || !strings.HasSuffix(a, ".") {
		t.Fatalf("prefixes %q and %q: want distinct, of the form t<hex>.", a, b)
	}
}

func TestBrokersRoundTrip(t *testing.T) {
	t.Parallel()
	seeds := kafkatest.Brokers(t)
	t.Logf("real broker: %v, seeds %v", kafkatest.Real(), seeds)
	topic := kafkatest.Prefix(t) + "roundtrip"
	createTopic(t, seeds, topic)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, seeds)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("hello"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	got := kafkatest.ReadTopic(t, seeds, topic)
	if len(got) != 1 || string(got[0].Key) != "k" || string(got[0].Value) != "hello" || kafkatest.Header(got[0], "h") != "v" {
		t.Fatalf("read %d records, first %q=%q, header h %q; want k=hello, h=v", len(got), got[0].Key, got[0].Value, kafkatest.Header(got[0], "h"))
	}
}

func TestStartBrokerStopStart(t *testing.T) {
	t.Parallel()
	start := time.Now()
	b := kafkatest.StartBroker(t)
	t.Logf("StartBroker took %v", time.Since(start))
	seeds := []string{b.Addr()}
	topic := "restart"
	createTopic(t, seeds, topic)

	cl := newClient(t, seeds)
	produce := func(timeout time.Duration, value string) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr()
	}
	if err := produce(30*time.Second, "before"); err != nil {
		t.Fatalf("produce before stop: %v", err)
	}

	start = time.Now()
	b.Stop()
	t.Logf("Stop took %v", time.Since(start))
	// A fresh client: cl's connection to the stopped broker is half-closed,
	// so cl's next Produce request is written before the EOF is seen, and an
	// idempotent producer then must not fail the record when its context
	// ends (it cannot know whether the broker got it): it holds the record
	// until the broker is back.
	down := newClient(t, seeds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := down.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("while-down")}).FirstErr()
	cancel()
	down.Close()
	if err == nil {
		t.Fatal("produce while the broker is stopped succeeded")
	}
	t.Logf("produce while stopped failed as expected: %v", err)

	start = time.Now()
	b.Start()
	t.Logf("Start took %v", time.Since(start))
	if b.Addr() != seeds[0] {
		t.Fatalf("address changed across restart: %s -> %s", seeds[0], b.Addr())
	}
	if err := produce(60*time.Second, "after"); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}

	got := kafkatest.ReadTopic(t, seeds, topic)
	if len(got) != 2 || string(got[0].Value) != "before" || string(got[1].Value) != "after" {
		t.Fatalf("read %d records; want before, after", len(got))
	}
}

func newClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, seeds []string, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, seeds))
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}
