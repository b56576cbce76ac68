// Command bench is the bridge's load benchmark on a real broker. In one run it measures the
// Kafka-side ceiling (franz-go producing the bridge's records directly, with the bridge's
// producer options), the HTTP-side ceiling (the bridge with producing replaced by a no-op),
// and the bridge itself, closed loop for its maximum rate and then open loop at 50% and 90%
// of it; it reads the topics back to check that every id answered 200 is in Kafka exactly
// once, and writes RESULTS.md and results.json. It sends only to loopback addresses, and
// every phase is bounded in count and time.
//
//	go run ./bench -brokers 127.0.0.1:39092    (make bench starts a broker and runs this)
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// maxLevel bounds -concurrency: connections are this process's files, and the bridge's.
const maxLevel = 4096

// The phases, in the order they run.
const (
	phaseDirect  = "direct"
	phaseNoop    = "noop"
	phaseBridge  = "bridge"
	phaseHalf    = "bridge-50"
	phaseHostile = "bridge-50-hostile"
	phase90      = "bridge-90"
)

type options struct {
	brokers      []string
	duration     time.Duration
	warmup       time.Duration
	conns        int
	dupShare     float64
	maxRequests  int
	out          string
	bridgeBin    string
	micro        bool
	brokerWarmup time.Duration
	brokerPid    int
	kafkaVersion string
	timeout      time.Duration
	keepTopics   bool
	args         []string
	linger       time.Duration
	compression  string
	partitions   int
	openConns    int
	scale        bool
	rounds       int
	levels       []int
	variants     string
	baselineBin  string
	hostileIdle  int
	hostileSlow  int
	hostileJSON  float64
	profileDir   string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", envOr("BRIDGE_TEST_KAFKA", "127.0.0.1:39092"), "Kafka seed brokers, comma-separated; loopback only")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "closed-loop warm-up before each closed-loop phase, not measured")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections (direct baseline: concurrent synchronous producers)")
	fs.Float64Var(&o.dupShare, "dup-share", 0.05, "share of requests that redeliver an earlier id (answered 200 duplicate)")
	fs.IntVar(&o.maxRequests, "max-requests", 500_000, "most requests of one phase")
	fs.StringVar(&o.out, "out", "bench", "folder for RESULTS.md and results.json")
	fs.StringVar(&o.bridgeBin, "bridge-bin", "bin/bridge", "bridge binary; built from ./cmd/bridge if missing")
	fs.BoolVar(&o.micro, "micro", true, "after the load phases, run the micro-benchmarks (go test -bench . -benchmem ./bench/...) on the same broker and include them")
	fs.DurationVar(&o.brokerWarmup, "broker-warmup", 10*time.Second, "extra warm-up of the first phase, while the broker's JVM compiles its hot code")
	fs.IntVar(&o.brokerPid, "broker-pid", 0, "the broker's pid, to report its CPU time (optional)")
	fs.StringVar(&o.kafkaVersion, "kafka-version", "", "the broker's Kafka version, for the results (default: guessed from its API versions)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	fs.DurationVar(&o.linger, "linger", config.Default().Kafka.Linger.D(), "kafka.linger of the bridge and the direct baseline")
	fs.StringVar(&o.compression, "compression", config.Default().Kafka.Compression, "kafka.compression of the bridge and the direct baseline")
	fs.IntVar(&o.partitions, "partitions", int(config.Default().Kafka.Partitions), "kafka.partitions of the run's topics")
	fs.IntVar(&o.openConns, "open-conns", 0, "connections of the open-loop phases (default 4 × -conns), so that the schedule, not the connection count, paces them")
	fs.BoolVar(&o.keepTopics, "keep-topics", false, "keep the run's topics instead of deleting them at the end")
	fs.BoolVar(&o.scale, "scale", false, "instead of the main phases, compare dedup.store memory, redis and two replicas sharing redis, and print the figures")
	fs.IntVar(&o.rounds, "rounds", 3, "with -scale: rounds of interleaved phases, whose medians and ranges are reported")
	concurrency := fs.String("concurrency", "", "instead of the main phases, measure the bridge at each of these connection counts (e.g. 32,256,1024) against the direct producer at the same concurrency, with the broker's CPU per record (needs -broker-pid), and print the figures")
	fs.StringVar(&o.variants, "variants", "", "with -concurrency: producer settings to compare, \"name=key:value,…;name2=…\" (keys linger, partitions, compression); default the bridge's defaults alone")
	fs.StringVar(&o.baselineBin, "baseline-bin", "", "with -scale: also measure Redis with this other bridge binary (e.g. the build before a change), in the same rounds")
	fs.StringVar(&o.profileDir, "profile", "", "with -concurrency: write CPU profiles of each closed-loop phase into this folder (the bridge's, through its --pprof, and this process's: the load generator or the direct producer)")
	fs.IntVar(&o.hostileIdle, "hostile-idle", 2000, "hostile phase: connections that send nothing")
	fs.IntVar(&o.hostileSlow, "hostile-slowloris", 200, "hostile phase: connections that send a request's headers a byte a second")
	fs.Float64Var(&o.hostileJSON, "hostile-json", 40, "hostile phase: signed deeply nested or huge-number JSON bodies per second (0 and no connections: no hostile phase)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, c := range strings.Split(*concurrency, ",") {
		if c = strings.TrimSpace(c); c != "" {
			n, err := strconv.Atoi(c)
			if err != nil || n < 1 || n > maxLevel {
				return o, fmt.Errorf("-concurrency: %q: want connection counts from 1 to %d", c, maxLevel)
			}
			o.levels = append(o.levels, n)
		}
	}
	slices.Sort(o.levels)
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.brokers = append(o.brokers, b)
		}
	}
	switch {
	case len(o.brokers) == 0:
		return o, errors.New("-brokers is empty")
	case o.conns < 1 || o.maxRequests < 1 || o.duration <= 0 || o.partitions < 1 || o.openConns < 0 || o.rounds < 1:
		return o, errors.New("-conns, -max-requests, -duration, -partitions and -rounds must be positive")
	case o.hostileIdle < 0 || o.hostileSlow < 0 || o.hostileJSON < 0:
		return o, errors.New("-hostile-idle, -hostile-slowloris and -hostile-json must not be negative")
	case o.dupShare < 0 || o.dupShare >= 1:
		return o, errors.New("-dup-share must be in [0, 1)")
	}
	if o.openConns == 0 {
		o.openConns = 4 * o.conns
	}
	for _, b := range o.brokers {
		if err := loopbackOnly(b); err != nil {
			return o, err
		}
	}
	return o, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return strings.Split(v, ",")[0]
	}
	return def
}

