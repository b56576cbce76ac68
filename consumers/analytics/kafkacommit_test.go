package analytics

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// TestOffsetsInKafkaAreACopy: the group's committed offsets in Kafka are never where the
// consumer starts (offsets committed at the end of every partition beforehand do not stop a
// consumer with an empty database from counting every record), but they follow the
// database's, so lag tools see the group: they move to the new ends as more is counted.
func TestOffsetsInKafkaAreACopy(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		k := newTestKafka(t)
		events := knownEvents(1500, 6, 6)
		k.produce(t, events, 2)
		ends := k.ends(t)
		cfg := k.config(database)
		adm := kadm.NewClient(k.client)
		bogus := kadm.Offsets{}
		for tp, end := range ends {
			bogus.AddOffset(tp.Topic, tp.Partition, end, -1)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := adm.CommitAllOffsets(ctx, cfg.Consumers.Analytics.Group, bogus); err != nil {
			t.Fatal(err)
		}

		s := startService(t, cfg, Options{MaxBatch: 300})
		st := openStore(t, database)
		waitCounted(t, st, ends)
		checkStore(t, st, expect(events))

		more := knownEvents(500, 6, 7)
		k.produce(t, more, 0)
		ends = k.ends(t)
		waitCounted(t, st, ends)
		checkStore(t, st, expect(append(events, more...)))
		waitCommitted(t, adm, cfg.Consumers.Analytics.Group, ends)

		var health map[string]string
		if code := get(t, s, "/healthz", &health); code != http.StatusOK || health["status"] != "ok" {
			t.Errorf("healthz: %d %v", code, health)
		}
		metrics := getText(t, s, "/metrics")
		for _, want := range []string{
			`bridge_consumer_processed_total{group="` + cfg.Consumers.Analytics.Group + `",outcome="counted",topic="` + k.prefix + `post.published"}`,
			`bridge_consumer_transactions_total{group="` + cfg.Consumers.Analytics.Group + `",outcome="committed"}`,
			`analytics_batch_records_count`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics has no %s", want)
			}
		}
	})
}

// waitCommitted waits until the group's committed offsets in Kafka reach ends.
func waitCommitted(t *testing.T, adm *kadm.Client, group string, ends map[store.TP]int64) {
	t.Helper()
	var last kadm.OffsetResponses
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		offs, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err != nil {
			continue
		}
		last = offs
		done := true
		for tp, end := range ends {
			if o, ok := offs.Lookup(tp.Topic, tp.Partition); !ok || o.At != end {
				done = false
			}
		}
		if done {
			return
		}
	}
	b, _ := json.Marshal(last)
	t.Fatalf("offsets committed to Kafka did not reach the ends %v within a minute: %s", ends, b)
}

func getText(t *testing.T, s *Service, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
