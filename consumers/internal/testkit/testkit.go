// Package testkit helps the tests of the consumer groups: a configuration for the test
// broker, records produced the way the ingress writes them, topics read back the way a
// downstream reader does (read-committed), and a group run in-process, or as a child
// process (this test binary, or the bridge binary it builds) that a test can SIGKILL or
// stop. Import it only from _test.go files.
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
	"syscall"
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
func Record(prefix string, partition int32, ev *event.Event) (*kgo.Record, error) {
	v, err := (&schemas.SingleObject{}).Encode(nil, ev)
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

// Proc is a process a test started: a group in a child process (Child), or any command
// (Start), such as the bridge binary (Bridge).
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how it ended, once exited is closed
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
	p, err := Start(t, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Start starts cmd, whose output goes where the caller set it, in a process group of its
// own that the kernel kills if the test binary dies. It is killed when the test ends.
// Unlike Child, it may be called from any goroutine.
func Start(t testing.TB, cmd *exec.Cmd) (*Proc, error) {
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.Kill)
	return p, nil
}

// Kill sends SIGKILL (nothing runs after it: no deferred function, no flush) and waits
// until the process is gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop sends SIGTERM, as an orchestrator stopping the process does, and waits until it
// has exited, or kills it after timeout. It returns how the process ended (nil: status 0).
func (p *Proc) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("did not exit within %s of SIGTERM: killed", timeout)
	}
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended (nil: status 0); valid once Exited is closed.
func (p *Proc) Err() error {
	<-p.exited
	return p.err
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Bridge builds the bridge binary (cmd/bridge) into a temporary folder of t and returns
// its path; with race, with the race detector.
func Bridge(t testing.TB, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bridge")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/socialbridge/bridge/cmd/bridge")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