// loopbackOnly refuses a broker that is not on this machine's loopback: a load test sends
// nowhere else.
func loopbackOnly(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("broker %q: %w", hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("broker %q is not a loopback address; the benchmark only sends to 127.0.0.0/8 or ::1", hostport)
	}
	return nil
}

// runner holds what the phases of one run share.
type runner struct {
	o      options
	runID  string // in every event id and topic prefix of the run
	prefix string // the bridge's topic prefix
	secret []byte
	dir    string // generated configs and bridge logs
	path   *requestPath
	ledger ledger
	phases []Phase
	attack *Attack
	log    io.Writer
	// redisPid is the Redis of -scale, whose CPU time it reports.
	redisPid int
	// directRecs are the records -concurrency's direct producer cycles through, of the
	// event types directTypes.
	directRecs  []*kgo.Record
	directTypes []string
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	r, err := newRunner(o, os.Stderr)
	if err != nil {
		return err
	}
	defer os.RemoveAll(r.dir)
	if len(o.levels) > 0 {
		report, err := r.concurrency(ctx)
		fmt.Fprintln(stdout, "\n"+report)
		return err
	}
	if o.scale {
		report, err := r.scale(ctx)
		fmt.Fprintln(stdout, "\n"+report)
		return err
	}
	res, err := r.all(ctx)
	if err != nil {
		return err
	}
	if err := res.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\nwrote %s and %s\n", res.markdown(), filepath.Join(o.out, "RESULTS.md"), filepath.Join(o.out, "results.json"))
	if !res.Verification.Passed {
		return fmt.Errorf("verification failed: %d mismatches between the answers and Kafka", res.Verification.Mismatches)
	}
	return nil
}

func newRunner(o options, log io.Writer) (*runner, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	secret := []byte(hex.EncodeToString(raw[:]))
	path, err := newRequestPath(secret)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bridge-bench-")
	if err != nil {
		return nil, err
	}
	runID := fmt.Sprintf("%d", time.Now().Unix())
	return &runner{
		o: o, runID: runID, prefix: "bench" + runID + ".", secret: secret, dir: dir,
		path: path, ledger: ledger{}, log: log,
	}, nil
}

