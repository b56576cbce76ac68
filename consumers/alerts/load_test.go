package alerts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestLoadRefusesAStateRecordItCannotRead: a state record the group did not write (a key
// that is not one of its kinds' shape, a value that is not JSON) fails the load of its
// partition, naming its offset, instead of being skipped: skipped, it could be a key's
// alert or delivery lost without a word. Before it, a load reads the key's publish and
// counts what it read: the record and a marker per partition.
func TestLoadRefusesAStateRecordItCannotRead(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for name, bad := range map[string]*kgo.Record{
		"bad key":   {Key: []byte(`["alert","acme"]`), Value: []byte(`{}`)},
		"bad value": {Key: []byte(`["alert","acme","brand","x"]`), Value: []byte(`{"id":`)},
	} {
		t.Run(name, func(t *testing.T) {
			prefix := kafkatest.Prefix(t)
			cfg := grouptest.Parse(t, configYAML(brokers, prefix, "http://127.0.0.1:9"))
			good := &kgo.Record{Topic: alerts.State(prefix), Partition: 1, Key: []byte(`["publish","acme","brand","instagram"]`),
				Value: []byte(`{"id":"evt_p","at":"2026-05-08T12:00:00Z"}`)}
			bad.Topic, bad.Partition = alerts.State(prefix), 1
			grouptest.ProduceRecords(t, brokers, good)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			st, n, err := alerts.LoadState(ctx, cfg, grouptest.Partitions)
			if err != nil || st[key("brand")].Published.ID != "evt_p" || n != 1+grouptest.Partitions {
				t.Fatalf("load: state %v, %d records read, error %v; want the publish, and it and a marker per partition read", st, n, err)
			}
			grouptest.ProduceRecords(t, brokers, bad)
			st, _, err = alerts.LoadState(ctx, cfg, grouptest.Partitions)
			if err == nil || !strings.Contains(err.Error(), "offset 2") { // after the publish and the first load's marker
				t.Fatalf("load: state %v, error %v; want the record at offset 2 refused", st, err)
			}
		})
	}
}
