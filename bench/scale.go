package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/socialbridge/bridge/internal/redisserver"
)

// A dedup store setup measured by -scale: its store and how many replicas share the load.
type scaleSetup struct {
	name     string
	redis    bool
	replicas int
}

var scaleSetups = []scaleSetup{
	{"memory, 1 replica", false, 1},
	{"redis, 1 replica", true, 1},
	{"redis, 2 replicas", true, 2},
}

// scale compares the dedup stores in one run, instead of the main phases: the bridge with
// dedup.store memory, with redis (a redis-server of its own, appendfsync everysec), and two
// replicas sharing that Redis with the connections split between them; each closed loop for
// its maximum rate, then open loop at half of the memory store's maximum for its latency at
// the same load. It then verifies every answer against Kafka and returns a markdown report.
func (r *runner) scale(ctx context.Context) (string, error) {
	bin, err := r.bridgeBinary(ctx)
	if err != nil {
		return "", err
	}
	if _, err := r.checkBroker(ctx); err != nil {
		return "", err
	}
	dir := filepath.Join(r.dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	srv, err := redisserver.Start(dir)
	if err != nil {
		return "", err
	}
	defer srv.Kill()
	extra := fmt.Sprintf("dedup:\n  store: redis\n  redis:\n    addr: %q\n    key_prefix: %q\n", srv.Addr(), r.prefix)
	var closed, open []Phase
	var rate float64
	r.redisPid = srv.Pid()
	for i, s := range scaleSetups {
		c, o, err := r.scaleSetup(ctx, bin, s, i, extra, &rate)
		if err != nil {
			return "", fmt.Errorf("%s: %w", s.name, err)
		}
		closed, open = append(closed, c), append(open, o)
	}
	vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	st, err := readTopics(vctx, r.o.brokers, r.prefix)
	if err != nil {
		return "", err
	}
	v := verify(r.ledger, st, r.prefix)
	if !r.o.keepTopics {
		r.deleteTopics(ctx)
	}
	report := scaleReport(closed, open, rate, v)
	if !v.Passed {
		return report, fmt.Errorf("verification failed: %v", v.Examples)
	}
	return report, nil
}

// scaleSetup measures one setup; the first one's maximum sets the open-loop rate of all.
func (r *runner) scaleSetup(ctx context.Context, bin string, s scaleSetup, n int, extra string, rate *float64) (closed, open Phase, err error) {
	if !s.redis {
		extra = ""
	}
	var bs []*bridgeProc
	defer func() {
		for _, b := range bs {
			err = errors.Join(err, b.stop())
		}
	}()
	var addrs []string
	for i := range s.replicas {
		b, err := startBridge(ctx, bin, r.dir, fmt.Sprintf("scale-%d-%d", n, i), r.kafka(r.prefix), r.secret, false, extra)
		if err != nil {
			return closed, open, err
		}
		bs, addrs = append(bs, b), append(addrs, b.addr)
	}
	tag := fmt.Sprintf("s%d", n)
	warm := r.batch(tag+"w", r.o.maxRequests/4, r.o.dupShare)
	r.ledger.add(warm, drive(ctx, schedule{conns: r.o.conns, duration: r.o.warmup + r.o.brokerWarmup/2}, len(warm), spread(addrs, warm)))
	closed = r.measureSpread(ctx, bs, s.name, schedule{conns: r.o.conns, duration: r.o.duration}, r.batch(tag+"c", r.o.maxRequests, r.o.dupShare))
	r.record(closed)
	if *rate == 0 {
		*rate = closed.OKPerSec / 2
	}
	os := schedule{conns: r.o.openConns, duration: r.o.duration, rate: *rate, grace: 10 * time.Second}
	open = r.measureSpread(ctx, bs, s.name+" at a fixed rate", os, r.batch(tag+"o", int(*rate*r.o.duration.Seconds()), r.o.dupShare))
	r.record(open)
	return closed, open, nil
}

// measureSpread runs one phase over the replicas bs and keeps its answers for verification.
func (r *runner) measureSpread(ctx context.Context, bs []*bridgeProc, name string, s schedule, ds []delivery) Phase {
	time.Sleep(time.Second)
	pids := r.pids(bs[0].pid())
	pids["redis"] = r.redisPid
	var addrs []string
	for i, b := range bs {
		addrs = append(addrs, b.addr)
		if i > 0 {
			pids[fmt.Sprintf("bridge-%d", i+1)] = b.pid()
		}
	}
	meter := meterCPU(pids)
	run := drive(ctx, s, len(ds), spread(addrs, ds))
	p := summarize(name, name, run, meter.used(), "bridge")
	r.ledger.add(ds, run)
	return p
}

// spread is webhooks over several replicas: each connection goes to the next one in turn.
func spread(addrs []string, ds []delivery) sender {
	var next atomic.Int64
	return func() (func(int, time.Time) result, func()) {
		return webhooks(addrs[int(next.Add(1)-1)%len(addrs)], ds)()
	}
}

func scaleReport(closed, open []Phase, rate float64, v Verification) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| setup | closed loop: 200s/s | ratio to memory | p99 ms | open loop at %.0f/s: p50 ms | p99 ms | p99.9 ms | CPU s / 1,000 requests: bridge(s) | redis |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n", rate)
	for i := range closed {
		c, o := closed[i], open[i]
		bridge := 0.0
		for name, s := range o.CPUSeconds {
			if strings.HasPrefix(name, "bridge") {
				bridge += s
			}
		}
		per := func(s float64) float64 { return 1000 * s / max(1, float64(o.Sent)) }
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f |\n", c.Name, c.OKPerSec, c.OKPerSec/closed[0].OKPerSec,
			c.Latency.P99, o.Latency.P50, o.Latency.P99, o.Latency.P999, per(bridge), per(o.CPUSeconds["redis"]))
	}
	fmt.Fprintf(&b, "\nVerification: %d ids sent, %d answered 200, %d records read, %d mismatches (passed: %t).\n",
		v.IDsSent, v.IDsAnswered, v.RecordsRead, v.Mismatches, v.Passed)
	return b.String()
}
