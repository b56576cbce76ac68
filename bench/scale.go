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

// A dedup store setup measured by -scale: its store, how many replicas share the load, and
// the bridge binary they run (the run's, or -baseline-bin's).
type scaleSetup struct {
	name     string
	redis    bool
	replicas int
	bin      string
	bs       []*bridgeProc
	closed   []Phase // one per round
	open     []Phase
}

// scale compares the dedup stores in one run, instead of the main phases: the bridge with
// dedup.store memory, with redis (a redis-server of its own, appendfsync everysec), two
// replicas sharing that Redis with the connections split between them, and with
// -baseline-bin the same Redis setup run by that other binary. Every setup's bridges start
// once; then each of -rounds rounds runs every setup closed loop, for its maximum rate, and
// every setup open loop at one fixed rate (half the memory store's maximum in the first
// round), for its latency at the same load. Setups take turns within a round, and their order
// rotates from one round to the next, so that whatever else the machine does weighs on all of
// them alike; each ratio is taken within its round. It then verifies every answer against
// Kafka and returns a markdown report.
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
	r.redisPid = srv.Pid()
	setups := r.scaleSetups(bin)
	defer func() {
		for _, s := range setups {
			for _, b := range s.bs {
				err = errors.Join(err, b.stop())
			}
		}
	}()
	load := loadAverage()
	rate, err := r.scaleRounds(ctx, setups, srv.Addr())
	if err != nil {
		return "", err
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
	report := scaleReport(setups, rate, v, load+" at the start, "+loadAverage()+" at the end")
	if !v.Passed {
		return report, fmt.Errorf("verification failed: %v", v.Examples)
	}
	return report, nil
}

func (r *runner) scaleSetups(bin string) []*scaleSetup {
	setups := []*scaleSetup{
		{name: "memory, 1 replica", replicas: 1, bin: bin},
		{name: "redis, 1 replica", redis: true, replicas: 1, bin: bin},
		{name: "redis, 2 replicas", redis: true, replicas: 2, bin: bin},
	}
	if r.o.baselineBin != "" {
		setups = append(setups, &scaleSetup{name: "redis, 1 replica, " + filepath.Base(r.o.baselineBin), redis: true, replicas: 1, bin: r.o.baselineBin})
	}
	return setups
}