// all runs the phases, verifies, and gathers the results.
func (r *runner) all(ctx context.Context) (*Results, error) {
	bin, err := r.bridgeBinary(ctx)
	if err != nil {
		return nil, err
	}
	kafkaVersion, err := r.checkBroker(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.direct(ctx); err != nil {
		return nil, fmt.Errorf("direct producer baseline: %w", err)
	}
	if err := r.noop(ctx, bin); err != nil {
		return nil, fmt.Errorf("no-op producer baseline: %w", err)
	}
	maxRate, err := r.bridge(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	r.logf("reading back the topics %s* to verify", r.prefix)
	vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	st, err := readTopics(vctx, r.o.brokers, r.prefix)
	if err != nil {
		return nil, fmt.Errorf("verification: %w", err)
	}
	res := &Results{
		Date:         time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Machine:      machine(kafkaVersion),
		Settings:     r.settings(maxRate),
		Phases:       r.phases,
		Attack:       r.attack,
		Verification: verify(r.ledger, st, r.prefix),
	}
	r.logf("verification: %d records read, %d mismatches", st.records, res.Verification.Mismatches)
	if r.o.micro {
		if res.Micro, err = r.microBenchmarks(ctx); err != nil {
			return nil, err
		}
	}
	res.judge()
	if !r.o.keepTopics {
		r.deleteTopics(ctx)
	}
	return res, nil
}

func (r *runner) settings(maxRate float64) Settings {
	k := r.kafka(r.prefix)
	return Settings{
		Command: strings.Join(append([]string{"go run ./bench"}, r.o.args...), " "), Brokers: strings.Join(r.o.brokers, ","),
		Conns: r.o.conns, Duration: r.o.duration.String(), Warmup: r.o.warmup.String(), DupShare: r.o.dupShare,
		MaxRequests: r.o.maxRequests, BodyBytes: "400-800", Partitions: k.Partitions, Linger: k.Linger.D().String(),
		Compression: k.Compression, MaxRate: maxRate,
	}
}

// kafka is the Kafka configuration of the run's bridges and direct baseline: the bridge's
// defaults with the run's brokers, topic prefix, linger, compression and partitions.
func (r *runner) kafka(prefix string) config.Kafka {
	k := config.Default().Kafka
	k.Brokers, k.TopicPrefix = r.o.brokers, prefix
	k.Linger, k.Partitions = config.Duration(r.o.linger), int32(r.o.partitions)
	k.Compression = r.o.compression
	return k
}

// microBenchmarks runs the request path's micro-benchmarks, BenchmarkProduce on the run's
// broker, and returns their figures.
func (r *runner) microBenchmarks(ctx context.Context) ([]Micro, error) {
	r.logf("micro-benchmarks: go test -run '^$' -bench . -benchmem ./bench/...")
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1",
		"github.com/socialbridge/bridge/bench/...")
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, r.log), os.Stderr
	cmd.Env = append(os.Environ(), "BRIDGE_TEST_KAFKA="+strings.Join(r.o.brokers, ","))
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("micro-benchmarks: %w", err)
	}
	return parseMicro(&out)
}

func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.log, "bench: "+format+"\n", a...)
}

// bridgeBinary returns the bridge binary to run, building it into the run's folder when
// -bridge-bin does not exist.
func (r *runner) bridgeBinary(ctx context.Context) (string, error) {
	if _, err := os.Stat(r.o.bridgeBin); err == nil {
		return r.o.bridgeBin, nil
	}
	bin := filepath.Join(r.dir, "bridge")
	r.logf("%s not found; building github.com/socialbridge/bridge/cmd/bridge", r.o.bridgeBin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/socialbridge/bridge/cmd/bridge")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the bridge: %w", err)
	}
	return bin, nil
}

// checkBroker makes sure the broker answers, and returns its Kafka version.
func (r *runner) checkBroker(ctx context.Context) (string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.o.brokers...))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	vs, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		return "", fmt.Errorf("broker %v: %w", r.o.brokers, err)
	}
	guess := ""
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			return "", fmt.Errorf("broker %v: %w", r.o.brokers, v.Err)
		}
		guess = v.VersionGuess()
	}
	if r.o.kafkaVersion != "" {
		return r.o.kafkaVersion, nil
	}
	return guess + " (guessed from its API versions)", nil
}

