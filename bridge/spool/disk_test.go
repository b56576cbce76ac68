package spool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/testkit"
)

// tmpfs mounts a file system of size bytes for the test: a disk that fills. Mounting needs
// root; without it the test is skipped, or fails under CI, which runs as root.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs (CI runs as root): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (not root?): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestFullDisk: a disk that fills under the spool, long before spool.max_bytes, refuses the
// appends that do not fit (ENOSPC, not ErrFull), leaves nothing of them behind (a group whose
// write was cut short is cut back: its whole frames must not come back as records), and says it
// has no room; once drained, the spool takes records again.
func TestFullDisk(t *testing.T) {
	dir := tmpfs(t, 180<<10) // not a whole number of segments: a write fails in the middle of one
	slowSync := func(f *os.File) error {
		time.Sleep(time.Millisecond) // as a disk's fsync takes: appends wait together, in groups
		return f.Sync()
	}
	s := open(t, dir, func(o *spool.Options) { o.SegmentBytes, o.Sync = 32<<10, slowSync })
	var mu sync.Mutex
	ok, failures := 0, 0
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				rec := record(sources[i%2], fmt.Sprintf("evt_%d_%04d", w, i), i)
				rec.Value = append(rec.Value, make([]byte, 700+97*w)...)
				err := s.Append(rec)
				mu.Lock()
				if err == nil {
					ok++
				} else if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, spool.ErrFull) {
					t.Errorf("append: %v; want ENOSPC", err)
				} else {
					failures++
				}
				stop := failures >= 40
				mu.Unlock()
				if err != nil && stop {
					return
				}
			}
		})
	}
	wg.Wait()
	if ok < 50 {
		t.Fatalf("%d appends before the disk was full", ok)
	}
	if err := s.Room(1024); err == nil {
		t.Error("Room on a full disk: nil")
	}
	s.Close()
	s = open(t, dir, func(o *spool.Options) { o.SegmentBytes = 32 << 10 })
	if n := len(s.Marks()); n != ok {
		t.Fatalf("%d records read back, want the %d appended: a failed write left records behind", n, ok)
	}
	if err := s.Reconcile(context.Background(), nothingInKafka); err != nil {
		t.Fatal(err)
	}
	p := newProducer()
	drain(t, s, p)
	waitEmpty(t, s)
	if err := s.Append(record("postiz", "evt_after", 1)); err != nil {
		t.Fatalf("append once drained: %v", err)
	}
	p.waitFor(t, "evt_after")
}

// TestFullDiskAnswers503: a bridge whose spool's disk is full, Kafka down, answers 503 with
// Retry-After (as without a spool), keeps serving, and /readyz says it cannot take deliveries.
func TestFullDiskAnswers503(t *testing.T) {
	dir := tmpfs(t, 256<<10)
	cfg := config.Default()
	cfg.HTTP.Listen, cfg.HTTP.DrainPeriod, cfg.HTTP.MaxBodyBytes = "127.0.0.1:0", 0, 64<<10
	cfg.Kafka.Brokers = []string{closedAddr(t)}
	cfg.Kafka.ProduceTimeout = config.Duration(time.Second)
	cfg.Dedup.Rebuild = false
	cfg.Spool.Dir = dir
	on := true
	cfg.Sources = []config.Source{{Name: "postiz", Provider: "postiz", Secrets: []string{postizToken}, Spool: &on}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
	})
	base := "http://" + svc.Addr()
	s := newSenders(t)
	spooled := 0
	for ; spooled < 5000; spooled++ {
		_, a, err := s.next(base, "postiz")
		if err != nil {
			t.Fatalf("after %d spooled: %v", spooled, err)
		}
		if a.Code == 503 {
			if a.Body == nil || !strings.Contains(string(a.Body), `"status":"unavailable"`) {
				t.Errorf("503 answer %s", a.Body)
			}
			break
		}
		if a.Code != 200 || a.Status != "spooled" {
			t.Fatalf("delivery %d: %d %s", spooled, a.Code, a.Body)
		}
	}
	if spooled == 5000 || spooled < 20 {
		t.Fatalf("%d deliveries spooled on a 256 KiB disk before a 503", spooled)
	}
	for range 3 {
		if _, a, err := s.next(base, "postiz"); err != nil || a.Code != 503 {
			t.Fatalf("on a full disk: %d %s %v; want 503", a.Code, a.Body, err)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		testkit.Eventually(t, 30*time.Second, path, func() bool {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode == want
		})
	}
}

// closedAddr returns a loopback address where nothing listens: a Kafka that is down.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
