package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/testkit"
)

// envChildArgs, when set, makes the test binary run `bridge` with the variable's arguments
// (a JSON array) instead of the tests: tests start such children to see the bridge work
// across processes, as it is deployed.
const envChildArgs = "BRIDGE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChildArgs); spec != "" {
		var args []string
		if err := json.Unmarshal([]byte(spec), &args); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Args = append([]string{"bridge"}, args...)
		main() // exits on failure
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is `bridge ARGS…` running as a process of its own.
type child struct {
	cmd     *exec.Cmd
	stderr  *testkit.LogBuffer
	done    chan error
	once    sync.Once
	stopErr error
}

// startChild starts `bridge args…` with env added to the test's environment; it is stopped
// (SIGTERM, then SIGKILL) when the test ends, unless stop did so first.
func startChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	spec, _ := json.Marshal(args)
	c := &child{cmd: exec.Command(os.Args[0]), stderr: &testkit.LogBuffer{}, done: make(chan error, 1)}
	c.cmd.Env = append(append(os.Environ(), envChildArgs+"="+string(spec)), env...)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Logf("bridge %s: %v", strings.Join(args, " "), err)
		}
		if t.Failed() {
			t.Logf("bridge %s, its log:\n%s", strings.Join(args, " "), c.stderr.String())
		}
	})
	return c
}

// stop ends the child gracefully (SIGTERM) and waits for it to exit, killing it after a
// minute. It returns how it exited.
func (c *child) stop() error {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case c.stopErr = <-c.done:
		case <-time.After(time.Minute):
			_ = c.cmd.Process.Kill()
			<-c.done
			c.stopErr = fmt.Errorf("did not stop within a minute of SIGTERM: killed")
		}
	})
	return c.stopErr
}
