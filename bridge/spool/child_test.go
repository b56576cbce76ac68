package spool_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/testkit"
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
	s, err := service.New(ctx, cfg, log, service.Options{})
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

// child is a bridge running as a process of its own (this test binary again), its stdout
// and log in Out.
type child struct {
	*testkit.Proc
	url string
}

// startChild runs a bridge on the configuration file cfg and waits until it listens.
func startChild(t *testing.T, cfg, name string) *child {
	t.Helper()
	ch := &child{Proc: testkit.Reexec(t, name, envChild+"="+cfg)}
	addr := regexp.MustCompile(`(?m)^addr (\S+)\n`)
	testkit.Eventually(t, 2*time.Minute, name+" listens", func() bool {
		select {
		case <-ch.Exited():
			t.Fatalf("%s exited before listening: %v", name, ch.Err())
		default:
		}
		return addr.MatchString(ch.Out.String())
	}, ch.Out.String)
	ch.url = "http://" + addr.FindStringSubmatch(ch.Out.String())[1]
	return ch
}

// kill ends the child with SIGKILL: nothing flushed, nothing closed.
func (ch *child) kill(t *testing.T) {
	t.Helper()
	ch.Kill()
}

// stop ends the child gracefully and checks that it exits cleanly.
func (ch *child) stop(t *testing.T) {
	t.Helper()
	if err := ch.Stop(time.Minute); err != nil {
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
