package retries_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
)

// flakyRegistry fronts a schema registry and answers 503 while down, counting the asks.
type flakyRegistry struct {
	down  atomic.Bool
	asked atomic.Int32 // requests answered 503
	srv   *httptest.Server
}

func newFlakyRegistry(t *testing.T, target string) *flakyRegistry {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyRegistry{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			f.asked.Add(1)
			http.Error(w, `{"error_code":50301,"message":"down"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestRegistryDownHoldsThePartition: while the schema registry cannot be reached, a record
// framed by schema id is a passing failure (docs/consumers.md): its partition is held, and
// the decode tried again, neither skipped (no call, no commit past it) nor dead-lettered,
// while a record on another partition goes on. Once the registry answers, the held record is
// handled, once.
func TestRegistryDownHoldsThePartition(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	reg := srfake.New()
	defer reg.Close()
	rc, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := schemas.NewRegistry(t.Context(), rc, prefix, schemas.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flaky := newFlakyRegistry(t, reg.URL())
	flaky.down.Store(true)

	p := newProvider(t, status(http.StatusOK))
	grouptest.Run(t, grouptest.Parse(t, config(brokers, prefix, p.srv.URL)+
		fmt.Sprintf("schema_registry:\n  url: %q\n", flaky.srv.URL)), retries.Run)
	framed := failed("evt_framed", nil)
	v, err := enc.Encode(nil, framed)
	if err != nil {
		t.Fatal(err)
	}
	input := event.Topic(prefix, event.PostFailed)
	grouptest.ProduceRecords(t, brokers, &kgo.Record{Topic: input, Partition: 0, Key: []byte(framed.ID), Value: v,
		Headers: []kgo.RecordHeader{{Key: "event-type", Value: []byte(event.PostFailed)}}})
	grouptest.Produce(t, brokers, prefix, 1, failed("evt_plain", nil))

	// The other partition went on, and the registry was asked again after it failed: the
	// first failure held the record rather than ending it.
	kafkatest.WaitCommitted(t, brokers, prefix+"retries", input, 1, 1)
	testkit.Eventually(t, time.Minute, "the registry asked again after a failure", func() bool { return flaky.asked.Load() >= 2 })
	if n := len(p.of("evt_plain")); n != 1 {
		t.Errorf("the record on the other partition was called %d times, want 1", n)
	}
	if n := len(p.of(framed.ID)); n != 0 {
		t.Fatalf("the record whose schema cannot be fetched was called %d times while the registry was down", n)
	}
	if at := committed(t, brokers, prefix+"retries", input, 0); at > 0 {
		t.Fatalf("the group committed partition 0 at %d, past the record it could not decode", at)
	}

	flaky.down.Store(false)
	kafkatest.WaitCommitted(t, brokers, prefix+"retries", input, 0, 1)
	if n := len(p.of(framed.ID)); n != 1 {
		t.Errorf("once the registry answered, the held record was called %d times, want 1", n)
	}
	if dlq := kafkatest.ReadCommitted(t, brokers, event.DLQTopic(prefix), 0, time.Second, 5*time.Second); len(dlq) != 0 {
		t.Errorf("the dead-letter topic holds %d records, want none: a registry that is down is no reason", len(dlq))
	}
}

// committed is group's committed offset of topic's partition, -1 if none.
func committed(t *testing.T, brokers []string, group, topic string, partition int32) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, partition); ok {
		return o.At
	}
	return -1
}
