package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// envChild, when set, makes the test binary run one analytics consumer (described by the
// variable's JSON) instead of the tests: the tests start such children to SIGKILL them.
const envChild = "ANALYTICS_TEST_CHILD"

// childConfig describes a child consumer.
type childConfig struct {
	Brokers  []string
	Prefix   string
	Database string
	MaxBatch int
	// BlockAtBatch > 0: inside that batch's transaction, after its aggregates and offsets are
	// written and before the commit, print "in-transaction" and wait forever (to be killed).
	BlockAtBatch int
	// CommitDelay holds every transaction open this long before its commit, so that
	// rebalances find batches in flight.
	CommitDelay time.Duration
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChild); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func runChild(spec string) int {
	var c childConfig
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	k := testKafka{brokers: c.Brokers, prefix: c.Prefix}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// A short session, so that the group notices a killed child in seconds.
	s, err := New(ctx, k.config(c.Database), log, Options{MaxBatch: c.MaxBatch,
		ClientOptions: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	batches := 0
	s.beforeCommit = func() error {
		if batches++; batches == c.BlockAtBatch {
			fmt.Println("in-transaction")
			select {}
		}
		time.Sleep(c.CommitDelay)
		return nil
	}
	fmt.Println("addr", s.Addr())
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// child is a consumer running as a process of its own (this test binary again), its
// stdout and log in Out.
type child struct {
	*testkit.Proc
	addr string
}

func startChild(t *testing.T, name string, c childConfig) *child {
	t.Helper()
	spec, _ := json.Marshal(c)
	ch := &child{Proc: testkit.Reexec(t, "analytics child "+name, envChild+"="+string(spec))}
	ch.addr = strings.TrimPrefix(ch.waitLine(t, "addr "), "addr ")
	return ch
}

// waitLine returns the first whole line the child prints that starts with prefix.
func (ch *child) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	var found string
	testkit.Eventually(t, 3*time.Minute, fmt.Sprintf("the child prints %q", prefix), func() bool {
		out := ch.Out.String()
		lines := strings.Split(out, "\n")
		for _, line := range lines[:len(lines)-1] { // the last is not whole yet
			if strings.HasPrefix(line, prefix) {
				found = line
				return true
			}
		}
		select {
		case <-ch.Exited():
			t.Fatalf("child exited (%v) before printing %q", ch.Err(), prefix)
		default:
		}
		return false
	}, ch.Out.String)
	return found
}

// kill ends the child with SIGKILL: no deferred function, no rollback, no goodbye to the group.
func (ch *child) kill(t *testing.T) {
	t.Helper()
	ch.Kill()
}

// stop ends the child gracefully (SIGTERM) and checks it exits cleanly.
func (ch *child) stop(t *testing.T) {
	t.Helper()
	if err := ch.Stop(time.Minute); err != nil {
		t.Errorf("child: %v\n%s", err, ch.Out.String())
	}
}

func (k *testKafka) child(database string, maxBatch int) childConfig {
	return childConfig{Brokers: k.brokers, Prefix: k.prefix, Database: database, MaxBatch: maxBatch}
}
