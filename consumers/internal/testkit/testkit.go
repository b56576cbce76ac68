// Package testkit helps the tests of the consumer groups: a configuration for the test
// broker, records produced the way the ingress writes them, topics read back the way a
// downstream reader does (read-committed), and a group run in-process or as a child process
// that a test can SIGKILL. Import it only from _test.go files.
package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
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
	"github.com/socialbridge/bridge/schemas"
)

// Environment of a child process started by Child.
const (
	envChild  = "BRIDGE_TESTKIT_CHILD"  // set: run the group instead of the tests
	envConfig = "BRIDGE_TESTKIT_CONFIG" // the configuration file
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
// would: key the event id, value its single-object Avro encoding.
func Produce(t testing.TB, brokers []string, prefix string, partition int32, evs ...*event.Event) {
	t.Helper()
	enc, _ := schemas.NewSingleObject()
	var rs []*kgo.Record
	for _, ev := range evs {
		v, err := enc.Encode(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &kgo.Record{Topic: prefix + ev.Type, Partition: partition, Key: []byte(ev.ID), Value: v,
			Headers: []kgo.RecordHeader{{Key: "event-type", Value: []byte(ev.Type)}}})
	}
	ProduceRecords(t, brokers, rs...)
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

// Read returns the committed records of topic, read from the start until at least min have
// come and no more came for quiet (so a duplicate arriving late is seen too), or until
// timeout.
func Read(t testing.TB, brokers []string, topic string, min int, quiet, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	var out []*kgo.Record
	last := time.Now()
	for time.Now().Before(deadline) && (len(out) < min || time.Since(last) < quiet) {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); last = time.Now() })
	}
	return out
}

// Header returns r's header key, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Logger returns a logger writing to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Run runs a group in-process until the returned stop is called (or the test ends); stop
// returns the group's error.
func Run(t testing.TB, cfg config.Config, run func(context.Context, config.Config, *slog.Logger) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := Logger(t)
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
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err = run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Proc is a group running in a child process.
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Child starts this test binary as a child process running the group (see ChildMain) with
// the configuration yaml. Its output goes to the test's log. It is killed when the test ends.
func Child(t testing.TB, yaml string) *Proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envConfig+"="+path)
	cmd.Stdout, cmd.Stderr = io.Discard, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL (nothing runs after it: no deferred function, no flush) and waits
// until the process is gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }
