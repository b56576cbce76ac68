package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/ports"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterHeap is each node's heap in a Cluster: a few topics of test records need little,
// and n+1 JVMs share the machine with the rest of the test run.
const clusterHeap = "-Xms64m -Xmx256m"

// controllerID is the node id of a Cluster's controller; its brokers are 1 to n.
const controllerID = 100

// Cluster is a dedicated Kafka of several brokers: one KRaft controller of its own and n
// brokers, each a process on loopback ports with its data in the test's temp dir. Its
// brokers may be stopped and started again (Broker.Stop, Broker.Start) while the
// controller keeps running, so that the cluster sees a broker go as a real one would.
//
// Its brokers keep Kafka's defaults for what a client does not set: default.replication.factor
// and min.insync.replicas are 1.
type Cluster struct {
	Brokers    []*Broker
	controller *Broker
	id         string // the cluster id its nodes' storage was formatted with
}

// StartCluster starts a Cluster of n brokers from the jars in KAFKA_LIBS and waits until
// its metadata lists all n. Every process is killed when the test ends. Without
// KAFKA_LIBS the test is skipped, or fails when CI is set.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	java, libs := javaRuntime(t)
	dir := t.TempDir()
	// Free ports are found by binding :0 and closing; another process may take one before
	// Kafka binds it, so a bind failure starts the cluster again on other ports.
	for attempt := 1; ; attempt++ {
		c := newCluster(t, java, libs, filepath.Join(dir, fmt.Sprint(attempt)), n)
		err := c.start()
		if err == nil {
			return c
		}
		c.kill()
		if attempt < 3 && c.portTaken() {
			t.Logf("kafkatest: port taken, retrying: %v", err)
			continue
		}
		for _, b := range c.nodes() {
			b.tailShown = true
		}
		t.Fatalf("kafkatest: starting a cluster of %d brokers: %v\n%s", n, err, c.logTails(30))
	}
}

// Addrs returns the brokers' bootstrap addresses, in the order of Brokers.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		addrs[i] = b.Addr()
	}
	return addrs
}

func newCluster(t testing.TB, java, libs, dir string, n int) *Cluster {
	node := func(name string) *Broker {
		b := &Broker{t: t, java: java, libs: libs, dir: filepath.Join(dir, name), heap: clusterHeap}
		b.logPath = filepath.Join(b.dir, "kafka.log")
		t.Cleanup(b.cleanup)
		return b
	}
	c := &Cluster{controller: node("controller")}
	for i := 1; i <= n; i++ {
		c.Brokers = append(c.Brokers, node(fmt.Sprintf("broker%d", i)))
	}
	return c
}

// start picks the ports, formats every node's storage in one cluster id, starts the nodes
// and waits until the brokers have all registered.
func (c *Cluster) start() error {
	if err := c.pickPorts(); err != nil {
		return err
	}
	id, err := clusterID()
	if err != nil {
		return err
	}
	c.id = id
	nodes := c.nodes()
	if err := each(nodes, func(i int, b *Broker) error {
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return err
		}
		return b.format(c.properties(i, filepath.Join(b.dir, "data")), id)
	}); err != nil {
		return err
	}
	if err := each(nodes, func(_ int, b *Broker) error { return b.start() }); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout())
	defer cancel()
	return c.waitRegistered(ctx)
}

func (c *Cluster) pickPorts() error {
	cport, err := ports.Free()
	if err != nil {
		return err
	}
	c.controller.cport = cport
	for _, b := range c.Brokers {
		b.cport = cport
		if b.port, err = ports.Free(); err != nil {
			return err
		}
	}
	return nil
}

// properties is the server.properties of node i: 0 the controller, i the broker of id i.
func (c *Cluster) properties(i int, data string) string {
	voters := fmt.Sprintf("%d@127.0.0.1:%d", controllerID, c.controller.cport)
	common := []string{
		"controller.quorum.voters=" + voters,
		"controller.listener.names=CONTROLLER",
		"log.dirs=" + data,
		"num.network.threads=1",
		"num.io.threads=2",
	}
	if i == 0 {
		return lines(append(common,
			"process.roles=controller",
			fmt.Sprintf("node.id=%d", controllerID),
			fmt.Sprintf("listeners=CONTROLLER://127.0.0.1:%d", c.controller.cport),
			"listener.security.protocol.map=CONTROLLER:PLAINTEXT",
		))
	}
	listener := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", c.Brokers[i-1].port)
	return lines(append(common,
		"process.roles=broker",
		fmt.Sprintf("node.id=%d", i),
		"listeners="+listener,
		"advertised.listeners="+listener,
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"num.partitions=1",
		"default.replication.factor=1",
		"min.insync.replicas=1",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=4",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=4",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"auto.create.topics.enable=false",
		"delete.topic.enable=true",
		"log.cleaner.dedupe.buffer.size=8388608",
	))
}

func lines(ls []string) string { return strings.Join(ls, "\n") + "\n" }

// waitRegistered returns once a broker's metadata lists every broker of the cluster.
func (c *Cluster) waitRegistered(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		md, err := adm.BrokerMetadata(ctx)
		if err == nil && len(md.Brokers) == len(c.Brokers) && md.Cluster == c.id {
			return nil // c.id: not another cluster's broker on a port that was free a moment ago
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every broker registered: %w (last: %d brokers, %v)", ctx.Err(), len(md.Brokers), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) nodes() []*Broker { return append([]*Broker{c.controller}, c.Brokers...) }

func (c *Cluster) kill() {
	for _, b := range c.nodes() {
		b.mu.Lock()
		b.stopLocked(0)
		b.mu.Unlock()
	}
}

func (c *Cluster) portTaken() bool {
	for _, b := range c.nodes() {
		if strings.Contains(b.logTail(200), "Address already in use") {
			return true
		}
	}
	return false
}

func (c *Cluster) logTails(n int) string {
	var out strings.Builder
	for _, b := range c.nodes() {
		fmt.Fprintf(&out, "---- %s ----\n%s\n", filepath.Base(b.dir), b.logTail(n))
	}
	return out.String()
}

// each runs f on every node at once and joins their errors.
func each(nodes []*Broker, f func(i int, b *Broker) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, b := range nodes {
		wg.Go(func() {
			if err := f(i, b); err != nil {
				errs[i] = fmt.Errorf("%s: %w", filepath.Base(b.dir), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
