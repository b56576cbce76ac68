package testkit

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a process under test: a built binary (BuildBridge) or this test binary started
// again (Reexec). Its stdout and stderr are collected in Out, and shown in the test's log
// when the test fails. It is killed when the test ends, if it still runs.
type Proc struct {
	Out    *LogBuffer
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// Start starts cmd (its Env nil: this process's environment) as the process name. cmd's
// Stdout and Stderr, if set, receive its output besides Out.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Out: &LogBuffer{}, name: name, cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout = tee(p.Out, cmd.Stdout)
	cmd.Stderr = tee(p.Out, cmd.Stderr)
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s's output:\n%s", name, p.Out.String())
		}
	})
	return p
}

func tee(w io.Writer, also io.Writer) io.Writer {
	if also == nil {
		return w
	}
	return io.MultiWriter(w, also)
}

// Reexec starts this test binary again as the process name, running no test, with env added
// to this process's environment: the package's TestMain sees env and runs what the child is
// for instead of the tests.
func Reexec(t testing.TB, name string, env ...string) *Proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	return Start(t, name, cmd)
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL (nothing runs after it: no deferred function, no flush) and waits until
// the process is gone. Killing a process that has exited does nothing.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop sends SIGTERM and waits for the process to exit, killing it after limit; it returns
// the process's exit error (nil for a clean exit), or why it had to be killed.
func (p *Proc) Stop(limit time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(limit):
		p.Kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, limit)
	}
}

// Exited is closed once the process has exited; Err then tells how.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error, once Exited is closed.
func (p *Proc) Err() error { return p.err }

// WaitOutput waits until the process has printed want, and fails the test if it exits
// first or does not print it within limit.
func (p *Proc) WaitOutput(t testing.TB, limit time.Duration, want string) {
	t.Helper()
	Eventually(t, limit, fmt.Sprintf("%s prints %q", p.name, want), func() bool {
		select {
		case <-p.exited:
			if !strings.Contains(p.Out.String(), want) {
				t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, want, p.Out.String())
			}
		default:
		}
		return strings.Contains(p.Out.String(), want)
	}, p.Out.String)
}

// BuildBridge builds the bridge's binary (./cmd/bridge, without the race detector, as users
// run it) into the test's temporary folder and returns its path. Go's build cache makes every
// build after the first one of a run a link. flags go to go build: -race builds it with the
// race detector (and cgo, which the detector needs).
func BuildBridge(t testing.TB, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bridge")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append(append([]string{"build", "-o", bin}, flags...), "github.com/socialbridge/bridge/cmd/bridge")
	cmd := exec.CommandContext(ctx, "go", args...)
	cgo := "CGO_ENABLED=0"
	if slices.Contains(flags, "-race") {
		cgo = "CGO_ENABLED=1"
	}
	cmd.Env = append(os.Environ(), cgo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/bridge: %v\n%s", err, out)
	}
	return bin
}
