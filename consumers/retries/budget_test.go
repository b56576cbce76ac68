package retries_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/schemas"
)

// TestBudgetCutDoesNotSkipARecord: one poll of a retry topic's partition holds
// [slow1, slow2, slow3, A, U] due (U undecodable) and B not due. With one call at a time and
// a call budget of 6 s (transaction_timeout 21 s − action.timeout 5 s − 10 s), the slow
// ones each take the whole action timeout, so the budget has run out before A's call: A
// must be held and polled again, not committed uncalled (the partition was already held,
// at B). U, after A, is polled again too, and its dead-letter counted once, when it
// commits.
func TestBudgetCutDoesNotSkipARecord(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, func(key string, _ int, w http.ResponseWriter) {
		if key == "evt_slow1" || key == "evt_slow2" || key == "evt_slow3" {
			time.Sleep(5500 * time.Millisecond) // past the action's timeout: a failed call
		}
		w.WriteHeader(http.StatusOK)
	})
	yaml := grouptest.Kafka(brokers, prefix) + fmt.Sprintf(`consumers:
  retries:
    group: %q
    delays: ["200ms", "1h"]
    action: {url: %q, timeout: 5s}
    concurrency: 1
    listen: "127.0.0.1:0"
    transaction_timeout: 21s
`, prefix+"retries", p.srv.URL+"/v1/posts/{post_id}/retry")
	retry1 := event.RetryTopic(prefix, 1)
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	produceRetry(t, brokers, retry1, []string{"evt_slow1", "evt_slow2", "evt_slow3", "evt_a", "undecodable", "evt_b"},
		[]time.Time{past, past, past, past, past, future})
	url := runMember(t, yaml)

	kafkatest.WaitCommitted(t, brokers, prefix+"retries", retry1, 0, 5) // A's offset is 3, U's 4: passed
	if n := len(p.of("evt_a")); n == 0 {
		t.Fatal("A's offset was committed, but A was never called")
	}
	if n := len(p.of("evt_b")); n != 0 {
		t.Errorf("B, not due for an hour, was called %d times", n)
	}
	body := scrape(t, url)
	if n, _ := metric(body, "bridge_consumer_dead_lettered_total", "reason", "undecodable"); n != 1 {
		t.Errorf("bridge_consumer_dead_lettered_total{reason=undecodable} = %g, want 1", n)
	}
	if n, _ := metric(body, "bridge_consumer_processed_total", "topic", retry1, "outcome", "dead_lettered"); n != 1 {
		t.Errorf("bridge_consumer_processed_total{outcome=dead_lettered} = %g, want 1", n)
	}
}

// produceRetry writes one record per id to partition 0 of a retry topic, in one batch, as
// the group moves them: due at the given times. The id "undecodable" gets a value that is
// not Avro.
func produceRetry(t *testing.T, brokers []string, topic string, ids []string, due []time.Time) {
	t.Helper()
	enc, _ := schemas.NewSingleObject()
	var rs []*kgo.Record
	for i, id := range ids {
		v, err := enc.Encode(nil, failed(id, nil))
		if err != nil {
			t.Fatal(err)
		}
		if id == "undecodable" {
			v = []byte("not avro at all")
		}
		rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(id), Value: v, Headers: []kgo.RecordHeader{
			{Key: retries.HeaderAttempt, Value: []byte("1")},
			{Key: retries.HeaderDueAt, Value: []byte(due[i].UTC().Format(time.RFC3339Nano))},
		}})
	}
	grouptest.ProduceRecords(t, brokers, rs...)
}
