package main

import (
	"context"
	"flag"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

var slowBodyFull = flag.Bool("slowbody.full", false, "run TestMemoryUnderSlowUploads for minutes instead of seconds")

// The attack of TestMemoryUnderSlowUploads, and the bound on the bridge's RSS under it (see
// docs/performance.md): 2,000 connections each sending a 1 MiB body 16 KiB a second, so that
// none ends within the read timeout of 10 s, while a valid sender posts a delivery every
// 100 ms.
const (
	slowConns    = 2000
	slowSize     = 1 << 20
	slowChunk    = 16 << 10
	slowTick     = time.Second
	slowBoundRSS = 384 << 20
)

// TestMemoryUnderSlowUploads runs a bridge process with the default configuration under the
// attack: its peak RSS stays under slowBoundRSS, the uploads are answered 503 (Retry-After)
// or 408 past the caps, and every valid delivery beside them is accepted.
func TestMemoryUnderSlowUploads(t *testing.T) {
	duration := 20 * time.Second
	if *slowBodyFull {
		duration = 3 * time.Minute
	}
	if err := checkFileLimit(slowConns); err != nil {
		t.Fatal(err)
	}
	k := config.Default().Kafka
	k.Brokers, k.TopicPrefix, k.Partitions = kafkatest.Brokers(t), kafkatest.Prefix(t), 1
	ctx, cancel := context.WithTimeout(context.Background(), duration+3*time.Minute)
	defer cancel()
	b, err := startBridge(ctx, testkit.BuildBridge(t), t.TempDir(), "slowbody", k, benchSecret, false, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.stop()

	a := &slowUploads{conns: slowConns, size: slowSize, chunk: slowChunk, tick: slowTick}
	actx, stop := context.WithTimeout(ctx, duration+30*time.Second)
	defer stop()
	wait := a.start(actx, b.addr)
	t.Logf("%d uploads open", a.open.Load())
	var over atomic.Bool
	valid := sendValid(actx, b, duration, &over)
	logRuntime(t, b.addr)
	stop()
	wait()
	rss, err := peakRSS(b.pid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bridge peak RSS %.0f MiB (bound %d MiB); %d dials, %d MiB of bodies sent; uploads answered %v; valid deliveries %v",
		float64(rss)/(1<<20), slowBoundRSS>>20, a.dials.Load(), a.sent.Load()>>20, a.answers, valid)
	if rss > slowBoundRSS || over.Load() {
		t.Errorf("peak RSS %d MiB over the bound of %d MiB", rss>>20, slowBoundRSS>>20)
	}
	if a.answers["HTTP/1.1 503 Service Unavailable"] == 0 {
		t.Errorf("no upload was answered 503: the caps were never reached, the attack proves nothing")
	}
	if len(valid) != 2 || valid["200 accepted (small)"] == 0 || valid["200 accepted (24 KiB)"] == 0 {
		t.Errorf("valid deliveries answered %v; want every one accepted", valid)
	}
}

// sendValid posts a signed delivery every 100 ms for d, each on a connection of its own as
// a provider does, half of them small (fasthttp reads those with the headers) and half of
// 24 KiB (read within the body budget), and returns the count of each answer. It stops
// early, setting over, once the bridge's RSS is over the bound.
func sendValid(ctx context.Context, b *bridgeProc, d time.Duration, over *atomic.Bool) map[string]int {
	r := rand.New(rand.NewPCG(9, 9))
	answers := map[string]int{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range int(d / (100 * time.Millisecond)) {
		select {
		case <-ctx.Done():
			return answers
		case <-tick.C:
		}
		if rss, err := peakRSS(b.pid()); err == nil && rss > slowBoundRSS {
			over.Store(true)
			return answers
		}
		size := 600
		if i%2 == 1 {
			size = 24 << 10
		}
		id := "evt_slowbody_" + strconv.Itoa(i)
		body := makeBody(r, id, event.PostPublished, time.Now(), size)
		c := newHTTPConn(b.addr, 30*time.Second)
		code, answer, err := c.do(request(id, event.PostPublished, body, sign(benchSecret, body)).wire)
		c.close()
		answers[classifyAnswer(code, answer, err)+" ("+sizeClass(size)+")"]++
	}
	return answers
}

func sizeClass(n int) string {
	if n > 8<<10 {
		return "24 KiB"
	}
	return "small"
}

func classifyAnswer(code int, body []byte, err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	if code == 200 {
		return strconv.Itoa(code) + " " + string(status(body))
	}
	return strconv.Itoa(code) + " " + string(reason(body))
}

// logRuntime logs the bridge's heap and goroutines, from its metrics.
func logRuntime(t *testing.T, addr string) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for l := range strings.Lines(string(m)) {
		if strings.HasPrefix(l, "go_memstats_heap_inuse_bytes ") || strings.HasPrefix(l, "go_goroutines ") ||
			strings.HasPrefix(l, "bridge_uploads_shed_total ") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
