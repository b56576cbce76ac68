package spool_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
)

// envChild, when set, makes the test binary run one bridge on the configuration file it
// names instead of the tests: the tests start such children to SIGKILL them.
const envChild = "SPOOL_TEST_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(envChild); path != "" {
		os.Exit(runChild(path))
	}
	os.Exit(m.Run())
}

func runChild(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s, err := service.New(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if err := s.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println("addr", s.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: shutdown:", err)
		return 1
	}
	return 0
}

// child is a bridge running as a process of its own.
type child struct {
	cmd    *exec.Cmd
	url    string
	log    string
	exited chan error
}

// startChild runs a bridge on the configuration file cfg and waits until it listens.
func startChild(t *testing.T, cfg, name string) *child {
	t.Helper()
	ch := &child{log: filepath.Join(filepath.Dir(cfg), name+".log"), exited: make(chan error, 1)}
	logFile, err := os.Create(ch.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ch.cmd = exec.Command(os.Args[0], "-test.run=^$")
	ch.cmd.Env = append(os.Environ(), envChild+"="+cfg)
	ch.cmd.Stderr = logFile
	ch.cmd.SysProcAttr = childProcAttr()
	stdout, err := ch.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "addr "); ok {
				addr <- a
			}
		}
		ch.exited <- ch.cmd.Wait()
	}()
	t.Cleanup(func() {
		if ch.cmd.ProcessState == nil {
			ch.cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(ch.log)
			t.Logf("%s's log:\n%s", name, b)
		}
	})
	select {
	case a := <-addr:
		ch.url = "http://" + a
	case err := <-ch.exited:
		b, _ := os.ReadFile(ch.log)
		t.Fatalf("%s exited before listening: %v\n%s", name, err, b)
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not listen within 2 minutes", name)
	}
	return ch
}

// kill ends the child with SIGKILL: nothing flushed, nothing closed.
func (ch *child) kill(t *testing.T) {
	t.Helper()
	if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ch.exited
}

// stop ends the child gracefully and checks that it exits cleanly.
func (ch *child) stop(t *testing.T) {
	t.Helper()
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-ch.exited; err != nil {
		t.Errorf("the bridge did not stop cleanly: %v", err)
	}
}

// get returns the status code and body of GET path.
func (ch *child) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(ch.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of the unlabelled series name on /metrics.
func (ch *child) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, text := ch.get(t, "/metrics")
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s on /metrics", name)
	return 0
}

// waitFor polls cond every 100 ms until it holds, failing after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
