package service_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestBrokerOutage stops the broker under a running bridge: deliveries are answered 503 with
// Retry-After, never 200, and once the broker is back the same deliveries are accepted,
// each in Kafka exactly once.
func TestBrokerOutage(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	brokers := []string{broker.Addr()}
	cfg := testConfig(t, brokers)
	b := start(t, cfg)
	hook := b.url + "/webhooks/codivupload"

	h, body := codiv("post.published", "evt_before_outage")
	if a := send(t, httpClient, "POST", hook, h, body); a.Status != "accepted" {
		t.Fatalf("before the outage: %+v", a)
	}

	broker.Stop()
	ids := []string{"evt_outage_1", "evt_outage_2", "evt_outage_3"}
	for _, id := range ids {
		h, body := codiv("post.published", id)
		a := send(t, httpClient, "POST", hook, h, body)
		if a.Code != 503 || a.Header.Get("Retry-After") == "" {
			t.Fatalf("%s during the outage: %d %s %s, Retry-After %q; want 503 with Retry-After",
				id, a.Code, a.Status, a.Error, a.Header.Get("Retry-After"))
		}
	}
	if a := send(t, httpClient, "GET", b.url+"/readyz", nil, nil); a.Code != 503 {
		t.Errorf("readyz during the outage: %+v", a)
	}

	broker.Start()
	deadline := time.Now().Add(90 * time.Second)
	for _, id := range ids {
		h, body := codiv("post.published", id)
		for {
			a := send(t, httpClient, "POST", hook, h, body)
			if a.Code == 200 {
				break
			}
			if a.Code != 503 || time.Now().After(deadline) {
				t.Fatalf("%s after the outage: %+v", id, a)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published")
	for _, id := range append(ids, "evt_before_outage") {
		if n := countKey(recs, id); n != 1 {
			t.Errorf("%s is in kafka %d times, want once", id, n)
		}
	}
	if len(recs) != len(ids)+1 {
		t.Errorf("post.published holds %d records, want %d: %v", len(recs), len(ids)+1, keys(recs))
	}
}

func keys(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Key)
	}
	return out
}