// scaleRounds starts the setups' bridges, warms each up, and runs the rounds; it returns the
// open loop's rate.
func (r *runner) scaleRounds(ctx context.Context, setups []*scaleSetup, redisAddr string) (float64, error) {
	for i, s := range setups {
		if err := r.startSetup(ctx, s, i, redisAddr); err != nil {
			return 0, fmt.Errorf("%s: %w", s.name, err)
		}
		warm := r.batch(fmt.Sprintf("s%dw", i), r.o.maxRequests/4, r.o.dupShare)
		extra := time.Duration(0)
		if i == 0 {
			extra = r.o.brokerWarmup
		}
		r.ledger.add(warm, drive(ctx, schedule{conns: r.o.conns, duration: r.o.warmup + extra}, len(warm), spread(s.addrs(), warm)))
	}
	var rate float64
	for round := range r.o.rounds {
		r.logf("round %d of %d", round+1, r.o.rounds)
		for _, s := range rotate(setups, round) {
			tag := fmt.Sprintf("s%d-%sc", round, s.name)
			p := r.measureSpread(ctx, s.bs, s.name, r.closed(), r.batch(tag, r.o.maxRequests, r.o.dupShare))
			r.record(p)
			s.closed = append(s.closed, p)
		}
		if rate == 0 {
			if rate = setups[0].closed[0].OKPerSec / 2; rate <= 0 {
				return 0, errors.New("the memory store answered nothing 200")
			}
		}
		for _, s := range rotate(setups, round) {
			tag := fmt.Sprintf("s%d-%so", round, s.name)
			sch := schedule{conns: r.o.openConns, duration: r.o.duration, rate: rate, grace: 10 * time.Second}
			p := r.measureSpread(ctx, s.bs, s.name+" at a fixed rate", sch, r.batch(tag, int(rate*r.o.duration.Seconds()), r.o.dupShare))
			r.record(p)
			s.open = append(s.open, p)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return rate, nil
}

// startSetup starts the replicas of setup s, the n-th.
func (r *runner) startSetup(ctx context.Context, s *scaleSetup, n int, redisAddr string) error {
	extra := ""
	if s.redis {
		extra = fmt.Sprintf("dedup:\n  store: redis\n  redis:\n    addr: %q\n    key_prefix: %q\n", redisAddr, r.prefix)
	}
	for i := range s.replicas {
		b, err := startBridge(ctx, s.bin, r.dir, fmt.Sprintf("scale-%d-%d", n, i), r.kafka(r.prefix), r.secret, false, extra)
		if err != nil {
			return err
		}
		s.bs = append(s.bs, b)
	}
	return nil
}

func (s *scaleSetup) addrs() []string {
	var addrs []string
	for _, b := range s.bs {
		addrs = append(addrs, b.addr)
	}
	return addrs
}

// rotate returns xs starting at its n-th element (modulo its length), wrapping around.
func rotate[T any](xs []T, n int) []T {
	n %= len(xs)
	return append(append([]T{}, xs[n:]...), xs[:n]...)
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
	before, err := scrapeWaits(ctx, addrs)
	if err != nil {
		r.logf("%s: %v", name, err)
	}
	meter := meterCPU(pids)
	run := drive(ctx, s, len(ds), spread(addrs, ds))
	p := summarize(name, name, run, meter.used(), "bridge")
	if after, err := scrapeWaits(ctx, addrs); err == nil && before != nil {
		w := after.since(before)
		p.Reserve, p.Ack = w["bridge_dedup_reserve_seconds"].latency(), w["bridge_produce_seconds"].latency()
	} else if err != nil {
		r.logf("%s: %v", name, err)
	}
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

// loadAverage is the machine's load average over the last minute, from /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func scaleReport(setups []*scaleSetup, rate float64, v Verification, load string) string {
	var b strings.Builder
	base := setups[0]
	fmt.Fprintf(&b, "%d rounds; 1-minute load average %s. Medians of the rounds, [lowest–highest] in brackets; each ratio is to the memory store in the same round.\n\n", len(base.closed), load)
	fmt.Fprintf(&b, "| setup | closed loop: 200s/s | ratio to memory | p99 ms | ratio | reservation p50 / p99 ms | Kafka ack p50 ms | open loop at %.0f/s: p50 ms | p99 ms | ratio | p99.9 ms | reservation p50 / p99 ms | CPU s / 1,000 requests: bridge(s) | redis |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n", rate)
	for _, s := range setups {
		ratio := func(ps, to []Phase, f func(Phase) float64) string {
			rs := make([]float64, len(ps))
			for i := range ps {
				rs[i] = f(ps[i]) / f(to[i])
			}
			return medianRange(rs, "%.2f")
		}
		okps := func(p Phase) float64 { return p.OKPerSec }
		p99 := func(p Phase) float64 { return p.Latency.P99 }
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.2f | %s | %s | %s | %.2f | %.2f | %s | %.2f | %s | %.3f | %.3f |\n", s.name,
			median(s.closed, okps), ratio(s.closed, base.closed, okps), median(s.closed, p99), ratio(s.closed, base.closed, p99),
			waitCell(s.closed, func(p Phase) *Latency { return p.Reserve }, true),
			waitCell(s.closed, func(p Phase) *Latency { return p.Ack }, false),
			median(s.open, func(p Phase) float64 { return p.Latency.P50 }), median(s.open, p99), ratio(s.open, base.open, p99),
			median(s.open, func(p Phase) float64 { return p.Latency.P999 }),
			waitCell(s.open, func(p Phase) *Latency { return p.Reserve }, true),
			median(s.open, func(p Phase) float64 { return perThousand(p, bridgeCPU(p)) }),
			median(s.open, func(p Phase) float64 { return perThousand(p, p.CPUSeconds["redis"]) }))
	}
	fmt.Fprintf(&b, "\nVerification: %d ids sent, %d answered 200, %d records read, %d mismatches (passed: %t).\n",
		v.IDsSent, v.IDsAnswered, v.RecordsRead, v.Mismatches, v.Passed)
	return b.String()
}

// bridgeCPU is the CPU seconds of every bridge process of phase p.
func bridgeCPU(p Phase) float64 {
	s := 0.0
	for name, c := range p.CPUSeconds {
		if strings.HasPrefix(name, "bridge") {
			s += c
		}
	}
	return s
}

func perThousand(p Phase, seconds float64) float64 { return 1000 * seconds / max(1, float64(p.Sent)) }

// waitCell is the median over ps of the p50 of one of the bridges' own histograms (and of its
// p99 when both), or "–" when a phase has none (a bridge built before the series existed).
func waitCell(ps []Phase, of func(Phase) *Latency, both bool) string {
	for _, p := range ps {
		if of(p) == nil {
			return "–"
		}
	}
	p50 := median(ps, func(p Phase) float64 { return of(p).P50 })
	if !both {
		return fmt.Sprintf("%.2f", p50)
	}
	return fmt.Sprintf("%.2f / %.2f", p50, median(ps, func(p Phase) float64 { return of(p).P99 }))
}
