// Package grouptest helps the tests of the consumer groups: a configuration for the test
// broker, records produced the way the ingress writes them, and a group run in-process or as
// a child process that a test can SIGKILL. Reading topics back (read-committed, as a
// downstream reader does) and waiting for a group's commit are internal/kafkatest's; logs,
// waits and processes are internal/testkit's. Import it only from _test.go files.
package grouptest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
)

// Environment of a child process started by Child.
const (
	envChild  = "BRIDGE_GROUPTEST_CHILD"  // set: run the group instead of the tests
	envConfig = "BRIDGE_GROUPTEST_CONFIG" // the configuration file
)

// Partitions is the number of partitions of the tests' topics.
const Partitions = 3

// Kafka returns the start of a test configuration: the test broker, topics under prefix
// with Partitions partitions, and a source (the file is the bridge's too).
func Kafka(brokers []string, prefix string) string {
	return fmt.Sprintf("kafka:\n  brokers: [%q]\n  topic_prefix: %q\n  partitions: %d\n", strings.Join(brokers, `","`), prefix, Partitions) +
		"sources:\n  - {name: acme, provider: standard-webhooks, secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]}\n"
}

// Parse parses a YAML configuration, failing the test on an error.
func Parse(t testing.TB, yaml string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// Event is a canonical event of type typ with id, received now, with fields set by fill.
func Event(typ, id string, fill func(*event.Event)) *event.Event {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := &event.Event{ID: id, Type: typ, Source: "acme", Provider: "codivupload", OccurredAt: now, ReceivedAt: now, Raw: []byte(`{}`)}
	if fill != nil {
		fill(ev)
	}
	return ev
}

// Str returns a pointer to s.
func Str(s string) *string { return &s }

// Produce writes each event to its topic ({prefix}{type}) on partition, as the ingress
// would (see Record).
func Produce(t testing.TB, brokers []string, prefix string, partition int32, evs ...*event.Event) {
	t.Helper()
	var rs []*kgo.Record
	for _, ev := range evs {
		r, err := Record(prefix, partition, ev)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	ProduceRecords(t, brokers, rs...)
}

// Record is ev's record as the ingress writes it, for its topic ({prefix}{type}) on
// partition: key the event id, value its single-object Avro encoding, the event-type header.
// It is for tests that produce on a client of their own.
func Record(prefix string, partition int32, ev *event.Event) (*kgo.Record, error) {
	enc, err := schemas.NewSingleObject()
	if err != nil {
		return nil, err
	}
	v, err := enc.Encode(nil, ev)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: prefix + ev.Type, Partition: partition, Key: []byte(ev.ID), Value: v,
		Headers: []kgo.RecordHeader{{Key: "event-type", Value: []byte(ev.Type)}}}, nil
}

// ProduceRecords writes records as given (topic, partition, key, value), creating their
// topics with Partitions partitions if they do not exist yet.
func ProduceRecords(t testing.TB, brokers []string, rs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := map[string]bool{}
	for _, r := range rs {
		topics[r.Topic] = true
	}
	for topic := range topics {
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, Partitions, -1, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// Run runs a group in-process until the returned stop is called (or the test ends); stop
// returns the group's error.
func Run(t testing.TB, cfg config.Config, run func(context.Context, config.Config, *slog.Logger) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := testkit.Logger(t)
	go func() { done <- run(ctx, cfg, log) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(90 * time.Second):
				err = fmt.Errorf("the group did not stop within 90s")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// ChildMain, called from TestMain, runs the group with the configuration file named by the
// environment and exits, when this test binary was started by Child; otherwise it returns.
func ChildMain(run func(context.Context, config.Config, *slog.Logger) error) {
	if os.Getenv(envChild) == "" {
		return
	}
	cfg, err := config.Load(os.Getenv(envConfig))
	if err == nil {
		err = run(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Child starts this test binary as a child process running the group (see ChildMain) with
// the configuration yaml. Its output goes to the test's log. It is killed when the test ends.
func Child(t testing.TB, yaml string) *testkit.Proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return testkit.Reexec(t, "the group's child process", envChild+"=1", envConfig+"="+path)
}