// deleteTopics deletes the event topics of the run's prefix and of its direct baseline, or of
// the prefixes given.
func (r *runner) deleteTopics(ctx context.Context, prefixes ...string) {
	if len(prefixes) == 0 {
		prefixes = []string{r.prefix, r.prefix + "direct."}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.o.brokers...))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var topics []string
	for _, p := range prefixes {
		topics = append(topics, event.Topics(p)...)
	}
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topics...); err != nil {
		r.logf("deleting the run's topics: %v", err)
	}
}

// batch generates the deliveries of one phase and collects the garbage of doing so, so
// that neither counts in the phase.
func (r *runner) batch(name string, count int, dupShare float64) []delivery {
	ds := generate(genSpec{
		runID: r.runID, phase: name, count: count, dupShare: dupShare,
		dupLag: 4 * r.o.conns, secret: r.secret, seed: uint64(time.Now().UnixNano()),
	})
	runtime.GC()
	return ds
}

func (r *runner) closed() schedule {
	return schedule{conns: r.o.conns, duration: r.o.duration}
}

func (r *runner) warm() schedule {
	return schedule{conns: r.o.conns, duration: r.o.warmup}
}

func (r *runner) pids(bridge int) map[string]int {
	return map[string]int{"bridge": bridge, "loadgen": os.Getpid(), "broker": r.o.brokerPid}
}

func (r *runner) record(p Phase) {
	r.phases = append(r.phases, p)
	r.logf("%-10s %6d sent in %4.1fs: %7.0f accepted/s, %7.0f 200s/s, p50 %6.2f ms, p99 %7.2f ms, p99.9 %7.2f ms; %s",
		p.Name, p.Sent, p.Seconds, p.AcceptedPerSec, p.OKPerSec, p.Latency.P50, p.Latency.P99, p.Latency.P999, answersText(p))
}

// direct measures franz-go producing the bridge's records itself, closed loop.
func (r *runner) direct(ctx context.Context) error {
	r.logf("phase %s: franz-go with the bridge's producer options, %d concurrent synchronous producers", phaseDirect, r.o.conns)
	p, err := newDirectProducer(ctx, r.kafka(r.prefix+"direct."), r.path)
	if err != nil {
		return err
	}
	defer p.close()
	recs, err := p.records(r.batch("d", r.o.maxRequests, 0))
	if err != nil {
		return err
	}
	runtime.GC()
	// The warm-up produces the same records, which franz-go may send again once acknowledged:
	// the direct topics are not verified. It is longer, as this phase is the broker's first.
	warm := schedule{conns: r.o.conns, duration: r.o.warmup + r.o.brokerWarmup}
	drive(ctx, warm, len(recs), p.sender(recs))
	time.Sleep(time.Second)
	meter := meterCPU(r.pids(0))
	run := drive(ctx, r.closed(), len(recs), p.sender(recs))
	r.record(summarize(phaseDirect, "direct franz-go producer (Kafka ceiling)", run, meter.used(), "loadgen"))
	return ctx.Err()
}

// noop measures the bridge with --discard-records, closed loop.
func (r *runner) noop(ctx context.Context, bin string) error {
	r.logf("phase %s: the bridge with --discard-records, %d connections, closed loop", phaseNoop, r.o.conns)
	b, err := startBridge(ctx, bin, r.dir, phaseNoop, r.kafka(r.prefix+"noop."), r.secret, true, "")
	if err != nil {
		return err
	}
	defer b.stop()
	warm := r.batch("nw", r.o.maxRequests/4, r.o.dupShare)
	drive(ctx, r.warm(), len(warm), webhooks(b.addr, warm))
	ds := r.batch("n", r.o.maxRequests, r.o.dupShare)
	p := r.measure(ctx, b, phaseNoop, "ingress, no-op producer (HTTP ceiling)", r.closed(), ds, false)
	r.record(p)
	if p.Sent == 0 {
		return errors.New("nothing was answered")
	}
	return b.stop()
}

