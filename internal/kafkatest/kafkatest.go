// Package kafkatest gives tests a Kafka to talk to. Import it only from
// _test.go files.
//
// Brokers returns the shared broker that `make test` (scripts/test.sh) starts
// and names in BRIDGE_TEST_KAFKA, or, when that variable is unset (a plain
// `go test` on a developer's machine), an in-process kfake cluster. This is
// franz-go's own style: the same tests run against kfake or a real broker
// depending on the environment. Under CI (CI set) the variable must be set: a
// run that silently fell back to kfake would pass for one against Kafka.
// Tests sharing one broker keep apart by putting Prefix(t) in front of every
// topic (and group) name they use; the topics and groups under a prefix are
// deleted when its test ends, so a reused broker does not fill up.
//
// StartBroker starts a dedicated real Kafka process that a test may stop and
// start again, for tests of what happens while Kafka is down. It needs the
// jars in KAFKA_LIBS (scripts/test.sh sets it). StartSecureBroker adds SSL,
// SASL_SSL and SASL_PLAINTEXT listeners, with certificates from NewCA and
// SCRAM and PLAIN users, for tests of TLS and SASL. StartCluster starts a dedicated
// cluster of several brokers and a controller, for tests of replication.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Environment variables read by this package.
const (
	// EnvBrokers is a comma-separated list of seed brokers of a real Kafka
	// shared by all tests of the run.
	EnvBrokers = "BRIDGE_TEST_KAFKA"
	// EnvLibs is the folder of Kafka's jars (kafka_2.13 and its runtime
	// dependencies) that StartBroker runs.
	EnvLibs = "KAFKA_LIBS"
	// EnvJava is the java binary StartBroker uses; default java on PATH.
	EnvJava = "KAFKA_JAVA"
)

// Real reports whether Brokers returns a real Kafka (BRIDGE_TEST_KAFKA is
// set) rather than an in-process kfake cluster.
func Real() bool { return len(envBrokers()) > 0 }

func envBrokers() []string {
	var seeds []string
	for _, s := range strings.Split(os.Getenv(EnvBrokers), ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

var (
	realOnce sync.Once
	realErr  error
)

// Brokers returns seed brokers for the test. With BRIDGE_TEST_KAFKA set it is
// that list, checked once per test binary to answer a metadata request;
// otherwise, outside CI, it starts a one-broker kfake cluster on 127.0.0.1 that
// is closed when the test ends, and under CI it fails the test. kfake, like the
// real test broker, does not create topics on first use: create them.
func Brokers(t testing.TB) []string {
	t.Helper()
	seeds := envBrokers()
	if len(seeds) == 0 && os.Getenv("CI") != "" {
		t.Fatalf("kafkatest: %s is not set under CI: run the tests through scripts/test.sh (make test), not against kfake", EnvBrokers)
	}
	if len(seeds) > 0 {
		realOnce.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			realErr = waitReady(ctx, seeds, nil, "")
		})
		if realErr != nil {
			t.Fatalf("kafkatest: %s=%s is not answering: %v", EnvBrokers, os.Getenv(EnvBrokers), realErr)
		}
		return seeds
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kafkatest: starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Prefix returns a topic-name prefix unique to this call, like "t1a2b3c4d.",
// so that tests sharing one broker never see each other's topics or groups.
// When the test ends, the topics and consumer groups under the prefix are
// deleted from the shared broker (BRIDGE_TEST_KAFKA), so that a broker reused
// from run to run does not gather every test's topics; a dedicated broker's go
// with it.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("kafkatest: random prefix: %v", err)
	}
	p := "t" + hex.EncodeToString(b[:]) + "."
	t.Logf("kafkatest: topic prefix %q", p)
	if seeds := envBrokers(); len(seeds) > 0 {
		t.Cleanup(func() {
			if err := DeletePrefixed(seeds, p); err != nil {
				t.Logf("kafkatest: deleting the topics and groups under %q: %v", p, err)
			}
		})
	}
	return p
}

// waitReady returns nil once addrs accept a TCP connection and answer a
// metadata request that names at least one broker, trying until ctx ends.
// exited, if not nil, aborts the wait when it is closed (the process died).
// cluster, if not empty, is the cluster id the answer must name: a port picked
// free may have been taken by another broker first, which must not pass for
// the one started.
func waitReady(ctx context.Context, addrs []string, exited <-chan struct{}, cluster string) error {
	var last error
	for {
		if last = probe(ctx, addrs, cluster); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), last)
		case <-exited:
			return fmt.Errorf("%w (last error: %v)", errExited, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func probe(ctx context.Context, addrs []string, cluster string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addrs[0])
	if err != nil {
		return err
	}
	conn.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("metadata lists no brokers")
	}
	if cluster != "" && md.Cluster != cluster {
		return fmt.Errorf("%s is another cluster's broker (%s, not %s)", addrs[0], md.Cluster, cluster)
	}
	return nil
}
