package kafkatest

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestWaitReadyKnowsItsCluster: a broker that answers on the address but belongs to another
// cluster (one that took the port picked free first) is not taken for the one started.
func TestWaitReadyKnowsItsCluster(t *testing.T) {
	seeds := Brokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := waitReady(t.Context(), seeds, nil, md.Cluster); err != nil {
		t.Fatalf("its own cluster %q: %v", md.Cluster, err)
	}
	if err := probe(t.Context(), seeds, "another-cluster-id"); err == nil || !strings.Contains(err.Error(), "another cluster's broker") {
		t.Fatalf("another cluster's broker: %v; want refused as another cluster's", err)
	}
}