// bridge measures the real bridge closed loop, then open loop at 50% and 90% of the rate it
// reached, and stops it so that everything it accepted is flushed before verification.
// It returns the maximum rate.
func (r *runner) bridge(ctx context.Context, bin string) (float64, error) {
	r.logf("phase %s: the bridge producing to Kafka, %d connections, closed loop", phaseBridge, r.o.conns)
	b, err := startBridge(ctx, bin, r.dir, phaseBridge, r.kafka(r.prefix), r.secret, false, "")
	if err != nil {
		return 0, err
	}
	defer b.stop()
	warm := r.batch("bw", r.o.maxRequests/4, r.o.dupShare)
	r.ledger.add(warm, drive(ctx, r.warm(), len(warm), webhooks(b.addr, warm)))
	p := r.measure(ctx, b, phaseBridge, "bridge → Kafka", r.closed(), r.batch("b", r.o.maxRequests, r.o.dupShare), true)
	r.record(p)
	maxRate := p.OKPerSec
	if maxRate <= 0 {
		return 0, errors.New("nothing was answered 200")
	}
	for _, step := range []struct {
		name  string
		share float64
	}{{phaseHalf, 0.5}, {phase90, 0.9}} {
		rate := step.share * maxRate
		r.logf("phase %s: open loop at %.0f/s (%.0f%% of %.0f/s)", step.name, rate, step.share*100, maxRate)
		s := schedule{conns: r.o.openConns, duration: r.o.duration, rate: rate, grace: 10 * time.Second}
		n := min(r.o.maxRequests, int(rate*r.o.duration.Seconds()))
		what := fmt.Sprintf("bridge → Kafka at %.0f%% of max", step.share*100)
		r.record(r.measure(ctx, b, step.name, what, s, r.batch(step.name, n, r.o.dupShare), true))
		if step.name == phaseHalf {
			if err := r.hostile(ctx, b, s, n); err != nil {
				return 0, err
			}
		}
	}
	return maxRate, b.stop()
}

// hostile measures the phase at 50% of the maximum again, same schedule, with an attack
// running beside it, and sums the attack up against the phase without it.
func (r *runner) hostile(ctx context.Context, b *bridgeProc, s schedule, n int) error {
	a := &attack{idle: r.o.hostileIdle, slow: r.o.hostileSlow, jsonRate: r.o.hostileJSON, secret: r.secret}
	if a.idle+a.slow == 0 && a.jsonRate == 0 {
		return nil
	}
	if err := checkFileLimit(a.idle + a.slow + s.conns); err != nil {
		return err
	}
	r.logf("phase %s: open loop at %.0f/s beside %d idle connections, %d slowloris clients and %.0f hostile JSON bodies/s",
		phaseHostile, s.rate, a.idle, a.slow, a.jsonRate)
	actx, stop := context.WithCancel(ctx)
	defer stop()
	wait := a.start(actx, b.addr)
	wctx, stopWatching := context.WithCancel(actx)
	lowest := a.watchHeld(wctx)
	p := r.measure(ctx, b, phaseHostile, "bridge → Kafka at 50% of max, under hostile clients", s, r.batch(phaseHostile, n, r.o.dupShare), true)
	stopWatching()
	held := lowest()
	stop()
	wait()
	r.record(p)
	calm, _ := phase(r.phases, phaseHalf)
	r.attack = a.result(held, calm, p)
	r.logf("hostile: valid p99 %.2f ms against %.2f ms without (%.2f×), %d valid answers not 200; fewest attack connections held %d of %d",
		p.Latency.P99, calm.Latency.P99, r.attack.ValidToCalmP99, r.attack.ValidNon200, held, a.idle+a.slow)
	return ctx.Err()
}

// measure runs one HTTP phase against bridge b and summarizes it; with keep, its answers go
// to the ledger that verification checks.
func (r *runner) measure(ctx context.Context, b *bridgeProc, name, what string, s schedule, ds []delivery, keep bool) Phase {
	time.Sleep(time.Second) // let the warm-up's or the previous phase's tail settle
	meter := meterCPU(r.pids(b.pid()))
	run := drive(ctx, s, len(ds), webhooks(b.addr, ds))
	cpu := meter.used()
	p := summarize(name, what, run, cpu, "bridge")
	if rss, err := peakRSS(b.pid()); err == nil {
		p.PeakRSSMiB = float64(rss) / (1 << 20)
	}
	if keep {
		r.ledger.add(ds, run)
	}
	return p
}
