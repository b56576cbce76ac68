package analytics

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// child is a consumer running as a process of its own.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	addr   string
	log    string
	exited chan error
}

func startChild(t *testing.T, name string, c childConfig) *child {
	t.Helper()
	spec, _ := json.Marshal(c)
	ch := &child{lines: make(chan string, 16), log: filepath.Join(t.TempDir(), name+".log"), exited: make(chan error, 1)}
	logFile, err := os.Create(ch.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ch.cmd = exec.Command(os.Args[0], "-test.run=^$")
	ch.cmd.Env = append(os.Environ(), envChild+"="+string(spec))
	ch.cmd.Stderr = logFile
	ch.cmd.SysProcAttr = childProcAttr()
	stdout, err := ch.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go ch.read(stdout)
	t.Cleanup(func() { ch.cleanup(t, name) })
	ch.addr = strings.TrimPrefix(ch.waitLine(t, "addr "), "addr ")
	return ch
}

func (ch *child) read(stdout interface{ Read([]byte) (int, error) }) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		ch.lines <- sc.Text()
	}
	close(ch.lines)
	ch.exited <- ch.cmd.Wait()
}

// waitLine returns the first line the child prints that starts with prefix.
func (ch *child) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case line, ok := <-ch.lines:
			if !ok {
				t.Fatalf("child exited before printing %q; its log: %s", prefix, ch.log)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			t.Fatalf("child did not print %q within 3 minutes", prefix)
		}
	}
}

// kill ends the child with SIGKILL: no deferred function, no rollback, no goodbye to the group.
func (ch *child) kill(t *testing.T) {
	t.Helper()
	if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ch.exited
}

// stop ends the child gracefully (SIGTERM) and checks it exits cleanly.
func (ch *child) stop(t *testing.T) {
	t.Helper()
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-ch.exited; err != nil {
		t.Errorf("child: %v (log: %s)", err, ch.log)
	}
}

func (ch *child) cleanup(t *testing.T, name string) {
	if ch.cmd.ProcessState == nil {
		_ = ch.cmd.Process.Kill()
		<-ch.exited
	}
	if t.Failed() {
		if b, err := os.ReadFile(ch.log); err == nil {
			t.Logf("%s log:\n%s", name, b)
		}
	}
}

func (k *testKafka) child(database string, maxBatch int) childConfig {
	return childConfig{Brokers: k.brokers, Prefix: k.prefix, Database: database, MaxBatch: maxBatch}
}
