package redrive

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
)

// A child is this test binary started again to run one redrive or replay as a process of
// its own, so that a test can run two at once, or SIGKILL one midway.
const (
	envChild   = "BRIDGE_REDRIVE_CHILD" // "redrive" or "replay": run that instead of the tests
	envBrokers = "BRIDGE_REDRIVE_BROKERS"
	envPrefix  = "BRIDGE_REDRIVE_PREFIX"
	envBatch   = "BRIDGE_REDRIVE_BATCH"
	envPause   = "BRIDGE_REDRIVE_PAUSE" // n: print "paused" and hang before the n-th commit
)

// Exit codes of a child.
const (
	exitTakenOver = 3
	exitFailed    = 1
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// childMain runs the operation the environment names and prints its result as a JSON
// line.
func childMain() int {
	brokers, prefix := strings.Split(os.Getenv(envBrokers), ","), os.Getenv(envPrefix)
	cfg, err := newConfig(brokers, prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return exitFailed
	}
	batch, _ := strconv.Atoi(os.Getenv(envBatch))
	if pause, _ := strconv.Atoi(os.Getenv(envPause)); pause > 0 {
		n := 0
		testHookBeforeCommit = func() {
			if n++; n == pause {
				fmt.Println("paused")
				select {} // until killed
			}
		}
	}
	var res any
	switch os.Getenv(envChild) {
	case "redrive":
		res, err = childRedrive(cfg, batch)
	case "replay":
		res, err = childReplay(cfg, batch)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		if errors.Is(err, ErrTakenOver) {
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
			return exitTakenOver
		}
		return exitFailed
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return 0
}

func childRedrive(cfg config.Config, batch int) (Result, error) {
	d, err := NewDLQ(cfg, discardLog())
	if err != nil {
		return Result{}, err
	}
	if batch > 0 {
		d.batch = batch
	}
	res, _, err := d.Redrive(context.Background(), Filter{}, false)
	return res, err
}

func childReplay(cfg config.Config, batch int) (ReplayResult, error) {
	q, err := NewQuarantine(cfg, discardLog())
	if err != nil {
		return ReplayResult{}, err
	}
	if batch > 0 {
		q.batch = batch
	}
	res, _, err := q.Replay(context.Background(), Filter{}, false)
	return res, err
}

// proc is a running child.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string // its stdout, line by line; closed at its end
	exited chan struct{}
	code   int
}

// startChild starts a child running op ("redrive" or "replay") with the extra environment.
func startChild(t *testing.T, op string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"="+op), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 16), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// line waits for the child's next line of output.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("child exited (%v) without a line", p.cmd.ProcessState)
		}
		return l
	case <-time.After(2 * time.Minute):
		t.Fatal("no line from the child within 2 minutes")
	}
	return ""
}

// wait waits for the child's end and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(2 * time.Minute):
		t.Fatal("the child did not end within 2 minutes")
	}
	return 0
}

// kill SIGKILLs the child and waits for its end.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
